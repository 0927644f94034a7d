import { describe, expect, it } from 'vitest';
import { diff } from '../../src/reconcile/diff.js';
import type { Table, TableService } from '../../src/reconcile/table.js';

const s = (over: Partial<TableService> = {}): TableService => ({
  key: 'tcp 10.0.0.1:80',
  protocol: 'tcp',
  vip: '10.0.0.1',
  port: 80,
  scheduler: 'wlc',
  realServers: [
    { address: '10.0.1.2', port: 80, forward: 'dr', weight: 1 },
    { address: '10.0.1.3', port: 80, forward: 'dr', weight: 1 },
  ],
  ...over,
});
const foreign: TableService = { key: 'tcp 10.0.0.1:81', protocol: 'tcp', vip: '10.0.0.1', port: 81, scheduler: 'rr', realServers: [] };
const declared = new Set(['tcp 10.0.0.1:80']);

describe('diff', () => {
  it('nothing changed → no operations', () => {
    expect(diff([s(), foreign], [s()], declared)).toEqual([]);
  });

  it('an empty kernel gets the service and its real servers, service first', () => {
    expect(diff([], [s()], declared).map((o) => o.kind)).toEqual(['add_service', 'add_real_server', 'add_real_server']);
  });

  it('a foreign service is never touched, whatever is declared', () => {
    const ops = diff([foreign, s()], [s({ realServers: [] })], declared);
    expect(ops).toEqual([
      { kind: 'delete_real_server', serviceKey: 'tcp 10.0.0.1:80', address: '10.0.1.2', port: 80 },
      { kind: 'delete_real_server', serviceKey: 'tcp 10.0.0.1:80', address: '10.0.1.3', port: 80 },
    ]);
  });

  it('a declared service no longer desired is deleted (a reload removed it)', () => {
    expect(diff([s()], [], declared)).toEqual([{ kind: 'delete_service', key: 'tcp 10.0.0.1:80' }]);
  });

  it.each([
    ['weight', { weight: 5 }],
    ['forward method', { forward: 'nat' as const }],
  ])('a changed %s is one edit_real_server', (_n, change) => {
    const want = s();
    want.realServers[1] = { ...(want.realServers[1] as TableService['realServers'][number]), ...change };
    expect(diff([s()], [want], declared)).toEqual([{ kind: 'edit_real_server', serviceKey: 'tcp 10.0.0.1:80', realServer: want.realServers[1] }]);
  });

  it.each([
    ['scheduler', { scheduler: 'rr' as const }],
    ['persistence added', { persistence: { timeoutS: 300 } }],
    ['netmask', { persistence: { timeoutS: 300, netmask: '255.255.255.0' } }],
  ])('a changed %s is one edit_service', (_n, change) => {
    const have = s({ persistence: { timeoutS: 300 } });
    const want = s(change);
    const ops = diff(_n === 'persistence added' ? [s()] : [have], [want], declared);
    expect(ops).toEqual([{ kind: 'edit_service', service: want }]);
  });

  it('persistence removed is an edit; a full netmask equals none', () => {
    expect(diff([s({ persistence: { timeoutS: 300 } })], [s()], declared).map((o) => o.kind)).toEqual(['edit_service']);
    expect(diff([s({ persistence: { timeoutS: 300 } })], [s({ persistence: { timeoutS: 300, netmask: '255.255.255.255' } })], declared)).toEqual([]);
  });

  it('deletes come before adds; a real server swap is one delete and one add', () => {
    const want = s({ realServers: [{ address: '10.0.1.2', port: 80, forward: 'dr', weight: 1 }, { address: '10.0.1.4', port: 80, forward: 'dr', weight: 1 }] });
    expect(diff([s()], [want], declared).map((o) => o.kind)).toEqual(['delete_real_server', 'add_real_server']);
  });

  it('a desired service not declared is not added (the caller decides what is vigil\'s)', () => {
    expect(diff([], [s()], new Set())).toEqual([]);
  });

  it('scales: 1,000 services × 10 real servers, one weight changed → one operation', () => {
    const big: Table = [];
    for (let i = 0; i < 1000; i++) {
      big.push({
        key: `tcp 10.${i >> 8}.${i & 255}.1:80`,
        protocol: 'tcp',
        vip: `10.${i >> 8}.${i & 255}.1`,
        port: 80,
        scheduler: 'wlc',
        realServers: Array.from({ length: 10 }, (_, j) => ({ address: `10.200.${i & 255}.${j + 1}`, port: 80, forward: 'dr' as const, weight: 1 })),
      });
    }
    const want = structuredClone(big);
    (want[500]?.realServers[3] as { weight: number }).weight = 0;
    const keys = new Set(big.map((x) => x.key));
    expect(diff(big, big, keys)).toEqual([]);
    expect(diff(big, want, keys)).toHaveLength(1);
  });

  it('finds nothing to do when the kernel lists the same real servers in another order', () => {
    const have = s();
    const want = s({ realServers: [...have.realServers].reverse() });
    expect(diff([have], [want], declared)).toEqual([]);
  });

  it('sees a swapped real server even when the count is the same', () => {
    const want = s({ realServers: [{ address: '10.0.1.2', port: 80, forward: 'dr', weight: 1 }, { address: '10.0.1.4', port: 80, forward: 'dr', weight: 1 }] });
    expect(diff([s()], [want], declared).map((o) => o.kind)).toEqual(['delete_real_server', 'add_real_server']);
  });

  it('deletes the real server a desired list with a repeated entry leaves out', () => {
    const r = { address: '10.0.1.2', port: 80, forward: 'dr' as const, weight: 1 };
    expect(diff([s()], [s({ realServers: [r, { ...r }] })], declared)).toEqual([{ kind: 'delete_real_server', serviceKey: 'tcp 10.0.0.1:80', address: '10.0.1.3', port: 80 }]);
  });
});
