/**
 * Runs INSIDE the IPVS VM (test/e2e/ecmp-ipvs-vm.test.ts and bench:ecmp with
 * VIGIL_BENCH_DATAPLANE=ipvs compile it with compileGuestTree and boot it once): the ECMP
 * lab (test/lab/ecmp.ts) on the kernel's IPVS. A router running BIRD (ECMP, BFD), three
 * directors each running vigil (cluster.mode ecmp, dataplane ipvs: DR, `mh` + mh-port,
 * sloppy_tcp set by vigil) and its own BIRD, real servers with the VIP on lo, and a
 * client holding long-lived TCP connections, UDP flows and a stream of new connections.
 *
 * Per run: the clients start, each director's IPVS connection table says which director
 * carries which long-lived connection, then one director crashes (links down, vigil and
 * BIRD killed) or withdraws (`vigil maintenance on`); BFD or BGP tells the router, which
 * moves that director's flows to the others. Prints one JSON object per line.
 *
 * Environment: ECMP_VM_RUNS (default 1), ECMP_VM_SCENARIOS (crash,graceful; default
 * crash), ECMP_VM_PICK (`most`: the director carrying the most long-lived connections,
 * the default; `rotate`: d1, d2, d3 in turn, as the forwarder bench does),
 * ECMP_VM_LONG (long-lived connections, default 18), ECMP_VM_GAP_MS (a UDP gap longer
 * than this counts as an outage, default 500), ECMP_VM_SILENT_MS (a long-lived connection
 * silent this long counts as broken, default 12000).
 */
import { analyseEvent, EcmpLab, type ClientReport } from '../../lab/ecmp.js';

const emit = (o: Record<string, unknown>): void => void process.stdout.write(JSON.stringify(o) + '\n');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const ALL = ['d1', 'd2', 'd3'];

function envInt(name: string, dflt: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name}=${raw}: an integer ≥ ${min} expected`);
  return n;
}
// the daemons inherit it: a cluster process takes more than the default 30 s to load here
process.env.VIGIL_CLUSTER_START_TIMEOUT_MS ||= '300000';
const RUNS = envInt('ECMP_VM_RUNS', 1, 1);
const LONG = envInt('ECMP_VM_LONG', 18, 1);
// emulation alone leaves 150-200 ms gaps on flows no event touched (measured); a flow on
// the dead director waits about BFD's 2.4 s
const GAP_MS = envInt('ECMP_VM_GAP_MS', 500, 1);
const SILENT_MS = envInt('ECMP_VM_SILENT_MS', 12_000, 1000);
const SCENARIOS = (process.env.ECMP_VM_SCENARIOS || 'crash').split(',');
for (const s of SCENARIOS) if (s !== 'crash' && s !== 'graceful') throw new Error(`ECMP_VM_SCENARIOS: "${s}" is neither crash nor graceful`);
const PICK = process.env.ECMP_VM_PICK || 'most';
if (PICK !== 'most' && PICK !== 'rotate') throw new Error(`ECMP_VM_PICK: "${PICK}" is neither most nor rotate`);

async function main(): Promise<void> {
  const t0 = Date.now();
  // Emulation stalls the whole guest for a second or more now and then (every daemon's
  // lease late at once, measured): BFD 200 ms × 5 and deadtime 1000 flapped BGP sessions
  // and made daemons ineligible, so clients never settled. BFD 400 ms × 6 (2.4 s) still
  // withdraws a dead director well within BGP's 9 s hold time; heartbeats every 500 ms,
  // deadtime 3 s; the daemons' lease follows deadtime.
  const e = await EcmpLab.create({
    prefix: 'v16i',
    dataplane: 'ipvs',
    realServers: 2,
    checkIntervalMs: 2000,
    bfd: { intervalMs: 400, multiplier: 6 },
    timers: { interval_ms: 500, deadtime_ms: 3000, warntime_ms: 1500, initdead_ms: 5000 },
  });
  emit({ step: 'lab', ms: Date.now() - t0 });
  try {
    await e.start();
    emit({ step: 'vigil-up', ms: Date.now() - t0 });
    await e.waitNextHops(ALL, 300_000);
    const sysctl = async (d: string, k: string): Promise<string> => (await e.lab.exec(d, ['cat', `/proc/sys/net/ipv4/vs/${k}`])).stdout.trim();
    emit({
      step: 'setup',
      ms: Date.now() - t0,
      sloppyTcp: await Promise.all(ALL.map((d) => sysctl(d, 'sloppy_tcp'))),
      save: (await e.lab.exec('d1', ['ipvsadm', '-S', '-n'])).stdout,
      bfd: await e.birdc('router', ['show', 'bfd', 'sessions']),
    });
    for (const [k, kind] of SCENARIOS.entries()) {
      for (let i = 0; i < RUNS; i++) await oneRun(e, kind as 'crash' | 'graceful', i, k === SCENARIOS.length - 1 && i === RUNS - 1);
    }
  } catch (err) {
    emit({ step: 'logs', ms: Date.now() - t0, logs: e.logTails() });
    throw err;
  } finally {
    await e.destroy();
  }
  emit({ done: true, ms: Date.now() - t0 });
}

/** `last`: the director stays down (a restart costs minutes in the VM). */
async function oneRun(e: EcmpLab, kind: 'crash' | 'graceful', i: number, last: boolean): Promise<void> {
  await e.waitNextHops(ALL, 300_000);
  // a moved connection is silent until the router converges (BFD 2.4 s) and TCP's next
  // retransmission (backed off to a few seconds by then) reaches the new director: only
  // an error, a reset or SILENT_MS of silence breaks it
  // a new connection whose SYN went to the dead director is retransmitted after 1 s and
  // 3 s: with the router converging after about 2.5 s it may be answered only by the
  // third SYN, 7 s after the first, as any client with the usual connect timeout waits
  const c = await e.clients({ streamMs: 200, udpFlows: 8, udpMs: 100, long: LONG, longMs: 200, silentMs: SILENT_MS, connectMs: 10_000 });
  let report: ClientReport | undefined;
  let victim = '';
  try {
    await sleep(2000);
    // which director's IPVS holds each long-lived connection
    const tables = new Map<string, Set<string>>();
    for (const d of ALL) tables.set(d, await e.ipvsConnections(d));
    const ports = c.longPorts();
    const carrier = (port: number): string[] => ALL.filter((d) => tables.get(d)?.has(`${e.clientAddr}:${port}`));
    const before: Record<string, number> = { d1: 0, d2: 0, d3: 0 };
    let unknown = 0;
    for (const port of ports) {
      const on = carrier(port);
      if (on.length === 1) before[on[0] as string] = (before[on[0] as string] ?? 0) + 1;
      else unknown += 1;
    }
    victim = PICK === 'rotate' ? (ALL[i % 3] as string) : (ALL.reduce((a, b) => ((before[b] ?? 0) > (before[a] ?? 0) ? b : a)) as string);
    const victimPorts = ports.filter((p) => carrier(p).length === 1 && carrier(p)[0] === victim);
    const at = Date.now();
    if (kind === 'crash') await e.crash(victim);
    else await e.maintenance(victim, true);
    const rest = ALL.filter((d) => d !== victim);
    const converged = await e.waitNextHops(rest, 60_000);
    // a broken long-lived connection shows within SILENT_MS (a reset at once, or silence)
    await sleep(SILENT_MS + 2000);
    // a connection can sit in both survivors' tables: the router's hash-threshold ECMP
    // rehashes some flows between the survivors too when a next hop leaves, and sloppy_tcp
    // makes an entry wherever a segment lands
    const movedTo: Record<string, number> = {};
    const found = new Set<number>();
    for (const d of rest) {
      const t = await e.ipvsConnections(d);
      const here = victimPorts.filter((p) => t.has(`${e.clientAddr}:${p}`));
      movedTo[d] = here.length;
      for (const p of here) found.add(p);
    }
    report = await c.stop();
    const f = analyseEvent(report, at, GAP_MS);
    emit({
      step: 'run',
      kind,
      run: i + 1,
      director: victim,
      convergedMs: converged - at,
      longBefore: before,
      longUnknown: unknown,
      longOnDirector: victimPorts.length,
      movedTo,
      longMoved: found.size,
      ...f,
      brokenOnDirector: report.long.filter((l) => l.brokenAt !== null && victimPorts.includes(l.port)).length,
    });
  } finally {
    if (!report) await c.stop().catch(() => undefined);
  }
  if (victim === '' || last) return;
  if (kind === 'crash') await e.restart(victim);
  else await e.maintenance(victim, false);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    emit({ step: 'crash', error: String((err as Error).stack ?? err) });
    process.exit(1);
  },
);
