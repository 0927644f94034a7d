/**
 * `npm run bench:chaos [MINUTES]`: three vigil directors in the network-namespace lab
 * under random faults for MINUTES (default 30, or $VIGIL_CHAOS_MINUTES), checked against
 * the cluster's invariants (test/lab/invariants.ts):
 *
 *   - one fault at a time, then a quiet 1–3 s: SIGKILL of a daemon and its restart
 *     0.5–4 s later; SIGSTOP/SIGCONT of the daemon (or its whole process tree) for a
 *     time below deadtime (0.2–0.9 × (deadtime − 2 intervals): must not cause a
 *     takeover) or above it (1.5–4 × deadtime); a partition of one link between two
 *     directors, of both links between d1 and d2, or of every link of one director
 *     (nftables drops in both directions, 1–4 s). The target is the VIP owner 60 % of
 *     the time, any director otherwise.
 *   - all along: 5 % random loss of heartbeats on every link of every director,
 *     `stress-ng --cpu` with 4 hogs per core, a config reload through the API
 *     (POST /v1/reload, with a changed real-server weight) every 2–5 s, and 1,000
 *     built-in tcp probes per director (interval 2 s) against listeners on 127.0.0.1
 *     in its namespace.
 *   - VIP ownership is followed by `ip -ts monitor address` in each director's namespace
 *     (event timestamps from `ip`, microseconds).
 *
 * Prints the seed (replay with VIGIL_CHAOS_SEED), the faults injected, the invariant
 * figures and every violation; keeps the fault log, the ownership timeline and the
 * daemons' logs in /tmp/vigil-chaos-<run>/. Exits 1 on a violated invariant (or when the
 * instrument lost track), 2 on bad options or a missing tool.
 *
 * Environment: VIGIL_CHAOS_MINUTES, VIGIL_CHAOS_SEED, VIGIL_CHAOS_TIMERS (interval/deadtime
 * in ms, default the schema's 50/250), VIGIL_CHAOS_PROBES (1000), VIGIL_CHAOS_PROBE_INTERVAL_MS (2000), VIGIL_CHAOS_HOGS (hogs per core, 4),
 * VIGIL_CHAOS_LOSS (percent, 5), VIGIL_CHAOS_TAKEOVER_MS (allowed decision → VIP added,
 * default 2 intervals + 100), VIGIL_CHAOS_HEAL_MS (two owners allowed after a heal,
 * default 1 interval + 20), VIGIL_CHAOS_REPORT (a file to write the JSON report to),
 * VIGIL_LAB_PREFIX (namespace prefix).
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { leaseMs as leaseMsOf } from '../../src/config/schema.js';
import { evaluateInvariants, type FaultEvent, type InvariantReport, type LinkDef, type OwnershipChange } from '../lab/invariants.js';
import { Lab } from '../lab/lab.js';
import { reloadViaApi, loadServices, startListeners, startStress } from '../lab/load.js';
import { isRoot, raiseOwnPriority } from '../lab/netns.js';
import { clusterNodes, HEARTBEAT_PORT, writeClusterConfig, type Timers, type VigilNode } from '../lab/vigil.js';
import { VipWatch } from '../lab/vipwatch.js';

function fail(msg: string): never {
  process.stderr.write(`bench:chaos: ${msg}\n`);
  process.exit(2);
}

function num(name: string, def: number, ok: (n: number) => boolean, what: string): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || !ok(n)) fail(`${name}=${raw}: must be ${what}`);
  return n;
}

const minutesArg = process.argv[2] ?? process.env.VIGIL_CHAOS_MINUTES ?? '30';
const minutes = Number(minutesArg);
if (!(minutes > 0)) fail(`minutes must be a positive number, not "${minutesArg}" (argument or VIGIL_CHAOS_MINUTES)`);
const seed = num('VIGIL_CHAOS_SEED', Math.floor(Math.random() * 2 ** 32), (n) => Number.isInteger(n) && n >= 0 && n < 2 ** 32, 'an integer in [0, 2^32)');
const timersRaw = process.env.VIGIL_CHAOS_TIMERS || '50/250';
const tm = /^(\d+)\/(\d+)$/.exec(timersRaw);
if (!tm) fail(`VIGIL_CHAOS_TIMERS=${timersRaw}: must be interval/deadtime in ms, e.g. 50/250 or 20/80`);
const intervalMs = Number(tm[1]);
const deadtimeMs = Number(tm[2]);
if (!(intervalMs >= 5 && deadtimeMs >= 2 * intervalMs)) fail(`VIGIL_CHAOS_TIMERS=${timersRaw}: interval ≥ 5 and deadtime ≥ 2 × interval`);
/** The daemon's lease with its cluster process, as the daemon computes it. */
const leaseMs = leaseMsOf({ deadtime_ms: deadtimeMs });
const timers: Timers = { interval_ms: intervalMs, deadtime_ms: deadtimeMs, warntime_ms: Math.max(intervalMs, Math.round(deadtimeMs / 2)), initdead_ms: 2000 };
const probes = num('VIGIL_CHAOS_PROBES', 1000, (n) => Number.isInteger(n) && n >= 0 && n <= 5000, 'an integer in [0, 5000]');
const probeIntervalMs = num('VIGIL_CHAOS_PROBE_INTERVAL_MS', 2000, (n) => Number.isInteger(n) && n >= 100, 'an integer ≥ 100 (ms)');
const hogsPerCore = num('VIGIL_CHAOS_HOGS', 4, (n) => n >= 0 && n <= 16, 'a number in [0, 16]');
const lossPercent = num('VIGIL_CHAOS_LOSS', 5, (n) => n >= 0 && n < 100, 'a percentage in [0, 100)');
const takeoverMs = num('VIGIL_CHAOS_TAKEOVER_MS', 2 * intervalMs + 100, (n) => n >= 0, 'a non-negative number of ms');
const healMs = num('VIGIL_CHAOS_HEAL_MS', intervalMs + 20, (n) => n >= 0, 'a non-negative number of ms');
const reportFile = process.env.VIGIL_CHAOS_REPORT;

if (!isRoot()) fail('needs root (network namespaces, nftables)');
for (const [tool, pkg] of [['ip', 'iproute2'], ['nft', 'nftables'], ['curl', 'curl'], ['stress-ng', 'stress-ng']] as const) {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
  } catch {
    fail(`${tool} is missing (apt-get install -y --no-install-recommends ${pkg})`);
  }
}

/** mulberry32: a small seeded generator, so a run's choices can be replayed. */
function rng(s: number): () => number {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = rng(seed);
const uniform = (lo: number, hi: number): number => lo + (hi - lo) * random();
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const log = (s: string): void => void process.stderr.write(`${s}\n`);

// the fault injector and the clock of the fault log are the instrument: nice -10, like the
// prober and the address monitors; the daemons, the listeners and stress-ng run at nice 0
const ownNice = raiseOwnPriority();
const lab = await Lab.create({ directors: 3 });
const names = lab.directors.map((d) => d.name);
const links: LinkDef[] = [
  { name: 'heartbeat', nodes: ['d1', 'd2'] },
  { name: 'lan', nodes: names },
];
const faults: FaultEvent[] = [];
const counts = new Map<string, number>();
const count = (k: string): void => void counts.set(k, (counts.get(k) ?? 0) + 1);
const reloads = { ok: 0, rejected: 0, unanswered: 0 };
const errors: string[] = [];
let stress: ChildProcess | null = null;
let nodes: VigilNode[] = [];
let report: InvariantReport | undefined;
/** What happened around the first violations: printed, and carried in the JSON report. */
const context: string[] = [];

/**
 * The timeline from 1.5 s before a violation to 0.5 s after it: every fault, every VIP
 * change the monitor saw, and the cluster's own log lines of every daemon (role changes,
 * verdicts, VIP adds and removals), so a failed run explains itself.
 */
function violationContext(watchChanges: readonly OwnershipChange[], at: number, durationMs: number, rel: (t: number) => string): string[] {
  const from = at - 1500;
  const to = at + durationMs + 500;
  const rows: Array<[number, string]> = [];
  for (const f of faults) if (f.at >= from && f.at <= to) rows.push([f.at, `fault ${f.kind} ${'node' in f ? f.node : `${f.a}-${f.b}/${f.link}`}`]);
  for (const c of watchChanges) if (c.at >= from && c.at <= to) rows.push([c.at, `VIP ${c.owned ? 'added on' : 'gone from'} ${c.node}`]);
  for (const n of nodes) {
    let text = '';
    try {
      text = readFileSync(n.logFile, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      if (!line.includes('"cluster')) continue;
      let j: { time?: string; msg?: string; component?: string; [k: string]: unknown };
      try {
        j = JSON.parse(line) as typeof j;
      } catch {
        continue;
      }
      const t = j.time ? Date.parse(j.time) : NaN;
      if (!(t >= from && t <= to)) continue;
      const extra = Object.entries(j)
        .filter(([k]) => !['level', 'time', 'node', 'component', 'msg', 'pid', 'hostname'].includes(k))
        .map(([k, val]) => `${k}=${typeof val === 'string' ? val : JSON.stringify(val)}`)
        .join(' ');
      rows.push([t, `${n.name} ${j.component ?? ''}: ${j.msg ?? ''}${extra ? ` (${extra})` : ''}`]);
    }
  }
  rows.sort((a, b) => a[0] - b[0]);
  return [`  -- ${rel(at)} (${durationMs.toFixed(1)} ms)`, ...rows.map(([t, s]) => `  ${rel(t)} ${s}`.slice(0, 400))];
}
let lost: string[] = [];
let windowFrom = 0;
let windowTo = 0;
const keep = join(tmpdir(), `vigil-chaos-${lab.prefix}${lab.id}`);
let exitCode = 0;

/** Address of director `n` on link `link`. */
function addrOf(n: string, link: string): string {
  const d = lab.director(n);
  const a = link === 'heartbeat' ? d.hbAddr : d.lanAddr;
  if (!a) throw new Error(`${n} has no ${link} address`);
  return a;
}

async function cutLinks(cuts: Array<{ a: string; b: string; link: string }>): Promise<() => Promise<void>> {
  const at = Date.now();
  for (const c of cuts) faults.push({ kind: 'cut', ...c, at });
  await Promise.all(cuts.flatMap((c) => [lab.partitionFrom(c.a, addrOf(c.b, c.link)), lab.partitionFrom(c.b, addrOf(c.a, c.link))]));
  return async () => {
    const involved = [...new Set(cuts.flatMap((c) => [c.a, c.b]))];
    await Promise.all(involved.map((n) => lab.healPartitions(n)));
    const end = Date.now();
    for (const c of cuts) faults.push({ kind: 'mend', ...c, at: end });
  };
}

function describeCuts(cuts: Array<{ a: string; b: string; link: string }>): string {
  return cuts.map((c) => `${c.a}-${c.b}/${c.link}`).join(' ');
}

const nodeByName = (n: string): VigilNode => nodes.find((x) => x.name === n) as VigilNode;

/**
 * When the node's cluster logged "cluster started" after `since` (epoch ms), read from its
 * log; waits for the line up to `timeoutMs`, then answers now.
 */
async function clusterStartedAfter(node: VigilNode, since: number, timeoutMs: number): Promise<number> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    let text = '';
    try {
      text = readFileSync(node.logFile, 'utf8');
    } catch {
      // not there yet
    }
    for (const line of text.split('\n')) {
      if (!line.includes('"cluster started"')) continue;
      const m = /"time":"([^"]+)"/.exec(line);
      const t = m ? Date.parse(m[1] as string) : NaN;
      if (t >= since) return t;
    }
    if (Date.now() > until) return Date.now();
    await sleep(100);
  }
}

/** Daemons restarted whose API has not answered yet: no fault targets them meanwhile. */
const starting = new Map<string, Promise<void>>();

/**
 * Starts a killed daemon again; the chaos goes on while it starts (a loaded daemon takes
 * minutes). The director counts as dead until its new cluster process started (read from
 * its log): a VIP left from the killed daemon is a dead daemon's VIP until then; no fault
 * targets it until its API answered too.
 */
function restart(node: VigilNode): void {
  const spawnedAt = Date.now();
  const p = node.start({ waitApiMs: 300_000, apiTimeoutS: 10, pollMs: 1000 }).then(
    async () => {
      // the director is back when its new cluster process started: from then on it may
      // take the VIPs (a hand-over to it is legitimate) and its initdead runs. That is
      // before or after the API answered (both seen), so it is read from the log.
      const clusterAt = await clusterStartedAfter(node, spawnedAt, 120_000);
      faults.push({ kind: 'start', node: node.name, at: clusterAt });
      starting.delete(node.name);
      log(`  ${((Date.now() - windowFrom) / 1000).toFixed(1)}s ${node.name} up again, ${((Date.now() - spawnedAt) / 1000).toFixed(1)} s after its restart`);
    },
    (err: unknown) => {
      starting.delete(node.name);
      errors.push(`restart of ${node.name}: ${(err as Error).message}`);
      log(`  restart of ${node.name} FAILED: ${(err as Error).message}`);
    },
  );
  starting.set(node.name, p);
}

/** One fault, healed before it returns. */
async function oneFault(watch: VipWatch): Promise<void> {
  const owners = watch.owners();
  const ready = names.filter((n) => !starting.has(n));
  const choice = random();
  const anyone = pick(ready.length > 0 ? ready : names);
  const kind = pick(['kill', 'stall-below', 'stall-above', 'cut-one', 'cut-pair', 'isolate'] as const);
  const target = owners.length === 1 && ready.includes(owners[0] as string) && choice < 0.6 ? (owners[0] as string) : anyone;
  const node = nodeByName(target);
  // a daemon still starting is left alone; partitions involving it are fine
  if (starting.has(target) && (kind === 'kill' || kind === 'stall-below' || kind === 'stall-above')) return;
  const t0 = ((Date.now() - windowFrom) / 1000).toFixed(1);
  switch (kind) {
    case 'kill': {
      const down = uniform(500, 4000);
      log(`  ${t0}s kill ${target} (owners: ${owners.join(',') || 'none'}), restart after ${down.toFixed(0)} ms`);
      faults.push({ kind: 'kill', node: target, at: Date.now() });
      await node.signal('SIGKILL');
      await sleep(down);
      restart(node);
      break;
    }
    case 'stall-below':
    case 'stall-above': {
      const below = kind === 'stall-below';
      let ms = below ? uniform(0.2, 0.9) * Math.max(intervalMs, deadtimeMs - 2 * intervalMs) : Math.max(uniform(1.5, 4) * deadtimeMs, deadtimeMs + 200);
      const tree = random() < 0.5;
      // The daemon alone stopped: its cluster process keeps the heartbeats, and the lease
      // (cluster.lease_ms, default max(deadtime, 1 s)) decides. A stop that ends just as the
      // lease lapses hands over after the SIGCONT, which the checker cannot tell from a
      // spurious takeover; so such a stop is either clearly shorter than the lease or
      // clearly longer (the hand-over then happens while the daemon is frozen).
      if (!tree && ms > 0.8 * leaseMs) ms = ms < leaseMs ? 0.8 * leaseMs : Math.max(ms, 1.5 * leaseMs);
      const pids = tree ? node.processTree() : node.pid !== undefined ? [node.pid] : [];
      if (pids.length === 0) return;
      log(`  ${t0}s SIGSTOP ${target} ${tree ? `process tree (${pids.length})` : 'daemon'} for ${ms.toFixed(0)} ms (${below ? 'below' : 'above'} deadtime; owners: ${owners.join(',') || 'none'})`);
      faults.push({ kind: 'stop', node: target, at: Date.now() });
      for (const p of pids) {
        try {
          process.kill(p, 'SIGSTOP');
        } catch {
          // gone
        }
      }
      await sleep(ms);
      for (const p of pids) {
        try {
          process.kill(p, 'SIGCONT');
        } catch {
          // gone
        }
      }
      faults.push({ kind: 'cont', node: target, at: Date.now() });
      break;
    }
    case 'cut-one':
    case 'cut-pair':
    case 'isolate': {
      let cuts: Array<{ a: string; b: string; link: string }>;
      if (kind === 'cut-one') {
        const choice = pick([
          { a: 'd1', b: 'd2', link: 'heartbeat' },
          { a: 'd1', b: 'd2', link: 'lan' },
          { a: 'd1', b: 'd3', link: 'lan' },
          { a: 'd2', b: 'd3', link: 'lan' },
        ]);
        cuts = [choice];
      } else if (kind === 'cut-pair') {
        cuts = [
          { a: 'd1', b: 'd2', link: 'heartbeat' },
          { a: 'd1', b: 'd2', link: 'lan' },
        ];
      } else {
        cuts = links.flatMap((l) => (l.nodes.includes(target) ? l.nodes.filter((o) => o !== target).map((o) => ({ a: target, b: o, link: l.name })) : []));
      }
      const ms = uniform(1000, 4000);
      log(`  ${t0}s partition ${describeCuts(cuts)} for ${ms.toFixed(0)} ms (owners: ${owners.join(',') || 'none'})`);
      const heal = await cutLinks(cuts);
      await sleep(ms);
      await heal();
      break;
    }
  }
  count(kind);
}

function reloadLoop(token: string, stopAt: () => boolean): Promise<void> {
  const inFlight = new Set<string>();
  let weight = 1;
  return (async () => {
    while (!stopAt()) {
      await sleep(uniform(2000, 5000));
      if (stopAt()) break;
      weight = weight === 1 ? 2 : 1;
      writeClusterConfig(lab, { timers, file: 'vigil.yaml', services: loadServices(lab.vip, { probes, weight, intervalMs: probeIntervalMs }) });
      for (const n of nodes) {
        if (!n.running || inFlight.has(n.name)) continue;
        inFlight.add(n.name);
        void reloadViaApi(lab, n.director.ns, token).then((code) => {
          inFlight.delete(n.name);
          if (code === 200) reloads.ok += 1;
          else if (code === 0) reloads.unanswered += 1;
          else reloads.rejected += 1;
        });
      }
    }
  })();
}

async function metricsSummary(): Promise<string[]> {
  const out: string[] = [];
  for (const n of nodes) {
    const text = n.running ? await n.get('/metrics', 5) : null;
    if (text === null) {
      out.push(`  ${n.name}: /metrics did not answer`);
      continue;
    }
    const m = (name: string): number => text.split('\n').filter((l) => l.startsWith(name) && /[ {]/.test(l[name.length] ?? '')).reduce((a, l) => a + (Number(l.slice(l.lastIndexOf(' ') + 1)) || 0), 0);
    out.push(
      `  ${n.name}: heartbeats late ${m('vigil_cluster_heartbeats_late_total')}, verdicts deferred (own stall) ${m('vigil_cluster_verdicts_deferred_total')}, failovers ${m('vigil_cluster_failovers_total')}, transitions ${m('vigil_cluster_transitions_total')} (since its last start)`,
    );
  }
  return out;
}

const durationMs = minutes * 60_000;
try {
  log(`bench:chaos: lab ${lab.prefix}${lab.id}, seed ${seed} (replay: VIGIL_CHAOS_SEED=${seed}), ${minutes} min at ${intervalMs}/${deadtimeMs}, ${probes} probes per director, ${hogsPerCore} hogs per core, ${lossPercent}% loss, bench at nice ${ownNice}`);
  await startListeners(lab, probes);
  const config = writeClusterConfig(lab, { timers, file: 'vigil.yaml', services: loadServices(lab.vip, { probes, weight: 1, intervalMs: probeIntervalMs }) });
  const token = readFileSync(join(lab.dir, 'api-token'), 'utf8').trim();
  nodes = clusterNodes(lab, config);
  await Promise.all(nodes.map((n) => n.start({ waitApiMs: 420_000, apiTimeoutS: 10, pollMs: 1000 })));
  const watch = new VipWatch(lab);
  await watch.start();
  // a loaded machine may keep the cluster from settling: the chaos starts anyway, judged from its first moment
  if (!(await watch.waitSingleOwner(3000, 120_000))) {
    log(`  WARNING: no single VIP owner for 3 s in a row within 120 s of the start (owners now: ${watch.owners().join(',') || 'none'}); starting the chaos anyway`);
  }
  if (lossPercent > 0) await Promise.all(names.map((n) => lab.heartbeatLoss(n, { percent: lossPercent, port: HEARTBEAT_PORT })));
  stress = startStress(hogsPerCore, durationMs / 1000 + 60);
  windowFrom = Date.now();
  const endAt = windowFrom + durationMs;
  log(`  settled; owners ${watch.owners().join(',') || 'none'}; chaos for ${minutes} min from ${new Date(windowFrom).toISOString()}`);
  const reloading = reloadLoop(token, () => Date.now() >= endAt);
  while (Date.now() < endAt) {
    await oneFault(watch);
    await sleep(uniform(1000, 3000));
  }
  await reloading;
  windowTo = Date.now();
  await Promise.all(starting.values());
  stress?.kill('SIGKILL');
  stress = null;
  lost = await watch.stop();
  // restarts still pending end inside the window; ownership after windowTo is not judged
  const owners0 = watch.changes.filter((c) => c.at <= windowFrom);
  const initial = names.filter((n) => {
    const last = owners0.filter((c) => c.node === n).sort((a, b) => a.at - b.at).pop();
    return last?.owned ?? false;
  });
  report = evaluateInvariants(faults, watch.changes, { nodes: names, links, intervalMs, deadtimeMs, initdeadMs: timers.initdead_ms, takeoverMs, healMs, from: windowFrom, to: windowTo, initialOwners: initial });
  writeFileSync(join(lab.dir, 'chaos-events.json'), JSON.stringify({ seed, timers, from: windowFrom, to: windowTo, faults, ownership: watch.changes, report }, null, 1));
  const metrics = await metricsSummary();

  const out: string[] = [];
  const rel = (t: number): string => `${((t - windowFrom) / 1000).toFixed(3)}s`;
  out.push(`vigil chaos bench: 3 directors, ${minutes} min, seed ${seed} (replay: VIGIL_CHAOS_SEED=${seed}), timers ${intervalMs}/${deadtimeMs} ms`);
  out.push(`load: ${probes} tcp probes per director (every ${probeIntervalMs} ms), stress-ng ${hogsPerCore} hogs per core × ${cpus().length} cores, ${lossPercent}% heartbeat loss on every link, reload every 2–5 s`);
  out.push(`load average (1 min) at end ${(loadavg()[0] ?? 0).toFixed(1)}; node ${process.version}; ${new Date().toISOString()}`);
  out.push(`faults: ${[...counts].map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}; reloads ${reloads.ok} ok, ${reloads.rejected} rejected, ${reloads.unanswered} unanswered`);
  out.push(`allowances: takeover ${takeoverMs} ms, two owners ≤ ${healMs} ms after a heal, takeover legitimate after ${Math.max(intervalMs, deadtimeMs - 2 * intervalMs)} ms out of contact`);
  out.push('');
  const r = report;
  out.push(`two owners:      ${r.twoOwners.totalMs.toFixed(1)} ms in all, ${r.twoOwners.allowedMs.toFixed(1)} ms allowed (apart or ≤ 1 interval after a heal), ${r.twoOwners.violatingMs.toFixed(1)} ms violating in ${r.violations.filter((v) => v.kind === 'two-owners').length} episode(s) (longest ${r.twoOwners.longestViolatingMs.toFixed(1)} ms); a dead daemon's VIP beside another owner ${r.twoOwners.deadOwnerMs.toFixed(1)} ms   target 0 violating`);
  out.push(`no owner:        ${r.noOwner.totalMs.toFixed(1)} ms in ${r.noOwner.episodes} episode(s) while a director was eligible, longest ${r.noOwner.longestMs.toFixed(1)} ms, ${r.noOwner.violatingEpisodes} over deadtime + takeover (${r.noOwner.budgetMs} ms)   target 0 over`);
  out.push(`takeovers:       ${r.takeovers.total}, spurious ${r.takeovers.spurious}   target 0 spurious`);
  out.push('daemon counters at the end:');
  out.push(...metrics);
  if (lost.length > 0) out.push(`INSTRUMENT: the address monitor disagrees with ip addr at the end on ${lost.join(', ')}: the timeline is incomplete`);
  for (const e of errors) out.push(`ERROR: ${e}`);
  if (r.violations.length > 0) {
    out.push('');
    out.push(`violations (${r.violations.length}; first 40, times from the start of the chaos):`);
    for (const v of r.violations.slice(0, 40)) {
      const before = faults.filter((f) => f.at <= v.at).pop();
      const ctx = before ? `; last fault ${before.kind} ${'node' in before ? before.node : `${before.a}-${before.b}/${before.link}`} at ${rel(before.at)}` : '';
      out.push(`  ${rel(v.at)} ${v.kind}: ${v.detail}${ctx}`);
    }
    for (const v of r.violations.slice(0, 3)) {
      context.push(...violationContext(watch.changes, v.at, v.durationMs, rel));
    }
    out.push('', 'around the first violations (faults, VIP changes, the daemons\' cluster log lines):', ...context);
  }
  out.push('');
  out.push(r.ok && lost.length === 0 && errors.length === 0 ? 'RESULT: every invariant held' : 'RESULT: FAILED');
  process.stdout.write(`${out.join('\n')}\n`);
  if (!r.ok || lost.length > 0 || errors.length > 0) exitCode = 1;
} catch (err) {
  log(`bench:chaos: ${(err as Error).stack ?? String(err)}`);
  exitCode = 1;
} finally {
  stress?.kill('SIGKILL');
  for (const n of nodes) for (const p of n.processTree()) {
    try {
      process.kill(p, 'SIGCONT');
    } catch {
      // gone
    }
  }
  await Promise.all(nodes.map((n) => n.stop().catch(() => undefined)));
  if (reportFile) {
    writeFileSync(reportFile, JSON.stringify({ seed, minutes, timers, faults: Object.fromEntries(counts), reloads, errors, lost, report: report ?? null, context, exitCode }, null, 1));
  }
  cpSync(lab.dir, keep, { recursive: true, filter: (f) => !/authkey|api-token/.test(f) });
  log(`fault log, ownership timeline and daemon logs kept in ${keep}`);
  await lab.destroy();
}
process.exit(exitCode);
