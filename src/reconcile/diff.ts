/**
 * diff(actual, desired, declared) → the minimal operations that turn the dataplane's
 * table into the desired one. Pure.
 *
 * - Only services whose key is in `declared` are touched: a foreign service (added by
 *   hand, or by another tool) survives every reconcile, even with the same VIP.
 * - A declared service absent from the desired table is deleted (a reload removed it).
 * - Nothing changed → no operations.
 *
 * Order in the batch: service deletes, service adds/edits, then per service the real
 * server deletes before adds and edits (an add never lands on a service not yet there).
 */
import { normalizeNetmask } from './desired.js';
import { realServerId, type Operation, type Table, type TableRealServer, type TableService } from './table.js';

export function diff(actual: Table, desired: Table, declared: ReadonlySet<string>): Operation[] {
  const have = new Map(actual.map((s) => [s.key, s]));
  const want = new Map(desired.map((s) => [s.key, s]));
  const serviceOps: Operation[] = [];
  const rsDeletes: Operation[] = [];
  const rsAddsEdits: Operation[] = [];

  for (const a of actual) {
    if (declared.has(a.key) && !want.has(a.key)) serviceOps.push({ kind: 'delete_service', key: a.key });
  }
  for (const d of desired) {
    if (!declared.has(d.key)) continue;
    const a = have.get(d.key);
    if (!a) {
      serviceOps.push({ kind: 'add_service', service: d });
      for (const r of d.realServers) rsAddsEdits.push({ kind: 'add_real_server', serviceKey: d.key, realServer: r });
      continue;
    }
    if (!sameServiceSettings(a, d)) serviceOps.push({ kind: 'edit_service', service: d });
    const current = new Map(a.realServers.map((r) => [realServerId(r.address, r.port), r]));
    const wanted = new Set<string>();
    for (const r of d.realServers) {
      const id = realServerId(r.address, r.port);
      wanted.add(id);
      const c = current.get(id);
      if (!c) rsAddsEdits.push({ kind: 'add_real_server', serviceKey: d.key, realServer: r });
      else if (!sameRealServer(c, r)) rsAddsEdits.push({ kind: 'edit_real_server', serviceKey: d.key, realServer: r });
    }
    for (const c of a.realServers) {
      if (!wanted.has(realServerId(c.address, c.port))) {
        rsDeletes.push({ kind: 'delete_real_server', serviceKey: d.key, address: c.address, port: c.port });
      }
    }
  }
  return [...serviceOps, ...rsDeletes, ...rsAddsEdits];
}

export function sameServiceSettings(a: TableService, b: TableService): boolean {
  if (a.scheduler !== b.scheduler) return false;
  const pa = a.persistence;
  const pb = b.persistence;
  if (!pa || !pb) return pa === pb;
  const v6 = (a.vip ?? '').includes(':') || a.key.endsWith(' ipv6');
  return pa.timeoutS === pb.timeoutS && normalizeNetmask(pa.netmask, v6) === normalizeNetmask(pb.netmask, v6);
}

function sameRealServer(a: TableRealServer, b: TableRealServer): boolean {
  return a.weight === b.weight && a.forward === b.forward;
}

/** Counts operations by kind (for metrics and logs). */
export function countByKind(ops: readonly Operation[]): Map<Operation['kind'], number> {
  const m = new Map<Operation['kind'], number>();
  for (const op of ops) m.set(op.kind, (m.get(op.kind) ?? 0) + 1);
  return m;
}
