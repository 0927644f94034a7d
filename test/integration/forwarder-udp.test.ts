/** The forwarding engine's UDP flows on 127.0.0.1 with real UDP real servers. */
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine } from '../../src/forwarder/engine.js';
import { freePort, rs, service, sleep, until } from './forwarder-helpers.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

/** A UDP real server answering `<name>:<payload>`; remembers the source ports it saw. */
async function udpServer(name: string): Promise<{ port: number; sources: Set<number> }> {
  const s = dgram.createSocket('udp4');
  const sources = new Set<number>();
  s.on('message', (m, r) => {
    sources.add(r.port);
    s.send(`${name}:${m.toString()}`, r.port, r.address);
  });
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  cleanups.push(() => s.close());
  return { port: s.address().port, sources };
}

async function client(): Promise<{ ask: (vport: number, text: string) => Promise<{ text: string; from: string }>; sock: dgram.Socket }> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  cleanups.push(() => sock.close());
  const ask = (vport: number, text: string) =>
    new Promise<{ text: string; from: string }>((res, rej) => {
      const t = setTimeout(() => rej(new Error('no UDP reply')), 2000);
      sock.once('message', (m, r) => {
        clearTimeout(t);
        res({ text: m.toString(), from: `${r.address}:${r.port}` });
      });
      sock.send(text, vport, '127.0.0.1');
    });
  return { ask, sock };
}

function engine(udpIdleTimeoutMs = 60_000): Engine {
  const e = new Engine({ connectTimeoutMs: 500, connectRetries: 2, tcpIdleTimeoutMs: 60_000, udpIdleTimeoutMs, maxAccept: 1 }, { connectFailure: () => undefined, listenError: () => undefined });
  e.start();
  cleanups.push(() => e.close());
  return e;
}

/** A UDP virtual service on a free port with real servers on `ports`, listening. */
async function serveUdp(e: ReturnType<typeof engine>, ports: number[]) {
  const vport = await freePort('udp');
  const svc = service(vport, ports.map((p) => rs(p)), { protocol: 'udp' });
  e.setTable([svc]);
  e.setListening([svc.key]);
  await until(() => e.addresses().size === 1, 2000, 'the UDP socket');
  return { vport, svc };
}

describe('UDP flows', () => {
  it('keeps a flow per client, balances new clients and answers from the VIP:port', async () => {
    const a = await udpServer('A');
    const b = await udpServer('B');
    const e = engine();
    const { vport } = await serveUdp(e, [a.port, b.port]);
    const c1 = await client();
    const c2 = await client();
    const r1 = await c1.ask(vport, 'one');
    expect(r1.from).toBe(`127.0.0.1:${vport}`);
    expect(r1.text).toBe('A:one');
    expect((await c1.ask(vport, 'two')).text).toBe('A:two'); // same flow
    expect((await c2.ask(vport, 'three')).text).toBe('B:three'); // a new client, the next real server
    expect(a.sources.size).toBe(1);
    const counts = new Map(e.snapshot()[0]!.dests);
    expect(counts.get(`127.0.0.1:${a.port}`)).toMatchObject({ connections: 1, inactive: 1, packetsIn: 2, packetsOut: 2, bytesIn: 6, bytesOut: 10 });
  });

  it('re-schedules a flow whose real server was removed; weight 0 keeps existing flows', async () => {
    const a = await udpServer('A');
    const b = await udpServer('B');
    const e = engine();
    const { vport, svc } = await serveUdp(e, [a.port, b.port]);
    const c1 = await client();
    expect((await c1.ask(vport, 'x')).text).toBe('A:x');
    e.setTable([{ ...svc, realServers: [rs(a.port, 0), rs(b.port)] }]);
    expect((await c1.ask(vport, 'y')).text).toBe('A:y'); // drained: the flow continues
    const c2 = await client();
    expect((await c2.ask(vport, 'z')).text).toBe('B:z');
    e.setTable([{ ...svc, realServers: [rs(b.port)] }]);
    expect((await c1.ask(vport, 'w')).text).toBe('B:w'); // removed: re-scheduled
  });

  it('ends flows idle for udp_idle_timeout_ms', async () => {
    const a = await udpServer('A');
    const e = engine(300);
    const { vport } = await serveUdp(e, [a.port]);
    const c1 = await client();
    await c1.ask(vport, 'x');
    const inactive = () => new Map(e.snapshot()[0]!.dests).get(`127.0.0.1:${a.port}`)?.inactive;
    expect(inactive()).toBe(1);
    await sleep(150);
    await c1.ask(vport, 'keep'); // traffic keeps it alive
    await until(() => inactive() === 0, 2000, 'the idle flow to end');
    await c1.ask(vport, 'again');
    expect(a.sources.size).toBe(2); // a new flow, a new source port towards the real server
  });

  it('drops datagrams when no real server can take them', async () => {
    const vport = await freePort('udp');
    const e = engine();
    const svc = service(vport, [], { protocol: 'udp' });
    e.setTable([svc]);
    e.setListening([svc.key]);
    await until(() => e.addresses().size === 1, 2000, 'the UDP socket');
    const c1 = await client();
    await expect(c1.ask(vport, 'x')).rejects.toThrow(/no UDP reply/);
    expect(e.snapshot()[0]!.noRealServer).toBe(1);
  });
});
