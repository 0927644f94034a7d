/**
 * Maglev hashing (the `mh` scheduler), pure, the way Linux's IPVS builds it
 * (net/netfilter/ipvs/ip_vs_mh.c, after section 3.4 of the Maglev paper, NSDI '16).
 *
 *   hash(v, key)  hsiphash of one 32-bit word: on 64-bit kernels SipHash-1-3 (lib/siphash.c,
 *                 hsiphash_1u32) keyed with {key, key}, truncated to 32 bits. The keys are
 *                 constants in ip_vs_mh.c (generate_hash_secret): 2654435761 and 2654446892,
 *                 not a per-boot random secret, so every kernel computes the same values.
 *   offset        hash(port + fold(address), key1) mod M   — per real server
 *   skip          hash(port + fold(address), key2) mod (M - 1) + 1
 *   turns         (weight / gcd) >> rshift, or 1 for a weight the shift rounded to 0;
 *                 rshift = max(0, fls(maxWeight / gcd) - 6) keeps the rounds short
 *   populate      round after round, each real server in list order claims `turns` slots,
 *                 each the next free one of its permutation offset, offset + skip, ...
 *   lookup        slot = hash(sourcePort + fold(source), key1) mod M (port 0 without
 *                 mh-port); an unavailable real server there gives none, or with
 *                 mh-fallback the slots hash(roffset + port + fold(source)) for roffset =
 *                 slot, slot + 1, ... are tried in turn.
 *
 * Population order matters: two real servers that want the same free slot in one round
 * are served in list order. So the table is a function of the real servers AND their
 * order; the forwarder passes them in a canonical order (canonicalOrder) so that every
 * director builds the same table from the same set, whatever the config's order or the
 * order in which real servers came and went. (The kernel keeps them in the order they
 * were added, newest first — see docs/ARCHITECTURE.md "Connection consistency".)
 */

/** The primes ip_vs_mh.c offers (CONFIG_IP_VS_MH_TAB_INDEX 8..17). */
export const MH_PRIMES = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071] as const;

/** Debian's kernels: CONFIG_IP_VS_MH_TAB_INDEX=12 → primes[4] = 4093 slots. */
export const KERNEL_MH_TABLE_SIZE = 4093;

/**
 * The forwarder's table size. The Maglev paper keeps M > 100 × N for an imbalance
 * of about 1%; 65521 does that up to about 650 real servers (4093 only up to 40), and a
 * rebuild of 65521 slots costs about a millisecond (npm run bench:maglev).
 */
export const FORWARDER_MH_TABLE_SIZE = 65521;

export const MH_KEY1 = 2654435761;
export const MH_KEY2 = 2654446892;
/** IP_VS_MH_TAB_BITS = CONFIG_IP_VS_MH_TAB_INDEX / 2 (12 / 2). */
const MH_WEIGHT_BITS = 6;

/**
 * The kernel's hsiphash_1u32(value, {key, key}) on a 64-bit kernel: SipHash-1-3 of
 * the 4 bytes of `value` (little-endian), low 32 bits. key < 2^32.
 *
 * The 64-bit words are held as (high, low) 32-bit halves in local variables: module
 * scope or an object would box every uint32 above 2^30 into a heap number (measured:
 * 1.6 µs a hash that way, against about 40 ns here).
 */
export function hsiphash32(value: number, key: number): number {
  const k = key | 0;
  // PREAMBLE: v0 = "somepseu" ^ k0, v1 = "dorandom" ^ k1, v2 = "lygenera" ^ k0, v3 = "tedbytes" ^ k1
  let v0h = 0x736f6d65;
  let v0l = (0x70736575 ^ k) | 0;
  let v1h = 0x646f7261;
  let v1l = (0x6e646f6d ^ k) | 0;
  let v2h = 0x6c796765;
  let v2l = (0x6e657261 ^ k) | 0;
  let v3h = 0x74656462;
  let v3l = (0x79746573 ^ k) | 0;
  // b = (len 4) << 56 | value (int32 arithmetic throughout: the bits are what count)
  const bh = 0x04000000;
  const bl = value | 0;
  v3h = (v3h ^ bh) | 0;
  v3l = (v3l ^ bl) | 0;
  let lo: number;
  let t: number;
  // HPOSTAMBLE: one round, v0 ^= b, v2 ^= 0xff, three rounds
  for (let round = 0; round < 4; round++) {
    if (round === 1) {
      v0h = (v0h ^ bh) | 0;
      v0l = (v0l ^ bl) | 0;
      v2l = (v2l ^ 0xff) | 0;
    }
    // v0 += v1; v1 = rol(v1, 13); v1 ^= v0; v0 = rol(v0, 32)
    lo = (v0l + v1l) | 0;
    v0h = (v0h + v1h + ((lo >>> 0) < (v0l >>> 0) ? 1 : 0)) | 0;
    v0l = lo;
    t = v1h;
    v1h = ((v1h << 13) | (v1l >>> 19)) | 0;
    v1l = ((v1l << 13) | (t >>> 19)) | 0;
    v1h = (v1h ^ v0h) | 0;
    v1l = (v1l ^ v0l) | 0;
    t = v0h;
    v0h = v0l;
    v0l = t;
    // v2 += v3; v3 = rol(v3, 16); v3 ^= v2
    lo = (v2l + v3l) | 0;
    v2h = (v2h + v3h + ((lo >>> 0) < (v2l >>> 0) ? 1 : 0)) | 0;
    v2l = lo;
    t = v3h;
    v3h = ((v3h << 16) | (v3l >>> 16)) | 0;
    v3l = ((v3l << 16) | (t >>> 16)) | 0;
    v3h = (v3h ^ v2h) | 0;
    v3l = (v3l ^ v2l) | 0;
    // v0 += v3; v3 = rol(v3, 21); v3 ^= v0
    lo = (v0l + v3l) | 0;
    v0h = (v0h + v3h + ((lo >>> 0) < (v0l >>> 0) ? 1 : 0)) | 0;
    v0l = lo;
    t = v3h;
    v3h = ((v3h << 21) | (v3l >>> 11)) | 0;
    v3l = ((v3l << 21) | (t >>> 11)) | 0;
    v3h = (v3h ^ v0h) | 0;
    v3l = (v3l ^ v0l) | 0;
    // v2 += v1; v1 = rol(v1, 17); v1 ^= v2; v2 = rol(v2, 32)
    lo = (v2l + v1l) | 0;
    v2h = (v2h + v1h + ((lo >>> 0) < (v2l >>> 0) ? 1 : 0)) | 0;
    v2l = lo;
    t = v1h;
    v1h = ((v1h << 17) | (v1l >>> 15)) | 0;
    v1l = ((v1l << 17) | (t >>> 15)) | 0;
    v1h = (v1h ^ v2h) | 0;
    v1l = (v1l ^ v2l) | 0;
    t = v2h;
    v2h = v2l;
    v2l = t;
  }
  return (v0l ^ v1l ^ v2l ^ v3l) >>> 0;
}

/** ip_vs_mh_hashkey: hsiphash(offset + port + fold(address)) (u32 arithmetic). */
export function mhHash(fold: number, port: number, key: number, offset = 0): number {
  return hsiphash32((offset + port + fold) >>> 0, key);
}

/** A real server as the table builder sees it. */
export interface MaglevMember {
  /** foldAddress(address): the IPv4 address, or the XOR of an IPv6 address's words. */
  fold: number;
  port: number;
  /** The weight the table is built with (IPVS: last_weight, the latest non-zero weight). */
  weight: number;
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** fls(): the position of the highest set bit, 1-based; 0 for 0. */
function fls(x: number): number {
  return x === 0 ? 0 : 32 - Math.clz32(x);
}

/**
 * ip_vs_mh_permutate + ip_vs_mh_populate: slot → index into `members` (-1 when no
 * member has a positive weight). `members` is used in the order given.
 */
export function buildMaglevTable(members: readonly MaglevMember[], size: number = FORWARDER_MH_TABLE_SIZE, into?: Int32Array): Int32Array {
  const table = into !== undefined && into.length === size ? into : new Int32Array(size);
  table.fill(-1);
  const n = members.length;
  let g = 0;
  let maxW = 0;
  for (let i = 0; i < n; i++) {
    const w = (members[i] as MaglevMember).weight;
    if (w > 0) g = g > 0 ? gcd(w, g) : w;
    if (w > maxW) maxW = w;
  }
  if (g < 1) return table;
  const shift = Math.max(0, fls(Math.floor(maxW / g)) - MH_WEIGHT_BITS);
  const next = new Uint32Array(n);
  const skip = new Uint32Array(n);
  const turns = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const m = members[i] as MaglevMember;
    next[i] = mhHash(m.fold, m.port, MH_KEY1) % size;
    skip[i] = (mhHash(m.fold, m.port, MH_KEY2) % (size - 1)) + 1;
    const lw = m.weight;
    const t = lw > 0 ? Math.floor(lw / g) >>> shift : 0;
    turns[i] = t !== 0 ? t : lw !== 0 ? 1 : 0;
  }
  let filled = 0;
  // Round after round: each member takes `turns` slots (the kernel's dt_count loop).
  for (;;) {
    for (let i = 0; i < n; i++) {
      const t = turns[i] as number;
      for (let k = 0; k < t; k++) {
        let c = next[i] as number;
        const s = skip[i] as number;
        while ((table[c] as number) !== -1) {
          c += s;
          if (c >= size) c -= size;
        }
        next[i] = c;
        table[c] = i;
        if (++filled === size) return table;
      }
    }
  }
}

/** The slot a flow hashes to (ip_vs_mh_get). */
export function maglevSlot(sourceFold: number, sourcePort: number, size: number): number {
  return mhHash(sourceFold, sourcePort, MH_KEY1) % size;
}

/**
 * ip_vs_mh_get / ip_vs_mh_get_fallback: the member for a flow, or -1. `usable(i)` says
 * whether member i can take it (weight > 0, not overloaded, not excluded). Without
 * fallback an unusable member gives -1; with it, the slots
 * hash(roffset + port + fold) for roffset = slot, slot + 1, ... are tried, as the kernel does.
 */
export function maglevLookup(
  table: Int32Array,
  sourceFold: number,
  sourcePort: number,
  fallback: boolean,
  usable: (i: number) => boolean,
): number {
  const size = table.length;
  const ihash = maglevSlot(sourceFold, sourcePort, size);
  const first = table[ihash] as number;
  if (first < 0) return -1;
  if (usable(first)) return first;
  if (!fallback) return -1;
  for (let offset = 0; offset < size; offset++) {
    const roffset = (offset + ihash) % size;
    const i = table[mhHash(sourceFold, sourcePort, MH_KEY1, roffset) % size] as number;
    if (i < 0) return -1;
    if (usable(i)) return i;
  }
  return -1;
}

/**
 * The order every director uses for a set of real servers: by folded address, then
 * port, then the address text (two IPv6 addresses can fold alike). Returns indices.
 */
export function canonicalOrder(members: readonly { address: string; fold: number; port: number }[]): number[] {
  const idx = members.map((_, i) => i);
  idx.sort((a, b) => {
    const x = members[a] as { address: string; fold: number; port: number };
    const y = members[b] as { address: string; fold: number; port: number };
    if (x.fold !== y.fold) return x.fold < y.fold ? -1 : 1;
    if (x.port !== y.port) return x.port - y.port;
    return x.address < y.address ? -1 : x.address > y.address ? 1 : 0;
  });
  return idx;
}
