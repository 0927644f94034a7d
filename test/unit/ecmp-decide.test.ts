/**
 * decide(): which VIPs a director announces in cluster.mode ecmp, from injected state
 * and the desired table; vipServices(): the services of each VIP counted in that table.
 */
import { describe, expect, it } from 'vitest';
import { decide, sameAnnounced, vipServices, type DirectorState } from '../../src/ecmp/decide.js';
import type { Table } from '../../src/reconcile/table.js';

const ok: DirectorState = { stopping: false, maintenance: false, standby: false, dataplaneReady: true };
const vip = (address: string, ...serving: number[]) => ({ address, services: serving.map((n, i) => ({ name: `s${i}`, serving: n })) });

describe('decide', () => {
  it.each<[string, Partial<DirectorState>, string]>([
    ['stopping', { stopping: true, maintenance: true, standby: true, dataplaneReady: false }, 'stopping'],
    ['maintenance', { maintenance: true, standby: true, dataplaneReady: false }, 'maintenance'],
    ['standby', { standby: true, dataplaneReady: false }, 'standby'],
    ['dataplane not ready', { dataplaneReady: false }, 'dataplane not ready'],
  ])('withdraws every VIP when %s (the most important cause is named)', (_n, over, reason) => {
    expect(decide({ ...ok, ...over }, [vip('10.0.0.1', 2), vip('10.0.0.2', 1)])).toEqual([
      { address: '10.0.0.1', announce: false, reason },
      { address: '10.0.0.2', announce: false, reason },
    ]);
  });

  it('announces a VIP whose every service has a real server taking traffic', () => {
    expect(decide(ok, [vip('10.0.0.1', 2, 1)])).toEqual([{ address: '10.0.0.1', announce: true, reason: 'serving' }]);
  });

  it('withdraws only the VIP with a service left without real servers, naming the service', () => {
    expect(decide(ok, [vip('10.0.0.1', 2, 0), vip('10.0.0.2', 3)])).toEqual([
      { address: '10.0.0.1', announce: false, reason: 'service s1 has no healthy real server' },
      { address: '10.0.0.2', announce: true, reason: 'serving' },
    ]);
  });

  it('announces a VIP with no service once the dataplane is ready (nothing to check)', () => {
    expect(decide(ok, [vip('10.0.0.9')])).toEqual([{ address: '10.0.0.9', announce: true, reason: 'serving' }]);
  });
});

describe('vipServices', () => {
  const table: Table = [
    { key: 'tcp 10.0.0.1:80', protocol: 'tcp', vip: '10.0.0.1', port: 80, scheduler: 'mh', realServers: [
      { address: '10.1.0.1', port: 80, forward: 'dr', weight: 1 },
      { address: '10.1.0.2', port: 80, forward: 'dr', weight: 0 },
    ] },
    { key: 'udp 10.0.0.1:53', protocol: 'udp', vip: '10.0.0.1', port: 53, scheduler: 'mh', realServers: [{ address: '10.1.0.3', port: 53, forward: 'dr', weight: 0 }] },
    { key: 'tcp [2001:db8::1]:443', protocol: 'tcp', vip: '2001:db8::1', port: 443, scheduler: 'mh', realServers: [{ address: '2001:db8:1::1', port: 443, forward: 'dr', weight: 5 }] },
    { key: 'fwmark 7', protocol: 'tcp', fwmark: 7, scheduler: 'mh', realServers: [] },
  ];
  const services = [
    { name: 'web', protocol: 'tcp', vip: '10.0.0.1', port: 80 },
    { name: 'dns', protocol: 'udp', vip: '10.0.0.1', port: 53 },
    { name: 'v6', protocol: 'tcp', vip: '2001:DB8:0::1', port: 443 },
    { name: 'marked', protocol: 'tcp', fwmark: 7 },
    { name: 'new', protocol: 'tcp', vip: '10.0.0.3', port: 80 },
  ];

  it('counts real servers with weight > 0 per service of each VIP (any spelling of an IPv6 VIP)', () => {
    expect(vipServices([{ address: '10.0.0.1' }, { address: '2001:db8::1' }, { address: '10.0.0.3' }], services, table)).toEqual([
      { address: '10.0.0.1', services: [{ name: 'web', serving: 1 }, { name: 'dns', serving: 0 }] },
      { address: '2001:db8::1', services: [{ name: 'v6', serving: 1 }] },
      { address: '10.0.0.3', services: [{ name: 'new', serving: 0 }] },
    ]);
  });

  it('counts 0 before the first reconcile (no table yet)', () => {
    expect(vipServices([{ address: '10.0.0.1' }], services, undefined)[0]?.services.every((s) => s.serving === 0)).toBe(true);
  });
});

describe('sameAnnounced', () => {
  it('compares the announced sets only (reasons and order do not matter)', () => {
    const a = [{ address: 'x', announce: true, reason: 'serving' }, { address: 'y', announce: false, reason: 'standby' }];
    const b = [{ address: 'y', announce: false, reason: 'maintenance' }, { address: 'x', announce: true, reason: 'serving' }];
    expect(sameAnnounced(a, b)).toBe(true);
    expect(sameAnnounced(a, [{ address: 'x', announce: false, reason: 'stopping' }])).toBe(false);
  });
});
