/**
 * What is wrong with a /status document, in the operator's words: the warning strip of
 * the status page, the "!" lines of `vigil status` and its exit status all come from
 * here, so they always agree.
 *
 * Self-contained on purpose (no imports, plain ES2020 inside): the status page embeds
 * these two functions' source text (`.toString()`) in its inline script.
 */
import type { StatusDoc } from './types.js';

export type WarningKind = 'no-active' | 'split-brain' | 'dead-peer' | 'no-standby' | 'service-down' | 'real-server-down' | 'table-mismatch';

export interface StatusWarning {
  kind: WarningKind;
  message: string;
}

/**
 * Could this peer take over from the active director now? Alive, eligible (not in
 * maintenance, priority above 0) and past INIT: the test the election's `standby`
 * makes before it releases, and the daemon's before it accepts `maintenance on`.
 */
export function peerCanTakeOver(p: StatusDoc['peers'][number]): boolean {
  return p.alive && p.role !== 'maintenance' && p.role !== 'init' && p.role !== 'unknown' && (p.priority === null || p.priority > 0);
}

export function statusWarnings(doc: StatusDoc): StatusWarning[] {
  const out: StatusWarning[] = [];
  const hp = (a: string, p: number): string => (a.indexOf(':') >= 0 ? '[' + a + ']' : a) + ':' + p;
  const alive = doc.peers.filter((p) => p.alive);
  const actives = (doc.role === 'active' ? [doc.node] : []).concat(alive.filter((p) => p.role === 'active').map((p) => p.name));
  if (actives.length === 0) out.push({ kind: 'no-active', message: 'no director is active: nobody holds the VIPs' });
  if (actives.length > 1) out.push({ kind: 'split-brain', message: 'split brain: ' + actives.join(' and ') + ' are both active' });
  for (const p of doc.peers) {
    if (!p.alive) out.push({ kind: 'dead-peer', message: 'peer ' + p.name + ' is dead (no heartbeat on any link)' });
  }
  // a cluster of one has no standby by design; a pair whose other node is dead has none
  // either, and says so (the dead-peer line explains why)
  if (doc.role === 'active' && doc.peers.length > 0 && !doc.peers.some(peerCanTakeOver)) {
    out.push({ kind: 'no-standby', message: 'no standby: no other director could take over if ' + doc.node + ' fails' });
  }
  for (const s of doc.services) {
    const down = s.realServers.filter((r) => !r.healthy && !r.drained);
    const serving = s.realServers.filter((r) => r.healthy && !r.drained);
    if (s.realServers.length > 0 && serving.length === 0) {
      out.push({ kind: 'service-down', message: 'service ' + s.name + ' has no healthy real server' + (s.sorryServerActive ? ' (sorry server active)' : '') });
    }
    for (const r of down) out.push({ kind: 'real-server-down', message: s.name + ' ' + hp(r.address, r.port) + ' is down' });
  }
  // cluster.mode ecmp: a director whose forwarding table has differed from ours for longer
  // than the grace (src/ecmp/peer-tables.ts) may send a flow to another real server
  for (const p of doc.peers) {
    if (p.table && p.table.mismatched) {
      out.push({
        kind: 'table-mismatch',
        message: 'forwarding table of ' + p.name + ' differs from ' + doc.node + '\'s (digest ' + p.table.digest + ', here ' + (doc.table && doc.table.digest ? doc.table.digest.replace('sha256:', '').slice(0, 16) : 'unknown') + '): their health views or configs disagree',
      });
    }
  }
  return out;
}
