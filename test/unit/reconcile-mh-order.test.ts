import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { desired } from '../../src/reconcile/desired.js';
import { diff } from '../../src/reconcile/diff.js';
import { formatOperation } from '../../src/reconcile/ipvsadm.js';
import { realServerId, type Operation, type Table, type TableRealServer } from '../../src/reconcile/table.js';
import { rng } from '../support/maglev-fixtures.js';

const KEY = 'tcp 10.0.0.1:80';
const addresses = ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.4', '10.0.1.5'];

function want(up: (a: string) => boolean, quiescent = false): Table {
  const config = configSchema.parse({
    node: 'a',
    cluster: { nodes: [{ name: 'a', links: [{ name: 'l', address: '127.0.0.1' }] }] },
    vips: [{ address: '10.0.0.1', interface: 'lo' }],
    services: [{ name: 'web', vip: '10.0.0.1', port: 80, scheduler: 'mh', scheduler_flags: ['mh-port'], quiescent, real_servers: [...addresses].reverse().map((address, i) => ({ address, weight: 1 + (i % 2) })) }],
  });
  return desired(config, (_s, a) => up(a), new Set());
}

/**
 * The kernel's destination list as `ipvsadm -L -n --nosort` shows it: an add goes to the
 * head (list_add_rcu), a delete unlinks, an edit changes in place.
 */
function applyToKernel(table: Table, ops: readonly Operation[]): Table {
  const t = structuredClone(table);
  for (const op of ops) {
    if (op.kind === 'add_service') t.push({ ...structuredClone(op.service), realServers: [] });
    const s = t.find((x) => x.key === (op.kind === 'add_service' || op.kind === 'edit_service' ? op.service.key : op.kind === 'delete_service' ? op.key : op.serviceKey));
    if (s === undefined) continue;
    const id = (r: { address: string; port: number }): string => realServerId(r.address, r.port);
    if (op.kind === 'add_real_server') s.realServers.unshift({ ...op.realServer, configuredWeight: undefined } as TableRealServer);
    if (op.kind === 'edit_real_server') s.realServers = s.realServers.map((r) => (id(r) === id(op.realServer) ? { ...op.realServer } : r));
    if (op.kind === 'delete_real_server') s.realServers = s.realServers.filter((r) => id(r) !== id(op));
  }
  for (const s of t) for (const r of s.realServers) delete r.configuredWeight;
  return t;
}
const addOrder = (t: Table): string[] => [...(t[0]?.realServers ?? [])].reverse().map((r) => r.address);
const declared = new Set([KEY]);

describe('mh on IPVS: the kernel list kept in canonical add order (mhListOrder)', () => {
  it('a fresh service is added in canonical order; nothing more to do afterwards', () => {
    const w = want(() => true);
    const k = applyToKernel([], diff([], w, declared, { mhListOrder: true }));
    expect(addOrder(k)).toEqual(addresses);
    expect(diff(k, w, declared, { mhListOrder: true })).toEqual([]);
  });

  it('a real server back from a failure (non-quiescent: deleted, so re-added at the head) is put back in place', () => {
    const all = want(() => true);
    let k = applyToKernel([], diff([], all, declared, { mhListOrder: true }));
    k = applyToKernel(k, diff(k, want((a) => a !== '10.0.1.2'), declared, { mhListOrder: true }));
    const back = diff(k, all, declared, { mhListOrder: true });
    expect(back.map(formatOperation)).toEqual([
      '-d -t 10.0.0.1:80 -r 10.0.1.5:80',
      '-d -t 10.0.0.1:80 -r 10.0.1.4:80',
      '-d -t 10.0.0.1:80 -r 10.0.1.3:80',
      '-a -t 10.0.0.1:80 -r 10.0.1.2:80 -g -w 2',
      '-a -t 10.0.0.1:80 -r 10.0.1.3:80 -g -w 1',
      '-a -t 10.0.0.1:80 -r 10.0.1.4:80 -g -w 2',
      '-a -t 10.0.0.1:80 -r 10.0.1.5:80 -g -w 1',
    ]);
    k = applyToKernel(k, back);
    expect(addOrder(k)).toEqual(addresses);
    // without the option (plain -S sorts by address): the usual single add
    const plain = diff(applyToKernel([], diff([], want((a) => a !== '10.0.1.2'), declared)), all, declared);
    expect(plain.map(formatOperation)).toEqual(['-a -t 10.0.0.1:80 -r 10.0.1.2:80 -g -w 2']);
  });

  it('a new real server that sorts last is one add; the order stays canonical', () => {
    let k = applyToKernel([], diff([], want((a) => a !== '10.0.1.5'), declared, { mhListOrder: true }));
    const ops = diff(k, want(() => true), declared, { mhListOrder: true });
    expect(ops.map(formatOperation)).toEqual(['-a -t 10.0.0.1:80 -r 10.0.1.5:80 -g -w 1']);
    k = applyToKernel(k, ops);
    expect(addOrder(k)).toEqual(addresses);
  });

  it.each([false, true])('random histories of failures and recoveries (quiescent %s) always end in canonical order with one repair batch', (quiescent) => {
    const next = rng(quiescent ? 11 : 5);
    let k: Table = [];
    const up = new Set(addresses);
    for (let step = 0; step < 200; step++) {
      const a = addresses[next() % addresses.length] as string;
      if (up.has(a)) up.delete(a);
      else up.add(a);
      const w = want((x) => up.has(x), quiescent);
      k = applyToKernel(k, diff(k, w, declared, { mhListOrder: true }));
      // one batch is enough: the read-back equals the desired table, order included
      expect(diff(k, w, declared, { mhListOrder: true })).toEqual([]);
      const inTable = new Set(w[0]?.realServers.map((r) => r.address));
      expect(addOrder(k)).toEqual(addresses.filter((x) => inTable.has(x)));
    }
  });
});
