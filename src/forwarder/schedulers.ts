/**
 * The IPVS schedulers, pure, following the kernel's definitions (net/netfilter/ipvs/
 * ip_vs_{rr,wrr,lc,wlc,sed,nq,sh,dh}.c). A scheduler sees the service's real servers in
 * table order, each with its weight and its active/inactive connection counts, and picks
 * one or none. It never reads a clock.
 *
 *   rr   next available real server after the last one picked (weight > 0)
 *   wrr  IPVS's interleaved weighted round robin: current weight cw steps down from the
 *        max weight by the gcd of the weights; a real server is picked while weight >= cw
 *   lc   least overhead, overhead = active * 256 + inactive
 *   wlc  least overhead / weight
 *   sed  least (active + 1) / weight
 *   nq   an idle real server (active == 0) at once, else as sed
 *   sh   256-bucket hash of the client address; a real server holds `weight` consecutive
 *        buckets; an unavailable bucket gives no real server (no fallback)
 *   dh   256-bucket hash of the destination address (the VIP, for the forwarder)
 *   fo   the available real server with the highest weight (the first of equals)
 *   ovf  as fo, skipping real servers whose active connections exceed their weight
 *
 * "Available" is IPVS's: weight > 0 and not overloaded. `excluded` is the forwarder's
 * addition for a connect retry (IPVS has none): it makes a real server unavailable for
 * one pick, and sh/dh then walk on to the next bucket instead of giving up.
 *
 *   mh   Maglev hashing (ip_vs_mh.c, see maglev.ts) of the client address, and of its
 *        port with the mh-port flag; the table is built from the real servers in a
 *        canonical order, so every director holding the same set builds the same table.
 *        An unavailable slot gives no real server, or with mh-fallback the kernel's walk.
 *
 * lblc and lblcr are IPVS schedulers the forwarder maps to an equivalent: they keep a
 * destination-address → server affinity that, with one destination (the VIP), reduces
 * to wlc.
 */
import type { SchedulerFlag, Scheduler as SchedulerName } from '../config/schema.js';
import { foldAddress } from './address.js';
import { buildMaglevTable, canonicalOrder, FORWARDER_MH_TABLE_SIZE, maglevLookup, type MaglevMember } from './maglev.js';

/** What a scheduler sees of a real server. */
export interface SchedDest {
  weight: number;
  active: number;
  inactive: number;
  /** IPVS's IP_VS_DEST_F_OVERLOAD (the forwarder never sets it; kept for parity). */
  overloaded?: boolean;
  /** Unavailable for this pick only (a connect retry skips servers already tried). */
  excluded?: boolean;
  /** The real server's address and port: mh hashes them into the table. */
  address?: string;
  port?: number;
  /** mh: the slots of a weight-0 real server are built with this weight (ip_vs_mh's last_weight). */
  configuredWeight?: number;
}

export interface PickContext {
  /** foldAddress(client address). */
  source: number;
  /** foldAddress(destination address) — the VIP. */
  destination: number;
  /** The client's port (mh with mh-port hashes it). */
  sourcePort?: number;
}

export interface Scheduler<D extends SchedDest = SchedDest> {
  readonly name: SchedulerName;
  /** The scheduler the forwarder actually runs (lblc → wlc, others themselves). */
  readonly effective: SchedulerName;
  /** Index into dests of the chosen real server, or -1 when none can take the connection. */
  pick(dests: readonly D[], ctx: PickContext): number;
  /** Called after real servers were added, removed or re-weighted (ip_vs_*_dest_changed / update_service). */
  changed(dests: readonly D[]): void;
}

const available = (d: SchedDest): boolean => d.weight > 0 && d.overloaded !== true && d.excluded !== true;
const overhead = (d: SchedDest): number => d.active * 256 + d.inactive;

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** ip_vs_rr.c: the list position of the last pick; the next pick starts after it. */
export class RoundRobin implements Scheduler {
  readonly name: SchedulerName = 'rr';
  readonly effective: SchedulerName = 'rr';
  /** -1 = the list head (before the first real server). */
  private last = -1;
  private lastDest: SchedDest | undefined;
  pick(dests: readonly SchedDest[], _ctx?: PickContext): number {
    const n = dests.length;
    if (n === 0) return -1;
    // Start after the last pick, wrap around the list (skipping the head), stop after one full turn.
    let i = this.last;
    for (let k = 0; k < n; k++) {
      i = i + 1 >= n ? 0 : i + 1;
      const d = dests[i] as SchedDest;
      if (available(d)) {
        this.last = i;
        this.lastDest = d;
        return i;
      }
    }
    return -1;
  }
  changed(dests: readonly SchedDest[]): void {
    // Keep the position of the last pick; when it was removed, start over from the head.
    this.last = this.lastDest === undefined ? -1 : dests.indexOf(this.lastDest);
  }
}

/** ip_vs_wrr.c: interleaved weighted round robin with gcd-stepped current weight. */
export class WeightedRoundRobin implements Scheduler {
  readonly name: SchedulerName = 'wrr';
  readonly effective: SchedulerName = 'wrr';
  /** Current list position; -1 is the head. */
  private cl = -1;
  /** Current weight. */
  private cw = 0;
  /** Max weight minus (gcd - 1). */
  private mw = 0;
  /** gcd of the positive weights (1 when there are none). */
  private di = 1;
  private initialised = false;

  private recompute(dests: readonly SchedDest[]): void {
    let g = 0;
    let max = 0;
    for (const d of dests) {
      if (d.weight > 0) g = g > 0 ? gcd(d.weight, g) : d.weight;
      if (d.weight > max) max = d.weight;
    }
    this.di = g > 0 ? g : 1;
    this.mw = max - (this.di - 1);
  }

  changed(dests: readonly SchedDest[]): void {
    if (!this.initialised) {
      this.init(dests);
      return;
    }
    this.cl = -1;
    this.recompute(dests);
    if (this.cw > this.mw || this.di === 0) this.cw = 0;
    else if (this.di > 1) this.cw = Math.floor(this.cw / this.di) * this.di + 1;
  }

  private init(dests: readonly SchedDest[]): void {
    this.initialised = true;
    this.cl = -1;
    this.recompute(dests);
    this.cw = this.mw;
  }

  pick(dests: readonly SchedDest[], _ctx?: PickContext): number {
    if (!this.initialised) this.init(dests);
    const n = dests.length;
    if (this.mw <= 0 || n === 0) return -1;
    const last = this.cl;
    let stop = -2; // none
    let lastPass = false;
    let restarted = false;
    let i = this.cl;
    for (;;) {
      for (i = i + 1; i < n; i++) {
        const d = dests[i] as SchedDest;
        if (d.overloaded !== true && d.excluded !== true && d.weight >= this.cw && d.weight > 0) {
          this.cl = i;
          return i;
        }
        if (i === stop) return -1;
      }
      i = -1; // back at the head
      this.cw -= this.di;
      if (this.cw <= 0) {
        this.cw = this.mw;
        // All weights >= 1 were tried (from the head, or in a last pass): nothing available.
        if (lastPass || last === -1) return -1;
        restarted = true;
      }
      lastPass = this.cw <= this.di;
      if (lastPass && restarted && last !== -1) stop = last;
    }
  }
}

/** ip_vs_lc.c: least (active << 8) + inactive; the first of equals wins. */
export class LeastConnection implements Scheduler {
  readonly name: SchedulerName = 'lc';
  readonly effective: SchedulerName = 'lc';
  pick(dests: readonly SchedDest[], _ctx?: PickContext): number {
    let least = -1;
    let loh = 0;
    for (let i = 0; i < dests.length; i++) {
      const d = dests[i] as SchedDest;
      if (!available(d)) continue;
      const doh = overhead(d);
      if (least < 0 || doh < loh) {
        least = i;
        loh = doh;
      }
    }
    return least;
  }
  changed(): void {}
}

/**
 * ip_vs_wlc.c / ip_vs_sed.c / ip_vs_nq.c: least overhead/weight, compared as
 * loh * weight(d) > doh * weight(least) to stay in integers, the first of equals winning.
 */
export class WeightedLeast implements Scheduler {
  readonly effective: SchedulerName;
  constructor(
    readonly name: SchedulerName,
    private readonly kind: 'wlc' | 'sed' | 'nq',
  ) {
    this.effective = kind;
  }
  pick(dests: readonly SchedDest[], _ctx?: PickContext): number {
    let least = -1;
    let loh = 0;
    let lw = 0;
    for (let i = 0; i < dests.length; i++) {
      const d = dests[i] as SchedDest;
      if (!available(d)) continue;
      const doh = this.kind === 'wlc' ? overhead(d) : d.active + 1;
      if (this.kind === 'nq' && d.active === 0) return i;
      if (least < 0 || loh * d.weight > doh * lw) {
        least = i;
        loh = doh;
        lw = d.weight;
      }
    }
    return least;
  }
  changed(): void {}
}

export const HASH_BUCKETS = 256;
const GOLDEN_RATIO_32 = 0x61c88647;

/** The kernel's hash_32(val, 8). */
export function hash32to8(val: number): number {
  return Math.imul(val >>> 0, GOLDEN_RATIO_32) >>> 24;
}

/** The dh bucket: (addr * 2654435761) & 255. */
export function dhBucket(addr: number): number {
  return Math.imul(addr >>> 0, 2654435761 | 0) & (HASH_BUCKETS - 1);
}

/**
 * ip_vs_sh.c / ip_vs_dh.c: a 256-bucket table. sh assigns each real server `weight`
 * consecutive buckets (at least one) in table order, wrapping; dh one bucket each.
 */
export class HashScheduler implements Scheduler {
  readonly effective: SchedulerName;
  /** Bucket → index into dests (-1 when there are no real servers). */
  private readonly buckets = new Int32Array(HASH_BUCKETS).fill(-1);
  private built = false;
  constructor(
    readonly name: SchedulerName,
    private readonly kind: 'sh' | 'dh',
  ) {
    this.effective = kind;
  }

  changed(dests: readonly SchedDest[]): void {
    this.built = true;
    const n = dests.length;
    let p = 0;
    let count = 0;
    for (let b = 0; b < HASH_BUCKETS; b++) {
      if (n === 0) {
        this.buckets[b] = -1;
        continue;
      }
      this.buckets[b] = p;
      const w = this.kind === 'sh' ? (dests[p] as SchedDest).weight : 1;
      if (++count >= w) {
        p = (p + 1) % n;
        count = 0;
      }
    }
  }

  /** The bucket a connection hashes to. */
  bucketOf(ctx: PickContext): number {
    return this.kind === 'sh' ? hash32to8(ctx.source) : dhBucket(ctx.destination);
  }

  pick(dests: readonly SchedDest[], ctx: PickContext): number {
    if (!this.built) this.changed(dests);
    const b = this.bucketOf(ctx);
    const i = this.buckets[b] as number;
    if (i < 0 || i >= dests.length) return -1;
    const d = dests[i] as SchedDest;
    if (available(d)) return i;
    if (d.excluded !== true) return -1; // IPVS: an unavailable bucket means no real server
    // Retry after a failed connect: the next buckets, in order, like sh's fallback.
    for (let off = 1; off < HASH_BUCKETS; off++) {
      const j = this.buckets[(b + off) % HASH_BUCKETS] as number;
      if (j >= 0 && j < dests.length && available(dests[j] as SchedDest)) return j;
    }
    return -1;
  }
}

/**
 * ip_vs_mh.c over the real servers in canonical order (see maglev.ts). The table maps a
 * slot to an index into the dests of the last changed(). The table is a function of the
 * set of real servers and their weights — the same on every director with the same
 * config and health view. A real server at weight 0 keeps the slots of its
 * configuredWeight (quiescent failure, drain: only its own flows move, as with the
 * kernel's last_weight); without one (weight 0 in the config) it gets none.
 */
export class MaglevScheduler implements Scheduler {
  readonly name: SchedulerName = 'mh';
  readonly effective: SchedulerName = 'mh';
  /** mh-port: the client's port is hashed too (flows of one client spread). */
  readonly hashPort: boolean;
  /** mh-fallback: an unavailable slot walks on (ip_vs_mh_get_fallback). */
  readonly fallback: boolean;
  private table: Int32Array;
  private built = false;
  private cur: readonly SchedDest[] = [];
  private readonly usable = (i: number): boolean => {
    const d = this.cur[i];
    return d !== undefined && available(d);
  };
  constructor(
    flags: readonly SchedulerFlag[] = [],
    readonly size: number = FORWARDER_MH_TABLE_SIZE,
  ) {
    this.hashPort = flags.includes('mh-port');
    this.fallback = flags.includes('mh-fallback');
    this.table = new Int32Array(size).fill(-1);
  }

  changed(dests: readonly SchedDest[]): void {
    this.built = true;
    const members: (MaglevMember & { address: string })[] = dests.map((d) => ({
      address: d.address ?? '',
      fold: foldAddress(d.address ?? '0.0.0.0'),
      port: d.port ?? 0,
      weight: d.weight > 0 ? d.weight : (d.configuredWeight ?? 0),
    }));
    const order = canonicalOrder(members);
    const t = buildMaglevTable(
      order.map((i) => members[i] as MaglevMember),
      this.size,
      this.table,
    );
    for (let s = 0; s < t.length; s++) {
      const k = t[s] as number;
      t[s] = k < 0 ? -1 : (order[k] as number);
    }
    this.table = t;
  }

  /** Index into dests for a client (ignoring availability): the slot's real server. */
  slotOwner(ctx: PickContext): number {
    return maglevLookup(this.table, ctx.source, this.hashPort ? (ctx.sourcePort ?? 0) : 0, false, () => true);
  }

  pick(dests: readonly SchedDest[], ctx: PickContext): number {
    if (!this.built) this.changed(dests);
    this.cur = dests;
    const port = this.hashPort ? (ctx.sourcePort ?? 0) : 0;
    const i = maglevLookup(this.table, ctx.source, port, this.fallback, this.usable);
    if (i >= 0 || this.fallback) return i;
    // A connect retry walks on like mh-fallback (the first pick failed to connect).
    const owner = this.slotOwner(ctx);
    if (owner >= 0 && (dests[owner] as SchedDest | undefined)?.excluded === true) return maglevLookup(this.table, ctx.source, port, true, this.usable);
    return -1;
  }
}

/** Does this scheduler hash the client's address (so the forwarder must read it)? */
export function hashesSource(s: Scheduler): boolean {
  return s.effective === 'sh' || s.effective === 'mh';
}

/** ip_vs_fo.c and ip_vs_ovf.c: the highest weight wins (ovf: while active <= weight). */
export class HighestWeight implements Scheduler {
  readonly effective: SchedulerName;
  constructor(readonly name: 'fo' | 'ovf') {
    this.effective = name;
  }
  pick(dests: readonly SchedDest[]): number {
    let best = -1;
    dests.forEach((d, i) => {
      if (!available(d) || (this.name === 'ovf' && d.active > d.weight)) return;
      if (best < 0 || d.weight > (dests[best] as SchedDest).weight) best = i;
    });
    return best;
  }
  changed(): void {
    // stateless
  }
}

/** A fresh scheduler for a virtual service. */
export function createScheduler(name: SchedulerName, flags: readonly SchedulerFlag[] = []): Scheduler {
  switch (name) {
    case 'rr':
      return new RoundRobin();
    case 'wrr':
      return new WeightedRoundRobin();
    case 'lc':
      return new LeastConnection();
    case 'wlc':
    case 'lblc':
    case 'lblcr':
      return new WeightedLeast(name, 'wlc');
    case 'sed':
      return new WeightedLeast(name, 'sed');
    case 'nq':
      return new WeightedLeast(name, 'nq');
    case 'sh':
      return new HashScheduler(name, 'sh');
    case 'mh':
      return new MaglevScheduler(flags);
    case 'dh':
      return new HashScheduler(name, 'dh');
    case 'fo':
    case 'ovf':
      return new HighestWeight(name);
  }
}
