/**
 * `npm run bench:maglev` — the forwarder's Maglev (mh) scheduler.
 *
 * For 10, 100 and 1000 real servers:
 *   build       a table rebuild as after a health change (MaglevScheduler.changed: the
 *               canonical sort, the permutations and the population), median of 15;
 *               target ≤ 50 ms at 1000 real servers and 65521 slots (a health change
 *               rebuilds one service's table on each worker's event loop; measured
 *               about 8 ms on this 2-core machine under a load average of 25)
 *   lookup      ns per pick of mh (mh-port) and of sh, over 1,000,000 flows
 *   fails       the share of 100,000 flows (mh-port, mh-fallback) whose real server
 *               changes when one real server fails in a quiescent service or is drained
 *               (weight 0, slots kept): target ≤ 2/N (by construction exactly its own
 *               share, ≈ 1/N)
 *   removed     the share of slots whose real server changes when one real server is
 *               removed from the table (a failure in a non-quiescent service, a reload),
 *               over 10 leavers; target ≤ 2/N up to N = 100. Maglev's population is
 *               not minimal: at N = 1000 about 6.6/N of the slots move (0.66% of flows),
 *               whatever the table size up to 262139 (measured), so that row is printed
 *               against no target
 *   balance     the largest share of slots held by one real server, as a multiple of 1/N
 *   order       the share of slots that differ between two population orders of the same
 *               set (why the forwarder sorts canonically, and why IPVS directors must
 *               add their real servers in the same order)
 * Exit status 1 when a target is missed.
 */
import { foldAddress } from '../../src/forwarder/address.js';
import { buildMaglevTable, FORWARDER_MH_TABLE_SIZE, KERNEL_MH_TABLE_SIZE, type MaglevMember } from '../../src/forwarder/maglev.js';
import { realServers, rng, type RS } from '../support/maglev-fixtures.js';
import { HashScheduler, MaglevScheduler, type PickContext, type SchedDest } from '../../src/forwarder/schedulers.js';

const BUILD_TARGET_MS = 50;
const SIZES = [10, 100, 1000];
const LOOKUPS = 1_000_000;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const members = (rs: readonly RS[]): MaglevMember[] => rs.map((r) => ({ fold: foldAddress(r.address), port: r.port, weight: r.weight }));

function moved(a: Int32Array, b: Int32Array, map: (k: number) => number): number {
  let n = 0;
  for (let s = 0; s < a.length; s++) if ((a[s] as number) !== map(b[s] as number)) n++;
  return n / a.length;
}

let failed = false;
const rows: string[] = [];
console.log(`Maglev mh: ${FORWARDER_MH_TABLE_SIZE} slots in the forwarder (the kernel: ${KERNEL_MH_TABLE_SIZE}); node ${process.version}`);
console.log('');
console.log('    N | build (65521) | build (4093) | mh ns/op | sh ns/op | fails (1/N)      | removed: mean / max    | balance | order');
for (const n of SIZES) {
  const rs = realServers(n);
  // build: a fresh scheduler each time, as after a health change
  const times: number[] = [];
  const small: number[] = [];
  for (let k = 0; k < 15; k++) {
    const s = new MaglevScheduler(['mh-port']);
    const t0 = performance.now();
    s.changed(rs);
    times.push(performance.now() - t0);
    const t1 = performance.now();
    buildMaglevTable(members(rs), KERNEL_MH_TABLE_SIZE);
    small.push(performance.now() - t1);
  }
  const build = median(times);
  // lookups
  const next = rng(n);
  const ctxs: PickContext[] = Array.from({ length: 4096 }, () => ({ source: next(), destination: 0, sourcePort: next() & 0xffff }));
  const mh = new MaglevScheduler(['mh-port']);
  mh.changed(rs);
  const sh = new HashScheduler('sh', 'sh');
  sh.changed(rs);
  const nsPerOp = (s: { pick(d: readonly SchedDest[], c: PickContext): number }): number => {
    let sink = 0;
    for (let i = 0; i < 50_000; i++) sink += s.pick(rs, ctxs[i & 4095] as PickContext);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < LOOKUPS; i++) sink += s.pick(rs, ctxs[i & 4095] as PickContext);
    const ns = Number(process.hrtime.bigint() - t0) / LOOKUPS;
    if (sink === -1) console.log(''); // keep the loop
    return ns;
  };
  const mhNs = nsPerOp(mh);
  const shNs = nsPerOp(sh);
  // disruption: one real server leaves (the canonical order is the given, ascending one)
  const full = buildMaglevTable(members(rs));
  const fr: number[] = [];
  for (let k = 0; k < 10; k++) {
    const gone = Math.floor((k * n) / 10);
    const after = buildMaglevTable(members(rs.filter((_, i) => i !== gone)));
    fr.push(moved(full, after, (x) => (x >= gone ? x + 1 : x)));
  }
  const meanD = fr.reduce((a, b) => a + b, 0) / fr.length;
  const maxD = Math.max(...fr);
  // fails: weight 0 with its configured weight kept (quiescent, drain), flows walk on
  const fnext = rng(7 * n);
  const flowCtx: PickContext[] = Array.from({ length: 100_000 }, () => ({ source: fnext(), destination: 0, sourcePort: fnext() & 0xffff }));
  const fbBefore = new MaglevScheduler(['mh-port', 'mh-fallback']);
  fbBefore.changed(rs);
  const failedRs = rs.map((r, i) => (i === Math.floor(n / 3) ? { ...r, weight: 0, configuredWeight: 1 } : r));
  const fbAfter = new MaglevScheduler(['mh-port', 'mh-fallback']);
  fbAfter.changed(failedRs);
  let changedFlows = 0;
  for (const c of flowCtx) if (fbBefore.pick(rs, c) !== fbAfter.pick(failedRs, c)) changedFlows++;
  const fails = changedFlows / flowCtx.length;
  const okF = fails <= 2 / n;
  // balance
  const counts = new Array<number>(n).fill(0);
  for (const k of full) counts[k] = (counts[k] as number) + 1;
  const balance = Math.max(...counts) / (FORWARDER_MH_TABLE_SIZE / n);
  // order dependence: the same set, reversed
  const reversed = buildMaglevTable(members([...rs].reverse()));
  const order = moved(full, reversed, (x) => n - 1 - x);
  const okD = n > 100 || maxD <= 2 / n;
  const okB = n < 1000 || build <= BUILD_TARGET_MS;
  if (!okD || !okB || !okF) failed = true;
  rows.push(
    `${String(n).padStart(5)} | ${`${build.toFixed(2)} ms${okB ? '' : ' MISS'}`.padStart(13)} | ${`${median(small).toFixed(2)} ms`.padStart(12)} | ${mhNs.toFixed(0).padStart(8)} | ${shNs.toFixed(0).padStart(8)} | ${`${(fails * 100).toFixed(2)}% (${(100 / n).toFixed(2)}%)${okF ? '' : ' MISS'}`.padEnd(16)} | ${`${(meanD * 100).toFixed(2)}% / ${(maxD * 100).toFixed(2)}% = ${(maxD * n).toFixed(1)}/N${okD ? '' : ' MISS'}`.padEnd(22)} | ${balance.toFixed(3).padStart(7)} | ${(order * 100).toFixed(2)}%`,
  );
  console.log(rows.at(-1));
}
console.log('');
console.log(`targets: fails ≤ 2/N; removed ≤ 2/N up to N = 100; build ≤ ${BUILD_TARGET_MS} ms at N = 1000 → ${failed ? 'MISSED' : 'met'}`);
process.exit(failed ? 1 : 0);
