import { describe, expect, it } from 'vitest';
import { serviceSchema } from '../../src/config/schema.js';
import { plan } from '../../src/reconcile/desired.js';
import { FiguresBook } from '../../src/reconcile/figures.js';
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

  it('fills persistence and quiescent from the config; a fwmark service says fwmark, not tcp', () => {
    const svc = [
      serviceSchema.parse({ name: 'p', vip: '10.0.0.1', port: 443, persistence: { timeout_s: 600, netmask: '255.255.255.0' }, quiescent: true, real_servers: [] }),
      serviceSchema.parse({ name: 'm', fwmark: 7, persistence: {}, real_servers: [] }),
      serviceSchema.parse({ name: 'plain', vip: '10.0.0.1', port: 53, protocol: 'udp', real_servers: [] }),
    ];
    const out = serviceStatuses({ config: { services: svc }, plan: undefined, dataplane: 'ipvs', health: () => undefined, counters: new Map() });
    expect(out.map((x) => [x.name, x.protocol, x.persistence, x.quiescent])).toEqual([
      ['p', 'tcp', { timeoutS: 600, netmask: '255.255.255.0' }, true],
      ['m', 'fwmark', { timeoutS: 300, netmask: null }, false],
      ['plain', 'udp', null, false],
    ]);
  });

  it('per real server: current and max session rate, connect errors, failed checks, time in state, downtime', () => {
    let now = 1000;
    const book = new FiguresBook(() => now, 0);
    const withCps = (cps: number, connectErrors?: number): RealServerCounters => ({ ...counters(1), cps, ...(connectErrors === undefined ? {} : { connectErrors }) });
    let healthy = true;
    const read = (c: Map<string, Map<string, RealServerCounters>>) =>
      serviceStatuses({
        config: { services },
        plan: undefined,
        dataplane: 'forwarder',
        health: (_s, a) => (a === '10.0.1.2' ? { healthy, lastCheck: null } : undefined),
        counters: c,
        figures: (s, a, p, h, cps) => book.read(s, a, p, h, cps),
      })[0]!.realServers[0]!;
    const at = (cps: number, errors?: number) => new Map([['tcp 10.0.0.1:80', new Map([['10.0.1.2:8080', withCps(cps, errors)]])]]);

    expect(read(at(5, 0))).toMatchObject({ stats: { cps: 5, cpsMax: 5, connectErrors: 0 }, state: { failedChecks: 0, inStateS: 1, downtimeS: 0 } });
    now = 3000;
    book.checkFailed('web', '10.0.1.2', 8080);
    book.checkFailed('web', '10.0.1.2', 8080);
    book.changed('web', '10.0.1.2', 8080, false, 3000);
    healthy = false;
    now = 13_000;
    expect(read(at(2, 4))).toMatchObject({ stats: { cps: 2, cpsMax: 5, connectErrors: 4 }, state: { failedChecks: 2, inStateS: 10, downtimeS: 10 } });
    book.changed('web', '10.0.1.2', 8080, true, 15_000);
    healthy = true;
    now = 20_000;
    expect(read(at(9))).toMatchObject({ stats: { cps: 9, cpsMax: 9, connectErrors: null }, state: { failedChecks: 2, inStateS: 5, downtimeS: 12 } });
  });

  it('a real server down since start (no event) counts its downtime from the start', () => {
    let now = 0;
    const book = new FiguresBook(() => now, 0);
    now = 30_000;
    expect(book.read('web', '10.0.1.3', 8080, false, undefined)).toEqual({ failedChecks: 0, inStateS: 30, downtimeS: 30, cpsMax: 0 });
    book.retain([]);
    now = 40_000;
    expect(book.read('web', '10.0.1.3', 8080, true, undefined)).toEqual({ failedChecks: 0, inStateS: 40, downtimeS: 0, cpsMax: 0 });
  });
});
