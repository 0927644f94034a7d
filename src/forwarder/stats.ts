/**
 * Accounting: per real server counters as `ipvsadm -L -n --stats --rate` shows them, and
 * the rate estimator. Pure; the estimator is fed monotonic timestamps.
 */
import type { RealServerCounters } from '../reconcile/table.js';

/** The counters a worker keeps per real server (totals since the worker started): no rates, plus connect failures. */
export type DestCounters = Omit<RealServerCounters, 'cps' | 'bpsIn' | 'bpsOut'> & { connectFailures: number };

export const zeroCounters = (): DestCounters => ({
  active: 0,
  inactive: 0,
  connections: 0,
  bytesIn: 0,
  bytesOut: 0,
  packetsIn: 0,
  packetsOut: 0,
  connectFailures: 0,
});

export function addCounters(into: DestCounters, c: DestCounters): void {
  into.active += c.active;
  into.inactive += c.inactive;
  into.connections += c.connections;
  into.bytesIn += c.bytesIn;
  into.bytesOut += c.bytesOut;
  into.packetsIn += c.packetsIn;
  into.packetsOut += c.packetsOut;
  into.connectFailures += c.connectFailures;
}

interface Sample {
  at: number;
  connections: number;
  bytesIn: number;
  bytesOut: number;
}

/**
 * Rates over a sliding window (IPVS's estimator averages over about 2 s). `observe`
 * records the totals at `now`; `rates` answers per second over the samples in the window.
 */
export class RateEstimator {
  private readonly samples: Sample[] = [];
  constructor(private readonly windowMs = 2000) {}

  observe(now: number, c: { connections: number; bytesIn: number; bytesOut: number }): void {
    const last = this.samples[this.samples.length - 1];
    if (last !== undefined && now - last.at < 50) {
      last.connections = c.connections;
      last.bytesIn = c.bytesIn;
      last.bytesOut = c.bytesOut;
      last.at = now;
    } else this.samples.push({ at: now, connections: c.connections, bytesIn: c.bytesIn, bytesOut: c.bytesOut });
    // Keep one sample at or before the window start so the window is covered.
    while (this.samples.length > 2 && (this.samples[1] as Sample).at <= now - this.windowMs) this.samples.shift();
  }

  rates(): { cps: number; bpsIn: number; bpsOut: number } {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (first === undefined || last === undefined || last.at <= first.at) return { cps: 0, bpsIn: 0, bpsOut: 0 };
    const s = (last.at - first.at) / 1000;
    const r = (a: number, b: number): number => Math.max(0, Math.round((b - a) / s));
    return { cps: r(first.connections, last.connections), bpsIn: r(first.bytesIn, last.bytesIn), bpsOut: r(first.bytesOut, last.bytesOut) };
  }
}

export function toRealServerCounters(c: DestCounters, rates: { cps: number; bpsIn: number; bpsOut: number }): RealServerCounters {
  return {
    active: c.active,
    inactive: c.inactive,
    connections: c.connections,
    bytesIn: c.bytesIn,
    bytesOut: c.bytesOut,
    packetsIn: c.packetsIn,
    packetsOut: c.packetsOut,
    cps: rates.cps,
    bpsIn: rates.bpsIn,
    bpsOut: rates.bpsOut,
    connectErrors: c.connectFailures,
  };
}
