/**
 * Real listeners on 127.0.0.1 for the health tests: tcp, http, https, udp, a tiny DNS
 * server, and a TCP port whose connects hang (a stopped listener with a full backlog).
 */
import { spawn } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export interface Listener {
  port: number;
  close(): Promise<void>;
}

/** A throwaway self-signed certificate for CN=localhost (test only). */
export const TEST_CERT = `-----BEGIN CERTIFICATE-----
MIIBfzCCASWgAwIBAgIUcga9ncdGXLYGOlnOas0O3k2z+rwwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyMjEwNDYzMloYDzIxMjYxMDI5
MTA0NjMyWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAARdgzqax1PkYG0T/J/8fLXTzBXExTNsz8CuvehI2zun32qkwMEjdEA4
FYerowUsMIxg0nISxlFp1M6t75JQgVPHo1MwUTAdBgNVHQ4EFgQUFtnuE5L1j5bz
TD/et0RV6E/0eeYwHwYDVR0jBBgwFoAUFtnuE5L1j5bzTD/et0RV6E/0eeYwDwYD
VR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiBGm78ECC+cvmwpy/N2KgRN
Y0w1aXzuVDWif8etxFFYuwIhAOiRoJx0cXH1noKtnrPjWc70giqo9alA4ZJW6KB0
Ch+c
-----END CERTIFICATE-----
`;
export const TEST_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgJ/eEBZIzpB2lAveF
KrWD8v/2fiDb1Von/AmxqFuaFJahRANCAARdgzqax1PkYG0T/J/8fLXTzBXExTNs
z8CuvehI2zun32qkwMEjdEA4FYerowUsMIxg0nISxlFp1M6t75JQgVPH
-----END PRIVATE KEY-----
`;

async function listening(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

function closer(server: Server, sockets: Set<Socket>): () => Promise<void> {
  return () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
}

export async function tcpListener(): Promise<Listener> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  return { port: await listening(server), close: closer(server, sockets) };
}

/** A port nothing listens on (connects are refused). */
export async function closedPort(): Promise<number> {
  const l = await tcpListener();
  await l.close();
  return l.port;
}

export async function httpListener(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  tls = false,
): Promise<Listener & { requests: IncomingMessage[] }> {
  const requests: IncomingMessage[] = [];
  const sockets = new Set<Socket>();
  const h = (req: IncomingMessage, res: ServerResponse): void => {
    requests.push(req);
    handler(req, res);
  };
  const server = tls ? createHttpsServer({ cert: TEST_CERT, key: TEST_KEY }, h) : createHttpServer(h);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', () => undefined);
  return { port: await listening(server), close: closer(server, sockets), requests };
}

/** UDP: `reply` decides the answer to each datagram (undefined: stay silent). */
export async function udpListener(reply: (msg: Buffer) => Buffer | undefined): Promise<Listener & { received: Buffer[] }> {
  const sock: UdpSocket = createSocket('udp4');
  const received: Buffer[] = [];
  sock.on('message', (msg, rinfo) => {
    received.push(msg);
    const r = reply(msg);
    if (r) sock.send(r, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', () => resolve()));
  return { port: sock.address().port, received, close: () => new Promise<void>((resolve) => sock.close(() => resolve())) };
}

/** A minimal authoritative DNS answer: A records for the names in `zone`, NXDOMAIN else. */
export function dnsAnswer(query: Buffer, zone: Record<string, string[]>): Buffer {
  let off = 12;
  const labels: string[] = [];
  while (query[off] !== 0 && off < query.length) {
    const len = query[off] as number;
    labels.push(query.subarray(off + 1, off + 1 + len).toString('ascii'));
    off += len + 1;
  }
  const qEnd = off + 5;
  const name = labels.join('.').toLowerCase();
  const addrs = zone[name];
  const header = Buffer.from(query.subarray(0, 12));
  header.writeUInt16BE(0x8180 | (addrs ? 0 : 3), 2); // response, RD+RA, NOERROR | NXDOMAIN
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(addrs?.length ?? 0, 6);
  header.writeUInt16BE(0, 8);
  header.writeUInt16BE(0, 10);
  const answers = (addrs ?? []).map((a) => {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0); // pointer to the question's name
    rr.writeUInt16BE(1, 2); // A
    rr.writeUInt16BE(1, 4); // IN
    rr.writeUInt32BE(60, 6);
    rr.writeUInt16BE(4, 10);
    a.split('.').forEach((o, i) => rr.writeUInt8(Number(o), 12 + i));
    return rr;
  });
  return Buffer.concat([header, query.subarray(12, qEnd), ...answers]);
}

/**
 * A TCP port whose connects hang: a listener in a child process, stopped (SIGSTOP) with
 * its accept queue filled, so the kernel drops further SYNs.
 */
export async function hangingTcpPort(): Promise<Listener> {
  const child = spawn(process.execPath, [
    '-e',
    "const s=require('net').createServer();s.listen({port:0,host:'127.0.0.1',backlog:1},()=>{process.stdout.write(String(s.address().port)+'\\n')})",
  ]);
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
  });
  process.kill(child.pid as number, 'SIGSTOP');
  const fillers: Socket[] = [];
  // fill the accept queue until a connect no longer completes
  for (let i = 0; i < 16; i++) {
    const s = connect({ host: '127.0.0.1', port });
    s.on('error', () => undefined);
    fillers.push(s);
    const ok = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 150);
      s.once('connect', () => {
        clearTimeout(t);
        resolve(true);
      });
    });
    if (!ok) break;
  }
  return {
    port,
    close: async () => {
      for (const s of fillers) s.destroy();
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    },
  };
}
