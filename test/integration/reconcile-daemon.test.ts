/**
 * The reconciler inside a real daemon (node dist/cli.js run) with the built-in forwarder
 * dataplane (this kernel has no IPVS, so `dataplane: auto` picks it): /status services[]
 * from the desired table, health and the dataplane's counters; drain and enable through
 * the API; a real server going down reaches the table; the reconcile metrics.
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServiceStatus, StatusDoc } from '../../src/api/types.js';
import { freePort, loopbackWeb, standaloneConfig, startDaemon, tmpDir, until, writeFile, type RunningDaemon } from '../helpers/daemon.js';

const TOKEN = 'reconcile-daemon-token';
let daemon: RunningDaemon;
let api: string;
const servers: Server[] = [];
let rs1: Server;
let ports: number[] = [];

async function listen(port: number): Promise<Server> {
  const s = createServer((c) => {
    c.on('error', () => undefined);
    c.end('ok\n');
  });
  await new Promise<void>((r) => s.listen(port, '127.0.0.1', r));
  servers.push(s);
  return s;
}

beforeAll(async () => {
  const dir = tmpDir('vigil-reconcile-');
  const tokenFile = writeFile(dir, 'api-token', `${TOKEN}\n`, 0o600);
  const apiPort = await freePort();
  ports = [await freePort(), await freePort()];
  rs1 = await listen(ports[0] as number);
  await listen(ports[1] as number);
  const config = standaloneConfig({
    apiPort,
    clusterPort: await freePort(),
    tokenFile,
    extra: loopbackWeb({
      port: await freePort(),
      realServers: [{ port: ports[0] as number, weight: 3 }, { port: ports[1] as number }],
      service: ['scheduler: wrr', 'check: { type: tcp, interval_ms: 200, timeout_ms: 150, rise: 1, fall: 1 }'],
      dataplane: `dataplane:
  mode: auto
  reconcile_interval_ms: 500
  forwarder: { workers: 1 }`,
    }),
  });
  daemon = startDaemon(writeFile(dir, 'vigil.yaml', config));
  api = `http://127.0.0.1:${apiPort}`;
  await until(async () => (await fetch(`${api}/healthz`).catch(() => undefined))?.ok, 15_000);
});

afterAll(async () => {
  await daemon?.stop();
  for (const s of servers) s.close();
});

const web = async (): Promise<ServiceStatus> => {
  const doc = (await (await fetch(`${api}/status`)).json()) as StatusDoc;
  return doc.services.find((s) => s.name === 'web') as ServiceStatus;
};
const post = (path: string, body: unknown = {}) =>
  fetch(`${api}${path}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('the reconciler in a running daemon (forwarder dataplane)', () => {
  it('selects the forwarder where the kernel has no IPVS and logs why', async () => {
    const line = await daemon.waitForLog(/dataplane selected/, 10_000);
    expect(line).toMatch(/"dataplane":"(forwarder|ipvs)"/);
  });

  it('/status shows every real server with its weight in force, health and last check', async () => {
    const s = (await until(async () => {
      const w = await web();
      return w.realServers.every((r) => r.healthy && r.weight > 0) ? w : undefined;
    }, 15_000)) as ServiceStatus;
    expect(s).toMatchObject({ protocol: 'tcp', vip: '127.0.0.1', scheduler: 'wrr', forward: 'nat', sorryServerActive: false });
    expect(['forwarder', 'ipvs']).toContain(s.dataplane);
    expect(s.realServers.map((r) => [r.port, r.weight, r.configuredWeight, r.drained])).toEqual([
      [ports[0], 3, 3, false],
      [ports[1], 1, 1, false],
    ]);
    expect(s.realServers[0]?.lastCheck).toMatchObject({ ok: true });
  });

  it('becomes ready once the first reconcile is done', async () => {
    const r = await until(async () => ((await fetch(`${api}/readyz`)).status === 200 ? true : undefined), 15_000);
    expect(r).toBe(true);
  });

  it('drain sets weight 0 through the API; enable restores it', async () => {
    const res = await post(`/v1/services/web/real-servers/127.0.0.1:${ports[1]}/drain`, { deadline_ms: 0 });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true, service: 'web', port: ports[1], outcome: 'started' });
    expect((await web()).realServers[1]).toMatchObject({ weight: 0, drained: true, configuredWeight: 1 });
    const en = await post(`/v1/services/web/real-servers/127.0.0.1:${ports[1]}/enable`);
    expect(await en.json()).toMatchObject({ ok: true, message: `web 127.0.0.1:${ports[1]} enabled (weight 1)` });
    expect((await web()).realServers[1]).toMatchObject({ weight: 1, drained: false });
  });

  it('drain with a deadline waits for the connections to finish (none open → drained)', async () => {
    const res = await post(`/v1/services/web/real-servers/127.0.0.1:${ports[0]}/drain`, { deadline_ms: 3000 });
    expect(await res.json()).toMatchObject({ outcome: 'drained', remainingConnections: 0 });
    await post(`/v1/services/web/real-servers/127.0.0.1:${ports[0]}/enable`);
  });

  it('drain of an unknown real server is a 404 naming it', async () => {
    const res = await post('/v1/services/web/real-servers/127.0.0.9:1/drain', { deadline_ms: 0 });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { code: 'VIGIL_NOT_FOUND', message: 'real server 127.0.0.9:1 in service "web" not found' } });
  });

  it('a real server going down leaves the table', async () => {
    await new Promise<void>((r) => rs1.close(() => r()));
    const s = (await until(async () => {
      const w = await web();
      return w.realServers[0]?.healthy === false && w.realServers[0]?.weight === 0 ? w : undefined;
    }, 15_000)) as ServiceStatus;
    expect(s.realServers[1]).toMatchObject({ healthy: true, weight: 1 });
  });

  it('exports the reconcile metrics', async () => {
    const text = await (await fetch(`${api}/metrics`)).text();
    expect(text).toMatch(/vigil_reconcile_runs_total\{dataplane="(forwarder|ipvs)",trigger="start"\} 1/);
    expect(text).toMatch(/vigil_reconcile_runs_total\{dataplane="(forwarder|ipvs)",trigger="health"\} [1-9]/);
    expect(text).toMatch(/vigil_reconcile_operations_total\{dataplane="(forwarder|ipvs)",kind="add_real_server"\} [1-9]/);
    expect(text).toMatch(/vigil_table_virtual_services 1/);
    expect(text).toMatch(/vigil_reconcile_last_success_timestamp_seconds\{dataplane="(forwarder|ipvs)"\} \d/);
    expect(text).toMatch(/vigil_reconcile_duration_seconds_count\{dataplane="(forwarder|ipvs)"\} [1-9]/);
  });
});

const kernelHasIpvs = existsSync('/proc/net/ip_vs');
if (kernelHasIpvs) console.log('skipping the "dataplane: ipvs without IPVS" start test: this kernel has IPVS');

describe.skipIf(kernelHasIpvs)('dataplane: ipvs on a kernel without IPVS', () => {
  it('fails loudly at start: exit 1 with a clear error', async () => {
    const dir = tmpDir('vigil-noipvs-');
    const config = standaloneConfig({ apiPort: await freePort(), clusterPort: await freePort(), extra: 'dataplane: ipvs\n' });
    const d = startDaemon(writeFile(dir, 'vigil.yaml', config));
    try {
      const { code } = await d.exited;
      expect(code).toBe(1);
      expect(d.logs()).toMatch(/VIGIL_IPVS_UNAVAILABLE/);
      expect(d.logs()).toMatch(/dataplane: ipvs, but this kernel has no IPVS/);
    } finally {
      await d.stop();
    }
  });
});
