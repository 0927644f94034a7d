/**
 * `npm run bench:isolation`: does the daemon's own work delay heartbeats? The same pair
 * of real directors in the network-namespace lab, at 20/80 timers, twice: once with the
 * cluster in the daemon's event loop (VIGIL_CLUSTER_INLINE=1, as before the split) and
 * once in its own process (the default). During VIGIL_BENCH_ISO_S seconds (default 30)
 * the active daemon's event loop is blocked every second for VIGIL_BENCH_STALL_MS
 * (default 150 ms: a reload of a large config measured 93 ms) through the test hook.
 *
 * Printed per mode: spurious transitions (the standby took over while the active was
 * alive), late heartbeats seen by the standby, the active's cluster timer lateness
 * (max), and, idle beforehand, the RSS of the daemon's processes (daemon + cluster
 * process; forwarder workers excluded) and their CPU use per second.
 * Target: the process mode has 0 spurious transitions and 0 late heartbeats. Exit 1 otherwise.
 * Needs root.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { loadavg } from 'node:os';
import { Lab } from '../lab/lab.js';
import { isRoot } from '../lab/netns.js';
import { clusterNodes, FAST_TIMERS, sumMetric, waitSettled, writeClusterConfig, type VigilNode } from '../lab/vigil.js';

const seconds = Number(process.env.VIGIL_BENCH_ISO_S ?? 30);
const stallMs = Number(process.env.VIGIL_BENCH_STALL_MS ?? 150);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const log = (s: string): void => void process.stdout.write(`${s}\n`);

if (!isRoot()) {
  process.stderr.write('bench:isolation: needs root (network namespaces)\n');
  process.exit(2);
}

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
const cmdline = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
};
/** The daemon and its cluster process (not the forwarder workers or the probe helper). */
function controlPids(daemon: number): number[] {
  return [daemon, ...children(daemon).filter((p) => cmdline(p).includes('cluster/process.js'))];
}
function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}
function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime
}

interface Result {
  mode: string;
  spurious: number;
  lateAtStandby: number;
  latenessMaxMs: number;
  rssMb: number;
  idleCpuPct: number;
}

type Mode = 'inline' | 'process' | 'realtime';

async function measure(mode: Mode): Promise<Result> {
  const lab = await Lab.create({ prefix: 'vbi' });
  const nodes: VigilNode[] = [];
  try {
    if (mode === 'inline') process.env.VIGIL_CLUSTER_INLINE = '1';
    else delete process.env.VIGIL_CLUSTER_INLINE;
    process.env.VIGIL_TEST_HOOKS = '1';
    process.env.VIGIL_TEST_STALL = 'daemon';
    process.env.VIGIL_TEST_STALL_MS = String(stallMs);
    const file = writeClusterConfig(lab, { timers: { ...FAST_TIMERS, initdead_ms: 1000 } });
    if (mode === 'realtime') {
      const doc = parse(readFileSync(file, 'utf8')) as { cluster: Record<string, unknown> };
      doc.cluster.realtime = true;
      writeFileSync(file, stringify(doc));
    }
    nodes.push(...clusterNodes(lab, file));
    await Promise.all(nodes.map((n) => n.start()));
    const active = await waitSettled(nodes, 60_000);
    const standby = nodes.find((n) => n !== active)!;
    await sleep(3000);
    // idle footprint of the active director's control processes
    const pids = controlPids(active.pid!);
    const rss = pids.reduce((a, p) => a + rssKb(p), 0) / 1024;
    const t0 = pids.reduce((a, p) => a + cpuTicks(p), 0);
    await sleep(10_000);
    const idleCpu = (pids.reduce((a, p) => a + cpuTicks(p), 0) - t0) / 100 / 10 * 100;
    const lateBefore = sumMetric((await standby.get('/metrics')) ?? '', 'vigil_cluster_heartbeats_late_total');
    const transBefore = sumMetric((await standby.get('/metrics')) ?? '', 'vigil_cluster_transitions_total');
    const end = Date.now() + seconds * 1000;
    while (Date.now() < end) {
      if (active.pid) process.kill(active.pid, 'SIGUSR2');
      await sleep(1000);
    }
    await sleep(500);
    const sm = (await standby.get('/metrics')) ?? '';
    const am = (await active.get('/metrics')) ?? '';
    const maxLine = am.split('\n').find((l) => /^vigil_cluster_timer_lateness_max_seconds\s/.test(l));
    return {
      mode,
      spurious: sumMetric(sm, 'vigil_cluster_transitions_total') - transBefore,
      lateAtStandby: sumMetric(sm, 'vigil_cluster_heartbeats_late_total') - lateBefore,
      latenessMaxMs: maxLine ? Number(maxLine.split(' ')[1]) * 1000 : NaN,
      rssMb: rss,
      idleCpuPct: idleCpu,
    };
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
    await lab.destroy();
    delete process.env.VIGIL_CLUSTER_INLINE;
  }
}

log(`bench:isolation: 20/80 timers, the active daemon's loop blocked ${stallMs} ms every second for ${seconds} s`);
const results: Result[] = [];
const modes = (process.env.VIGIL_BENCH_ISO_MODES ?? 'inline,process,realtime').split(',') as Mode[];
for (const mode of modes) {
  const r = await measure(mode);
  results.push(r);
  log(`  ${mode.padEnd(8)} spurious transitions ${r.spurious}, late heartbeats at the standby ${r.lateAtStandby}, active's tick lateness max ${r.latenessMaxMs.toFixed(1)} ms, idle RSS ${r.rssMb.toFixed(1)} MB, idle CPU ${r.idleCpuPct.toFixed(2)} %`);
}
const isolated = results.filter((r) => r.mode !== 'inline');
const ok = isolated.length > 0 && isolated.every((r) => r.spurious === 0 && r.lateAtStandby === 0);
log(`load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
log(ok ? 'bench:isolation: target met (cluster process: 0 spurious transitions, 0 late heartbeats)' : 'bench:isolation: TARGET MISSED');
process.exit(ok ? 0 : 1);
