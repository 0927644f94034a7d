import { describe, expect, it } from 'vitest';
import { foldAddress } from '../../src/forwarder/address.js';
import {
  buildMaglevTable,
  FORWARDER_MH_TABLE_SIZE,
  hsiphash32,
  KERNEL_MH_TABLE_SIZE,
  MH_KEY1,
  MH_KEY2,
  MH_PRIMES,
  type MaglevMember,
} from '../../src/forwarder/maglev.js';
import { realServers, rng, type RS } from '../support/maglev-fixtures.js';
import { createScheduler, MaglevScheduler, type PickContext, type SchedDest } from '../../src/forwarder/schedulers.js';

// ---- an independent reference: SipHash-1-3 on BigInt, straight from lib/siphash.c
const MASK = (1n << 64n) - 1n;
const rol = (x: bigint, b: bigint): bigint => ((x << b) | (x >> (64n - b))) & MASK;
function refHsiphash(value: number, key: number): number {
  const k = BigInt(key);
  let v0 = 0x736f6d6570736575n ^ k;
  let v1 = 0x646f72616e646f6dn ^ k;
  let v2 = 0x6c7967656e657261n ^ k;
  let v3 = 0x7465646279746573n ^ k;
  const round = (): void => {
    v0 = (v0 + v1) & MASK; v1 = rol(v1, 13n); v1 ^= v0; v0 = rol(v0, 32n);
    v2 = (v2 + v3) & MASK; v3 = rol(v3, 16n); v3 ^= v2;
    v0 = (v0 + v3) & MASK; v3 = rol(v3, 21n); v3 ^= v0;
    v2 = (v2 + v1) & MASK; v1 = rol(v1, 17n); v1 ^= v2; v2 = rol(v2, 32n);
  };
  const b = (4n << 56n) | BigInt(value >>> 0);
  v3 ^= b;
  round();
  v0 ^= b;
  v2 ^= 0xffn;
  round();
  round();
  round();
  return Number((v0 ^ v1 ^ v2 ^ v3) & 0xffffffffn);
}



function shuffled<T>(xs: readonly T[], next: () => number): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = next() % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/** The real server (by address) each of `flows` client flows is sent to. */
function choices(s: MaglevScheduler, dests: readonly RS[], flows: readonly PickContext[]): string[] {
  s.changed(dests);
  return flows.map((c) => {
    const i = s.pick(dests, c);
    return i < 0 ? '-' : (dests[i] as RS).address;
  });
}

function flows(n: number, seed: number): PickContext[] {
  const next = rng(seed);
  return Array.from({ length: n }, () => ({ source: next(), destination: 0, sourcePort: next() & 0xffff }));
}

/** Slot counts per member of a built table. */
function slotCounts(table: Int32Array, n: number): number[] {
  const c = new Array<number>(n).fill(0);
  for (const k of table) if (k >= 0) c[k] = (c[k] as number) + 1;
  return c;
}

describe('hsiphash32 (the kernel hsiphash_1u32 on 64-bit)', () => {
  it('equals a BigInt SipHash-1-3 reference for 2000 values and both mh keys', () => {
    const next = rng(7);
    for (let i = 0; i < 2000; i++) {
      const v = next();
      expect(hsiphash32(v, MH_KEY1)).toBe(refHsiphash(v, MH_KEY1));
      expect(hsiphash32(v, MH_KEY2)).toBe(refHsiphash(v, MH_KEY2));
    }
    for (const v of [0, 1, 0xffffffff, 0x80000000]) expect(hsiphash32(v, MH_KEY1)).toBe(refHsiphash(v, MH_KEY1));
  });
});

describe('buildMaglevTable', () => {
  const members = (n: number, weight = 1): MaglevMember[] => realServers(n, weight).map((r) => ({ fold: foldAddress(r.address), port: r.port, weight: r.weight }));

  it('uses prime table sizes (the kernel list) and fills every slot', () => {
    expect(MH_PRIMES).toContain(KERNEL_MH_TABLE_SIZE);
    expect(MH_PRIMES).toContain(FORWARDER_MH_TABLE_SIZE);
    const t = buildMaglevTable(members(7), KERNEL_MH_TABLE_SIZE);
    expect(t.length).toBe(KERNEL_MH_TABLE_SIZE);
    expect(t.every((k) => k >= 0 && k < 7)).toBe(true);
  });

  it('same input → same table', () => {
    const a = buildMaglevTable(members(25));
    const b = buildMaglevTable(members(25));
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
  });

  it.each([1, 2, 3, 10, 33, 100])('equal weights: each of %i real servers gets floor(M/N) or ceil(M/N) slots', (n) => {
    const c = slotCounts(buildMaglevTable(members(n)), n);
    const lo = Math.floor(FORWARDER_MH_TABLE_SIZE / n);
    for (const k of c) expect(k === lo || k === lo + 1).toBe(true);
  });

  it('weights are honored in proportion (1:2:3:4)', () => {
    const m = members(4).map((x, i) => ({ ...x, weight: i + 1 }));
    const c = slotCounts(buildMaglevTable(m), 4);
    c.forEach((k, i) => expect(k / FORWARDER_MH_TABLE_SIZE).toBeCloseTo((i + 1) / 10, 2));
  });

  it('large weights are scaled by gcd and shifted like ip_vs_mh (1000:3000 is 1:3)', () => {
    const m = members(2).map((x, i) => ({ ...x, weight: i === 0 ? 1000 : 3000 }));
    const c = slotCounts(buildMaglevTable(m), 2);
    expect((c[1] as number) / (c[0] as number)).toBeCloseTo(3, 1);
    // weight 1 beside 65535: the shift rounds it to 0 turns, and the kernel still gives it one
    const tiny = members(2).map((x, i) => ({ ...x, weight: i === 0 ? 1 : 65535 }));
    expect(slotCounts(buildMaglevTable(tiny), 2)[0]).toBeGreaterThan(0);
  });

  it('no positive weight → an empty table', () => {
    expect(buildMaglevTable(members(3, 0), 251).every((k) => k === -1)).toBe(true);
    expect(buildMaglevTable([], 251).every((k) => k === -1)).toBe(true);
  });
});

describe('MaglevScheduler (mh in the forwarder)', () => {
  it('createScheduler("mh") is the Maglev scheduler with its flags', () => {
    const s = createScheduler('mh', ['mh-port', 'mh-fallback']) as MaglevScheduler;
    expect(s).toBeInstanceOf(MaglevScheduler);
    expect(s.effective).toBe('mh');
    expect(s.hashPort).toBe(true);
    expect(s.fallback).toBe(true);
    expect((createScheduler('mh') as MaglevScheduler).hashPort).toBe(false);
  });

  it.each([3, 10, 57])('order independence: %i real servers listed in 5 random orders pick alike for 3000 flows', (n) => {
    const rs = realServers(n);
    const f = flows(3000, n);
    const base = choices(new MaglevScheduler(['mh-port']), rs, f);
    const next = rng(99 + n);
    for (let k = 0; k < 5; k++) expect(choices(new MaglevScheduler(['mh-port']), shuffled(rs, next), f)).toEqual(base);
  });

  it('the table follows the set, not its history: removed and re-added = never removed', () => {
    const rs = realServers(8);
    const f = flows(2000, 3);
    const s = new MaglevScheduler(['mh-port']);
    const before = choices(s, rs, f);
    choices(s, rs.slice(1), f);
    const back = [...rs.slice(1), rs[0] as RS];
    expect(choices(s, back, f)).toEqual(before);
  });

  it.each([5, 10, 20, 50, 100])('removing one of %i moves about 1/N of the slots (bound 2/N): its own and a few of the others', (n) => {
    const rs = realServers(n);
    const mem = (xs: RS[]): MaglevMember[] => xs.map((r) => ({ fold: foldAddress(r.address), port: r.port, weight: r.weight }));
    // canonical order = the order given here (ascending addresses) for both tables
    const before = buildMaglevTable(mem(rs));
    const gone = Math.floor(n / 2);
    const after = buildMaglevTable(mem(rs.filter((_, i) => i !== gone)));
    let moved = 0;
    let movedOthers = 0;
    for (let s = 0; s < before.length; s++) {
      const was = before[s] as number;
      const now = after[s] as number;
      const nowOrig = now >= gone ? now + 1 : now;
      if (was !== nowOrig) {
        moved++;
        if (was !== gone) movedOthers++;
      }
    }
    const frac = moved / before.length;
    expect(frac).toBeGreaterThanOrEqual(1 / n - 0.001); // at least the removed one's slots
    expect(frac).toBeLessThanOrEqual(2 / n);
    expect(movedOthers / before.length).toBeLessThanOrEqual(1 / n);
  });

  it('flows of a removed real server move; flows of the others mostly stay (scheduler level)', () => {
    const rs = realServers(10);
    const f = flows(5000, 11);
    const before = choices(new MaglevScheduler(['mh-port']), rs, f);
    const after = choices(new MaglevScheduler(['mh-port']), rs.filter((r) => r.address !== (rs[4] as RS).address), f);
    let movedOthers = 0;
    before.forEach((b, i) => {
      if (b === (rs[4] as RS).address) expect(after[i]).not.toBe(b);
      else if (after[i] !== b) movedOthers++;
    });
    expect(movedOthers / f.length).toBeLessThan(0.05);
  });

  it('mh-port spreads the flows of one client; without it they all go to one real server', () => {
    const rs = realServers(10);
    const source = foldAddress('192.0.2.7');
    const f = Array.from({ length: 2000 }, (_, i) => ({ source, destination: 0, sourcePort: 30000 + i }));
    const spread = new Set(choices(new MaglevScheduler(['mh-port']), rs, f));
    expect(spread.size).toBe(10);
    const counts = new Map<string, number>();
    for (const a of choices(new MaglevScheduler(['mh-port']), rs, f)) counts.set(a, (counts.get(a) ?? 0) + 1);
    for (const c of counts.values()) expect(c / f.length).toBeLessThan(0.2);
    expect(new Set(choices(new MaglevScheduler([]), rs, f)).size).toBe(1);
  });

  it('an overloaded real server: no real server without mh-fallback; another one with it', () => {
    const rs = realServers(4);
    const f = flows(400, 5);
    const plain = new MaglevScheduler(['mh-port']);
    const fb = new MaglevScheduler(['mh-port', 'mh-fallback']);
    const base = choices(plain, rs, f);
    const victim = (rs[2] as RS).address;
    const loaded = rs.map((r) => (r.address === victim ? { ...r, overloaded: true } : r));
    const a = choices(plain, loaded, f);
    const b = choices(fb, loaded, f);
    base.forEach((was, i) => {
      if (was === victim) {
        expect(a[i]).toBe('-');
        expect(b[i]).not.toBe('-');
        expect(b[i]).not.toBe(victim);
      } else {
        expect(a[i]).toBe(was);
        expect(b[i]).toBe(was);
      }
    });
  });

  it('a connect retry (excluded) walks on even without mh-fallback', () => {
    const rs = realServers(4);
    const s = new MaglevScheduler(['mh-port']);
    s.changed(rs);
    const c = { source: 1234, destination: 0, sourcePort: 4321 };
    const first = s.pick(rs, c);
    expect(first).toBeGreaterThanOrEqual(0);
    (rs[first] as RS).excluded = true;
    const second = s.pick(rs, c);
    (rs[first] as RS).excluded = false;
    expect(second).toBeGreaterThanOrEqual(0);
    expect(second).not.toBe(first);
  });

  it('weight 0 in the config: no slots, no flows', () => {
    const rs = realServers(3);
    const quiet = rs.map((r, i) => (i === 0 ? { ...r, weight: 0 } : r));
    const got = choices(new MaglevScheduler(['mh-port']), quiet, flows(1000, 8));
    expect(got).not.toContain((rs[0] as RS).address);
    expect(got).not.toContain('-');
  });

  it.each([5, 20, 100])(
    'a failed (quiescent) or drained real server of %i keeps its slots: only its own flows move (mh-fallback walks them on)',
    (n) => {
      const rs = realServers(n);
      const f = flows(4000, n);
      const before = choices(new MaglevScheduler(['mh-port', 'mh-fallback']), rs, f);
      const victim = (rs[1] as RS).address;
      const failed = rs.map((r) => (r.address === victim ? { ...r, weight: 0, configuredWeight: 1 } : r));
      const after = choices(new MaglevScheduler(['mh-port', 'mh-fallback']), failed, f);
      const plain = choices(new MaglevScheduler(['mh-port']), failed, f);
      before.forEach((was, i) => {
        if (was === victim) {
          expect(after[i]).not.toBe(victim);
          expect(after[i]).not.toBe('-');
          expect(plain[i]).toBe('-'); // the kernel without mh-fallback: no real server
        } else {
          expect(after[i]).toBe(was);
          expect(plain[i]).toBe(was);
        }
      });
    },
  );
});
