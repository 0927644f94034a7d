/**
 * The forwarding engine's TCP proxy on 127.0.0.1 with real real servers, in both TCP
 * modes (raw libuv handles, the fast path; net.Socket streams, the fallback).
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine, type EngineSettings, type TcpMode } from '../../src/forwarder/engine.js';
import { rawAvailable } from '../../src/forwarder/tcp-raw.js';
import type { TableService } from '../../src/reconcile/table.js';
import { connectAndGreet, echo, freePort, greet, nameServer, rs, service, sleep, until } from './forwarder-helpers.js';

const settings: EngineSettings = { connectTimeoutMs: 500, connectRetries: 2, tcpIdleTimeoutMs: 60_000, udpIdleTimeoutMs: 60_000, maxAccept: 1 };
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Failure {
  key: string;
  address: string;
  port: number;
  reason: string;
}

async function engineWith(mode: TcpMode, table: TableService[], s: Partial<EngineSettings> = {}): Promise<{ engine: Engine; failures: Failure[] }> {
  const failures: Failure[] = [];
  const engine = new Engine({ ...settings, ...s }, { connectFailure: (key, address, port, reason) => failures.push({ key, address, port, reason }), listenError: () => undefined }, mode);
  engine.start();
  engine.setTable(table);
  engine.setListening(table.map((t) => t.key));
  cleanups.push(() => engine.close());
  await until(() => engine.addresses().size === table.length, 3000, 'listeners');
  return { engine, failures };
}

async function servers(...names: string[]) {
  const out = [];
  for (const n of names) {
    const s = await nameServer(n);
    cleanups.push(s.close);
    out.push(s);
  }
  return out;
}

const modes: TcpMode[] = rawAvailable ? ['raw', 'stream'] : ['stream'];

describe.each(modes)('TCP proxy (%s mode)', (mode) => {
  it('proxies to the scheduled real server (port mapping) and balances round robin', async () => {
    const [a, b] = await servers('A', 'B');
    const vport = await freePort();
    await engineWith(mode, [service(vport, [rs(a!.port), rs(b!.port)])]);
    const got = [];
    for (let i = 0; i < 4; i++) got.push(await greet(vport));
    expect(got).toEqual(['A', 'B', 'A', 'B']);
    const { sock } = await connectAndGreet(vport);
    expect(await echo(sock, 'x'.repeat(100_000))).toBe('x'.repeat(100_000));
    sock.destroy();
  });

  it('forwards a FIN from the client at once, and the real server can still answer (half-close)', async () => {
    let serverSawEnd = 0;
    const srv = net.createServer({ allowHalfOpen: true }, (s) => {
      let got = '';
      s.on('data', (d) => (got += d.toString()));
      s.on('end', () => {
        serverSawEnd = performance.now();
        setTimeout(() => s.end(`got:${got}`), 200); // answers after the client's FIN
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => srv.close(() => r())));
    const vport = await freePort();
    await engineWith(mode, [service(vport, [rs((srv.address() as net.AddressInfo).port)])]);
    const c = net.connect({ port: vport, host: '127.0.0.1', allowHalfOpen: true });
    await new Promise((r) => c.once('connect', r));
    let reply = '';
    c.on('data', (d) => (reply += d.toString()));
    const ended = new Promise<void>((r) => c.once('end', () => r()));
    c.write('hello');
    await sleep(50);
    const finAt = performance.now();
    c.end();
    await until(() => serverSawEnd > 0, 2000, 'FIN at the real server');
    expect(serverSawEnd - finAt).toBeLessThan(150);
    await ended;
    expect(reply).toBe('got:hello');
    c.destroy();
  });

  it('forwards a FIN from the real server at once, and the client can still send (half-close)', async () => {
    let received = '';
    const srv = net.createServer({ allowHalfOpen: true }, (s) => {
      s.end('bye'); // half-close from the server side first
      s.on('data', (d) => (received += d.toString()));
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => srv.close(() => r())));
    const vport = await freePort();
    await engineWith(mode, [service(vport, [rs((srv.address() as net.AddressInfo).port)])]);
    const c = net.connect({ port: vport, host: '127.0.0.1', allowHalfOpen: true });
    let got = '';
    c.on('data', (d) => (got += d.toString()));
    const t0 = performance.now();
    await new Promise<void>((r) => c.once('end', () => r()));
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(got).toBe('bye');
    const closed = new Promise((r) => c.once('close', r));
    c.end('still talking');
    await until(() => received === 'still talking', 2000, 'data after the server FIN');
    await closed;
  });

  it('applies backpressure: a slow reader stalls the real server instead of buffering everything', async () => {
    const total = 64 * 1024 * 1024;
    let serverSock: net.Socket | undefined;
    let written = 0;
    const chunk = Buffer.alloc(64 * 1024, 7);
    const srv = net.createServer((s) => {
      serverSock = s;
      s.on('error', () => undefined);
      const pump = (): void => {
        while (written < total) {
          written += chunk.length;
          if (!s.write(chunk)) {
            s.once('drain', pump);
            return;
          }
        }
        s.end();
      };
      pump();
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => srv.close(() => r())));
    const vport = await freePort();
    await engineWith(mode, [service(vport, [rs((srv.address() as net.AddressInfo).port)])]);
    const c = net.connect({ port: vport, host: '127.0.0.1' });
    c.pause(); // a client that does not read
    await until(() => serverSock !== undefined, 2000, 'the real server to be connected');
    await sleep(700);
    // Everything the kernel and the proxy hold in between is far below the total.
    expect(written).toBeLessThan(total / 2);
    const stalledAt = written;
    await sleep(300);
    expect(written - stalledAt).toBeLessThan(1024 * 1024);
    let got = 0;
    c.on('data', (d: Buffer) => {
      got += d.length;
    });
    c.resume();
    await new Promise((r) => c.once('end', r));
    expect(got).toBe(total);
    c.destroy();
  }, 30_000);

  it('retries a refused connect on another real server: no client error, failure reported', async () => {
    const [a] = await servers('A');
    const dead = await freePort(); // nothing listens: connect gets an RST
    const vport = await freePort();
    const { failures, engine } = await engineWith(mode, [service(vport, [rs(dead), rs(a!.port)])]);
    const got = [];
    for (let i = 0; i < 6; i++) got.push(await greet(vport));
    expect(got).toEqual(Array(6).fill('A'));
    expect(failures.length).toBeGreaterThanOrEqual(3);
    expect(failures[0]).toMatchObject({ key: `tcp 127.0.0.1:${vport}`, address: '127.0.0.1', port: dead, reason: 'ECONNREFUSED' });
    const snap = engine.snapshot()[0]!;
    expect(snap.retries).toBe(failures.length);
    expect(snap.dests.find(([id]) => id === `127.0.0.1:${dead}`)?.[1].connectFailures).toBe(failures.length);
  });

  it('resets the client when every real server fails or none is available', async () => {
    const dead = await freePort();
    const vport = await freePort();
    const { engine } = await engineWith(mode, [service(vport, [rs(dead)])]);
    await expect(greet(vport)).rejects.toThrow(/closed before a greeting/);
    engine.setTable([service(vport, [rs(dead, 0)])]);
    await expect(greet(vport)).rejects.toThrow(/closed before a greeting/);
    expect(engine.snapshot()[0]!.noRealServer).toBeGreaterThanOrEqual(1);
  });

  it('weight 0 drains: established connections continue, new ones go elsewhere', async () => {
    const [a, b] = await servers('A', 'B');
    const vport = await freePort();
    const { engine } = await engineWith(mode, [service(vport, [rs(a!.port), rs(b!.port)])]);
    const first = await connectAndGreet(vport);
    expect(first.name).toBe('A');
    engine.setTable([service(vport, [rs(a!.port, 0), rs(b!.port)])]);
    for (let i = 0; i < 3; i++) expect(await greet(vport)).toBe('B');
    expect(await echo(first.sock, 'still here')).toBe('still here');
    const counts = new Map(engine.snapshot()[0]!.dests);
    expect(counts.get(`127.0.0.1:${a!.port}`)?.active).toBe(1);
    first.sock.destroy();
    await until(() => new Map(engine.snapshot()[0]!.dests).get(`127.0.0.1:${a!.port}`)?.active === 0, 2000, 'the drained connection to end');
  });

  it('a removed real server keeps its established connections and gets no new ones', async () => {
    const [a, b] = await servers('A', 'B');
    const vport = await freePort();
    const { engine } = await engineWith(mode, [service(vport, [rs(a!.port), rs(b!.port)])]);
    const first = await connectAndGreet(vport);
    engine.setTable([service(vport, [rs(b!.port)])]);
    for (let i = 0; i < 3; i++) expect(await greet(vport)).toBe('B');
    expect(await echo(first.sock, 'ping')).toBe('ping');
    first.sock.destroy();
  });

  it('closes connections idle for tcp_idle_timeout_ms', async () => {
    const [a] = await servers('A');
    const vport = await freePort();
    await engineWith(mode, [service(vport, [rs(a!.port)])], { tcpIdleTimeoutMs: 1000, udpIdleTimeoutMs: 400 });
    const { sock } = await connectAndGreet(vport);
    const t0 = performance.now();
    await new Promise((r) => sock.once('close', r));
    const idle = performance.now() - t0;
    expect(idle).toBeGreaterThan(600); // the idle clock is coarse (250 ms)
    expect(idle).toBeLessThan(3000);
    await until(() => a!.sockets.size === 0, 2000, 'the real server side to be closed too');
  });

  it('keeps a client on its real server with persistence (netmask granularity)', async () => {
    const [a, b, c] = await servers('A', 'B', 'C');
    const vport = await freePort();
    await engineWith(mode, [service(vport, [rs(a!.port), rs(b!.port), rs(c!.port)], { persistence: { timeoutS: 60, netmask: '255.255.255.0' } })]);
    const first = await greet(vport);
    for (let i = 0; i < 4; i++) expect(await greet(vport)).toBe(first);
  });

  it('counts active and half-closed (inactive) connections and bytes per real server', async () => {
    const srv = net.createServer({ allowHalfOpen: true }, (s) => {
      s.on('data', () => undefined);
      s.write('0123456789');
      s.on('end', () => setTimeout(() => s.end(), 300)); // stays half-closed for a while
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => srv.close(() => r())));
    const port = (srv.address() as net.AddressInfo).port;
    const vport = await freePort();
    const { engine } = await engineWith(mode, [service(vport, [rs(port)])]);
    const c = net.connect({ port: vport, host: '127.0.0.1', allowHalfOpen: true });
    c.on('data', () => undefined);
    await new Promise((r) => c.once('connect', r));
    c.write('abcde');
    const counters = () => new Map(engine.snapshot()[0]!.dests).get(`127.0.0.1:${port}`)!;
    await until(() => counters().bytesIn === 5 && counters().bytesOut === 10, 2000, 'bytes');
    expect(counters()).toMatchObject({ active: 1, inactive: 0, connections: 1 });
    c.end();
    await until(() => counters().inactive === 1, 2000, 'half-closed');
    expect(counters().active).toBe(0);
    await until(() => counters().inactive === 0, 3000, 'closed');
    c.destroy();
  });

  it('stops listening when told, leaving established connections alone', async () => {
    const [a] = await servers('A');
    const vport = await freePort();
    const { engine } = await engineWith(mode, [service(vport, [rs(a!.port)])]);
    const first = await connectAndGreet(vport);
    engine.setListening([]);
    await sleep(50);
    await expect(greet(vport)).rejects.toThrow();
    expect(await echo(first.sock, 'ok')).toBe('ok');
    first.sock.destroy();
  });
});
