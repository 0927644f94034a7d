import { describe, expect, it } from 'vitest';
import { serviceSchema } from '../../src/config/schema.js';
import { plan } from '../../src/reconcile/desired.js';
import { serviceStatuses } from '../../src/reconcile/status.js';
import type { RealServerCounters } from '../../src/reconcile/table.js';

const services = [
  serviceSchema.parse({
    name: 'web',
    vip: '10.0.0.1',
    port: 80,
    forward: 'nat',
    quiescent: true,
    sorry_server: { address: '10.0.9.9' },
    real_servers: [
      { address: '10.0.1.2', port: 8080, weight: 3 },
      { address: '10.0.1.3', port: 8080 },
    ],
  }),
];
const counters = (active: number): RealServerCounters => ({ active, inactive: 1, connections: 10, bytesIn: 100, bytesOut: 200, packetsIn: 3, packetsOut: 4, cps: 0, bpsIn: 0, bpsOut: 0 });

describe('serviceStatuses', () => {
  it('shows the weight in force, the configured weight, health, drains and counters per real server', () => {
    const p = plan({ services }, (_s, a) => a !== '10.0.1.3', new Set(['web 10.0.1.2:8080']));
    const [s] = serviceStatuses({
      config: { services },
      plan: p,
      dataplane: 'ipvs',
      health: (_s, a) => ({ healthy: a !== '10.0.1.3', lastCheck: { at: '2026-01-01T00:00:00.000Z', ok: a !== '10.0.1.3', reason: 'connected', durationMs: 1 } }),
      counters: new Map([['tcp 10.0.0.1:80', new Map([['10.0.1.2:8080', counters(2)]])]]),
    });
    expect(s).toMatchObject({ name: 'web', protocol: 'tcp', vip: '10.0.0.1', port: 80, fwmark: null, scheduler: 'wlc', forward: 'nat', dataplane: 'ipvs', sorryServerActive: false });
    expect(s?.realServers[0]).toMatchObject({ address: '10.0.1.2', port: 8080, weight: 0, configuredWeight: 3, healthy: true, drained: true, connections: { active: 2, inactive: 1, total: 10 } });
    expect(s?.realServers[0]?.stats).toMatchObject({ bytesIn: 100, bytesOut: 200 });
    expect(s?.realServers[1]).toMatchObject({ address: '10.0.1.3', weight: 0, configuredWeight: 1, healthy: false, drained: false, connections: null, lastCheck: { ok: false } });
  });

  it('flags the sorry server and works before the first reconcile', () => {
    const p = plan({ services }, () => false, new Set());
    expect(serviceStatuses({ config: { services }, plan: p, dataplane: 'forwarder', health: () => undefined, counters: new Map() })[0]?.sorryServerActive).toBe(true);
    const [s] = serviceStatuses({ config: { services }, plan: undefined, dataplane: 'none', health: () => undefined, counters: new Map() });
    expect(s?.realServers.map((r) => [r.weight, r.healthy, r.lastCheck])).toEqual([
      [0, true, null],
      [0, true, null],
    ]);
  });
});
