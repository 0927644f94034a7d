/**
 * The lease verdict: has the daemon stopped serving, or is it only starved of CPU?
 *
 * The daemon renews its lease with the cluster process every interval. A late renewal has
 * two very different causes:
 * - the daemon is blocked (a synchronous loop of its own: it burns CPU without getting
 *   back to its timers), stopped or hung in the kernel (it neither runs nor waits to run):
 *   its table no longer follows health, the VIPs should go to a peer that can serve;
 * - the machine is overloaded and the daemon waits on the run queue: its dataplane (the
 *   kernel's IPVS, the forwarder's worker threads) keeps serving, and a peer under the
 *   same kind of load would lose its lease next. Handing over then only passes the VIPs
 *   back and forth: bench:failover's load scenario (stress-ng 4 hogs per core, 1,000
 *   probes, 10,000 real servers) measured 19 hand-overs in 10 minutes at 20/80 and 32 at
 *   10/40 with a wall-clock lease, none of them a dead daemon.
 *
 * The kernel tells the two apart: /proc/PID/task/TID/schedstat gives each thread's time on
 * a CPU and its time waiting on a run queue. The main thread's own wait is not enough: a
 * garbage collection makes it sleep on a futex until V8's helper threads finish their
 * share, and on a saturated machine those helpers wait on the run queue while the main
 * thread, asleep, shows neither running nor waiting — the chaos bench (stress-ng 4 hogs
 * per core, load average 31) logged "no lease for 1150 ms: it ran 5 ms and waited 10 ms"
 * and a hand-over for nothing. So the wait that counts is that of all its threads, summed:
 * the main thread waits for one helper, then another, each queued behind the hogs.
 * Pure: the samples come from the caller.
 */

/** Counters of the daemon, in ms (schedstat gives ns). */
export interface SchedSample {
  /** The main (event-loop) thread's time on a CPU. */
  cpuMs: number;
  /** The main thread's time waiting on a run queue. */
  waitMs: number;
  /** Every thread's run-queue wait by tid (the main thread's included), when read. */
  threads?: ReadonlyMap<number, number>;
}

/** The run-queue wait of all threads between two samples, summed (ms). */
export function threadsWaited(atLease: SchedSample, now: SchedSample): number {
  if (!now.threads || now.threads.size === 0) return Math.max(0, now.waitMs - atLease.waitMs);
  let sum = 0;
  for (const [tid, w] of now.threads) sum += Math.max(0, w - (atLease.threads?.get(tid) ?? 0));
  return sum;
}

export type LeaseVerdict =
  | { kind: 'fresh' }
  | { kind: 'starved'; waitedMs: number; ranMs: number; lateMs: number }
  | { kind: 'lapsed'; why: string };

/** A starved daemon still loses its lease after this many lease periods without a renewal. */
export const STARVED_CAP = 10;

/**
 * `sinceLeaseMs`: time since the last renewal; `atLease`: the daemon's counters then
 * (undefined when schedstat cannot be read); `now`: its counters now.
 *
 * Starved = its threads (the main thread, or helpers the main thread waits for) waited on
 * the run queue, summed, for at least a third of the time since the renewal, and the main
 * thread has not itself run for a whole lease period (a daemon that used a lease period of
 * CPU without renewing is blocked in its own work, whatever the load); up to
 * STARVED_CAP lease periods. Anything else past lease_ms is lapsed.
 */
export function leaseVerdict(sinceLeaseMs: number, leaseMs: number, atLease: SchedSample | undefined, now: SchedSample | undefined): LeaseVerdict {
  if (sinceLeaseMs <= leaseMs) return { kind: 'fresh' };
  const late = `no lease from the daemon for ${Math.round(sinceLeaseMs)} ms`;
  if (!atLease || !now) return { kind: 'lapsed', why: `${late} (blocked or hung)` };
  const ranMs = Math.max(0, now.cpuMs - atLease.cpuMs);
  const waitedMs = threadsWaited(atLease, now);
  if (ranMs >= leaseMs) return { kind: 'lapsed', why: `${late}: it ran ${Math.round(ranMs)} ms of CPU without renewing (blocked in its own work)` };
  if (sinceLeaseMs > STARVED_CAP * leaseMs) return { kind: 'lapsed', why: `${late} (starved of CPU for over ${STARVED_CAP} lease periods)` };
  if (waitedMs >= sinceLeaseMs / 3) return { kind: 'starved', waitedMs, ranMs, lateMs: sinceLeaseMs };
  return { kind: 'lapsed', why: `${late}: blocked, stopped or hung (it ran ${Math.round(ranMs)} ms and its threads waited ${Math.round(waitedMs)} ms in all for a CPU meanwhile)` };
}

/**
 * How long the judge itself was frozen (ms; 0 = it was not), from the gap between two of
 * its lease ticks (`everyMs` apart when on time). The cluster process runs at realtime
 * priority: a gap of two ticks and more (at least 100 ms) means it was stopped with the
 * whole director (SIGSTOP of the process tree, a VM paused) — and the daemon was too. The
 * daemon cannot be blamed for time nobody could watch: the lease's window starts again
 * after the freeze. Without it a director frozen for about lease_ms wins the split brain
 * on waking and hands the VIPs back one tick later (a chaos run: two flips and 82 ms of
 * two owners).
 */
export function judgeFrozenMs(tickGapMs: number, everyMs: number): number {
  return tickGapMs >= Math.max(2 * everyMs, 100) ? tickGapMs - everyMs : 0;
}

/** Parses /proc/PID/schedstat ("cpu_ns wait_ns timeslices"); undefined when malformed. */
export function parseSchedstat(text: string): SchedSample | undefined {
  const m = /^(\d+)\s+(\d+)\s+\d+\s*$/.exec(text);
  if (!m) return undefined;
  return { cpuMs: Number(m[1]) / 1e6, waitMs: Number(m[2]) / 1e6 };
}

/**
 * Is the daemon already dead, only not yet torn down? A SIGKILLed process leaves only
 * when the kernel has run its exit, which on a saturated machine waits for a CPU like
 * anything else (measured: over a second under stress-ng, load average 31), so the IPC
 * channel stays open and the lease lapses first — a make-before-break hand-over that keeps
 * a dead daemon's VIP beside its successor's. /proc/PID/status shows it: a pending
 * SIGKILL (bit 8 of SigPnd or ShdPnd) or the zombie/dead state. Pure: the text comes
 * from the caller.
 */
export function daemonDying(status: string): boolean {
  const state = /^State:\s+([A-Z])/m.exec(status)?.[1];
  if (state === 'Z' || state === 'X') return true;
  for (const key of ['SigPnd', 'ShdPnd']) {
    const hex = new RegExp(`^${key}:\\s+([0-9a-f]+)`, 'm').exec(status)?.[1];
    if (hex && (BigInt(`0x${hex}`) & 0x100n) !== 0n) return true;
  }
  return false;
}
