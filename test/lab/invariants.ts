/**
 * The chaos bench's invariant checker: from the log of injected faults and the
 * directors' VIP ownership over time, decides what was allowed. Pure: no I/O, no clock;
 * times are epoch milliseconds, as the bench recorded them.
 *
 * Model:
 * - A director is *dead* between a `kill` and the next `start` of its daemon (the bench
 *   logs `start` when the new daemon's API answered), *frozen*
 *   between a `stop` (SIGSTOP) and the next `cont`, and *alive* otherwise.
 * - Two directors are *apart* while every link they share is cut (`cut`/`mend`, a
 *   partition in both directions) or one of them is frozen: neither can hear the other.
 *   A *heal* is the moment two directors stop being apart.
 * - An *owner* is a director whose namespace has the VIP configured (a dead daemon's
 *   leftover VIP counts: it answers ARP).
 *
 * Invariants (the figures the bench prints; each violation is listed):
 * 1. Two owners: allowed only while the two are apart (a partition, a frozen node) and
 *    within `healMs` (one interval plus the instrument's slack) after they healed. Any
 *    other time with two owners is a violation, in particular a dead daemon's VIP beside
 *    a live owner.
 * 2. No owner while an *eligible* director exists (alive, not frozen, for at least
 *    deadtime): each such episode may last at most deadtime + `takeoverMs`.
 * 3. Spurious takeover: a director acquires the VIP while another director that owned it
 *    just before was alive and not lost to it — *lost* means dead or apart for at least
 *    `lostAfterMs` (deadtime less two intervals: the last frame may precede the fault by
 *    an interval and one more may be lost), in a stretch that ended at most `takeoverMs`
 *    before the acquisition (a decision taken just before a heal is still legitimate).
 *
 * The bench records a fault's start before it injects it and its end after the command
 * that undoes it returned, so the instrument's own delays widen what is allowed, never
 * what is forbidden.
 */

export type FaultEvent =
  | { kind: 'kill' | 'start' | 'stop' | 'cont'; node: string; at: number }
  | { kind: 'cut' | 'mend'; a: string; b: string; link: string; at: number };

export interface OwnershipChange {
  node: string;
  at: number;
  owned: boolean;
}

export interface LinkDef {
  name: string;
  nodes: string[];
}

export interface InvariantParams {
  nodes: string[];
  links: LinkDef[];
  intervalMs: number;
  deadtimeMs: number;
  /** Decision → VIP added and first ARP out, allowed per takeover. */
  takeoverMs: number;
  /** Two owners allowed this long after a heal (default interval + 20 ms). */
  healMs?: number;
  /**
   * A restarted director that hears nobody waits this long before it may take the VIPs
   * (cluster.initdead_ms, as Heartbeat's initdead): it is eligible only that long after its
   * restart (the bench's `start`, when its API answered: later than its cluster started,
   * so the allowance is never short). Default: deadtime.
   */
  initdeadMs?: number;
  /** Out of contact this long makes a takeover legitimate (default deadtime − 2 × interval, at least one interval). */
  lostAfterMs?: number;
  /** Evaluation window [from, to]. */
  from: number;
  to: number;
  /** VIP ownership at `from` (absent = not owned). */
  initialOwners: string[];
}

export interface Violation {
  kind: 'two-owners' | 'no-owner' | 'spurious-takeover';
  /** Start of the episode (epoch ms). */
  at: number;
  durationMs: number;
  detail: string;
}

export interface InvariantReport {
  windowMs: number;
  twoOwners: { totalMs: number; allowedMs: number; violatingMs: number; episodes: number; longestViolatingMs: number; deadOwnerMs: number };
  noOwner: { totalMs: number; episodes: number; longestMs: number; budgetMs: number; violatingEpisodes: number };
  takeovers: { total: number; spurious: number };
  violations: Violation[];
  ok: boolean;
}

interface Interval {
  from: number;
  to: number;
}

/** Merges overlapping or touching intervals. */
function merge(xs: Interval[]): Interval[] {
  const s = xs.filter((x) => x.to > x.from).sort((a, b) => a.from - b.from);
  const out: Interval[] = [];
  for (const x of s) {
    const last = out[out.length - 1];
    if (last && x.from <= last.to) last.to = Math.max(last.to, x.to);
    else out.push({ ...x });
  }
  return out;
}

const inAny = (xs: readonly Interval[], t: number): boolean => xs.some((x) => t >= x.from && t < x.to);

/** Intervals in which a per-node state holds, from on/off events (state `initial` before the first). */
function stateIntervals(events: readonly FaultEvent[], node: string, on: FaultEvent['kind'], off: FaultEvent['kind'], initial: boolean, from: number, to: number): Interval[] {
  const out: Interval[] = [];
  let since: number | null = initial ? from : null;
  for (const e of events) {
    if (!('node' in e) || e.node !== node) continue;
    if (e.kind === on && since === null) since = e.at;
    else if (e.kind === off && since !== null) {
      out.push({ from: since, to: e.at });
      since = null;
    }
  }
  if (since !== null) out.push({ from: since, to: Math.max(to, since) });
  return merge(out);
}

const pairKey = (a: string, b: string): string => (a < b ? `${a}|${b}` : `${b}|${a}`);

export function evaluateInvariants(faults: readonly FaultEvent[], ownership: readonly OwnershipChange[], p: InvariantParams): InvariantReport {
  const healMs = p.healMs ?? p.intervalMs + 20;
  const lostAfterMs = p.lostAfterMs ?? Math.max(p.intervalMs, p.deadtimeMs - 2 * p.intervalMs);
  const ev = [...faults].sort((a, b) => a.at - b.at);
  const horizon = p.to;

  const dead = new Map<string, Interval[]>();
  const frozen = new Map<string, Interval[]>();
  const owned = new Map<string, Interval[]>();
  for (const n of p.nodes) {
    dead.set(n, stateIntervals(ev, n, 'kill', 'start', false, p.from, horizon));
    frozen.set(n, stateIntervals(ev, n, 'stop', 'cont', false, p.from, horizon));
    const own: Interval[] = [];
    let since: number | null = p.initialOwners.includes(n) ? p.from : null;
    for (const c of [...ownership].filter((o) => o.node === n).sort((a, b) => a.at - b.at)) {
      if (c.owned && since === null) since = Math.max(c.at, p.from);
      else if (!c.owned && since !== null) {
        own.push({ from: since, to: Math.max(since, c.at) });
        since = null;
      }
    }
    if (since !== null) own.push({ from: since, to: Math.max(horizon, since) });
    owned.set(n, merge(own).map((x) => ({ from: Math.max(x.from, p.from), to: Math.min(x.to, p.to) })).filter((x) => x.to > x.from));
  }

  // per pair and link: intervals in which the link is cut between the two
  const cuts = new Map<string, Interval[]>();
  for (const l of p.links) {
    for (const a of l.nodes) {
      for (const b of l.nodes) {
        if (a >= b) continue;
        const out: Interval[] = [];
        let since: number | null = null;
        for (const e of ev) {
          if (!('link' in e) || e.link !== l.name || pairKey(e.a, e.b) !== pairKey(a, b)) continue;
          if (e.kind === 'cut' && since === null) since = e.at;
          else if (e.kind === 'mend' && since !== null) {
            out.push({ from: since, to: e.at });
            since = null;
          }
        }
        if (since !== null) out.push({ from: since, to: Math.max(horizon, since) });
        cuts.set(`${pairKey(a, b)}|${l.name}`, merge(out));
      }
    }
  }
  /** Intervals in which a and b cannot hear each other: every shared link cut, or one of them frozen. */
  const apartCache = new Map<string, Interval[]>();
  const apart = (a: string, b: string): Interval[] => {
    const key = pairKey(a, b);
    const hit = apartCache.get(key);
    if (hit) return hit;
    const shared = p.links.filter((l) => l.nodes.includes(a) && l.nodes.includes(b));
    // every shared link cut: intersection of the links' cut intervals
    let all: Interval[] = shared.length === 0 ? [{ from: -Infinity, to: Infinity }] : (cuts.get(`${key}|${shared[0]?.name}`) ?? []);
    for (const l of shared.slice(1)) all = intersect(all, cuts.get(`${key}|${l.name}`) ?? []);
    const r = merge([...all, ...(frozen.get(a) ?? []), ...(frozen.get(b) ?? [])]);
    apartCache.set(key, r);
    return r;
  };

  // breakpoints: every time something changes, plus the derived deadlines
  const bp = new Set<number>([p.from, p.to]);
  const addAll = (xs: Interval[], extra: number[] = []): void => {
    for (const x of xs) {
      for (const t of [x.from, x.to, ...extra.map((d) => x.to + d)]) if (t > p.from && t < p.to) bp.add(t);
    }
  };
  for (const n of p.nodes) {
    addAll(owned.get(n) ?? []);
    addAll(dead.get(n) ?? [], [p.deadtimeMs, Math.max(p.deadtimeMs, p.initdeadMs ?? p.deadtimeMs)]);
    addAll(frozen.get(n) ?? [], [p.deadtimeMs]);
  }
  for (const a of p.nodes) for (const b of p.nodes) if (a < b) addAll(apart(a, b), [healMs]);
  const times = [...bp].sort((x, y) => x - y);

  const ownersAt = (t: number): string[] => p.nodes.filter((n) => inAny(owned.get(n) ?? [], t));
  const isDead = (n: string, t: number): boolean => inAny(dead.get(n) ?? [], t);
  const isFrozen = (n: string, t: number): boolean => inAny(frozen.get(n) ?? [], t);
  /**
   * Alive and not frozen without a break for at least deadtime before t (or since before
   * the window), and at least initdead since its last restart.
   */
  const initdeadMs = Math.max(p.deadtimeMs, p.initdeadMs ?? p.deadtimeMs);
  const eligible = (n: string, t: number): boolean => {
    if (isDead(n, t) || isFrozen(n, t)) return false;
    const latest = (xs: Interval[]): number => xs.filter((x) => x.to <= t).reduce((m, x) => Math.max(m, x.to), -Infinity);
    return t - latest(frozen.get(n) ?? []) >= p.deadtimeMs && t - latest(dead.get(n) ?? []) >= initdeadMs;
  };
  const twoAllowed = (a: string, b: string, t: number): boolean => {
    if (isDead(a, t) || isDead(b, t)) return false;
    return apart(a, b).some((x) => t >= x.from && t < x.to + healMs);
  };

  const violations: Violation[] = [];
  const two = { totalMs: 0, allowedMs: 0, violatingMs: 0, episodes: 0, longestViolatingMs: 0, deadOwnerMs: 0 };
  const none = { totalMs: 0, episodes: 0, longestMs: 0, budgetMs: p.deadtimeMs + p.takeoverMs, violatingEpisodes: 0 };
  let twoRun: { from: number; to: number; owners: Set<string> } | null = null;
  let noneRun: { from: number; to: number } | null = null;
  const flushTwo = (): void => {
    if (!twoRun) return;
    const d = twoRun.to - twoRun.from;
    two.episodes += 1;
    two.longestViolatingMs = Math.max(two.longestViolatingMs, d);
    violations.push({ kind: 'two-owners', at: twoRun.from, durationMs: d, detail: `${[...twoRun.owners].sort().join(' and ')} both held the VIP ${d.toFixed(1)} ms, not apart and not within ${healMs} ms of a heal` });
    twoRun = null;
  };
  const flushNone = (): void => {
    if (!noneRun) return;
    const d = noneRun.to - noneRun.from;
    none.episodes += 1;
    none.longestMs = Math.max(none.longestMs, d);
    if (d > none.budgetMs) {
      none.violatingEpisodes += 1;
      violations.push({ kind: 'no-owner', at: noneRun.from, durationMs: d, detail: `no director held the VIP for ${d.toFixed(1)} ms while one was eligible (budget deadtime + takeover = ${none.budgetMs} ms)` });
    }
    noneRun = null;
  };

  for (let i = 0; i + 1 < times.length; i++) {
    const t0 = times[i] as number;
    const t1 = times[i + 1] as number;
    const d = t1 - t0;
    if (d <= 0) continue;
    const mid = t0 + d / 2;
    const owners = ownersAt(mid);
    // two owners
    if (owners.length >= 2) {
      two.totalMs += d;
      if (owners.some((n) => isDead(n, mid))) two.deadOwnerMs += d;
      let ok = true;
      for (const a of owners) for (const b of owners) if (a < b && !twoAllowed(a, b, mid)) ok = false;
      if (ok) {
        two.allowedMs += d;
        flushTwo();
      } else {
        two.violatingMs += d;
        if (twoRun && twoRun.to === t0) {
          twoRun.to = t1;
          for (const o of owners) twoRun.owners.add(o);
        } else {
          flushTwo();
          twoRun = { from: t0, to: t1, owners: new Set(owners) };
        }
      }
    } else flushTwo();
    // no owner while someone could own
    if (owners.length === 0 && p.nodes.some((n) => eligible(n, mid))) {
      none.totalMs += d;
      if (noneRun && noneRun.to === t0) noneRun.to = t1;
      else {
        flushNone();
        noneRun = { from: t0, to: t1 };
      }
    } else flushNone();
  }
  flushTwo();
  flushNone();

  // takeovers: every acquisition inside the window
  const takeovers = { total: 0, spurious: 0 };
  for (const n of p.nodes) {
    for (const x of owned.get(n) ?? []) {
      if (x.from <= p.from) continue;
      const t = x.from;
      takeovers.total += 1;
      const before = ownersAt(t - 1e-3).filter((o) => o !== n);
      const unexcused = before.filter((y) => {
        if (isDead(y, t)) return false;
        const lost = merge([...apart(n, y), ...(dead.get(y) ?? [])]);
        return !lost.some((s) => s.from <= t && s.to >= t - p.takeoverMs && Math.min(s.to, t) - s.from >= lostAfterMs);
      });
      if (unexcused.length > 0) {
        takeovers.spurious += 1;
        violations.push({ kind: 'spurious-takeover', at: t, durationMs: 0, detail: `${n} took the VIP while ${unexcused.join(', ')} held it, alive and in contact (not lost for ${lostAfterMs} ms)` });
      }
    }
  }

  violations.sort((a, b) => a.at - b.at);
  return { windowMs: p.to - p.from, twoOwners: two, noOwner: none, takeovers, violations, ok: violations.length === 0 };
}

function intersect(a: readonly Interval[], b: readonly Interval[]): Interval[] {
  const out: Interval[] = [];
  for (const x of a) for (const y of b) {
    const from = Math.max(x.from, y.from);
    const to = Math.min(x.to, y.to);
    if (to > from) out.push({ from, to });
  }
  return merge(out);
}
