/**
 * Every labelled counter exists at 0 before its first event (so Prometheus' increase()
 * sees the first failover, failure or overrun after a restart), and the per-real-server
 * operator gauges (weight in force, drained, sorry server) follow the reconciler's plan.
 */
import { Counter } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { createMetrics } from '../../src/metrics.js';
import { exportPlanMetrics, primeConfigMetrics } from '../../src/metrics-prime.js';
import { drainKey, plan } from '../../src/reconcile/desired.js';

const CONFIG = `
node: a
cluster:
  id: pair-a
  key_file: /etc/vigil/authkey
  resources: [{ path: /etc/vigil/resource.d/fw }]
  notify: { path: /etc/vigil/notify }
  nodes:
    - name: a
      links: [{ name: hb, address: 10.0.0.1 }, { name: lan, address: 192.168.1.1 }]
    - name: b
      links: [{ name: hb, address: 10.0.0.2 }, { name: lan, address: 192.168.1.2 }]
vips:
  - { address: 192.168.1.100, prefix: 24, interface: eth0 }
dataplane: forwarder
services:
  - name: web
    vip: 192.168.1.100
    port: 80
    sorry_server: { address: 127.0.0.1 }
    check: { type: tcp, interval_ms: 1000, timeout_ms: 500 }
    real_servers:
      - { address: 192.168.1.10, weight: 3 }
      - { address: 192.168.1.11, weight: 2 }
`;

/** Counters whose label sets are open-ended (documented in src/metrics-prime.ts and the README). */
// open-ended label sets; vigil_ecmp_announce_changes_total exists in ecmp mode only (a pair drops vigil_ecmp_*)
const OPEN_ENDED = new Set(['vigil_cluster_transitions_total', 'vigil_api_requests_total', 'vigil_ecmp_announce_changes_total']);

async function series(c: { get(): Promise<{ values: { labels: Record<string, unknown>; value: number }[] }> }) {
  return (await c.get()).values;
}

describe('primeConfigMetrics', () => {
  const { config } = parseConfig(CONFIG, 'test.yaml', {});

  it('ecmp: every announce/withdraw reason of every VIP exists at 0 (a pair has none)', async () => {
    const ecmpText = `
node: a
cluster:
  mode: ecmp
  key_file: /etc/vigil/authkey
  nodes:
    - { name: a, links: [{ name: hb, address: 10.0.0.1 }] }
    - { name: b, links: [{ name: hb, address: 10.0.0.2 }] }
vips:
  - { address: 192.168.1.100, prefix: 32, interface: lo }
services:
  - { name: web, vip: 192.168.1.100, port: 80, scheduler: mh, scheduler_flags: [mh-port], real_servers: [{ address: 192.168.1.10 }] }
  - { name: dns, protocol: udp, vip: 192.168.1.100, port: 53, scheduler: mh, scheduler_flags: [mh-port], real_servers: [{ address: 192.168.1.10 }] }
`;
    const m = createMetrics({ defaults: false });
    primeConfigMetrics(m, parseConfig(ecmpText, 'ecmp.yaml', {}).config, 'forwarder');
    const labels = (await series(m.ecmpAnnounceChanges)).map((s) => `${s.labels.to}/${s.labels.reason}=${s.value}`).sort();
    expect(labels).toEqual(
      [
        'announced/serving',
        'withdrawn/dataplane not ready',
        'withdrawn/maintenance',
        'withdrawn/removed by reload',
        'withdrawn/service dns has no healthy real server',
        'withdrawn/service web has no healthy real server',
        'withdrawn/standby',
        'withdrawn/stopping',
      ].map((l) => `${l}=0`),
    );
    const pair = createMetrics({ defaults: false });
    primeConfigMetrics(pair, config, 'forwarder');
    expect(await series(pair.ecmpAnnounceChanges)).toEqual([]);
  });

  it('gives every labelled counter a 0 series for the label sets the config makes known', async () => {
    const m = createMetrics({ defaults: false });
    primeConfigMetrics(m, config, 'forwarder');
    exportPlanMetrics(m, plan(config, () => true, new Set()), 'forwarder', true);
    const counters = Object.values(m).filter((v): v is Counter => v instanceof Counter);
    const labelled = counters.filter((c) => ((c as unknown as { labelNames: string[] }).labelNames ?? []).length > 0);
    expect(labelled.length).toBeGreaterThan(20);
    const empty: string[] = [];
    for (const c of labelled) {
      const name = (c as unknown as { name: string }).name;
      if (OPEN_ENDED.has(name)) continue;
      const v = await series(c);
      if (v.length === 0) empty.push(name);
      for (const s of v) expect(s.value, `${name} ${JSON.stringify(s.labels)}`).toBe(0);
    }
    expect(empty).toEqual([]);
  });

  it('names the label sets the alerts need: failover reasons, dataplane, services, real servers', async () => {
    const m = createMetrics({ defaults: false });
    primeConfigMetrics(m, config, 'forwarder');
    exportPlanMetrics(m, plan(config, () => true, new Set()), 'forwarder', true);
    const text = await m.registry.metrics();
    for (const line of [
      'vigil_cluster_failovers_total{reason="peer-dead"} 0',
      'vigil_cluster_failovers_total{reason="takeover"} 0',
      'vigil_reconcile_failures_total{dataplane="forwarder"} 0',
      'vigil_probe_overruns_total{service="web"} 0',
      'vigil_forwarder_connections_total{service="web",real_server="192.168.1.10:80"} 0',
      'vigil_forwarder_connections_total{service="web",real_server="192.168.1.11:80"} 0',
      'vigil_real_server_transitions_total{service="web",real_server="192.168.1.10:80",to="down"} 0',
      'vigil_cluster_heartbeats_late_total{peer="b"} 0',
      'vigil_script_runs_total{script="fw",action="start",result="failed"} 0',
      'vigil_config_reloads_total{result="rejected"} 0',
      'vigil_cluster_info{cluster_id="pair-a",nodes="a,b"} 1',
    ]) {
      expect(text).toContain(line);
    }
  });

  it('is idempotent: priming again (a reload) never moves a counted value', async () => {
    const m = createMetrics({ defaults: false });
    primeConfigMetrics(m, config, 'ipvs');
    m.failovers.inc({ reason: 'peer-dead' });
    primeConfigMetrics(m, config, 'ipvs');
    expect(await m.registry.getSingleMetricAsString('vigil_cluster_failovers_total')).toContain('reason="peer-dead"} 1');
  });
});

describe('exportPlanMetrics', () => {
  const { config } = parseConfig(CONFIG, 'test.yaml', {});

  it('shows a drain, the weight in force and the sorry server', async () => {
    const m = createMetrics({ defaults: false });
    exportPlanMetrics(m, plan(config, () => true, new Set([drainKey('web', '192.168.1.11', 80)])), 'ipvs', true);
    const text = await m.registry.metrics();
    expect(text).toContain('vigil_real_server_drained{service="web",real_server="192.168.1.11:80"} 1');
    expect(text).toContain('vigil_real_server_drained{service="web",real_server="192.168.1.10:80"} 0');
    expect(text).toContain('vigil_real_server_weight{service="web",real_server="192.168.1.10:80"} 3');
    expect(text).toContain('vigil_real_server_weight{service="web",real_server="192.168.1.11:80"} 0');
    expect(text).toContain('vigil_service_sorry_server_active{service="web"} 0');

    exportPlanMetrics(m, plan(config, () => false, new Set()), 'ipvs', true);
    const down = await m.registry.metrics();
    expect(down).toContain('vigil_service_sorry_server_active{service="web"} 1');
    expect(down).not.toContain('vigil_real_server_weight{service="web",real_server="192.168.1.10:80"}');
    expect(down).toContain('vigil_real_server_drained{service="web",real_server="192.168.1.11:80"} 0');
  });

  it('keeps the weights in force when the run failed (the dataplane did not change)', async () => {
    const m = createMetrics({ defaults: false });
    exportPlanMetrics(m, plan(config, () => true, new Set()), 'ipvs', true);
    exportPlanMetrics(m, plan(config, () => true, new Set([drainKey('web', '192.168.1.10', 80)])), 'ipvs', false);
    const text = await m.registry.metrics();
    expect(text).toContain('vigil_real_server_weight{service="web",real_server="192.168.1.10:80"} 3');
    expect(text).toContain('vigil_real_server_drained{service="web",real_server="192.168.1.10:80"} 1');
  });
});
