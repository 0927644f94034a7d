/**
 * Runs INSIDE the IPVS VM (test/e2e/ipvs-reconcile.test.ts compiles and boots it).
 *
 * The real Reconciler + IpvsDataplane + HealthRunner (TCP probes) against listeners in
 * this process on a dummy interface. After each step `ipvsadm -S -n` must equal the
 * desired table for what the scenario knows is up; a hand-made foreign service must
 * survive. Prints one JSON object per line: {step, ok, ms, ...}.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { once } from 'node:events';
import net from 'node:net';
import { configSchema, type Config } from '../../../src/config/schema.js';
import { createLogger } from '../../../src/log.js';
import { createMetrics } from '../../../src/metrics.js';
import { HealthRunner } from '../../../src/health/runner.js';
import { desired, drainKey } from '../../../src/reconcile/desired.js';
import { IpvsDataplane } from '../../../src/reconcile/ipvs.js';
import { formatSave, parseSave } from '../../../src/reconcile/ipvsadm.js';
import { Reconciler } from '../../../src/reconcile/reconciler.js';
import type { Dataplane, Operation, Table } from '../../../src/reconcile/table.js';

const sh = (cmd: string): string => execFileSync('sh', ['-c', cmd], { encoding: 'utf8' });
/** Async, so the reconciler in this same process keeps running while the scenario polls. */
const ipvsadmSave = async (): Promise<string> => (await promisify(execFile)('ipvsadm', ['-S', '-n'], { encoding: 'utf8' })).stdout;
const emit = (o: Record<string, unknown>): void => void process.stdout.write(JSON.stringify(o) + '\n');

// ---- the guest network: real servers on a dummy interface
sh('ip link add vigrs type dummy && ip link set vigrs up');
for (let i = 2; i <= 9; i++) sh(`ip addr add 10.20.0.${i}/24 dev vigrs`);
sh('ip -6 addr add fd00::20/64 dev vigrs nodad');
sh('ipvsadm -C');
// a service added by hand: vigil must never touch it
sh('ipvsadm -A -t 10.10.0.1:9999 -s rr && ipvsadm -a -t 10.10.0.1:9999 -r 10.30.0.1:9999 -m -w 7');
const FOREIGN = '-A -t 10.10.0.1:9999 -s rr\n-a -t 10.10.0.1:9999 -r 10.30.0.1:9999 -m -w 7\n';

const listeners = new Map<string, net.Server>();
async function up(address: string, port: number): Promise<void> {
  const s = net.createServer((c) => {
    c.on('error', () => undefined); // probes connect and reset
    c.end('ok\n');
  });
  await new Promise<void>((r) => s.listen(port, address, r));
  listeners.set(`${address}:${port}`, s);
}
async function down(address: string, port: number): Promise<void> {
  const s = listeners.get(`${address}:${port}`);
  listeners.delete(`${address}:${port}`);
  await new Promise<void>((r) => (s ? s.close(() => r()) : r()));
}

// lenient enough for emulated TCG (node runs 10-25x slower): no flapping
const check = { type: 'tcp', interval_ms: 600, timeout_ms: 500, rise: 1, fall: 2 };
const base = {
  node: 'd1',
  cluster: { nodes: [{ name: 'd1', links: [{ name: 'l', address: '127.0.0.1' }] }] },
  vips: [{ address: '10.10.0.1', interface: 'lo', managed: false }, { address: 'fd00::1', interface: 'lo', managed: false }],
  dataplane: { mode: 'ipvs', reconcile_interval_ms: 1000 },
  logging: { level: 'warn' },
};
const web = { name: 'web', vip: '10.10.0.1', port: 80, scheduler: 'wrr', forward: 'nat', check, real_servers: [{ address: '10.20.0.2', port: 8080, weight: 3 }, { address: '10.20.0.3', port: 8080, weight: 1 }] };
const quiet = { name: 'quiet', vip: '10.10.0.1', port: 443, scheduler: 'wlc', forward: 'dr', quiescent: true, persistence: { timeout_s: 600 }, check, real_servers: [{ address: '10.20.0.4' }, { address: '10.20.0.5', weight: 2 }] };
const app = { name: 'app', vip: '10.10.0.1', port: 8000, scheduler: 'rr', forward: 'tun', sorry_server: { address: '10.20.0.9' }, check, real_servers: [{ address: '10.20.0.6' }] };
const marked = { name: 'marked', fwmark: 5, scheduler: 'sh', persistence: { timeout_s: 120, netmask: '255.255.255.0' }, real_servers: [{ address: '10.20.0.7' }, { address: '10.20.0.8', weight: 4 }] };
const v6 = { name: 'v6', vip: 'fd00::1', port: 80, scheduler: 'mh', forward: 'nat', real_servers: [{ address: 'fd00::20', port: 8080 }] };
let config: Config = configSchema.parse({ ...base, services: [web, quiet, app, marked, v6] });

const logger = createLogger('warn');
const metrics = createMetrics({ defaults: false });
const ipvs = new IpvsDataplane({ logger, metrics, syncDaemon: { interface: 'lo', syncId: 5 } });
/** Counts the ipvsadm -R batches and the reads (a transparent wrapper, not a fake). */
let batches: Operation[][] = [];
let reads = 0;
const counted: Dataplane = {
  kind: 'ipvs',
  start: () => ipvs.start(),
  close: () => ipvs.close(),
  read: () => ((reads += 1), ipvs.read()),
  apply: (ops) => (batches.push(ops), ipvs.apply(ops)),
  setRole: (r) => ipvs.setRole(r),
  counters: () => ipvs.counters(),
};
const health = new HealthRunner({ config, metrics, logger });
const rec = new Reconciler({ dataplane: counted, config: () => config, health: (s, a, p) => health.isHealthy(s, a, p), metrics, logger });
/** Runs since `mark()`, and which of them (1 = the first) repaired drift. */
let runs = 0;
let driftRun: number | undefined;
rec.on('reconciled', (r) => {
  runs += 1;
  if (r.drift && driftRun === undefined) driftRun = runs;
});
rec.on('failed', () => void (runs += 1));
const mark = (): void => {
  runs = 0;
  driftRun = undefined;
};
health.on('realServerUp', () => void rec.request('health'));
health.on('realServerDown', () => void rec.request('health'));

/** Services by key, real servers by address: IPVS lists in hash order. */
function sorted(t: Table): Table {
  return [...t].sort((a, b) => a.key.localeCompare(b.key)).map((s) => ({ ...s, realServers: [...s.realServers].sort((a, b) => `${a.address}:${a.port}`.localeCompare(`${b.address}:${b.port}`)) }));
}

/** What the kernel must hold, from what the scenario knows is listening. */
function expected(): string {
  const isUp = (_s: string, a: string, p: number): boolean => {
    const svc = config.services.find((x) => x.name === _s);
    if (!svc?.check && !svc?.real_servers.some((r) => r.check)) return true;
    return listeners.has(`${a}:${p}`);
  };
  return formatSave(sorted(desired(config, isUp, rec.drained())));
}
async function kernel(): Promise<string> {
  const t = parseSave(await ipvsadmSave());
  const mine = new Set(desired(config, () => true, new Set()).map((s) => s.key));
  return formatSave(sorted(t.filter((s) => mine.has(s.key))));
}
async function foreignIntact(): Promise<boolean> {
  return formatSave(parseSave(await ipvsadmSave()).filter((s) => s.key === 'tcp 10.10.0.1:9999')) === FOREIGN;
}

/** Waits until the kernel equals the desired table; reports the step. */
async function step(name: string, extra: () => Record<string, unknown> | Promise<Record<string, unknown>> = () => ({}), timeoutMs = 20_000): Promise<void> {
  const t0 = performance.now();
  let k = '';
  let want = '';
  while (performance.now() - t0 < timeoutMs) {
    k = await kernel();
    want = expected();
    if (k === want) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const ms = Math.round(performance.now() - t0);
  const ok = k === want;
  emit({ step: name, ok, ms, foreignIntact: await foreignIntact(), ...(await extra()), ...(ok ? {} : { kernel: k, want }) });
}

async function sum(name: string): Promise<number> {
  const m = await metrics.registry.getSingleMetric(name)?.get();
  return m?.values.reduce((a, v) => a + v.value, 0) ?? 0;
}

async function main(): Promise<void> {
  for (const [a, p] of [['10.20.0.2', 8080], ['10.20.0.3', 8080], ['10.20.0.4', 443], ['10.20.0.5', 443], ['10.20.0.6', 8000]] as const) await up(a, p);
  await ipvs.start();
  await health.start();
  await rec.start();
  await step('initial', async () => ({ table: await kernel() }));

  // the role: the sync daemon follows it, the table stays loaded (warm standby)
  const daemonState = async (): Promise<string> => (await promisify(execFile)('ipvsadm', ['-L', '--daemon'], { encoding: 'utf8' })).stdout.trim();
  const atInit = await daemonState();
  await rec.setRole('active');
  const atActive = await daemonState();
  const tableActive = await kernel();
  await rec.setRole('standby');
  const atStandby = await daemonState();
  const syncMetric = (await metrics.registry.getSingleMetric('vigil_ipvs_sync_daemon')?.get())?.values.filter((v) => v.value === 1).map((v) => v.labels.state);
  await step('role', async () => ({ atInit, atActive, atStandby, syncMetric, tableKeptAcrossRoles: tableActive === (await kernel()) }));

  // one real server down: exactly one -R batch (merged) plus its read-back
  const settleAll = async (): Promise<void> => {
    await new Promise((r) => setTimeout(r, 1500));
  };
  await settleAll();
  batches = [];
  reads = 0;
  const tDown = performance.now();
  await down('10.20.0.3', 8080);
  await step('real-server-down', () => ({ batches: batches.length, reads, ops: batches.flat().length, sinceDownMs: Math.round(performance.now() - tDown) }));

  await settleAll();
  batches = [];
  reads = 0;
  await up('10.20.0.3', 8080);
  await step('real-server-up', () => ({ batches: batches.length, reads }));

  await down('10.20.0.4', 443);
  await step('quiescent', async () => ({ weight: /10\.20\.0\.4:443 -g -w (\d+)/.exec(await kernel())?.[1] }));

  await down('10.20.0.6', 8000);
  await step('sorry-server', async () => ({ app: (await kernel()).split('\n').filter((l) => l.includes(':8000')) }));
  await up('10.20.0.6', 8000);
  await step('sorry-server-gone');

  const drain = await rec.drain('web', '10.20.0.2', 8080, 0);
  await step('drain', async () => ({ outcome: drain.outcome, drained: rec.drained().has(drainKey('web', '10.20.0.2', 8080)), line: (await kernel()).split('\n').find((l) => l.includes('10.20.0.2:8080')) }));
  const msg = await rec.enable('web', '10.20.0.2', 8080);
  await step('enable', async () => ({ message: msg, line: (await kernel()).split('\n').find((l) => l.includes('10.20.0.2:8080')) }));

  // reload: web changes scheduler and persistence, marked goes, a udp service comes
  config = configSchema.parse({
    ...base,
    services: [{ ...web, scheduler: 'wlc', persistence: { timeout_s: 60 } }, quiet, app, v6, { name: 'dns', protocol: 'udp', vip: '10.10.0.1', port: 53, scheduler: 'lc', real_servers: [{ address: '10.20.0.7' }] }],
  });
  health.update(config);
  const reload = await rec.request('config');
  await step('config-reload', () => ({ reloadOk: reload.ok, operations: reload.operations, fwmarkGone: !sh('ipvsadm -S -n').includes('-f 5') }));

  // drift: by-hand -d and -e are undone by the periodic reconcile, counted
  await settleAll();
  const d0 = rec.last;
  await once(rec, 'reconciled'); // by hand between two runs (a run in flight would see it as a failed batch)
  mark();
  sh('ipvsadm -d -t 10.10.0.1:80 -r 10.20.0.3:8080 && ipvsadm -e -t 10.10.0.1:443 -r 10.20.0.5:443 -g -w 9');
  const tDrift = performance.now();
  const drift0 = await sum('vigil_reconcile_drift_repairs_total');
  await step('drift-delete', () => ({ repairedMs: Math.round(performance.now() - tDrift), repairedByRun: driftRun, lastOk: d0?.ok }));
  await settleAll();
  const before = await sum('vigil_reconcile_drift_repairs_total');

  await once(rec, 'reconciled');
  mark();
  sh('ipvsadm -C');
  const tClear = performance.now();
  await step('drift-clear', () => ({ repairedMs: Math.round(performance.now() - tClear), repairedByRun: driftRun }));
  await settleAll();
  const after = await sum('vigil_reconcile_drift_repairs_total');

  // nothing changed → 0 operations
  await settleAll();
  const idle = await rec.request('periodic');
  const failures = await sum('vigil_reconcile_failures_total');
  emit({ step: 'idle', ok: idle.ok && idle.operations === 0, operations: idle.operations, driftRepairsBefore: drift0, driftRepairsAfterDelete: before, driftRepairsAfterClear: after, failures });

  await rec.close();
  await health.close();
  await ipvs.close();
  for (const k of [...listeners.keys()]) {
    const [a, p] = k.split(':');
    await down(a as string, Number(p));
  }
  emit({ done: true });
}

main().catch((err: unknown) => {
  emit({ step: 'crash', ok: false, error: String((err as Error)?.stack ?? err) });
  process.exit(1);
});
