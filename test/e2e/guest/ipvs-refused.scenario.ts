/**
 * Runs INSIDE the IPVS VM (test/e2e/ipvs-refused.test.ts compiles and boots it).
 *
 * One `ipvsadm -R` batch holding two entries the kernel side refuses among valid ones:
 * an IPv6 service whose persistence netmask is a dotted IPv4 mask (ipvsadm stops the
 * restore at that line; config validation refuses it now, so the config object is
 * edited after validation to reach the kernel as an older vigil let it), and a real
 * server on a multicast address (the kernel answers EINVAL and the restore goes on).
 * The real Reconciler + IpvsDataplane; prints one JSON object per line.
 */
import { execFileSync } from 'node:child_process';
import { createLogger } from '../../../src/log.js';
import { configSchema, type Config } from '../../../src/config/schema.js';
import { createMetrics } from '../../../src/metrics.js';
import { IpvsDataplane } from '../../../src/reconcile/ipvs.js';
import { parseSave } from '../../../src/reconcile/ipvsadm.js';
import { Reconciler } from '../../../src/reconcile/reconciler.js';

const sh = (cmd: string): string => execFileSync('sh', ['-c', cmd], { encoding: 'utf8' });
const emit = (o: Record<string, unknown>): void => void process.stdout.write(JSON.stringify(o) + '\n');

try {
  sh('ip link add vigrs type dummy && ip link set vigrs up && ip addr add 10.20.0.2/24 dev vigrs && ip -6 addr add fd00::20/64 dev vigrs nodad');
  sh('ipvsadm -C');
  const config: Config = configSchema.parse({
    node: 'd1',
    cluster: { nodes: [{ name: 'd1', links: [{ name: 'l', address: '127.0.0.1' }] }] },
    vips: [{ address: '10.10.0.1', interface: 'lo', managed: false }, { address: 'fd00::1', interface: 'lo', managed: false }],
    dataplane: { mode: 'ipvs', reconcile_interval_ms: 60_000 },
    services: [
      { name: 'first', vip: '10.10.0.1', port: 80, real_servers: [{ address: '10.20.0.2' }] },
      { name: 'v6bad', vip: 'fd00::1', port: 80, persistence: { timeout_s: 60, netmask: '64' }, real_servers: [{ address: 'fd00::20' }] },
      { name: 'web', vip: '10.10.0.1', port: 443, persistence: { timeout_s: 60, netmask: '255.255.255.0' }, real_servers: [{ address: '10.20.0.2' }, { address: '10.20.0.3', weight: 2 }] },
      { name: 'dns', protocol: 'udp', vip: '10.10.0.1', port: 53, real_servers: [{ address: '10.20.0.2' }] },
    ],
  });
  // what validation refuses now, put back as an older vigil passed it to the kernel
  const v6bad = config.services[1] as Config['services'][number];
  v6bad.persistence = { timeout_s: 60, netmask: '255.255.255.0' };
  const web = config.services[2] as Config['services'][number];
  web.real_servers.push({ ...(web.real_servers[0] as (typeof web.real_servers)[number]), address: '224.1.1.1' });

  // the log goes to stdout as JSON lines too: the test reads the refusal lines from there
  const logger = createLogger('info');
  const metrics = createMetrics({ defaults: false });
  const ipvs = new IpvsDataplane({ logger, metrics });
  await ipvs.start();
  const rec = new Reconciler({ dataplane: ipvs, config: () => config, health: () => true, metrics, logger });
  await rec.start();
  const save = sh('ipvsadm -S -n');
  const table = parseSave(save);
  emit({
    step: 'batch',
    ok: rec.last?.ok,
    ready: rec.ready,
    error: rec.last?.error,
    refused: rec.last?.refused,
    installed: table.map((s) => [s.key, s.realServers.map((r) => `${r.address}:${r.port}`)]),
    save,
    entryFailing: (await metrics.registry.getSingleMetricAsString('vigil_reconcile_entry_failing')).split('\n').filter((l) => l.startsWith('vigil_')),
    failures: (await metrics.registry.getSingleMetricAsString('vigil_reconcile_failures_total')).split('\n').filter((l) => l.startsWith('vigil_')),
  });
  await rec.close();
  await ipvs.close();
  emit({ done: true });
} catch (err) {
  emit({ step: 'crash', error: String((err as Error).stack ?? err) });
  process.exitCode = 1;
}
