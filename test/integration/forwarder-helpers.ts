/** Shared helpers for the forwarder's integration tests: real sockets on 127.0.0.1. */
import dgram from 'node:dgram';
import net from 'node:net';
import type { TableRealServer, TableService } from '../../src/reconcile/table.js';

export async function freePort(type: 'tcp' | 'udp' = 'tcp'): Promise<number> {
  if (type === 'udp') {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    const p = s.address().port;
    s.close();
    return p;
  }
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

export const rs = (port: number, weight = 1): TableRealServer => ({ address: '127.0.0.1', port, weight, forward: 'nat' });

export function service(port: number, realServers: TableRealServer[], extra: Partial<TableService> = {}): TableService {
  const protocol = extra.protocol ?? 'tcp';
  return { key: `${protocol} 127.0.0.1:${port}`, protocol, vip: '127.0.0.1', port, scheduler: 'rr', realServers, ...extra };
}

/** A TCP real server that answers each connection with its name, then echoes; tracks its sockets. */
export async function nameServer(name: string): Promise<{ port: number; server: net.Server; sockets: Set<net.Socket>; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.write(`${name}\n`);
    s.on('data', (d) => s.write(d));
    s.on('end', () => s.end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    server,
    sockets,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Connects, reads the first line (the real server's name), keeps the socket open. */
export async function connectAndGreet(port: number): Promise<{ sock: net.Socket; name: string }> {
  const sock = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  sock.on('error', () => undefined);
  const name = await new Promise<string>((res, rej) => {
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        sock.off('data', onData);
        res(buf.slice(0, nl));
      }
    };
    sock.on('data', onData);
    sock.once('close', () => rej(new Error(`closed before a greeting (got "${buf}")`)));
  });
  return { sock, name };
}

/** One request: connect, read the greeting, close. */
export async function greet(port: number): Promise<string> {
  const { sock, name } = await connectAndGreet(port);
  sock.destroy();
  return name;
}

/** Sends data and waits until the echo came back in full. */
export async function echo(sock: net.Socket, text: string): Promise<string> {
  return new Promise((res) => {
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString();
      if (buf.length >= text.length) {
        sock.off('data', onData);
        res(buf);
      }
    };
    sock.on('data', onData);
    sock.write(text);
  });
}

export async function until(cond: () => boolean | Promise<boolean>, ms = 5000, what = 'condition'): Promise<void> {
  const end = performance.now() + ms;
  while (!(await cond())) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
