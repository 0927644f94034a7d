/**
 * A digest of the forwarding table a director would program: the desired table, which
 * already folds in the config (services, schedulers and their flags, persistence, real
 * servers and weights), the health verdicts (a failed real server is out, or weight 0
 * when quiescent; the sorry server in its place) and the drains. Pure.
 *
 * Two directors with the same config and the same health view compute the same digest,
 * whatever the order of services and real servers in their configs or tables: services
 * are sorted by key, real servers by address:port. Directors in cluster.mode ecmp carry
 * it in their heartbeats; a mismatch means they may pick different real servers for one
 * flow (consistent hashing only helps when the tables agree).
 *
 * Form: `sha256:` and 64 hex digits over the canonical text (one line per service and
 * per real server, below). A carrier short of room may send a prefix (16 hex digits
 * = 64 bits is plenty to compare a handful of directors).
 *
 * What it cannot see: the order in which the kernel holds the real servers of an IPVS
 * mh service (ip_vs_mh populates in that order; see docs/ARCHITECTURE.md "Connection
 * consistency").
 */
import { createHash } from 'node:crypto';
import { realServerId, type Table, type TableService } from './table.js';

/** Bumped when the canonical text changes, so old and new directors never match by accident. */
export const DIGEST_VERSION = 1;

/** The canonical text of one service, memoized per (frozen, shared) service object. */
const memo = new WeakMap<TableService, string>();

export function serviceCanonical(s: TableService): string {
  const hit = memo.get(s);
  if (hit !== undefined) return hit;
  let head = `S ${s.key} ${s.protocol} ${s.scheduler}`;
  head += ` b=${s.flags !== undefined && s.flags.length > 0 ? [...new Set(s.flags)].sort().join(',') : '-'}`;
  head += s.persistence ? ` p=${s.persistence.timeoutS}/${s.persistence.netmask ?? '-'}` : ' p=-';
  const rs = s.realServers.map((r) => `R ${realServerId(r.address, r.port)} ${r.forward} ${r.weight}${r.configuredWeight !== undefined ? `/${r.configuredWeight}` : ''}`).sort();
  const text = [head, ...rs].join('\n');
  if (Object.isFrozen(s)) memo.set(s, text);
  return text;
}

/** The canonical text of a table (services sorted by key). */
export function tableCanonical(table: Table): string {
  const services = table.map(serviceCanonical).sort();
  return `vigil-table ${DIGEST_VERSION}\n${services.join('\n')}\n`;
}

/** `sha256:<hex>` of the canonical text: equal tables ⇔ equal digests. */
export function tableDigest(table: Table): string {
  return `sha256:${createHash('sha256').update(tableCanonical(table)).digest('hex')}`;
}
