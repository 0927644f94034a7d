/** Inputs shared by the Maglev unit tests and bench:maglev: reproducible flows and real servers. */
import type { SchedDest } from '../../src/forwarder/schedulers.js';

/** A deterministic pseudo-random sequence of uint32 (xorshift32), so failures reproduce. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

export interface RS extends SchedDest {
  address: string;
  port: number;
}

/** n real servers on port 80 with distinct IPv4 addresses, ascending in canonical order. */
export const realServers = (n: number, weight = 1): RS[] =>
  Array.from({ length: n }, (_, i) => ({ address: `10.${(i >> 8) & 255}.${i & 255}.${10 + (i % 7)}`, port: 80, weight, active: 0, inactive: 0 }));
