/**
 * The forwarder dataplane with real worker processes (node:cluster, built worker from
 * dist/): the reconciler's view — apply(), read(), setRole(), counters() — and metrics.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema, type Config } from '../../src/config/schema.js';
import { createForwarderDataplane, type ForwarderDataplane } from '../../src/forwarder/dataplane.js';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { connectAndGreet, echo, freePort, greet, nameServer, rs, service, until } from './forwarder-helpers.js';

let vport = 0;
let dead = 0;
let servers: Awaited<ReturnType<typeof nameServer>>[] = [];
let dp: ForwarderDataplane;
const metrics = createMetrics({ defaults: false });
const failures: string[] = [];

function config(port: number, forwarder: Record<string, unknown> = {}): Config {
  return configSchema.parse({
    node: 'n1',
    cluster: { nodes: [{ name: 'n1', links: [{ name: 'lo', address: '127.0.0.1' }] }] },
    vips: [{ address: '127.0.0.1', interface: 'lo', managed: false }],
    services: [{ name: 'web', vip: '127.0.0.1', port, forward: 'nat', real_servers: [] }],
    dataplane: { mode: 'forwarder', forwarder: { workers: 2, connect_timeout_ms: 500, ...forwarder } },
  });
}

/** The inode of the socket listening on 127.0.0.1:port (from /proc/net/tcp), or null. */
function listeningInode(port: number): string | null {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] === local && f[3] === '0A') return f[9] ?? null;
  }
  return null;
}

/** How many descriptors of the socket listening on port each worker holds (read from /proc). */
function descriptorsPerWorker(port: number): number[] {
  const inode = listeningInode(port);
  return dp.workerPids().map((pid) => {
    if (inode === null) return 0;
    let n = 0;
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`) n += 1;
      } catch {
        // closed meanwhile
      }
    }
    return n;
  });
}

beforeAll(async () => {
  servers = [await nameServer('A'), await nameServer('B')];
  vport = await freePort();
  dead = await freePort();
  dp = createForwarderDataplane(config(vport), {
    logger: createLogger('silent'),
    metrics,
    onConnectFailure: (name, address, port, reason) => failures.push(`${name} ${address}:${port} ${reason}`),
  });
  await dp.start();
  await dp.start(); // idempotent
});

afterAll(async () => {
  await dp.close();
  await dp.close();
  for (const s of servers) await s.close();
});

describe('forwarder dataplane (2 worker processes)', () => {
  it('runs the configured number of workers', () => {
    expect(dp.workerPids()).toHaveLength(2);
    expect(dp.kind).toBe('forwarder');
  });

  it('holds the table it was given and applies ops idempotently', async () => {
    const svc = service(vport, [rs(servers[0]!.port), rs(servers[1]!.port)], { scheduler: 'wrr' });
    await dp.apply([{ kind: 'add_service', service: svc }]);
    await dp.apply([{ kind: 'add_real_server', serviceKey: svc.key, realServer: rs(servers[0]!.port) }]); // already there
    await dp.apply([{ kind: 'edit_service', service: { ...svc, scheduler: 'rr', realServers: [] } }]); // like ipvsadm -E: keeps real servers
    await dp.apply([{ kind: 'delete_real_server', serviceKey: svc.key, address: '127.0.0.9', port: 1 }]); // already gone
    expect(await dp.read()).toEqual([{ ...svc, scheduler: 'rr' }]);
  });

  it('refuses fwmark services clearly and applies nothing of that batch', async () => {
    const before = await dp.read();
    await expect(
      dp.apply([
        { kind: 'delete_service', key: `tcp 127.0.0.1:${vport}` },
        { kind: 'add_service', service: { key: 'fwmark 7', protocol: 'tcp', fwmark: 7, scheduler: 'wlc', realServers: [] } },
      ]),
    ).rejects.toMatchObject({ code: 'VIGIL_FORWARDER_UNSUPPORTED', message: expect.stringMatching(/fwmark 7.*need IPVS/) });
    expect(await dp.read()).toEqual(before);
  });

  it('listens only while active', async () => {
    await expect(greet(vport)).rejects.toThrow();
    await dp.setRole('active');
    const names = [];
    for (let i = 0; i < 6; i++) names.push(await greet(vport));
    // Each worker runs its own rr (split 6/0, 4/2 or 3/3 between them): 2 to 4 each.
    for (const name of ['A', 'B']) {
      expect(names.filter((n) => n === name).length).toBeGreaterThanOrEqual(2);
      expect(names.filter((n) => n === name).length).toBeLessThanOrEqual(4);
    }
  });

  it('aggregates counters across workers and exports metrics with the service name', async () => {
    const held = await connectAndGreet(vport);
    await until(async () => {
      const c = await dp.counters();
      const per = c.get(`tcp 127.0.0.1:${vport}`);
      return [...(per?.values() ?? [])].reduce((a, x) => a + x.active, 0) === 1;
    }, 3000, 'one active connection');
    const c = (await dp.counters()).get(`tcp 127.0.0.1:${vport}`)!;
    const total = [...c.values()].reduce((a, x) => a + x.connections, 0);
    expect(total).toBe(7);
    expect([...c.values()].every((x) => x.bytesOut > 0)).toBe(true);
    held.sock.destroy();
    await until(async () => (await metrics.registry.getSingleMetricAsString('vigil_forwarder_connections_total')).includes('service="web"'), 3000, 'metrics');
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/vigil_forwarder_workers 2/);
    expect(text).toMatch(new RegExp(`vigil_forwarder_connections_total\\{service="web",real_server="127.0.0.1:${servers[0]!.port}"\\} \\d+`));
  });

  it('has each worker poll max_accept descriptors of the listening socket (default 8), none on standby, and follows a reload', async () => {
    const same = (want: number) => () => descriptorsPerWorker(vport).every((n) => n === want);
    await until(same(8), 3000, 'each worker to hold 8 descriptors of the listening socket');
    expect(descriptorsPerWorker(vport)).toEqual([8, 8]);
    const names = new Set<string>();
    for (let i = 0; i < 8; i++) names.add(await greet(vport));
    expect([...names].sort()).toEqual(['A', 'B']);
    await dp.setRole('standby');
    // every descriptor closed (the daemon's bound one follows the workers'): the socket is gone
    await until(() => listeningInode(vport) === null, 3000, 'the listening socket to close');
    await expect(greet(vport)).rejects.toThrow();
    await dp.setRole('active');
    await until(same(8), 3000, 'the descriptors to come back with the listener');
    dp.updateConfig(config(vport, { max_accept: 3 }));
    await until(same(3), 3000, 'a reload to max_accept 3');
    dp.updateConfig(config(vport, { max_accept: 5 }));
    await until(same(5), 3000, 'a reload to max_accept 5');
    expect(await greet(vport)).toMatch(/^[AB]$/);
    dp.updateConfig(config(vport));
    await until(same(8), 3000, 'back to the default');
  });

  it('retries a dead real server and reports it to the health callback by service name', async () => {
    await dp.apply([{ kind: 'add_real_server', serviceKey: `tcp 127.0.0.1:${vport}`, realServer: rs(dead) }]);
    for (let i = 0; i < 6; i++) expect(['A', 'B']).toContain(await greet(vport));
    await until(() => failures.length >= 1, 2000, 'a reported failure');
    expect(failures[0]).toBe(`web 127.0.0.1:${dead} ECONNREFUSED`);
    await dp.apply([{ kind: 'delete_real_server', serviceKey: `tcp 127.0.0.1:${vport}`, address: '127.0.0.1', port: dead }]);
  });

  it('keeps established connections through a weight change and across standby', async () => {
    const held = await connectAndGreet(vport);
    await dp.apply([
      { kind: 'edit_real_server', serviceKey: `tcp 127.0.0.1:${vport}`, realServer: rs(servers[0]!.port, 0) },
      { kind: 'edit_real_server', serviceKey: `tcp 127.0.0.1:${vport}`, realServer: rs(servers[1]!.port, 3) },
    ]);
    for (let i = 0; i < 4; i++) expect(await greet(vport)).toBe('B');
    await dp.setRole('standby');
    await expect(greet(vport)).rejects.toThrow();
    expect(await echo(held.sock, 'still')).toBe('still');
    held.sock.destroy();
    await dp.setRole('active');
    expect(await greet(vport)).toBe('B');
  });

  it('restarts a worker that died and hands it the table', async () => {
    const [victim] = dp.workerPids();
    process.kill(victim!, 'SIGKILL');
    await until(() => dp.workerPids().length === 2 && !dp.workerPids().includes(victim!), 8000, 'the worker to be replaced');
    await until(async () => (await metrics.registry.getSingleMetricAsString('vigil_forwarder_workers')).includes('vigil_forwarder_workers 2'), 5000, 'two workers');
    for (let i = 0; i < 6; i++) expect(await greet(vport)).toBe('B');
    // the new worker asked for its copies of the listening socket too
    // the new worker asks for its copies once it has started: seconds on a loaded machine
    await until(() => descriptorsPerWorker(vport).every((n) => n === 8), 20_000, 'the new worker to hold 8 descriptors');
  }, 60_000);
});
