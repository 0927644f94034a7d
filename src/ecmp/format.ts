/**
 * `vigil status` lines for cluster.mode ecmp: per VIP announced or withdrawn and why,
 * then the BGP and BFD sessions as the local BIRD reports them.
 */
import type { OwnTableStatus } from '../api/types.js';
import type { EcmpStatus } from './announcer.js';

export function formatEcmp(e: EcmpStatus, columns: (rows: string[][]) => string[], table?: OwnTableStatus): string[] {
  const out: string[] = [];
  out.push(`ECMP (VIPs on ${e.vipInterface}, announced through BIRD)${e.birdError ? `: BIRD UPDATE FAILED: ${e.birdError.split('\n')[0] ?? ''}` : ''}:`);
  if (table) {
    const d = table.digest === null ? 'not computed yet' : table.digest.replace('sha256:', '').slice(0, 16);
    out.push(`  Table digest ${d} (in the heartbeats); a peer whose digest differs for more than ${(table.graceMs / 1000).toFixed(1)} s is named`);
  }
  if (e.vips.length === 0) out.push('  VIPs: none');
  else {
    const rows = [['VIP', 'Announced', 'Why', 'Since']];
    for (const v of e.vips) rows.push([v.address, v.announced ? 'yes' : 'WITHDRAWN', v.reason, v.since.replace('T', ' ').replace(/\.\d+Z$/, 'Z')]);
    out.push(...columns(rows).map((l) => `  ${l}`));
  }
  if (e.bgp.length === 0) out.push('  BGP: no session (is BIRD running, with a bgp protocol?)');
  else {
    const rows = [['BGP', 'State', 'Info']];
    for (const b of e.bgp) rows.push([b.name, b.up ? 'up' : 'DOWN', b.info]);
    out.push(...columns(rows).map((l) => `  ${l}`));
  }
  if (e.bfd.length > 0) {
    const rows = [['BFD peer', 'Interface', 'State']];
    for (const s of e.bfd) rows.push([s.address, s.interface, s.state === 'Up' ? 'Up' : s.state.toUpperCase()]);
    out.push(...columns(rows).map((l) => `  ${l}`));
  }
  return out;
}
