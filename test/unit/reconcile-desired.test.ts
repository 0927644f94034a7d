import { describe, expect, it } from 'vitest';
import { serviceSchema, type ServiceConfig } from '../../src/config/schema.js';
import { desired, drainKey, plan, Planner, tableKey, type HealthView } from '../../src/reconcile/desired.js';

const svc = (s: Record<string, unknown>): ServiceConfig => serviceSchema.parse(s);
const web = (extra: Record<string, unknown> = {}) =>
  svc({
    name: 'web',
    vip: '10.0.0.1',
    port: 80,
    scheduler: 'wrr',
    real_servers: [
      { address: '10.0.1.2', weight: 3 },
      { address: '10.0.1.3', weight: 1 },
    ],
    ...extra,
  });
const allUp: HealthView = () => true;
const down =
  (...addrs: string[]): HealthView =>
  (_s, a) =>
    !addrs.includes(a);
const none = new Set<string>();

describe('desired', () => {
  it('turns a healthy service into its table entry with configured weights', () => {
    expect(desired({ services: [web()] }, allUp, none)).toEqual([
      {
        key: 'tcp 10.0.0.1:80',
        protocol: 'tcp',
        vip: '10.0.0.1',
        port: 80,
        scheduler: 'wrr',
        realServers: [
          { address: '10.0.1.2', port: 80, forward: 'dr', weight: 3 },
          { address: '10.0.1.3', port: 80, forward: 'dr', weight: 1 },
        ],
      },
    ]);
  });

  it.each([
    ['removed when the service is not quiescent', false, [{ address: '10.0.1.3', port: 80, forward: 'dr', weight: 1 }]],
    [
      'kept with weight 0 when the service is quiescent',
      true,
      [
        { address: '10.0.1.2', port: 80, forward: 'dr', weight: 0 },
        { address: '10.0.1.3', port: 80, forward: 'dr', weight: 1 },
      ],
    ],
  ])('an unhealthy real server is %s', (_name, quiescent, expected) => {
    const [t] = desired({ services: [web({ quiescent })] }, down('10.0.1.2'), none);
    expect(t?.realServers).toEqual(expected);
  });

  it('a drained real server gets weight 0 and keeps its place', () => {
    const drains = new Set([drainKey('web', '10.0.1.2', 80)]);
    const p = plan({ services: [web()] }, allUp, drains);
    expect(p.table[0]?.realServers.map((r) => r.weight)).toEqual([0, 1]);
    expect(p.services[0]?.realServers[0]).toMatchObject({ drained: true, healthy: true, configuredWeight: 3, weight: 0 });
  });

  it('a drained real server that is also unhealthy is removed (not quiescent)', () => {
    const drains = new Set([drainKey('web', '10.0.1.2', 80)]);
    const [t] = desired({ services: [web()] }, down('10.0.1.2'), drains);
    expect(t?.realServers.map((r) => r.address)).toEqual(['10.0.1.3']);
  });

  it('with none healthy the sorry server takes the traffic alone', () => {
    const p = plan({ services: [web({ quiescent: true, sorry_server: { address: '10.0.9.9' } })] }, () => false, none);
    expect(p.table[0]?.realServers).toEqual([{ address: '10.0.9.9', port: 80, forward: 'dr', weight: 1 }]);
    expect(p.services[0]?.sorryServerActive).toBe(true);
    expect(p.services[0]?.realServers.every((r) => r.weight === null && !r.healthy)).toBe(true);
  });

  it('a port-mapped sorry server is forwarded with NAT (ipvsadm rewrites -g ports)', () => {
    const [t] = desired({ services: [web({ sorry_server: { address: '10.0.9.9', port: 8080 } })] }, () => false, none);
    expect(t?.realServers).toEqual([{ address: '10.0.9.9', port: 8080, forward: 'nat', weight: 1 }]);
  });

  it('a sorry server on the loopback on the service port is delivered locally (-g) even in a NAT service (NAT to loopback is dropped)', () => {
    const [t] = desired({ services: [web({ forward: 'nat', sorry_server: { address: '127.0.0.1' } })] }, () => false, none);
    expect(t?.realServers).toEqual([{ address: '127.0.0.1', port: 80, forward: 'dr', weight: 1 }]);
    const [p] = desired({ services: [web({ forward: 'nat', sorry_server: { address: '127.0.0.1', port: 8080 } })] }, () => false, none);
    expect(p?.realServers).toEqual([{ address: '127.0.0.1', port: 8080, forward: 'nat', weight: 1 }]);
    const [o] = desired({ services: [web({ forward: 'nat', sorry_server: { address: '10.0.9.9' } })] }, () => false, none);
    expect(o?.realServers).toEqual([{ address: '10.0.9.9', port: 80, forward: 'nat', weight: 1 }]);
  });

  it('one healthy real server keeps the sorry server out', () => {
    const p = plan({ services: [web({ sorry_server: { address: '10.0.9.9' } })] }, down('10.0.1.2'), none);
    expect(p.services[0]?.sorryServerActive).toBe(false);
    expect(p.table[0]?.realServers.map((r) => r.address)).toEqual(['10.0.1.3']);
  });

  it('without a sorry server and none healthy the service stays, empty', () => {
    expect(desired({ services: [web()] }, () => false, none)[0]?.realServers).toEqual([]);
  });

  it('carries persistence and netmask; a full netmask is what IPVS omits', () => {
    const [a, b] = desired(
      {
        services: [
          web({ persistence: { timeout_s: 600, netmask: '255.255.255.0' } }),
          svc({ name: 'b', vip: '10.0.0.1', port: 81, persistence: { netmask: '255.255.255.255' } }),
        ],
      },
      allUp,
      none,
    );
    expect(a?.persistence).toEqual({ timeoutS: 600, netmask: '255.255.255.0' });
    expect(b?.persistence).toEqual({ timeoutS: 300 });
  });

  it.each([
    [{ name: 'u', protocol: 'udp', vip: '10.0.0.1', port: 53 }, 'udp 10.0.0.1:53'],
    [{ name: 'v6', vip: '2001:DB8:0::1', port: 443 }, 'tcp [2001:db8::1]:443'],
    [{ name: 'f', fwmark: 7, real_servers: [{ address: '10.0.1.2' }] }, 'fwmark 7'],
    [{ name: 'f6', fwmark: 7, protocol: 'udp', real_servers: [{ address: '2001:db8::10' }] }, 'fwmark 7 ipv6'],
  ])('keys %o as %s', (s, key) => {
    expect(tableKey(svc(s))).toBe(key);
  });

  it('fwmark services keep real server ports (port 0 by default) and NAT maps ports', () => {
    const t = desired(
      {
        services: [
          svc({ name: 'f', fwmark: 9, scheduler: 'sh', real_servers: [{ address: '10.0.1.2' }, { address: '10.0.1.3', port: 80 }] }),
          svc({ name: 'n', vip: '10.0.0.1', port: 80, forward: 'nat', real_servers: [{ address: '10.0.1.2', port: 8080, weight: 2 }] }),
        ],
      },
      allUp,
      none,
    );
    expect(t[0]).toMatchObject({ key: 'fwmark 9', fwmark: 9, realServers: [{ port: 0 }, { port: 80 }] });
    expect(t[0]?.vip).toBeUndefined();
    expect(t[1]?.realServers).toEqual([{ address: '10.0.1.2', port: 8080, forward: 'nat', weight: 2 }]);
  });

  it('asks health with the service name, address and port', () => {
    const asked: string[] = [];
    desired({ services: [web({ forward: 'nat', real_servers: [{ address: '10.0.1.2', port: 8080 }] })] }, (s, a, p) => (asked.push(`${s} ${a} ${p}`), true), none);
    expect(asked).toEqual(['web 10.0.1.2 8080']);
  });

  it('canonicalises IPv6 addresses the way ipvsadm prints them', () => {
    const [t] = desired({ services: [svc({ name: 'v6', vip: '2001:db8::1', port: 80, real_servers: [{ address: '2001:DB8:0:0::0010' }] })] }, allUp, none);
    expect(t?.realServers[0]?.address).toBe('2001:db8::10');
  });

  it('lists every declared key once', () => {
    const p = plan({ services: [web(), svc({ name: 'x', fwmark: 3 })] }, allUp, none);
    expect([...p.declared]).toEqual(['tcp 10.0.0.1:80', 'fwmark 3']);
  });
});

describe('Planner: plan() again and again, unchanged services reused', () => {
  const dns = svc({ name: 'dns', protocol: 'udp', vip: '10.0.0.1', port: 53, scheduler: 'rr', quiescent: true, real_servers: [{ address: '10.0.1.2' }, { address: '10.0.1.3' }] });
  const w = web({ sorry_server: { address: '10.0.9.9', port: 8080 } });
  const config = { services: [w, dns] };

  it('gives plan()’s result on every run, whatever changed in between', () => {
    const p = new Planner();
    const steps: [HealthView, Set<string>][] = [
      [allUp, none],
      [down('10.0.1.2'), none],
      [down('10.0.1.2'), new Set([drainKey('web', '10.0.1.3', 80)])],
      [down('10.0.1.2', '10.0.1.3'), none],
      [down('10.0.1.3'), none],
      [allUp, none],
    ];
    for (const [h, d] of steps) expect(p.plan(config, h, d)).toEqual(plan(config, h, d));
  });

  it('shares the objects of services that did not change, and only those', () => {
    const p = new Planner();
    const a = p.plan(config, allUp, none);
    const b = p.plan(config, (s, addr) => !(s === 'dns' && addr === '10.0.1.3'), none);
    expect(b.table[0]).toBe(a.table[0]);
    expect(b.services[0]).toBe(a.services[0]);
    expect(b.table[1]).not.toBe(a.table[1]);
    expect(b.table[1]?.realServers.find((r) => r.address === '10.0.1.3')?.weight).toBe(0);
    // a drain is a change too
    const c = p.plan(config, allUp, new Set([drainKey('web', '10.0.1.2', 80)]));
    expect(c.table[0]).not.toBe(b.table[0]);
    expect(c.services[0]?.realServers[0]).toMatchObject({ drained: true, weight: 0 });
  });

  it('plans a reloaded service afresh (a new config object), even with the same name', () => {
    const p = new Planner();
    const a = p.plan(config, allUp, none);
    const reloaded = { services: [web({ sorry_server: { address: '10.0.9.9', port: 8080 }, scheduler: 'wlc' }), dns] };
    const b = p.plan(reloaded, allUp, none);
    expect(b.table[0]).not.toBe(a.table[0]);
    expect(b.table[0]?.scheduler).toBe('wlc');
    expect(b.table[1]).toBe(a.table[1]);
  });

  it('hands out frozen objects', () => {
    const t = new Planner().plan(config, allUp, none);
    expect(Object.isFrozen(t.table[0]) && Object.isFrozen(t.table[0]?.realServers) && Object.isFrozen(t.services[0]?.realServers[0])).toBe(true);
  });
});
