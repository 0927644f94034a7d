/**
 * `VIGIL_LAB_MODE=ecmp npm run lab`: the ECMP lab (test/lab/ecmp.ts) to poke at: a
 * router running BIRD with ECMP and BFD, three directors each running vigil
 * (cluster.mode ecmp) and its own BIRD, real servers and a client namespace. Prints how
 * to reach everything; Ctrl-C tears it down. VIGIL_LAB_KEEP=1 keeps it when start fails.
 */
import { EcmpLab, ECMP_PORT } from './ecmp.js';
import { CLI, API_PORT } from './vigil.js';

const line = (s = ''): boolean => process.stdout.write(`${s}\n`);
const e = await EcmpLab.create({ prefix: 'vle' });
process.stdout.write(`ecmp lab ${e.lab.id}: starting BIRD and vigil on three directors... `);
try {
  await e.start();
  await e.waitNextHops(['d1', 'd2', 'd3'], 60_000);
  line('ready\n');
} catch (err) {
  line(`\n(warning: ${(err as Error).message})`);
}
const l = e.lab;
line(`  client  ${e.clientNs} ${e.clientAddr} → router ${e.routerClientAddr}`);
line(`  router  ${e.router} ${l.client.lanAddr}: BIRD socket ${e.birdSocket('router')}`);
for (const d of l.directors) line(`  ${d.name}      ${d.ns} ${d.lanAddr}: BIRD ${e.birdSocket(d.name)}, vigil ${e.configFile(d)}`);
for (const r of l.realServers) line(`  ${r.name}      ${r.ns} ${r.lanAddr}`);
line(`  VIP     ${e.vip}:${ECMP_PORT} (tcp and udp), files and logs in ${l.dir}`);
line();
line('Try:');
line(`  ip -n ${e.router} route show ${e.vip}                 # one next hop per announcing director`);
line(`  birdc -s ${e.birdSocket('router')} show protocols`);
line(`  birdc -s ${e.birdSocket('router')} show bfd sessions`);
line(`  ip netns exec ${e.clientNs} socat - TCP:${e.vip}:${ECMP_PORT}    # "r1 10.x.0.2": real server, director`);
line(`  ip netns exec ${l.directors[0]?.ns} node ${CLI} status --api 127.0.0.1:${API_PORT}`);
line(`  ip netns exec ${l.directors[0]?.ns} env VIGIL_NODE=d1 node ${CLI} maintenance on --config ${e.configFile(l.directors[0] as never)}`);
line();
line('Ctrl-C tears the lab down.');
const shutdown = async (): Promise<void> => {
  line('\nstopping...');
  await Promise.all(e.nodes.map((n) => n.stop()));
  await e.destroy();
  process.exit(0);
};
process.removeAllListeners('SIGINT');
process.removeAllListeners('SIGTERM');
process.once('SIGINT', () => void shutdown());
process.once('SIGTERM', () => void shutdown());
setInterval(() => undefined, 1 << 30);
