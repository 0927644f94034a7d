/**
 * `npm run bench:health`: the health runner at scale, against real listeners.
 *
 *   - 1,000 real servers with the built-in tcp probe, interval 1 s (timeout 500 ms)
 *   - 200 real servers with an exec probe, interval 2 s (timeout 1 s): a bash script
 *     that connects with /dev/tcp (test/bench/health-probe.sh), through src/proc.ts
 *   - 1,200 TCP listeners on 127.0.0.1 in a separate process (in its own session), so
 *     this process's CPU is the runner's alone (the exec probes' own CPU is reported
 *     apart, their spawner processes included)
 *   - run VIGIL_BENCH_SECONDS (default 60), then kill 50 of the tcp-probed listeners and
 *     measure kill → realServerDown (fall 2: bound 2 × 1000 + 500 + 50 = 2,550 ms)
 *
 * Prints probes/s, scheduling delay p50/p99, overruns, overlapping runs (counted by a
 * wrapper around the executor), timeouts, CPU %, RSS, event-loop lag p99, leftover
 * processes and the detection latency p50/p99, with the targets beside them.
 * The runner runs in this process with the daemon's real metrics (prom-client, Node
 * defaults); the rest of the daemon (cluster, API, dataplane) is not started.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { configSchema } from '../../src/config/schema.js';
import { createExecutor, type ProbeExecutor } from '../../src/health/probes.js';
import { HealthRunner, type HealthEvent } from '../../src/health/runner.js';
import { ProbeSpawner } from '../../src/health/spawner.js';
import { createMetrics } from '../../src/metrics.js';

const TCP_SERVERS = Number(process.env.VIGIL_BENCH_TCP ?? 1000);
const EXEC_SERVERS = Number(process.env.VIGIL_BENCH_EXEC ?? 200);
const SECONDS = Number(process.env.VIGIL_BENCH_SECONDS ?? 60);
const KILL = 50;
const TCP = { interval: 1000, timeout: 500, fall: 2 };
const EXEC = { interval: 2000, timeout: 1000, fall: 2 };
const PROBE_SCRIPT = resolve(import.meta.dirname, 'health-probe.sh');

const LISTENERS_JS = `
const net = require('net');
const servers = [];
let left = ${TCP_SERVERS + EXEC_SERVERS};
for (let i = 0; i < left; i++) {
  const s = net.createServer((c) => { c.on('error', () => {}); c.on('end', () => c.destroy()); });
  s.listen({ port: 0, host: '127.0.0.1', backlog: 511 }, () => {
    servers[i] = s;
    if (--left === 0) process.send({ ports: servers.map((x) => x.address().port) });
  });
}
process.on('message', (m) => {
  if (m.kill) {
    let n = m.kill.length;
    for (const i of m.kill) servers[i].close(() => { if (--n === 0 && process.connected) process.send({ killed: true }); });
  }
});
process.on('disconnect', () => process.exit(0));
`;

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

/** CPU time (ms) of a process and its waited-for children, from /proc/<pid>/stat. */
function cpuMsWithChildren(pids: number[]): number {
  return pids.reduce((a, p) => a + cpuMsOf(p), 0);
}
function cpuMsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]); // utime stime cutime cstime
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

function leftoverProbeProcesses(): number {
  let n = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${d}/stat`, 'utf8'))) continue;
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(PROBE_SCRIPT)) n += 1;
    } catch {
      // gone
    }
  }
  return n;
}

async function main(): Promise<void> {
  const out = (s: string) => process.stdout.write(`${s}\n`);
  out(`bench:health: ${TCP_SERVERS} built-in tcp probes @ ${TCP.interval} ms + ${EXEC_SERVERS} exec probes @ ${EXEC.interval} ms, ${SECONDS} s`);

  // ---- listeners, in their own process
  // detached: the listeners (the real servers) get their own session, so with the kernel's
  // autogroup scheduling they do not share this process's CPU share, as real servers on
  // other hosts would not; they exit when this process goes away (IPC disconnect)
  const listeners = spawn(process.execPath, ['-e', LISTENERS_JS], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], detached: true });
  const ports = await new Promise<number[]>((res, rej) => {
    listeners.once('error', rej);
    listeners.once('message', (m: { ports: number[] }) => res(m.ports));
  });

  const vip = '127.0.0.1';
  const config = configSchema.parse({
    node: 'bench',
    cluster: { nodes: [{ name: 'bench', links: [{ name: 'lo', address: '127.0.0.1' }] }] },
    vips: [{ address: vip, interface: 'lo', managed: false }],
    services: [
      {
        name: 'tcp',
        vip,
        port: 1,
        forward: 'nat',
        check: { type: 'tcp', interval_ms: TCP.interval, timeout_ms: TCP.timeout, rise: 1, fall: TCP.fall, initial: 'up' },
        real_servers: ports.slice(0, TCP_SERVERS).map((port) => ({ address: '127.0.0.1', port })),
      },
      {
        name: 'exec',
        vip,
        port: 2,
        forward: 'nat',
        check: { type: 'exec', command: PROBE_SCRIPT, interval_ms: EXEC.interval, timeout_ms: EXEC.timeout, rise: 1, fall: EXEC.fall, initial: 'up' },
        real_servers: ports.slice(TCP_SERVERS).map((port) => ({ address: '127.0.0.1', port })),
      },
    ],
    health: { concurrency: 256, kill_grace_ms: 200 },
  });

  // ---- the runner, with an executor wrapper that counts overlapping runs of one target
  const metrics = createMetrics({ defaults: true });
  let processes = 0;
  let maxProcesses = 0;
  // the same executor the runner builds for itself (exec probes through the spawner process)
  const spawner = new ProbeSpawner();
  await spawner.warm();
  const real = createExecutor({
    spawner,
    checksDir: config.health.checks_dir ?? '.',
    killGraceMs: config.health.kill_grace_ms,
    outputLimitBytes: config.health.output_limit_bytes,
    onProcess: (d) => {
      processes += d;
      maxProcesses = Math.max(maxProcesses, processes);
    },
  });
  const running = new Set<string>();
  let overlaps = 0;
  const executor: ProbeExecutor = async (t, signal) => {
    if (running.has(t.id)) overlaps += 1;
    running.add(t.id);
    try {
      return await real(t, signal);
    } finally {
      running.delete(t.id);
    }
  };
  const runner = new HealthRunner({ config, metrics, executor });
  const delays: number[] = [];
  let runs = 0;
  let downs = 0;
  let timeouts = 0;
  let skipped = 0;
  let measuring = true;
  const downReasons = new Map<string, number>();
  runner.on('probeRun', (r) => {
    if (!measuring) return;
    runs += 1;
    delays.push(r.delayMs);
    if (r.result.result === 'skipped') skipped += 1;
    else if (!r.result.ok) {
      downs += 1;
      const why = `${r.probe}: ${r.result.reason.replace(/\d+\.\d+\.\d+\.\d+:\d+/g, 'ADDR')}`;
      downReasons.set(why, (downReasons.get(why) ?? 0) + 1);
    }
    if (r.result.result === 'timeout') timeouts += 1;
  });

  const lag = monitorEventLoopDelay({ resolution: 10 });
  const cpu0 = process.cpuUsage();
  const child0 = cpuMsWithChildren(spawner.pids);
  const t0 = performance.now();
  let rssMax = 0;
  let queuedMax = 0;
  const rssTimer = setInterval(() => (rssMax = Math.max(rssMax, process.memoryUsage().rss)), 1000);
  const queueTimer = setInterval(() => (queuedMax = Math.max(queuedMax, runner.stats().queued)), 50);
  lag.enable();
  await runner.start();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  measuring = false;
  lag.disable();
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const childCpu = cpuMsWithChildren(spawner.pids) - child0;
  clearInterval(rssTimer);
  clearInterval(queueTimer);
  const overruns = (await metrics.probeOverruns.get()).values.reduce((a, v) => a + v.value, 0);

  // ---- detection: kill 50 tcp-probed listeners, wait for their realServerDown
  const victims = Array.from({ length: KILL }, (_, i) => Math.floor((i * TCP_SERVERS) / KILL));
  const victimPorts = new Set(victims.map((i) => ports[i] as number));
  const detected = new Map<number, number>();
  let killedAt = 0;
  const allDown = new Promise<void>((res) => {
    const onDown = (ev: HealthEvent) => {
      if (ev.service !== 'tcp' || !victimPorts.has(ev.port) || detected.has(ev.port)) return;
      detected.set(ev.port, ev.atMs - killedAt);
      if (detected.size === KILL) res();
    };
    runner.on('realServerDown', onDown);
  });
  const falseDowns: HealthEvent[] = [];
  runner.on('realServerDown', (ev) => {
    if (!victimPorts.has(ev.port)) falseDowns.push(ev);
  });
  killedAt = performance.now();
  listeners.send({ kill: victims });
  await Promise.race([allDown, new Promise((r) => setTimeout(r, 10_000))]);
  await runner.close();
  await spawner.close();
  listeners.disconnect();
  await new Promise((r) => setTimeout(r, 300));
  const leftovers = leftoverProbeProcesses();

  // ---- report
  const sorted = delays.sort((a, b) => a - b);
  const det = [...detected.values()].sort((a, b) => a - b);
  const bound = TCP.fall * TCP.interval + TCP.timeout + 50;
  const expectedRate = TCP_SERVERS / (TCP.interval / 1000) + EXEC_SERVERS / (EXEC.interval / 1000);
  const rows: [string, string, string][] = [
    ['probes/s achieved', `${(runs / (wall / 1000)).toFixed(0)} (${runs} runs; planned ${expectedRate.toFixed(0)}/s)`, ''],
    ['runs down / timed out (steady state)', `${downs} / ${timeouts}`, '0 / 0'],
    ['exec runs skipped (spawner busy past the deadline)', String(skipped), '0'],
    ['scheduling delay p50 / p99 / max', `${pct(sorted, 50).toFixed(2)} / ${pct(sorted, 99).toFixed(2)} / ${(sorted.at(-1) ?? NaN).toFixed(2)} ms`, 'p99 < 20 ms'],
    ['overruns skipped', String(overruns), ''],
    ['waiting for the concurrency cap (max, 50 ms samples)', String(queuedMax), `cap ${config.health.concurrency}`],
    ['overlapping runs', String(overlaps), '0'],
    ['runner CPU (this process)', `${(((cpu.user + cpu.system) / 1000 / wall) * 100).toFixed(1)} % of one core`, ''],
    ['spawner process + exec probes CPU', `${((childCpu / wall) * 100).toFixed(1)} % of one core`, ''],
    ['RSS (max)', `${(rssMax / 1024 / 1024).toFixed(0)} MiB`, ''],
    ['event-loop lag p99 (beyond the 10 ms tick)', `${Math.max(0, lag.percentile(99) / 1e6 - 10).toFixed(2)} ms`, ''],
    ['exec processes at once (max)', String(maxProcesses), `≤ ${config.health.concurrency}`],
    ['leftover probe processes', String(leftovers), '0'],
    ['detected / killed', `${det.length} / ${KILL}`, `${KILL} / ${KILL}`],
    ['false downs (listeners not killed)', String(falseDowns.length), '0'],
    ['detection latency p50 / p99 / max', `${pct(det, 50).toFixed(0)} / ${pct(det, 99).toFixed(0)} / ${(det.at(-1) ?? NaN).toFixed(0)} ms`, `p99 ≤ ${bound} ms (fall × interval + timeout + 50)`],
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  out('');
  out(`| ${'metric'.padEnd(w0)} | ${'value'.padEnd(w1)} | target |`);
  out(`| ${'-'.repeat(w0)} | ${'-'.repeat(w1)} | ------ |`);
  for (const [k, v, t] of rows) out(`| ${k.padEnd(w0)} | ${v.padEnd(w1)} | ${t} |`);
  out('');
  const ok = pct(sorted, 99) < 20 && overlaps === 0 && leftovers === 0 && det.length === KILL && pct(det, 99) <= bound;
  if (downReasons.size > 0) {
    out('failed runs by reason (top 5):');
    for (const [why, n] of [...downReasons].sort((a, b) => b[1] - a[1]).slice(0, 5)) out(`  ${n}  ${why}`);
  }
  out(`load average at the end: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} (${availableParallelism()} cores)`);
  out(ok ? 'bench:health: all targets met' : 'bench:health: TARGETS MISSED');
  process.exitCode = ok ? 0 : 1;
}

await main();
