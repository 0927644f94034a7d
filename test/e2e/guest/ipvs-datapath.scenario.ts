/**
 * Runs INSIDE the IPVS VM (test/e2e/ipvs-datapath.test.ts compiles and boots it).
 *
 * A NAT data path through the kernel's IPVS, driven by vigil: a client namespace → the
 * director (this root namespace, VIP 10.0.1.1:80) → real servers rs1/rs2 in their own
 * namespaces (socat listeners). The real Reconciler + IpvsDataplane + HealthRunner.
 * Real TCP connections before and after rs1 fails show traffic leaving it.
 * Prints one JSON object per line.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { configSchema } from '../../../src/config/schema.js';
import { HealthRunner } from '../../../src/health/runner.js';
import { createLogger } from '../../../src/log.js';
import { createMetrics } from '../../../src/metrics.js';
import { IpvsDataplane } from '../../../src/reconcile/ipvs.js';
import { Reconciler } from '../../../src/reconcile/reconciler.js';

const sh = (cmd: string): string => execFileSync('sh', ['-c', cmd], { encoding: 'utf8' });
const run = async (file: string, args: string[]): Promise<string> => {
  try {
    return (await promisify(execFile)(file, args, { encoding: 'utf8', timeout: 10_000 })).stdout.trim();
  } catch (err) {
    return `error: ${(err as Error).message.split('\n')[0]}`;
  }
};
const emit = (o: Record<string, unknown>): void => void process.stdout.write(JSON.stringify(o) + '\n');

// ---- namespaces: client 10.0.1.2 → director 10.0.1.1 (VIP) → rs1 10.0.2.2, rs2 10.0.3.2
sh(`ip netns add vclient
ip link add vc type veth peer name vc-d
ip link set vc netns vclient
ip addr add 10.0.1.1/24 dev vc-d && ip link set vc-d up
ip -n vclient addr add 10.0.1.2/24 dev vc && ip -n vclient link set vc up && ip -n vclient link set lo up
ip -n vclient route add default via 10.0.1.1
for i in 1 2; do
  ip netns add vrs$i
  ip link add vr$i type veth peer name vr$i-d
  ip link set vr$i netns vrs$i
  ip addr add 10.0.$((i+1)).1/24 dev vr$i-d && ip link set vr$i-d up
  ip -n vrs$i addr add 10.0.$((i+1)).2/24 dev vr$i && ip -n vrs$i link set vr$i up && ip -n vrs$i link set lo up
  ip -n vrs$i route add default via 10.0.$((i+1)).1
done
sysctl -qw net.ipv4.ip_forward=1
sysctl -qw net.ipv4.vs.expire_nodest_conn=1
ipvsadm -C`);

const servers = new Map<string, ChildProcess>();
function startRealServer(i: number): void {
  // its own process group: socat and its forked children are killed together
  const p = spawn('ip', ['netns', 'exec', `vrs${i}`, 'socat', 'TCP-LISTEN:8080,fork,reuseaddr', `SYSTEM:echo hello from rs${i}`], { stdio: 'ignore', detached: true });
  servers.set(`rs${i}`, p);
}
startRealServer(1);
startRealServer(2);

const config = configSchema.parse({
  node: 'd1',
  cluster: { nodes: [{ name: 'd1', links: [{ name: 'l', address: '127.0.0.1' }] }] },
  vips: [{ address: '10.0.1.1', prefix: 24, interface: 'vc-d', managed: false }],
  services: [
    {
      name: 'web',
      vip: '10.0.1.1',
      port: 80,
      scheduler: 'rr',
      forward: 'nat',
      // lenient enough for emulated TCG under load: no flapping
      check: { type: 'tcp', interval_ms: 1000, timeout_ms: 800, rise: 1, fall: 2 },
      real_servers: [
        { address: '10.0.2.2', port: 8080 },
        { address: '10.0.3.2', port: 8080 },
      ],
    },
  ],
  dataplane: { mode: 'ipvs', reconcile_interval_ms: 2000 },
});
const logger = createLogger('warn');
const metrics = createMetrics({ defaults: false });
const ipvs = new IpvsDataplane({ logger, metrics });
const health = new HealthRunner({ config, metrics, logger });
const rec = new Reconciler({ dataplane: ipvs, config: () => config, health: (s, a, p) => health.isHealthy(s, a, p), metrics, logger });
health.on('realServerUp', () => void rec.request('health'));
health.on('realServerDown', (e) => {
  emit({ event: 'realServerDown', address: e.address, atMs: Math.round(performance.now()) });
  void rec.request('health');
});

function killGroup(p: ChildProcess | undefined): void {
  try {
    if (p?.pid) process.kill(-p.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

async function connect(n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(await run('ip', ['netns', 'exec', 'vclient', 'socat', '-T2', '-', 'TCP:10.0.1.1:80,connect-timeout=2']));
  return out;
}

async function waitFor(cond: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < timeoutMs) {
    if (await cond()) return Math.round(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 100));
  }
  return -1;
}

async function main(): Promise<void> {
  await ipvs.start();
  await health.start();
  await rec.start();
  const bothIn = await waitFor(async () => (await run('ipvsadm', ['-S', '-n'])).split('\n').filter((l) => l.startsWith('-a ')).length === 2, 30_000);
  emit({ step: 'table', ok: bothIn >= 0, ms: bothIn, table: await run('ipvsadm', ['-S', '-n']) });

  const before = await connect(6);
  await new Promise((r) => setTimeout(r, 2500)); // the kernel folds per-CPU stats into what ipvsadm shows every 2 s
  const counters = await ipvs.counters();
  const c = counters.get('tcp 10.0.1.1:80');
  emit({
    step: 'before',
    answers: before,
    rs1Connections: c?.get('10.0.2.2:8080')?.connections ?? -1,
    rs2Connections: c?.get('10.0.3.2:8080')?.connections ?? -1,
    stats: await run('ipvsadm', ['-L', '-n', '--stats', '--exact']),
  });

  // rs1 fails: its listener stops (connections to it are refused)
  const tFail = performance.now();
  killGroup(servers.get('rs1'));
  const removed = await waitFor(async () => !(await run('ipvsadm', ['-S', '-n'])).includes('10.0.2.2:8080'), 30_000);
  emit({ step: 'rs1-removed', ok: removed >= 0, ms: Math.round(performance.now() - tFail), healthy: health.isHealthy('web', '10.0.2.2', 8080) });

  const after = await connect(6);
  emit({ step: 'after', answers: after });

  // rs1 comes back: traffic returns to it
  startRealServer(1);
  const back = await waitFor(async () => (await run('ipvsadm', ['-S', '-n'])).includes('10.0.2.2:8080'), 30_000);
  const again = await connect(4);
  emit({ step: 'rs1-back', ok: back >= 0, ms: back, answers: again });

  await rec.close();
  await health.close();
  await ipvs.close();
  for (const p of servers.values()) killGroup(p);
  emit({ done: true });
}

main().catch((err: unknown) => {
  emit({ step: 'crash', ok: false, error: String((err as Error)?.stack ?? err) });
  process.exit(1);
});
