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
 * The kernel tells the two apart: /proc/PID/schedstat gives the main thread's time on a
 * CPU and its time waiting on a run queue. Pure: the samples come from the caller.
 */

/** Counters of the daemon's main thread, in ms (schedstat gives ns). */
export interface SchedSample {
  cpuMs: number;
  waitMs: number;
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
 * Starved = it waited on the run queue for at least half of the time since the renewal
 * and has not itself run for a whole lease period (a daemon that used a lease period of
 * CPU without renewing is blocked in its own work, whatever the load); up to
 * STARVED_CAP lease periods. Anything else past lease_ms is lapsed.
 */
export function leaseVerdict(sinceLeaseMs: number, leaseMs: number, atLease: SchedSample | undefined, now: SchedSample | undefined): LeaseVerdict {
  if (sinceLeaseMs <= leaseMs) return { kind: 'fresh' };
  const late = `no lease from the daemon for ${Math.round(sinceLeaseMs)} ms`;
  if (!atLease || !now) return { kind: 'lapsed', why: `${late} (blocked or hung)` };
  const ranMs = Math.max(0, now.cpuMs - atLease.cpuMs);
  const waitedMs = Math.max(0, now.waitMs - atLease.waitMs);
  if (ranMs >= leaseMs) return { kind: 'lapsed', why: `${late}: it ran ${Math.round(ranMs)} ms of CPU without renewing (blocked in its own work)` };
  if (sinceLeaseMs > STARVED_CAP * leaseMs) return { kind: 'lapsed', why: `${late} (starved of CPU for over ${STARVED_CAP} lease periods)` };
  if (waitedMs >= sinceLeaseMs / 2) return { kind: 'starved', waitedMs, ranMs, lateMs: sinceLeaseMs };
  return { kind: 'lapsed', why: `${late}: blocked, stopped or hung (it ran ${Math.round(ranMs)} ms and waited ${Math.round(waitedMs)} ms for a CPU meanwhile)` };
}

/** Parses /proc/PID/schedstat ("cpu_ns wait_ns timeslices"); undefined when malformed. */
export function parseSchedstat(text: string): SchedSample | undefined {
  const m = /^(\d+)\s+(\d+)\s+\d+\s*$/.exec(text);
  if (!m) return undefined;
  return { cpuMs: Number(m[1]) / 1e6, waitMs: Number(m[2]) / 1e6 };
}
