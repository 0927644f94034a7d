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
 *
 * `mhListOrder` (IPVS with `ipvsadm -L -n --nosort`, cluster.mode ecmp): `actual`
 * lists each service's real servers in the kernel's order, newest first, and ip_vs_mh
 * builds its table in that order. For an mh service the kernel's add order (that list
 * reversed) must then equal the desired, canonical order: where it does not (a real
 * server added later went to the head), the real servers from the first one out of
 * place on are deleted and added again in canonical order, in the same batch. IPVS
 * keeps a deleted real server's connections and gives them back when it is re-added.
 */
import { normalizeNetmask } from './desired.js';
import { realServerId, type Operation, type Table, type TableRealServer, type TableService } from './table.js';

export interface DiffOptions {
  /** `actual` holds the kernel's list order (newest first): keep mh services in canonical add order. */
  mhListOrder?: boolean;
}

export function diff(actual: Table, desired: Table, declared: ReadonlySet<string>, opts: DiffOptions = {}): Operation[] {
  const have = byKey(actual);
  const want = byKey(desired);
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
      for (const r of d.realServers) addRealServer(rsAddsEdits, d.key, r);
      continue;
    }
    if (!sameServiceSettings(a, d)) serviceOps.push({ kind: 'edit_service', service: d });
    if (opts.mhListOrder === true && d.scheduler === 'mh') {
      const from = outOfOrder(a.realServers, d.realServers);
      if (from >= 0) {
        reorder(a, d, from, rsDeletes, rsAddsEdits);
        continue;
      }
    }
    if (sameRealServers(a.realServers, d.realServers)) continue;
    const current = new Map(a.realServers.map((r) => [realServerId(r.address, r.port), r]));
    const wanted = new Set<string>();
    for (const r of d.realServers) {
      const id = realServerId(r.address, r.port);
      wanted.add(id);
      const c = current.get(id);
      if (!c) addRealServer(rsAddsEdits, d.key, r);
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

/**
 * The kernel's add order of the real servers that stay (its list, newest first, reversed)
 * against the wanted canonical order: the index of the first one out of place, or -1
 * when they are a prefix of the wanted order (new ones then go after them, in order).
 */
function outOfOrder(kernelList: readonly TableRealServer[], wanted: readonly TableRealServer[]): number {
  const want = wanted.map((r) => realServerId(r.address, r.port));
  const keep = new Set(want);
  const added: string[] = [];
  for (let i = kernelList.length - 1; i >= 0; i--) {
    const r = kernelList[i] as TableRealServer;
    const id = realServerId(r.address, r.port);
    if (keep.has(id)) added.push(id);
  }
  for (let i = 0; i < added.length; i++) if (added[i] !== want[i]) return i;
  return -1;
}

/** Deletes the real servers from position `from` of the canonical order on, and adds them again in that order. */
function reorder(a: TableService, d: TableService, from: number, deletes: Operation[], adds: Operation[]): void {
  const wanted = new Set(d.realServers.map((r) => realServerId(r.address, r.port)));
  const redo = new Set(d.realServers.slice(from).map((r) => realServerId(r.address, r.port)));
  const current = new Map(a.realServers.map((r) => [realServerId(r.address, r.port), r]));
  for (const c of a.realServers) {
    const id = realServerId(c.address, c.port);
    if (!wanted.has(id) || redo.has(id)) deletes.push({ kind: 'delete_real_server', serviceKey: d.key, address: c.address, port: c.port });
  }
  d.realServers.forEach((r, i) => {
    if (i >= from) addRealServer(adds, d.key, r);
    else {
      const c = current.get(realServerId(r.address, r.port));
      if (c !== undefined && !sameRealServer(c, r)) adds.push({ kind: 'edit_real_server', serviceKey: d.key, realServer: r });
    }
  });
}

/**
 * An add. A real server wanted at weight 0 with a configuredWeight (mh: failed in a
 * quiescent service, or drained) is added at its configured weight and set to 0 in the
 * same batch: ip_vs_mh builds its table from last_weight, the latest non-zero weight,
 * so the real server holds its slots as on a director that saw it healthy, and the
 * tables of all directors agree.
 */
function addRealServer(out: Operation[], serviceKey: string, r: TableRealServer): void {
  if (r.weight === 0 && r.configuredWeight !== undefined && r.configuredWeight > 0) {
    out.push({ kind: 'add_real_server', serviceKey, realServer: { ...r, weight: r.configuredWeight } });
    out.push({ kind: 'edit_real_server', serviceKey, realServer: r });
  } else out.push({ kind: 'add_real_server', serviceKey, realServer: r });
}

function byKey(table: Table): Map<string, TableService> {
  const m = new Map<string, TableService>();
  for (let i = 0; i < table.length; i++) {
    const s = table[i] as TableService;
    m.set(s.key, s);
  }
  return m;
}

export function sameServiceSettings(a: TableService, b: TableService): boolean {
  if (a.scheduler !== b.scheduler) return false;
  if ((a.flags ?? []).join(',') !== (b.flags ?? []).join(',')) return false;
  const pa = a.persistence;
  const pb = b.persistence;
  if (!pa || !pb) return pa === pb;
  const v6 = (a.vip ?? '').includes(':') || a.key.endsWith(' ipv6');
  return pa.timeoutS === pb.timeoutS && normalizeNetmask(pa.netmask, v6) === normalizeNetmask(pb.netmask, v6);
}

/**
 * The common case, checked without allocating: the same real servers with the same
 * settings, in any order (the kernel lists them in its own order). Quadratic, so only
 * for lists of the usual size; longer ones go through the maps.
 */
function sameRealServers(have: readonly TableRealServer[], want: readonly TableRealServer[]): boolean {
  if (have.length !== want.length || want.length > 64) return false;
  return covers(want, have, true) && covers(have, want, false);
}

/**
 * Every entry of `xs` has one in `ys` with the same address and port (and settings).
 * Indexed loops: for-of allocates an iterator result per step until the optimizing
 * compiler takes the function, 6.7 MB per diff of a 10,000-entry table.
 */
function covers(xs: readonly TableRealServer[], ys: readonly TableRealServer[], settings: boolean): boolean {
  outer: for (let i = 0; i < xs.length; i++) {
    const x = xs[i] as TableRealServer;
    for (let j = 0; j < ys.length; j++) {
      const y = ys[j] as TableRealServer;
      if (y.port === x.port && y.address === x.address) {
        if (settings && !sameRealServer(y, x)) return false;
        continue outer;
      }
    }
    return false;
  }
  return true;
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
