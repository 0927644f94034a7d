/**
 * Runs INSIDE the IPVS VM for `npm run bench:reconcile` (test/bench/reconcile.ts compiles
 * and boots it). In one VM run: the initial 1,000 × 10 table and then one-real-server
 * changes, each applied through vigil (Reconciler → IpvsDataplane → ipvsadm -R) and the
 * same batch fed to a bare `ipvsadm -R`. Prints one JSON object per line.
 */
import { spawn, execFileSync } from 'node:child_process';
import { openSync, closeSync, writeFileSync } from 'node:fs';
import { configSchema } from '../../../src/config/schema.js';
import { createLogger } from '../../../src/log.js';
import { createMetrics } from '../../../src/metrics.js';
import { IpvsDataplane } from '../../../src/reconcile/ipvs.js';
import { formatBatch } from '../../../src/reconcile/ipvsadm.js';
import { Reconciler } from '../../../src/reconcile/reconciler.js';
import type { Dataplane, Operation } from '../../../src/reconcile/table.js';

const SERVICES = Number(process.env.BENCH_SERVICES ?? 1000);
const PER = Number(process.env.BENCH_REAL_SERVERS ?? 10);
const CHANGES = Number(process.env.BENCH_CHANGES ?? 10);
const PAIRS = Number(process.env.BENCH_PAIRS ?? 20);
const emit = (o: Record<string, unknown>): void => void process.stdout.write(JSON.stringify(o) + '\n');
const sh = (cmd: string): string => execFileSync('sh', ['-c', cmd], { encoding: 'utf8', maxBuffer: 1 << 28 });

const services = Array.from({ length: SERVICES }, (_, i) => ({
  name: `svc${i}`,
  vip: `10.100.${Math.floor(i / 250)}.${(i % 250) + 1}`,
  port: 80,
  scheduler: 'wlc',
  forward: 'dr',
  real_servers: Array.from({ length: PER }, (_, j) => ({ address: `10.200.${Math.floor((i * PER + j) / 250)}.${((i * PER + j) % 250) + 1}`, weight: 1 + (j % 3) })),
}));
const config = configSchema.parse({
  node: 'd1',
  cluster: { nodes: [{ name: 'd1', links: [{ name: 'l', address: '127.0.0.1' }] }] },
  vips: [],
  services,
  dataplane: { mode: 'ipvs', reconcile_interval_ms: 3_600_000 },
  logging: { level: 'warn' },
});

const logger = createLogger('warn');
const metrics = createMetrics({ defaults: false });
const ipvs = new IpvsDataplane({ logger, metrics, timeoutMs: 900_000 });
let applyMs = 0;
let lastBatch = '';
let lastOps: Operation[] = [];
const timed: Dataplane = {
  kind: 'ipvs',
  start: () => ipvs.start(),
  close: () => ipvs.close(),
  read: () => ipvs.read(),
  async apply(ops) {
    lastOps = ops;
    lastBatch = formatBatch(ops);
    const t0 = performance.now();
    await ipvs.apply(ops);
    applyMs = performance.now() - t0;
  },
  setRole: (r) => ipvs.setRole(r),
  counters: () => ipvs.counters(),
};
const down = new Set<string>();
const rec = new Reconciler({ dataplane: timed, config: () => config, health: (s, a) => !down.has(`${s} ${a}`), metrics, logger });

/** A bare `ipvsadm -R` fed the batch from a file, spawned from node (the same way vigil spawns it). */
function bare(batch: string): Promise<number> {
  const file = '/tmp/bench-batch.txt';
  writeFileSync(file, batch);
  const fd = openSync(file, 'r');
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const p = spawn('ipvsadm', ['-R'], { stdio: [fd, 'ignore', 'inherit'] });
    p.on('error', reject);
    p.on('close', () => {
      closeSync(fd);
      resolve(performance.now() - t0);
    });
  });
}

const count = (): number => Number(sh("ipvsadm -S -n | grep -c -- '^-a ' || true").trim());

async function main(): Promise<void> {
  sh('ipvsadm -C');
  await ipvs.start();

  // ---- initial load, two rounds: vigil then bare, bare then vigil (the same batch)
  const t0 = performance.now();
  await rec.start(); // round 1 through vigil: one batch with every service and real server
  emit({ case: 'initial', round: 1, lines: lastOps.length, vigilApplyMs: applyMs, vigilReconcileMs: performance.now() - t0, ok: rec.last?.ok, entries: count() });
  const initialBatch = lastBatch;
  sh('ipvsadm -C');
  emit({ case: 'initial-bare', round: 1, bareMs: await bare(initialBatch), entries: count() });
  sh('ipvsadm -C');
  emit({ case: 'initial-bare', round: 2, bareMs: await bare(initialBatch), entries: count() });
  sh('ipvsadm -C');
  const t1 = performance.now();
  const r2 = await rec.request('periodic'); // round 2 through vigil: the kernel was cleared
  emit({ case: 'initial', round: 2, lines: lastOps.length, vigilApplyMs: applyMs, vigilReconcileMs: performance.now() - t1, ok: r2.ok, entries: count(), sameBatch: lastBatch === initialBatch });

  // ---- read of the full table (what every read-back costs)
  const r0 = performance.now();
  const t = await ipvs.read();
  emit({ case: 'read', ms: performance.now() - r0, services: t.length, realServers: t.reduce((n, s) => n + s.realServers.length, 0) });

  // ---- one real server changes (down, then up again) through the reconciler, then the same batch bare
  const victim = { service: 'svc500', address: services[500]?.real_servers[3]?.address as string };
  const undoOf = (batch: string): string =>
    batch.startsWith('-d ') ? batch.replace(/^-d (.*)$/m, (_m, rest: string) => `-a ${rest} -g -w 1`) : batch.replace(/^-a (.*) -g -w \d+$/m, '-d $1');
  for (let i = 0; i < CHANGES; i++) {
    if (i % 2 === 0) down.add(`${victim.service} ${victim.address}`);
    else down.delete(`${victim.service} ${victim.address}`);
    const c0 = performance.now();
    const r = await rec.request('health');
    const reconcileMs = performance.now() - c0;
    const batch = lastBatch;
    const vigilApplyMs = applyMs;
    await bare(undoOf(batch)); // back to before the change, untimed
    const bareMs = await bare(batch);
    emit({ case: 'change', i, batch: batch.trim(), ok: r.ok, operations: r.operations, vigilApplyMs, vigilReconcileMs: reconcileMs, bareMs });
  }

  // ---- the same one-line batches many more times: each round deletes then re-adds the
  // victim; vigil's apply does one and a bare -R the other, alternating, so vigil goes
  // first in half the rounds and each side does as many deletes as adds
  const del: Operation[] = [{ kind: 'delete_real_server', serviceKey: 'tcp 10.100.2.1:80', address: victim.address, port: 80 }];
  const add: Operation[] = [{ kind: 'add_real_server', serviceKey: 'tcp 10.100.2.1:80', realServer: { address: victim.address, port: 80, forward: 'dr', weight: 1 } }];
  const pairs: { vigil: number; bare: number }[] = [];
  for (let i = 0; i < PAIRS; i++) {
    if (i % 2 === 0) {
      await timed.apply(del);
      const v = applyMs;
      pairs.push({ vigil: v, bare: await bare(formatBatch(add)) });
    } else {
      const b = await bare(formatBatch(del));
      await timed.apply(add);
      pairs.push({ vigil: applyMs, bare: b });
    }
  }
  emit({ case: 'pairs', pairs, entries: count() });

  await rec.close();
  await ipvs.close();
  sh('ipvsadm -C');
  emit({ done: true });
}

main().catch((err: unknown) => {
  emit({ case: 'crash', error: String((err as Error)?.stack ?? err) });
  process.exit(1);
});
