/**
 * Runs INSIDE the IPVS VM (test/e2e/ipvs-mh.test.ts compiles and boots it).
 *
 * 1. vigil in cluster.mode ecmp (the real Reconciler + IpvsDataplane): the mh services
 *    reach the kernel with their flags (`ipvsadm -S -n` shows `-b mh-fallback,mh-port`),
 *    a reload that changes the flags is applied, and net.ipv4.vs.sloppy_tcp/sloppy_sctp
 *    are 1.
 * 2. A differential check of the Maglev model (src/forwarder/maglev.ts) against the
 *    kernel's mh: SYNs from a client namespace (8 addresses × 30 ports per service) to a
 *    VIP with DR real servers on a dummy link; `ipvsadm -L -n -c` says which real server
 *    the kernel picked for each flow; the model predicts it from the kernel's table size
 *    (4093) and its list order. Also: the same real servers added in another order give
 *    a different table (the population order matters).
 * Prints one JSON object per line.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { configSchema, type Config } from '../../../src/config/schema.js';
import { foldAddress } from '../../../src/forwarder/address.js';
import { buildMaglevTable, KERNEL_MH_TABLE_SIZE, maglevLookup } from '../../../src/forwarder/maglev.js';
import { createLogger } from '../../../src/log.js';
import { createMetrics } from '../../../src/metrics.js';
import { IpvsDataplane } from '../../../src/reconcile/ipvs.js';
import { Reconciler } from '../../../src/reconcile/reconciler.js';

const sh = (cmd: string): string => execFileSync('sh', ['-c', cmd], { encoding: 'utf8' });
const emit = (o: Record<string, unknown>): void => void process.stdout.write(JSON.stringify(o) + '\n');
/** The -S lines of one service (ipvsadm -S takes no service address). */
const saveOf = (key: string): string => sh('ipvsadm -S -n').split('\n').filter((l) => l.includes(`${key} `)).join('\n') + '\n';
const sysctl = (k: string): string => readFileSync(`/proc/sys/net/ipv4/vs/${k}`, 'utf8').trim();

async function main(): Promise<void> {
  // ---------------------------------------------------------------- 1. vigil, ecmp mode
  sh('ipvsadm -C');
  emit({ step: 'sysctl-before', sloppyTcp: sysctl('sloppy_tcp'), sloppySctp: sysctl('sloppy_sctp') });
  const base = {
    node: 'd1',
    cluster: { mode: 'ecmp', nodes: [{ name: 'd1', links: [{ name: 'l', address: '127.0.0.1' }] }] },
    vips: [{ address: '10.77.0.1', interface: 'lo', managed: false }],
    dataplane: { mode: 'ipvs', reconcile_interval_ms: 60_000 },
    logging: { level: 'warn' },
  };
  const svc = (flags: string[]) => ({ name: 'web', vip: '10.77.0.1', port: 90, scheduler: 'mh', scheduler_flags: flags, forward: 'dr', real_servers: [{ address: '10.78.0.1' }, { address: '10.78.0.2', weight: 2 }] });
  const udp = { name: 'dns', protocol: 'udp', vip: '10.77.0.1', port: 53, scheduler: 'mh', scheduler_flags: ['mh-port'], forward: 'dr', real_servers: [{ address: '10.78.0.3' }] };
  sh('ip link add v16ars type dummy && ip link set v16ars up && ip addr add 10.78.0.254/24 dev v16ars');
  let config: Config = configSchema.parse({ ...base, services: [svc(['mh-port', 'mh-fallback']), udp] });
  const logger = createLogger('warn');
  const metrics = createMetrics({ defaults: false });
  const ipvs = new IpvsDataplane({ logger, metrics, sloppy: config.cluster.mode === 'ecmp' });
  const rec = new Reconciler({ dataplane: ipvs, config: () => config, health: () => true, metrics, logger });
  await ipvs.start();
  await rec.start();
  emit({ step: 'ecmp-start', ok: rec.last?.ok ?? false, save: sh('ipvsadm -S -n'), sloppyTcp: sysctl('sloppy_tcp'), sloppySctp: sysctl('sloppy_sctp'), digest: rec.digest() });
  config = configSchema.parse({ ...base, services: [svc(['mh-port']), udp] });
  const r1 = await rec.request('config');
  emit({ step: 'flags-edit', ok: r1.ok, operations: r1.operations, save: saveOf('10.77.0.1:90'), digest: rec.digest() });
  config = configSchema.parse({ ...base, cluster: { ...base.cluster, mode: 'pair' }, services: [svc([]), udp] });
  const r2 = await rec.request('config');
  emit({ step: 'flags-cleared', ok: r2.ok, operations: r2.operations, save: saveOf('10.77.0.1:90') });
  await rec.close();
  await ipvs.close();
  sh('ipvsadm -C');

  // ---------------------------------------------------------------- 2. kernel mh vs the model
  sh(`ip netns add v16acl
ip link add v16ac type veth peer name v16ac-d
ip link set v16ac netns v16acl
ip addr add 10.76.0.254/24 dev v16ac-d && ip link set v16ac-d up
ip -n v16acl link set v16ac up && ip -n v16acl link set lo up
for i in 1 2 3 4 5 6 7 8; do ip -n v16acl addr add 10.76.0.$i/24 dev v16ac; done
ip -n v16acl route add default via 10.76.0.254
ip addr add 10.77.0.1/32 dev lo
sysctl -qw net.ipv4.ip_forward=1`);
  const rs = [
    { address: '10.78.0.1', weight: 1 },
    { address: '10.78.0.2', weight: 2 },
    { address: '10.78.0.3', weight: 3 },
    { address: '10.78.0.4', weight: 1 },
    { address: '10.78.0.5', weight: 5 },
    { address: '10.78.0.6', weight: 1 },
  ];
  interface Svc {
    port: number;
    flags: string;
    order: typeof rs;
    quiesce?: string;
    /** Made by vigil's reconciler (config order scrambled, the quiesced one down from the start). */
    byVigil?: boolean;
  }
  const services: Svc[] = [
    { port: 80, flags: 'mh-port', order: rs },
    { port: 81, flags: 'mh-port', order: [...rs].reverse() },
    { port: 82, flags: '', order: rs },
    { port: 83, flags: 'mh-port,mh-fallback', order: rs, quiesce: '10.78.0.3' },
    // vigil adds in canonical order (ascending here) and gives the down one its configured
    // weight before 0, so the kernel's table is the one of a director that saw it healthy
    { port: 84, flags: 'mh-port,mh-fallback', order: rs, quiesce: '10.78.0.3', byVigil: true },
  ];
  for (const s of services) {
    if (s.byVigil) continue;
    sh(`ipvsadm -A -t 10.77.0.1:${s.port} -s mh${s.flags ? ` -b ${s.flags}` : ''}`);
    // one ipvsadm per real server: the kernel's list order is the order of these adds
    for (const r of s.order) sh(`ipvsadm -a -t 10.77.0.1:${s.port} -r ${r.address}:${s.port} -g -w ${r.weight}`);
    if (s.quiesce) sh(`ipvsadm -e -t 10.77.0.1:${s.port} -r ${s.quiesce}:${s.port} -g -w 0`);
  }
  const scrambled = [rs[3], rs[0], rs[5], rs[2], rs[4], rs[1]] as typeof rs;
  const vigilConfig = configSchema.parse({
    ...base,
    services: [{ name: 'mh84', vip: '10.77.0.1', port: 84, scheduler: 'mh', scheduler_flags: ['mh-port', 'mh-fallback'], quiescent: true, forward: 'dr', real_servers: scrambled }],
  });
  const ipvs2 = new IpvsDataplane({ logger, metrics, sloppy: true });
  const rec2 = new Reconciler({ dataplane: ipvs2, config: () => vigilConfig, health: (_s, a) => a !== '10.78.0.3', metrics, logger });
  await ipvs2.start();
  await rec2.start();
  emit({ step: 'vigil-84', ok: rec2.last?.ok ?? false, save: saveOf('10.77.0.1:84') });
  await rec2.close();

  // ecmp reads the kernel's list (ipvsadm -L -n --nosort, newest first) and keeps an mh
  // service in canonical add order: a real server that fails (non-quiescent: deleted) and
  // comes back would go to the head; vigil deletes and re-adds the ones after it
  const down = new Set<string>();
  const cfg85 = configSchema.parse({
    ...base,
    services: [{ name: 'mh85', vip: '10.77.0.1', port: 85, scheduler: 'mh', scheduler_flags: ['mh-port', 'mh-fallback'], forward: 'dr', real_servers: scrambled }],
  });
  const ipvs3 = new IpvsDataplane({ logger, metrics, sloppy: true, listOrder: true });
  const rec3 = new Reconciler({ dataplane: ipvs3, config: () => cfg85, health: (_s, a) => !down.has(a), metrics, logger });
  await ipvs3.start();
  await rec3.start();
  // the kernel's list order: `ipvsadm -L -n --nosort` (-S sorts and refuses --nosort)
  const listOrder = (): string[] => {
    const lines = sh('ipvsadm -L -n --nosort').split('\n');
    const at = lines.findIndex((l) => l.startsWith('TCP  10.77.0.1:85 '));
    const out: string[] = [];
    for (const l of lines.slice(at + 1)) {
      const t = l.trim().split(/\s+/);
      if (t[0] !== '->') break;
      out.push(t[1] as string);
    }
    return out;
  };
  const initial = listOrder();
  down.add('10.78.0.2');
  const rDown = await rec3.request('health');
  const whileDown = listOrder();
  down.delete('10.78.0.2');
  const rUp = await rec3.request('health');
  emit({ step: 'reorder', ok: rec3.last?.ok ?? false, initial, whileDown, afterUp: listOrder(), downOps: rDown.operations, upOps: rUp.operations, upOk: rUp.ok, sorted: saveOf('10.77.0.1:85') });
  await rec3.close();
  // SYNs with chosen source addresses and ports (the real servers never answer: DR into a dummy link)
  const clients = Array.from({ length: 8 }, (_, i) => `10.76.0.${i + 1}`);
  const perAddr = 30;
  const flowsOf = (k: number): { address: string; port: number }[] => clients.flatMap((address, a) => Array.from({ length: perAddr }, (_, i) => ({ address, port: 40000 + k * 1000 + a * perAddr + i })));
  const all = services.flatMap((s, k) => flowsOf(k).map((f) => ({ ...f, vport: s.port })));
  const t0 = performance.now();
  sh(
    `ip netns exec v16acl node -e '
const net = require("net");
const flows = ${JSON.stringify(all)};
for (const f of flows) net.connect({ host: "10.77.0.1", port: f.vport, localAddress: f.address, localPort: f.port }).on("error", () => {});
setTimeout(() => process.exit(0), 4000);
'`,
  );
  const listing = sh('ipvsadm -L -n -c');
  // "TCP  00:59  SYN_RECV    10.76.0.1:40001    10.77.0.1:80       10.78.0.3:80"
  const picked = new Map<string, string>();
  for (const line of listing.split('\n')) {
    const tok = line.trim().split(/\s+/);
    if (tok[0] !== 'TCP' || tok.length < 6) continue;
    const vport = (tok[4] as string).split(':')[1];
    picked.set(`${tok[3]} ${vport}`, (tok[5] as string).split(':')[0] as string);
  }
  emit({ step: 'flows-sent', flows: all.length, seen: picked.size, ms: Math.round(performance.now() - t0) });

  /** The model's pick for a flow, with the real servers in `listOrder` (the kernel's list). */
  const model = (s: Svc, listOrder: typeof rs, f: { address: string; port: number }): string => {
    // the kernel builds with last_weight: a quiesced (weight 0) real server keeps its slots
    const table = buildMaglevTable(
      listOrder.map((r) => ({ fold: foldAddress(r.address), port: s.port, weight: r.weight })),
      KERNEL_MH_TABLE_SIZE,
    );
    const usable = (i: number): boolean => (listOrder[i] as { address: string }).address !== s.quiesce;
    const i = maglevLookup(table, foldAddress(f.address), s.flags.includes('mh-port') ? f.port : 0, s.flags.includes('mh-fallback'), usable);
    return i < 0 ? '-' : (listOrder[i] as { address: string }).address;
  };
  for (const [k, s] of services.entries()) {
    const flows = flowsOf(k);
    let newestFirst = 0;
    let oldestFirst = 0;
    let seen = 0;
    for (const f of flows) {
      const got = picked.get(`${f.address}:${f.port} ${s.port}`);
      if (got === undefined) continue;
      seen += 1;
      if (model(s, [...s.order].reverse(), f) === got) newestFirst += 1;
      if (model(s, s.order, f) === got) oldestFirst += 1;
    }
    const byDest: Record<string, number> = {};
    for (const f of flows) {
      const got = picked.get(`${f.address}:${f.port} ${s.port}`);
      if (got !== undefined) byDest[got] = (byDest[got] ?? 0) + 1;
    }
    // without mh-port, every port of one client address lands on one real server
    const perClient = clients.map((c) => new Set(flows.filter((f) => f.address === c).map((f) => picked.get(`${f.address}:${f.port} ${s.port}`))).size);
    emit({ step: `differential-${s.port}`, flags: s.flags, flows: flows.length, seen, matchNewestFirst: newestFirst, matchOldestFirst: oldestFirst, byDest, perClient, quiesced: s.quiesce ?? null });
  }
  // service 81 holds the same real servers as 80, added in the opposite order: what would
  // it pick had they been added in 80's order? (the model, proven above, answers)
  let differ = 0;
  let both = 0;
  const s81 = services[1] as Svc;
  for (const f of flowsOf(1)) {
    const got = picked.get(`${f.address}:${f.port} 81`);
    if (got === undefined) continue;
    both += 1;
    if (got !== model(s81, [...rs].reverse(), f)) differ += 1;
  }
  emit({ step: 'order-dependence', flows: both, differ, fraction: both > 0 ? differ / both : null });
  emit({ done: true });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    emit({ step: 'crash', error: String((err as Error).stack ?? err) });
    process.exit(1);
  },
);
