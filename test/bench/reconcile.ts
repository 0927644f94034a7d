/**
 * `npm run bench:reconcile` — the reconciler at 1,000 virtual services × 10 real servers.
 *
 * 1. Natively (this machine): desired + diff, median of 20 runs (target ≤ 100 ms), with
 *    nothing changed (0 operations) and with one real server down (1 operation); plus
 *    parsing an `ipvsadm -S -n` of that size and formatting the `-R` batch.
 * 2. In the IPVS VM, one run: the initial 11,000-line batch and then one-real-server
 *    changes through vigil (Reconciler → IpvsDataplane → ipvsadm -R), next to the same
 *    batches fed to a bare `ipvsadm -R`; the ratio vigil/bare (target ≤ 1.2).
 *
 * Figures from the VM are emulated (qemu TCG, 10-25× slower than the host): compare them
 * only with each other.
 */
import { configSchema } from '../../src/config/schema.js';
import { plan, Planner } from '../../src/reconcile/desired.js';
import { diff } from '../../src/reconcile/diff.js';
import { formatSave, parseSave, SaveParser } from '../../src/reconcile/ipvsadm.js';
import { compileGuest, runInVm, vmUnavailable } from '../e2e/ipvs-vm.js';

const SERVICES = 1000;
const PER = 10;
const RUNS = 20;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const f = (ms: number): string => `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
const pad = (s: string, n: number): string => s.padEnd(n);

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
  services,
});

function native(): string[] {
  const none = new Set<string>();
  const actual = structuredClone(plan(config, () => true, none).table); // what the kernel holds
  const victim = `svc500 ${services[500]?.real_servers[3]?.address}`;
  const cases: [string, (s: string, a: string) => boolean][] = [
    ['desired + diff, nothing changed', () => true],
    ['desired + diff, one real server down', (s, a) => `${s} ${a}` !== victim],
  ];
  const out: string[] = [];
  for (const [name, health] of cases) {
    const times: number[] = [];
    let ops = 0;
    for (let i = 0; i < RUNS + 3; i++) {
      const t0 = performance.now();
      const p = plan(config, health, none);
      ops = diff(actual, p.table, p.declared).length;
      if (i >= 3) times.push(performance.now() - t0); // 3 warm-up runs
    }
    const m = median(times);
    out.push(`  ${pad(name, 44)} ${pad(f(m), 10)} ${ops} operation(s)   ${m <= 100 ? 'PASS' : 'FAIL'} (target ≤ 100 ms)`);
  }
  // as the reconciler runs them: a Planner and a SaveParser kept from run to run, one real
  // server flapping (desired + diff, then the read-back parsed and diffed again)
  {
    const planner = new Planner();
    const parser = new SaveParser();
    const upText = formatSave(actual);
    const downTable = structuredClone(plan(config, cases[1]?.[1] as (s: string, a: string) => boolean, none).table);
    const downText = formatSave(downTable);
    parser.parse(upText);
    const times: number[] = [];
    const heap: number[] = [];
    for (let i = 0; i < RUNS + 3; i++) {
      const isDown = i % 2 === 0;
      const h0 = process.memoryUsage().heapUsed;
      const t0 = performance.now();
      const p = planner.plan(config, isDown ? (cases[1]?.[1] as (s: string, a: string) => boolean) : () => true, none);
      diff(isDown ? actual : downTable, p.table, p.declared);
      const readBack = parser.parse(isDown ? downText : upText);
      diff(readBack, p.table, p.declared);
      const ms = performance.now() - t0;
      const grew = process.memoryUsage().heapUsed - h0;
      if (i >= 3) {
        times.push(ms);
        if (grew > 0) heap.push(grew); // a run with a collection in it shows a drop, not its allocation
      }
    }
    out.push(`  ${pad('reconciler path: desired + diff + parse read-back + diff', 44)} ${pad(f(median(times)), 10)} one real server flapping; heap growth per run ${(median(heap) / 1e6).toFixed(2)} MB`);
  }
  const text = formatSave(actual);
  const pt: number[] = [];
  const ft: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    let t0 = performance.now();
    parseSave(text);
    pt.push(performance.now() - t0);
    t0 = performance.now();
    formatSave(actual);
    ft.push(performance.now() - t0);
  }
  out.push(`  ${pad(`parse ipvsadm -S -n (${text.split('\n').length - 1} lines), from scratch`, 44)} ${f(median(pt))}`);
  out.push(`  ${pad(`format the -R batch (${text.split('\n').length - 1} lines)`, 44)} ${f(median(ft))}`);
  return out;
}

async function vm(): Promise<string[]> {
  const why = vmUnavailable();
  if (why) return [`  skipped: ${why}`];
  const file = compileGuest('test/bench/guest/reconcile-vm.ts');
  const run = await runInVm(`node ${file}`, 900);
  const rec = (c: string) => run.records.filter((r) => r.case === c);
  const crash = rec('crash')[0];
  if (crash || run.code !== 0) return [`  VM run failed (exit ${run.code}): ${String(crash?.error ?? run.output.slice(-2000))}`];
  const inits = rec('initial') as Record<string, number>[];
  const initBare = rec('initial-bare') as Record<string, number>[];
  const read = rec('read')[0] as Record<string, number>;
  const changes = rec('change') as Record<string, number>[];
  const pairs = (rec('pairs')[0]?.pairs ?? []) as { vigil: number; bare: number }[];
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const iV = mean(inits.map((c) => c.vigilApplyMs as number));
  const iB = mean(initBare.map((c) => c.bareMs as number));
  const cV = median(changes.map((c) => c.vigilApplyMs as number));
  const cB = median(changes.map((c) => c.bareMs as number));
  const cFull = median(changes.map((c) => c.vigilReconcileMs as number));
  const pV = median(pairs.map((p) => p.vigil));
  const pB = median(pairs.map((p) => p.bare));
  const ratio = (a: number, b: number): string => `${(a / b).toFixed(2)}×`;
  const verdict = (a: number, b: number): string => (a <= 1.2 * b ? 'PASS' : 'FAIL');
  const row = (name: string, v: number, b: number, whole: string): string =>
    `  ${pad(name, 54)} ${pad(f(v), 12)} ${pad(f(b), 12)} ${pad(ratio(v, b), 7)} ${pad(verdict(v, b), 5)} ${whole}`;
  return [
    `  VM run: ${Math.round(run.wallMs / 1000)} s wall (boot included); every vigil batch verified by its read-back: ${[...inits, ...changes].every((c) => c.ok) ? 'all ok' : 'SOME FAILED'}`,
    `  ${pad('batch', 54)} ${pad('vigil apply', 12)} ${pad('bare -R', 12)} ${pad('ratio', 7)} ${pad('≤1.2', 5)} vigil whole reconcile`,
    row(`initial load, ${inits[0]?.lines} lines (mean of ${inits.length} rounds)`, iV, iB, `${f(mean(inits.map((c) => c.vigilReconcileMs as number)))} (${inits.map((c) => f(c.vigilReconcileMs as number)).join(', ')})`),
    row(`one-real-server change via reconciler (median of ${changes.length})`, cV, cB, f(cFull)),
    row(`one-line batch, interleaved (median of ${pairs.length} pairs)`, pV, pB, ''),
    `  ${pad(`read-back: ipvsadm -S -n + parse (${read.realServers} real servers)`, 54)} ${f(read.ms as number)}`,
    `  one health change → ${changes.every((c) => c.operations === 1) ? 'exactly one -R batch of 1 line' : 'MORE THAN ONE OPERATION'} + its read-back; whole reconcile = desired + diff + apply + read-back`,
    `  initial rounds: vigil ${inits.map((c) => f(c.vigilApplyMs as number)).join(', ')}; bare ${initBare.map((c) => f(c.bareMs as number)).join(', ')}`,
    ...changes.map((c) => `  change ${c.i}: ${c.batch}: vigil apply ${f(c.vigilApplyMs as number)}, bare ${f(c.bareMs as number)}, whole ${f(c.vigilReconcileMs as number)}`),
  ];
}

console.log(`reconcile bench: ${SERVICES} virtual services × ${PER} real servers = ${SERVICES * PER} real servers (node ${process.version})`);
console.log(`native, median of ${RUNS}:`);
for (const l of native()) console.log(l);
console.log('IPVS VM (qemu, Debian 6.1 kernel, one run; emulated: compare only within this block):');
for (const l of await vm()) console.log(l);
