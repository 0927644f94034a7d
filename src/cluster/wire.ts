/**
 * The heartbeat frame: pure encode/decode with explicit bounds checks and HMAC-SHA256.
 * Nothing a packet says can throw: decode returns `{ ok: false, reason }` and the reason
 * is the `reason` label of vigil_cluster_frames_rejected_total.
 *
 *   offset size field
 *        0    4 magic "VGHB"
 *        4    1 version (3; versions 1 and 2 are still read, and written for a peer that speaks them)
 *        5    1 flags: 1 releasing, 2 leaving, 4 takeover (pinned by `vigil takeover`),
 *                      8 yielding (after `vigil standby`), 16 table (version 3 only: the
 *                      table extension follows the names); other bits must be 0
 *        6    1 role: 0 init, 1 standby, 2 active, 3 maintenance
 *        7    1 effective priority (0 = not eligible: maintenance, failed tracks)
 *        8    8 incarnation (u64, fresh per start and increasing: start time in µs)
 *       16    4 sequence (u32, > 0, increases with every frame the sender sends)
 *       20    4 sender's monotonic clock at send, µs mod 2^32
 *       24    4 echo: sequence of the last frame received from the addressee on this link (0 = none)
 *       28    4 echo: that frame's send time (the addressee's clock, µs mod 2^32)
 *       32    4 echo: µs the sender held that frame before this one (the addressee's
 *                RTT = now − echo send time − hold)
 *       36    8 echo: the incarnation that echoed frame carried (0 = none). A node believes
 *                a peer only once the peer echoes its *current* incarnation: a frame
 *                recorded before this node last started cannot (freshness, cluster.ts)
 *       44    1 cluster id length c (1-63)
 *       45    1 node name length n (1-63)
 *       46    1 link name length l (1-63)
 *       47    1 reserved, 0
 *       48  c+n+l cluster id, node name, link name (ASCII: letters, digits, _ . -)
 *   with flag 16 (version 3), right after the names, the table extension:
 *        e    8 the first 8 bytes of the sender's forwarding-table digest (src/reconcile/digest.ts)
 *      e+8    1 how many VIPs the sender announces to its routers (0-254; 255 = not in
 *                cluster.mode ecmp, or not known yet)
 *      end   32 HMAC-SHA256(key, every byte before it)
 *
 * Version 3 is version 2 plus the flag 16 and its 9 bytes; a version 3 frame without the
 * flag is laid out exactly as version 2 (a node that has no table yet sends none).
 * Version 1 is version 2 without the 8 bytes at 36 (its lengths sit at 36-39, names at
 * 40). Versions 1 and 2 are decoded (echoIncarnation undefined in version 1, no table)
 * and encoded on request, so a node answers a peer that still runs an older vigil in its
 * own version during a rolling upgrade (the table is then not exchanged with that peer).
 *
 * Replay protection is stateful and lives in ReplayGuard: per sender the highest
 * incarnation seen, and per (sender, link) the highest sequence; a frame must be newer.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Role } from '../api/types.js';

export const MAGIC = 0x56474842; // "VGHB"
export const VERSION = 3;
export type WireVersion = 1 | 2 | 3;
const HEADER: Record<WireVersion, number> = { 1: 40, 2: 48, 3: 48 };
export const HEADER_SIZE = HEADER[VERSION];
export const MAC_SIZE = 32;
/** No valid frame is longer (48 + 3 × 63 + 9 + 32 = 278); longer datagrams are dropped unread. */
export const MAX_FRAME = 512;
export const MIN_FRAME = HEADER[1] + 3 + MAC_SIZE;

export const FLAG_RELEASING = 1;
export const FLAG_LEAVING = 2;
export const FLAG_TAKEOVER = 4;
export const FLAG_YIELDING = 8;
/** Version 3: the table extension (TABLE_EXT_SIZE bytes) follows the names. */
export const FLAG_TABLE = 16;
const KNOWN_FLAGS = FLAG_RELEASING | FLAG_LEAVING | FLAG_TAKEOVER | FLAG_YIELDING;
export const TABLE_EXT_SIZE = 9;
/** Bytes of the table digest a frame carries (the first 8 of the SHA-256). */
export const TABLE_DIGEST_BYTES = 8;
/** The announced-VIP count that says "not in cluster.mode ecmp" (or not known yet). */
export const NOT_ECMP = 255;

export const ROLES: readonly Role[] = ['init', 'standby', 'active', 'maintenance'];

export type RejectReason =
  | 'malformed'
  | 'truncated'
  | 'oversized'
  | 'bad_magic'
  | 'bad_version'
  | 'wrong_cluster'
  | 'wrong_link'
  | 'unknown_node'
  | 'bad_hmac'
  | 'replayed'
  | 'stale_incarnation'
  | 'self'
  /** Authenticated, but from an address that is not the peer's address on that link. */
  | 'wrong_source'
  /** Authenticated and new, but the peer has not echoed this node's current incarnation yet. */
  | 'unconfirmed';

export interface Frame {
  cluster: string;
  node: string;
  link: string;
  role: Role;
  priority: number;
  releasing: boolean;
  leaving: boolean;
  takeover: boolean;
  yielding: boolean;
  incarnation: bigint;
  seq: number;
  sentUs: number;
  echoSeq: number;
  echoSentUs: number;
  echoHoldUs: number;
  /** The incarnation the echoed frame carried (0n = nothing echoed); undefined in a version 1 frame. */
  echoIncarnation?: bigint;
  /** Wire version the frame was (or is to be) encoded in; default VERSION. */
  version?: WireVersion;
  /** Version 3 only: the sender's table digest prefix and announced-VIP count (absent: none sent). */
  table?: FrameTable;
}

export interface FrameTable {
  /** The first TABLE_DIGEST_BYTES of the table digest, as 16 lower-case hex digits. */
  digest: string;
  /** VIPs the sender announces (0-254), or NOT_ECMP. */
  announced: number;
}

const DIGEST_RE = /^[0-9a-f]{16}$/;

/** The frame's form of a table digest: `sha256:<hex>` (or bare hex) → its first 16 hex digits. */
export function digestPrefix(digest: string): string {
  const hex = digest.startsWith('sha256:') ? digest.slice(7) : digest;
  const p = hex.slice(0, TABLE_DIGEST_BYTES * 2).toLowerCase();
  if (!DIGEST_RE.test(p)) throw new RangeError(`table digest "${digest}" is not sha256:<hex> with at least ${TABLE_DIGEST_BYTES * 2} hex digits`);
  return p;
}

export type DecodeResult = { ok: true; frame: Frame } | { ok: false; reason: RejectReason };

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const u32 = (n: number): number => (Math.trunc(n) % 0x1_0000_0000 + 0x1_0000_0000) % 0x1_0000_0000;

/** Monotonic clock in µs modulo 2^32, the unit of the frame's time fields. */
export const monoUs = (nowMs: number): number => u32(Math.round(nowMs * 1000));

/** `a − b` for µs timestamps modulo 2^32 (correct across the wrap for gaps < 35 min). */
export const usDiff = (a: number, b: number): number => u32(a - b);

export function encodeFrame(f: Frame, key: Buffer): Buffer {
  const names = [f.cluster, f.node, f.link].map((s) => Buffer.from(s, 'ascii'));
  for (const n of names) if (n.length < 1 || n.length > 63) throw new RangeError(`name "${n.toString()}" must be 1-63 bytes`);
  const version = f.version ?? VERSION;
  const header = HEADER[version];
  const table = version === 3 ? f.table : undefined;
  if (table && (!DIGEST_RE.test(table.digest) || !Number.isInteger(table.announced) || table.announced < 0 || table.announced > NOT_ECMP)) {
    throw new RangeError(`table extension ${JSON.stringify(table)}: digest must be 16 hex digits, announced 0-255`);
  }
  const namesLength = names.reduce((a, n) => a + n.length, 0);
  const body = Buffer.alloc(header + namesLength + (table ? TABLE_EXT_SIZE : 0));
  body.writeUInt32BE(MAGIC, 0);
  body.writeUInt8(version, 4);
  body.writeUInt8(
    (f.releasing ? FLAG_RELEASING : 0) | (f.leaving ? FLAG_LEAVING : 0) | (f.takeover ? FLAG_TAKEOVER : 0) | (f.yielding ? FLAG_YIELDING : 0) | (table ? FLAG_TABLE : 0),
    5,
  );
  body.writeUInt8(ROLES.indexOf(f.role), 6);
  body.writeUInt8(Math.max(0, Math.min(255, f.priority)), 7);
  body.writeBigUInt64BE(f.incarnation, 8);
  body.writeUInt32BE(u32(f.seq), 16);
  body.writeUInt32BE(u32(f.sentUs), 20);
  body.writeUInt32BE(u32(f.echoSeq), 24);
  body.writeUInt32BE(u32(f.echoSentUs), 28);
  body.writeUInt32BE(u32(f.echoHoldUs), 32);
  if (version >= 2) body.writeBigUInt64BE(f.echoIncarnation ?? 0n, 36);
  const lengths = header - 4;
  body.writeUInt8(names[0]!.length, lengths);
  body.writeUInt8(names[1]!.length, lengths + 1);
  body.writeUInt8(names[2]!.length, lengths + 2);
  let off = header;
  for (const n of names) {
    n.copy(body, off);
    off += n.length;
  }
  if (table) {
    Buffer.from(table.digest, 'hex').copy(body, off);
    body.writeUInt8(table.announced, off + TABLE_DIGEST_BYTES);
  }
  const mac = createHmac('sha256', key).update(body).digest();
  return Buffer.concat([body, mac]);
}

export interface DecodeContext {
  key: Buffer;
  cluster: string;
  /** This node: a frame from it (a loop, a misconfigured peer) is dropped. */
  self: string;
  /** Names of the other nodes of the cluster. */
  peers: ReadonlySet<string>;
  /** Name of the link the datagram arrived on; the frame must say the same. */
  link: string;
}

/** Validates a datagram; never throws. Replay is checked separately (ReplayGuard). */
export function decodeFrame(buf: Buffer, ctx: DecodeContext): DecodeResult {
  if (buf.length > MAX_FRAME) return { ok: false, reason: 'oversized' };
  if (buf.length < 5) return { ok: false, reason: 'truncated' };
  if (buf.readUInt32BE(0) !== MAGIC) return { ok: false, reason: 'bad_magic' };
  const version = buf.readUInt8(4);
  if (version !== 1 && version !== 2 && version !== 3) return { ok: false, reason: 'bad_version' };
  const header = HEADER[version];
  if (buf.length < header + 3 + MAC_SIZE) return { ok: false, reason: 'truncated' };
  const flags = buf.readUInt8(5);
  const roleIndex = buf.readUInt8(6);
  const lengths = header - 4;
  const c = buf.readUInt8(lengths);
  const n = buf.readUInt8(lengths + 1);
  const l = buf.readUInt8(lengths + 2);
  const known = version === 3 ? KNOWN_FLAGS | FLAG_TABLE : KNOWN_FLAGS;
  const hasTable = (flags & FLAG_TABLE) !== 0 && version === 3;
  if ((flags & ~known) !== 0 || roleIndex >= ROLES.length || buf.readUInt8(lengths + 3) !== 0) return { ok: false, reason: 'malformed' };
  if (c < 1 || c > 63 || n < 1 || n > 63 || l < 1 || l > 63) return { ok: false, reason: 'malformed' };
  const namesEnd = header + c + n + l;
  const end = namesEnd + (hasTable ? TABLE_EXT_SIZE : 0);
  if (buf.length < end + MAC_SIZE) return { ok: false, reason: 'truncated' };
  if (buf.length > end + MAC_SIZE) return { ok: false, reason: 'malformed' };
  const cluster = buf.toString('latin1', header, header + c);
  const node = buf.toString('latin1', header + c, header + c + n);
  const link = buf.toString('latin1', header + c + n, namesEnd);
  if (!NAME_RE.test(cluster) || !NAME_RE.test(node) || !NAME_RE.test(link)) return { ok: false, reason: 'malformed' };
  if (cluster !== ctx.cluster) return { ok: false, reason: 'wrong_cluster' };
  if (node === ctx.self) return { ok: false, reason: 'self' };
  if (!ctx.peers.has(node)) return { ok: false, reason: 'unknown_node' };
  const mac = createHmac('sha256', ctx.key).update(buf.subarray(0, end)).digest();
  if (!timingSafeEqual(mac, buf.subarray(end, end + MAC_SIZE))) return { ok: false, reason: 'bad_hmac' };
  // authenticated from here on: a link mismatch is a frame sent to the wrong address
  if (link !== ctx.link) return { ok: false, reason: 'wrong_link' };
  const seq = buf.readUInt32BE(16);
  if (seq === 0) return { ok: false, reason: 'malformed' };
  return {
    ok: true,
    frame: {
      cluster,
      node,
      link,
      role: ROLES[roleIndex] as Role,
      priority: buf.readUInt8(7),
      releasing: (flags & FLAG_RELEASING) !== 0,
      leaving: (flags & FLAG_LEAVING) !== 0,
      takeover: (flags & FLAG_TAKEOVER) !== 0,
      yielding: (flags & FLAG_YIELDING) !== 0,
      incarnation: buf.readBigUInt64BE(8),
      seq,
      sentUs: buf.readUInt32BE(20),
      echoSeq: buf.readUInt32BE(24),
      echoSentUs: buf.readUInt32BE(28),
      echoHoldUs: buf.readUInt32BE(32),
      echoIncarnation: version >= 2 ? buf.readBigUInt64BE(36) : undefined,
      version,
      ...(hasTable ? { table: { digest: buf.toString('hex', namesEnd, namesEnd + TABLE_DIGEST_BYTES), announced: buf.readUInt8(namesEnd + TABLE_DIGEST_BYTES) } } : {}),
    },
  };
}

/**
 * Replay protection: per sender the highest incarnation seen, per (sender, link) the
 * highest sequence. A frame from an older incarnation, or with a sequence not above the
 * last one accepted on that link, is refused. A newer incarnation (the peer restarted)
 * resets the sequences.
 */
export class ReplayGuard {
  private readonly seen = new Map<string, { incarnation: bigint; seq: Map<string, number> }>();

  check(f: Pick<Frame, 'node' | 'link' | 'incarnation' | 'seq'>): 'ok' | 'replayed' | 'stale_incarnation' {
    const s = this.seen.get(f.node);
    if (!s || f.incarnation > s.incarnation) return 'ok';
    if (f.incarnation < s.incarnation) return 'stale_incarnation';
    const last = s.seq.get(f.link);
    return last !== undefined && f.seq <= last ? 'replayed' : 'ok';
  }

  /** Records an accepted frame (call after check() said ok). */
  accept(f: Pick<Frame, 'node' | 'link' | 'incarnation' | 'seq'>): void {
    let s = this.seen.get(f.node);
    if (!s || f.incarnation > s.incarnation) {
      s = { incarnation: f.incarnation, seq: new Map() };
      this.seen.set(f.node, s);
    }
    s.seq.set(f.link, f.seq);
  }

  forget(node: string): void {
    this.seen.delete(node);
  }
}
