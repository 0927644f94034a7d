/**
 * The prober's timeline and what the failover tests and the benchmark read from it.
 * Pure: no I/O, no clock.
 *
 * Outage of a switch from director A to director B = (first answer from B) - (last
 * answer from A before it): the time the client could not reach the service at the VIP
 * as seen by a client probing every few milliseconds.
 */

export type ProbeEvent =
  | { kind: 'answer'; at: number; startedAt: number; name: string }
  | { kind: 'error'; at: number; startedAt: number; code: string };

/** Parses one prober output line (`a <at> <started> <name>` or `e <at> <started> <code>`); null for anything else. */
export function parseProbeLine(line: string): ProbeEvent | null {
  const m = /^([ae]) (\d+(?:\.\d+)?) (\d+(?:\.\d+)?) (\S+)$/.exec(line.trim());
  if (!m) return null;
  const at = Number(m[2]);
  const startedAt = Number(m[3]);
  const what = m[4] as string;
  return m[1] === 'a' ? { kind: 'answer', at, startedAt, name: what } : { kind: 'error', at, startedAt, code: what };
}

export interface Switch {
  from: string;
  to: string;
  /** Last answer from `from` before the switch. */
  lastOld: number;
  /** First answer from `to`. */
  firstNew: number;
  outageMs: number;
  /** Failed attempts started between the two answers. */
  errors: number;
}

/**
 * Every change of the answering director in the timeline, in order. Answers are taken
 * in order of arrival; an isolated answer from the old director arriving after the
 * new one answered (an attempt that started before the switch) does not count as a
 * switch back unless the old one answers again after the new one stopped answering.
 */
export function switches(events: readonly ProbeEvent[], opts: { from?: number; to?: number } = {}): Switch[] {
  const answers = events
    .filter((e): e is Extract<ProbeEvent, { kind: 'answer' }> => e.kind === 'answer')
    .filter((e) => (opts.from === undefined || e.at >= opts.from) && (opts.to === undefined || e.at <= opts.to))
    .sort((a, b) => a.at - b.at);
  const out: Switch[] = [];
  let current: string | undefined;
  let last = 0;
  for (const a of answers) {
    if (current === undefined) {
      current = a.name;
      last = a.at;
      continue;
    }
    if (a.name === current) {
      last = a.at;
      continue;
    }
    // an answer to an attempt started before the last answer of the current owner is a straggler
    if (a.startedAt < last) continue;
    const lastOld = last;
    const errors = events.filter((e) => e.kind === 'error' && e.startedAt > lastOld && e.startedAt < a.at).length;
    out.push({ from: current, to: a.name, lastOld, firstNew: a.at, outageMs: a.at - lastOld, errors });
    current = a.name;
    last = a.at;
  }
  return out;
}

/** The director that answered last (at or before `at`), or undefined. */
export function lastAnswer(events: readonly ProbeEvent[], at = Infinity): Extract<ProbeEvent, { kind: 'answer' }> | undefined {
  let best: Extract<ProbeEvent, { kind: 'answer' }> | undefined;
  for (const e of events) if (e.kind === 'answer' && e.at <= at && (!best || e.at > best.at)) best = e;
  return best;
}

/** Longest gap between consecutive answers in [from, to] (any director), in ms. */
export function longestGap(events: readonly ProbeEvent[], from: number, to: number): number {
  const ats = events.filter((e) => e.kind === 'answer' && e.at >= from && e.at <= to).map((e) => e.at).sort((a, b) => a - b);
  let gap = 0;
  let prev = from;
  for (const t of ats) {
    gap = Math.max(gap, t - prev);
    prev = t;
  }
  return Math.max(gap, to - prev);
}

export interface Summary {
  runs: number;
  min: number;
  median: number;
  p90: number;
  max: number;
}

/** min/median/p90/max by nearest rank (p90 of 10 runs is the 9th smallest). */
export function summarize(values: readonly number[]): Summary | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const rank = (p: number): number => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))] as number;
  const mid = s.length >> 1;
  const median = s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
  return { runs: s.length, min: s[0] as number, median, p90: rank(0.9), max: s[s.length - 1] as number };
}

/**
 * Alternating answers after a switch to a new director: answers from `old` to attempts
 * started after the new director first answered (`since`), up to `until`. A clean
 * make-before-break handover has none; each one is a client that reached the new owner
 * and then the old one again (both answering ARP or holding the VIP at once).
 */
export function alternatingAnswers(events: readonly ProbeEvent[], old: string, since: number, until = Infinity): number {
  return events.filter((e) => e.kind === 'answer' && e.name === old && e.startedAt > since && e.at <= until).length;
}
