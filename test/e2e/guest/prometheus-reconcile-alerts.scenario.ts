/**
 * Runs INSIDE the IPVS VM (test/e2e/prometheus-reconcile-alerts.test.ts writes the files,
 * compiles this and boots the VM once; argv[2] is its manifest).
 *
 * Two real vigil directors (`node dist/cli.js run`, dataplane ipvs, a cluster of one each)
 * in their own network namespaces, so each has its own kernel IPVS table, and a real
 * Prometheus (this machine's /usr/bin/prometheus) in the guest's root namespace that
 * scrapes them every second and evaluates the test copy of deploy/prometheus/vigil-rules.yml
 * every second:
 *   - A starts with a table the kernel accepts (reconciles succeed), then is reloaded
 *     (SIGHUP) with one real server the kernel refuses (a multicast address): its
 *     reconciles stop succeeding;
 *   - B starts with that refused real server: no reconcile of it ever succeeds (it has no
 *     last-success series at all).
 * A is healthy first (its alerts are recorded for a dozen evaluations), then reloaded.
 * Prometheus' /api/v1/alerts is read every second; each alert's first pending and firing
 * time is recorded. Prints one JSON object per line.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { readFileSync } from 'node:fs';

interface Manifest {
  root: string;
  prometheus: string;
  dir: string;
  /** A's config file (the daemon reads it; the good one at the start). */
  configA: string;
  badA: string;
  configB: string;
  /** prometheus.yml, scraping A and B. */
  promConfig: string;
  /** How long to wait for every reconcile alert, after the reload. */
  waitS: number;
}

const m = JSON.parse(readFileSync(process.argv[2] as string, 'utf8')) as Manifest;
const emit = (o: Record<string, unknown>): void => void process.stdout.write(JSON.stringify(o) + '\n');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const sh = (cmd: string): string => {
  const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd}: exit ${r.status}: ${r.stderr}`);
  return r.stdout;
};
const PROM = 'http://127.0.0.1:9090';
const ADDR = { a: '10.99.1.2', b: '10.99.2.2' } as const;
const inst = (d: 'a' | 'b'): string => `${ADDR[d]}:9694`;

async function get(url: string): Promise<string | null> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
    return r.ok ? await r.text() : null;
  } catch {
    return null;
  }
}
/** One sample of a metric in a director's own /metrics (the line's value), or null. */
async function sample(d: 'a' | 'b', line: RegExp): Promise<number | null> {
  const text = (await get(`http://${inst(d)}/metrics`)) ?? '';
  const l = text.split('\n').find((x) => line.test(x));
  return l === undefined ? null : Number(l.slice(l.lastIndexOf(' ') + 1));
}
async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  while (!(await cond())) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(500);
  }
  return Math.round(performance.now() - t0);
}
interface Alert {
  labels: Record<string, string>;
  state: 'pending' | 'firing';
  activeAt: string;
  value: string;
}
const alerts = async (): Promise<Alert[]> => {
  const text = await get(`${PROM}/api/v1/alerts`);
  if (text === null) return [];
  return (JSON.parse(text) as { data: { alerts: Alert[] } }).data.alerts;
};
const query = async (q: string): Promise<unknown[]> => {
  const text = await get(`${PROM}/api/v1/query?query=${encodeURIComponent(q)}`);
  return text === null ? [] : (JSON.parse(text) as { data: { result: unknown[] } }).data.result;
};

const logs = { a: '', b: '' };
const children: ChildProcess[] = [];
/**
 * The daemon runs its cluster in its own event loop (VIGIL_CLUSTER_INLINE=1): under qemu's
 * emulation on a host at load 27-34, a forked cluster process did not start within the
 * supervisor's 30 s whenever anything else was busy in the guest (Prometheus starting, or
 * the daemon's own first reconciles failing and retrying at short backoff): 3 runs of 3.
 * Nothing these alerts read depends on it: the reconciler, the dataplane
 * and every metric the three rules read (vigil_reconcile_*, vigil_cluster_role,
 * vigil_process_start_time_seconds) are the same, only exported from one process.
 */
function daemon(d: 'a' | 'b', config: string): ChildProcess {
  const c = spawn('ip', ['netns', 'exec', `vr${d}`, 'node', `${m.root}/dist/cli.js`, 'run', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VIGIL_CLUSTER_INLINE: '1' } });
  c.stdout?.on('data', (x: Buffer) => (logs[d] += x.toString()));
  c.stderr?.on('data', (x: Buffer) => (logs[d] += x.toString()));
  children.push(c);
  return c;
}
const tail = (d: 'a' | 'b'): string => logs[d].split('\n').slice(-15).join('\n');
const table = (d: 'a' | 'b'): string[] =>
  sh(`ip netns exec vr${d} ipvsadm -S -n`)
    .split('\n')
    .filter((l) => l.trim() !== '')
    .sort();

async function main(): Promise<void> {
  // ---- one namespace per director, a veth to the root namespace (Prometheus' side)
  for (const [i, d] of [[1, 'a'], [2, 'b']] as const) {
    sh(`ip netns add vr${d}
ip link add v${d} type veth peer name v${d}-p
ip link set v${d} netns vr${d}
ip addr add 10.99.${i}.1/24 dev v${d}-p && ip link set v${d}-p up
ip -n vr${d} addr add ${ADDR[d]}/24 dev v${d} && ip -n vr${d} link set v${d} up && ip -n vr${d} link set lo up
ip -n vr${d} link add vigrs type dummy && ip -n vr${d} link set vigrs up && ip -n vr${d} addr add 10.20.0.2/24 dev vigrs`);
  }

  // ---- B (refused entry from its start), A (a table the kernel accepts) and Prometheus
  // scraping both start together: under emulation each takes minutes on a loaded host
  const t0 = Date.now();
  const b = daemon('b', m.configB);
  const a = daemon('a', m.configA);
  const prom = spawn(m.prometheus, [`--config.file=${m.promConfig}`, `--storage.tsdb.path=${m.dir}/prom-data`, '--web.listen-address=127.0.0.1:9090', '--log.level=warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let promLog = '';
  prom.stderr?.on('data', (x: Buffer) => (promLog += x.toString()));
  children.push(prom);
  const [bReadyMs, aReadyMs, promReadyMs] = await Promise.all([
    waitFor('B answering /metrics, active', async () => b.exitCode === null && (await sample('b', /^vigil_cluster_role\{role="active"\}/)) === 1, 300_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${tail('b')}`);
    }),
    waitFor('A ready and active', async () => a.exitCode === null && (await sample('a', /^vigil_ready /)) === 1 && (await sample('a', /^vigil_cluster_role\{role="active"\}/)) === 1, 300_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${tail('a')}`);
    }),
    waitFor('prometheus ready', async () => (await get(`${PROM}/-/ready`)) !== null, 300_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${promLog.slice(-2000)}`);
    }),
  ]);
  const startB = await sample('b', /^vigil_process_start_time_seconds /);
  // scraped, with a last success of A's reconcile in Prometheus
  await waitFor('A scraped', async () => (await query(`vigil_reconcile_last_success_timestamp_seconds{instance="${inst('a')}"}`)).length === 1, 60_000);
  emit({ step: 'started', aReadyMs, bReadyMs, promReadyMs, sinceStartMs: Date.now() - t0, tableA: table('a') });

  // ---- A healthy: a dozen evaluations (B's refused entry fires its own alerts meanwhile); every alert seen (pending or firing) is recorded
  const healthy = new Map<string, Alert>();
  for (let i = 0; i < 12; i++) {
    for (const x of await alerts()) healthy.set(`${x.labels.alertname} ${x.labels.instance ?? ''}`, x);
    await sleep(1000);
  }
  emit({ step: 'healthy', alerts: [...healthy.values()].map((x) => ({ ...x.labels, state: x.state, activeAt: x.activeAt })) });

  // ---- the reload that makes A's reconciles fail
  copyFileSync(m.badA, m.configA);
  const tReload = Date.now();
  a.kill('SIGHUP');
  // the reload is applied when A exports the refused entry (a periodic run of the old
  // table may still succeed meanwhile: the emulated daemon takes seconds to reload)
  const refusedAfterMs = await waitFor('A refusing the entry', async () => (await sample('a', /^vigil_reconcile_entry_failing\{/)) === 1, 120_000);
  const lastSuccessAtRefusal = await sample('a', /^vigil_reconcile_last_success_timestamp_seconds\{/);

  // ---- every alert's first pending and firing time, until all six reconcile alerts fire
  const want = ['VigilReconcileEntryRefused', 'VigilReconcileFailing', 'VigilReconcileStale'].flatMap((n) => (['a', 'b'] as const).map((d) => `${n} ${inst(d)}`));
  const seen = new Map<string, { labels: Record<string, string>; activeAt: string; firstPendingAt?: number; firingAt?: number; value?: string }>();
  const deadline = tReload + m.waitS * 1000;
  while (Date.now() < deadline) {
    for (const x of await alerts()) {
      const key = `${x.labels.alertname} ${x.labels.instance ?? ''}`;
      const s = seen.get(key) ?? { labels: x.labels, activeAt: x.activeAt };
      s.firstPendingAt ??= Date.now();
      if (x.state === 'firing' && s.firingAt === undefined) {
        s.firingAt = Date.now();
        s.value = x.value;
        s.activeAt = x.activeAt;
        s.labels = x.labels;
      }
      seen.set(key, s);
    }
    if (want.every((k) => seen.get(k)?.firingAt !== undefined)) break;
    await sleep(1000);
  }
  // what the rule's fallback stands in for: B has no last-success series at all
  const lastSuccessB = await query(`vigil_reconcile_last_success_timestamp_seconds{instance="${inst('b')}"}`);
  emit({
    step: 'alerts',
    tReload,
    lastSuccessA: await sample('a', /^vigil_reconcile_last_success_timestamp_seconds\{/),
    refusedAfterMs,
    lastSuccessAtRefusal,
    startB,
    lastSuccessB,
    bExportsLastSuccess: ((await get(`http://${inst('b')}/metrics`)) ?? '').includes('vigil_reconcile_last_success_timestamp_seconds{'),
    alerts: [...seen.entries()].map(([key, s]) => ({ key, ...s })),
    missing: want.filter((k) => seen.get(k)?.firingAt === undefined),
    failuresA: await sample('a', /^vigil_reconcile_failures_total\{/),
    failuresB: await sample('b', /^vigil_reconcile_failures_total\{/),
    tableA: table('a'),
    tableB: table('b'),
    refusedLogA: logs.a.split('\n').filter((l) => l.includes('the dataplane refused')).slice(0, 2),
    refusedLogB: logs.b.split('\n').filter((l) => l.includes('the dataplane refused')).slice(0, 2),
  });

  // the guest is thrown away at power-off: no graceful stop to wait for
  for (const c of children) c.kill('SIGKILL');
  emit({ done: true, guestMs: Date.now() - t0 });
}

main().catch((err: unknown) => {
  emit({ step: 'crash', error: String((err as Error)?.stack ?? err), tailA: tail('a'), tailB: tail('b') });
  for (const c of children) c.kill('SIGKILL');
  process.exit(1);
});
