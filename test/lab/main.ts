/**
 * `npm run lab`: a live two-director lab to poke at. Builds the topology, starts the
 * name responders and both vigil daemons, prints how to reach everything, and tears it
 * all down on Ctrl-C (or SIGTERM). Needs root and a build (`npm run lab` builds first).
 *
 * Options (environment): VIGIL_LAB_DIRECTORS=3 for a third director on the LAN only,
 * VIGIL_LAB_REAL_SERVERS=N for N real servers, VIGIL_LAB_PREEMPT=1, VIGIL_LAB_FAST=1 for
 * interval 20 / deadtime 80; VIGIL_LAB_MODE=ecmp for the ECMP lab (test/lab/main-ecmp.ts).
 */
import { Lab } from './lab.js';
import { isRoot } from './netns.js';
import { SERVICE_PORT, startResponders } from './probe.js';
import { API_PORT, CLI, clusterNodes, DEFAULT_TIMERS, FAST_TIMERS, HEARTBEAT_PORT, waitSettled, writeClusterConfig } from './vigil.js';

if (!isRoot()) {
  process.stderr.write('npm run lab: needs root (it creates network namespaces)\n');
  process.exit(1);
}
if (process.env.VIGIL_LAB_MODE === 'ecmp') {
  await import('./main-ecmp.js'); // three active directors behind an ECMP router (test/lab/ecmp.ts)
  await new Promise(() => undefined);
}

const directors = process.env.VIGIL_LAB_DIRECTORS === '3' ? 3 : 2;
const realServers = Number(process.env.VIGIL_LAB_REAL_SERVERS ?? 0) || 0;
const timers = process.env.VIGIL_LAB_FAST === '1' ? FAST_TIMERS : DEFAULT_TIMERS;
const lab = await Lab.create({ directors, realServers });
process.stdout.write(`lab ${lab.id}: building... `);
await startResponders(lab);
const config = writeClusterConfig(lab, { timers, preempt: process.env.VIGIL_LAB_PREEMPT === '1' });
const nodes = clusterNodes(lab, config);
await Promise.all(nodes.map((n) => n.start()));
const active = await waitSettled(nodes, 20_000).catch((err: unknown) => {
  process.stdout.write(`\n(warning: ${(err as Error).message})\n`);
  return undefined;
});
process.stdout.write('ready\n\n');

const d = lab.directors;
const line = (s = ''): boolean => process.stdout.write(`${s}\n`);
line(`  LAN 10.${lab.octet}.0.0/24 on bridge ${lab.bridge} in namespace ${lab.switchNs}`);
line(`  client  ${lab.client.ns.padEnd(12)} ${lab.client.lanIf} ${lab.client.lanAddr}`);
for (const x of d) line(`  ${x.name.padEnd(7)} ${x.ns.padEnd(12)} ${x.lanIf} ${x.lanAddr}${x.hbIf ? `   heartbeat ${x.hbIf} ${x.hbAddr}/30` : ''}`);
for (const r of lab.realServers) line(`  ${r.name.padEnd(7)} ${r.ns.padEnd(12)} ${r.lanIf} ${r.lanAddr}`);
line(`  VIP     ${lab.vip}/24, active now: ${active?.name ?? 'unknown'}`);
line(`  config  ${config} (VIGIL_NODE picks the node), logs ${lab.dir}/d*.log`);
line();
line('Try:');
line(`  ip netns exec ${lab.client.ns} socat - TCP:${lab.vip}:${SERVICE_PORT}            # which director answers on the VIP`);
line(`  ip netns exec ${d[0]?.ns} node ${CLI} status --api 127.0.0.1:${API_PORT}`);
line(`  ip netns exec ${d[0]?.ns} curl -s 127.0.0.1:${API_PORT}/status`);
line(`  ip netns exec ${d[0]?.ns} curl -s 127.0.0.1:${API_PORT}/metrics | grep ^vigil_cluster`);
line(`  ip netns exec ${d[0]?.ns} env VIGIL_NODE=${d[0]?.name} node ${CLI} standby --config ${config}`);
line(`  ip -n ${d[0]?.ns} link set ${d[0]?.hbIf} down                 # cut the dedicated heartbeat link`);
line(`  ip netns exec ${d[1]?.ns} nft 'add table inet t; add chain inet t in { type filter hook input priority 0; }; add rule inet t in udp dport ${HEARTBEAT_PORT} numgen random mod 100 < 5 drop'   # 5% heartbeat loss`);
line(`  kill -9 ${nodes[0]?.pid ?? '?'}   # crash ${d[0]?.name}'s daemon (pids: ${nodes.map((n) => `${n.name}=${n.pid ?? '?'}`).join(' ')})`);
line();
line('Ctrl-C tears the lab down.');

const shutdown = async (): Promise<void> => {
  line('\nstopping the daemons and deleting the lab...');
  await Promise.all(nodes.map((n) => n.stop()));
  await lab.destroy();
  process.exit(0);
};
// replaces the lab's own handlers (which would kill without a graceful stop)
process.removeAllListeners('SIGINT');
process.removeAllListeners('SIGTERM');
process.once('SIGINT', () => void shutdown());
process.once('SIGTERM', () => void shutdown());
setInterval(() => undefined, 1 << 30);
