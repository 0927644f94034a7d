import { describe, expect, it } from 'vitest';
import { foldAddress } from '../../src/forwarder/address.js';
import {
  createScheduler,
  dhBucket,
  hash32to8,
  HashScheduler,
  HASH_BUCKETS,
  LeastConnection,
  RoundRobin,
  WeightedLeast,
  WeightedRoundRobin,
  type SchedDest,
} from '../../src/forwarder/schedulers.js';

const dests = (...weights: number[]): SchedDest[] => weights.map((weight) => ({ weight, active: 0, inactive: 0 }));
const ctx = { source: 0, destination: 0 };
const names = 'ABCDEFGH';
function sequence(s: { pick(d: readonly SchedDest[], c: typeof ctx): number }, d: SchedDest[], n: number): string {
  let out = '';
  for (let i = 0; i < n; i++) {
    const k = s.pick(d, ctx);
    out += k < 0 ? '-' : names[k];
  }
  return out;
}
function counts(seq: string): Record<string, number> {
  const c: Record<string, number> = {};
  for (const ch of seq) c[ch] = (c[ch] ?? 0) + 1;
  return c;
}

describe('rr (ip_vs_rr.c)', () => {
  it('cycles through the real servers in table order', () => {
    expect(sequence(new RoundRobin(), dests(1, 1, 1), 7)).toBe('ABCABCA');
  });
  it('ignores weights except that weight 0 (drain) is skipped', () => {
    expect(sequence(new RoundRobin(), dests(5, 0, 1), 6)).toBe('ACACAC');
  });
  it('gives no real server when every weight is 0 or overloaded', () => {
    const d = dests(0, 1);
    (d[1] as SchedDest).overloaded = true;
    expect(sequence(new RoundRobin(), d, 2)).toBe('--');
  });
  it('continues after the last pick when the list changes', () => {
    const s = new RoundRobin();
    const d = dests(1, 1, 1);
    expect(sequence(s, d, 2)).toBe('AB');
    const next = [d[0], d[1], d[2], { weight: 1, active: 0, inactive: 0 }] as SchedDest[];
    s.changed(next);
    expect(sequence(s, next, 4)).toBe('CDAB');
  });
});

describe('wrr (ip_vs_wrr.c)', () => {
  it('interleaves by weight like IPVS: 4,3,2 → AABABCABC', () => {
    expect(sequence(new WeightedRoundRobin(), dests(4, 3, 2), 18)).toBe('AABABCABC'.repeat(2));
  });
  it('steps the current weight by the gcd of the weights', () => {
    // gcd 2: mw = 4 - (2 - 1) = 3; cw goes 3, 1: A A B per turn.
    expect(sequence(new WeightedRoundRobin(), dests(4, 2), 9)).toBe('AABAABAAB');
    expect(sequence(new WeightedRoundRobin(), dests(100, 50, 50), 8)).toBe('AABCAABC');
  });
  it('never picks weight 0 and gives none when all are 0', () => {
    expect(sequence(new WeightedRoundRobin(), dests(2, 0, 1), 6)).toBe('AACAAC');
    expect(sequence(new WeightedRoundRobin(), dests(0, 0), 3)).toBe('---');
  });
  it('follows a weight change mid-stream (dest_changed restarts from the head)', () => {
    const s = new WeightedRoundRobin();
    const d = dests(3, 1);
    expect(sequence(s, d, 4)).toBe('AAAB');
    (d[0] as SchedDest).weight = 1;
    (d[1] as SchedDest).weight = 3;
    s.changed(d);
    const seq = sequence(s, d, 400);
    expect(counts(seq)).toEqual({ A: 100, B: 300 });
    // Drain A mid-stream: no more A at all.
    (d[0] as SchedDest).weight = 0;
    s.changed(d);
    expect(sequence(s, d, 5)).toBe('BBBBB');
  });
  it.each([
    [[1, 1, 1]],
    [[5, 3, 1]],
    [[10, 20, 30, 40]],
    [[7, 0, 3]],
  ])('distributes exactly by weight over a full turn: %j', (w) => {
    const total = w.reduce((a, b) => a + b, 0);
    const seq = sequence(new WeightedRoundRobin(), dests(...w), total * 10);
    w.forEach((weight, i) => expect(counts(seq)[names[i] as string] ?? 0).toBe(weight * 10));
  });
});

describe('lc / wlc / sed / nq', () => {
  it('lc: least active*256 + inactive; the first of equals wins', () => {
    const d = dests(1, 1, 1);
    Object.assign(d[0] as SchedDest, { active: 1, inactive: 0 });
    Object.assign(d[1] as SchedDest, { active: 0, inactive: 200 });
    Object.assign(d[2] as SchedDest, { active: 0, inactive: 300 });
    expect(new LeastConnection().pick(d, ctx)).toBe(1); // 200 < 256 < 300
    Object.assign(d[1] as SchedDest, { inactive: 300 });
    expect(new LeastConnection().pick(d, ctx)).toBe(0); // 256 < 300 = 300
  });
  it('lc ignores weights except 0', () => {
    const d = dests(1, 100, 0);
    (d[0] as SchedDest).active = 1;
    (d[1] as SchedDest).active = 2;
    expect(new LeastConnection().pick(d, ctx)).toBe(0);
  });
  it('wlc: least overhead per weight (loh*w(d) > doh*w(least))', () => {
    const d = dests(1, 3);
    (d[0] as SchedDest).active = 1;
    (d[1] as SchedDest).active = 2;
    // A: 256/1, B: 512/3 → B
    expect(new WeightedLeast('wlc', 'wlc').pick(d, ctx)).toBe(1);
    (d[1] as SchedDest).active = 4; // 1024/3 > 256 → A
    expect(new WeightedLeast('wlc', 'wlc').pick(d, ctx)).toBe(0);
  });
  it('wlc converges to the weight ratio as connections stay open', () => {
    const s = createScheduler('wlc');
    const d = dests(1, 2, 3);
    for (let i = 0; i < 600; i++) (d[s.pick(d, ctx)] as SchedDest).active += 1;
    expect(d.map((x) => x.active)).toEqual([100, 200, 300]);
  });
  it('sed counts (active + 1) / weight and ignores inactive connections', () => {
    const d = dests(1, 1);
    Object.assign(d[0] as SchedDest, { active: 0, inactive: 1000 });
    Object.assign(d[1] as SchedDest, { active: 1, inactive: 0 });
    expect(new WeightedLeast('sed', 'sed').pick(d, ctx)).toBe(0);
    expect(new WeightedLeast('wlc', 'wlc').pick(d, ctx)).toBe(1); // wlc: 1000 > 256
    const e = dests(1, 4);
    (e[1] as SchedDest).active = 2; // A: 1/1, B: 3/4 → B
    expect(new WeightedLeast('sed', 'sed').pick(e, ctx)).toBe(1);
  });
  it('nq takes an idle real server at once, else behaves as sed', () => {
    const d = dests(1, 10, 1);
    (d[0] as SchedDest).active = 1;
    (d[1] as SchedDest).active = 1;
    expect(new WeightedLeast('nq', 'nq').pick(d, ctx)).toBe(2); // C is idle (sed would pick B: 2/10)
    expect(new WeightedLeast('sed', 'sed').pick(d, ctx)).toBe(1);
    (d[2] as SchedDest).active = 1;
    expect(new WeightedLeast('nq', 'nq').pick(d, ctx)).toBe(1);
  });
  it.each(['lc', 'wlc', 'sed', 'nq'] as const)('%s never schedules weight 0 (drain)', (name) => {
    const d = dests(0, 1);
    (d[1] as SchedDest).active = 50;
    expect(createScheduler(name).pick(d, ctx)).toBe(1);
    (d[1] as SchedDest).weight = 0;
    expect(createScheduler(name).pick(d, ctx)).toBe(-1);
  });
});

describe('sh / dh (ip_vs_sh.c, ip_vs_dh.c)', () => {
  it('hashes like the kernel (hash_32 golden ratio; dh * 2654435761)', () => {
    expect(hash32to8(0)).toBe(0);
    expect(hash32to8(1)).toBe(0x61); // 0x61c88647 >> 24
    expect(hash32to8(foldAddress('10.0.0.1'))).toBe(Math.imul(0x0a000001, 0x61c88647) >>> 24);
    expect(dhBucket(1)).toBe(2654435761 % 256);
  });
  it('sh sends a client address always to the same real server', () => {
    const s = createScheduler('sh');
    const d = dests(1, 1, 1);
    s.changed(d);
    for (const a of ['10.0.0.1', '10.0.0.2', '192.168.7.9', '2001:db8::5']) {
      const c = { source: foldAddress(a), destination: 0 };
      const first = s.pick(d, c);
      for (let i = 0; i < 5; i++) expect(s.pick(d, c)).toBe(first);
    }
  });
  it('sh gives each real server `weight` consecutive buckets', () => {
    const s = new HashScheduler('sh', 'sh');
    const d = dests(3, 1);
    s.changed(d);
    const got: number[] = [];
    for (let b = 0; b < 8; b++) {
      // find a source hashing to bucket b
      let v = 0;
      while (hash32to8(v) !== b) v++;
      got.push(s.pick(d, { source: v, destination: 0 }));
    }
    expect(got).toEqual([0, 0, 0, 1, 0, 0, 0, 1]);
    let a = 0;
    for (let v = 0; v < 1 << 16; v++) if (s.pick(d, { source: v * 65537, destination: 0 }) === 0) a++;
    expect(a / (1 << 16)).toBeCloseTo(0.75, 1);
  });
  it('sh: a drained bucket gives no real server (no fallback), but a connect retry walks on', () => {
    const s = new HashScheduler('sh', 'sh');
    const d = dests(1, 1);
    s.changed(d);
    let v = 0;
    while (s.pick(d, { source: v, destination: 0 }) !== 0) v++;
    (d[0] as SchedDest).weight = 0;
    expect(s.pick(d, { source: v, destination: 0 })).toBe(-1);
    (d[0] as SchedDest).weight = 1;
    (d[0] as SchedDest).excluded = true;
    expect(s.pick(d, { source: v, destination: 0 })).toBe(1);
  });
  it('dh maps one destination address to one real server', () => {
    const s = createScheduler('dh');
    const d = dests(1, 1, 1, 1);
    s.changed(d);
    const c = { source: 0, destination: foldAddress('10.1.1.1') };
    const k = s.pick(d, c);
    expect(k).toBe(dhBucket(foldAddress('10.1.1.1')) % 4);
    for (let i = 0; i < 5; i++) expect(s.pick(d, { ...c, source: i })).toBe(k);
    expect(HASH_BUCKETS).toBe(256);
  });
});

describe('mapping of the other IPVS schedulers', () => {
  it.each([
    ['lblc', 'wlc'],
    ['lblcr', 'wlc'],
    ['mh', 'mh'],
    ['rr', 'rr'],
  ] as const)('%s runs as %s', (name, effective) => {
    const s = createScheduler(name);
    expect(s.name).toBe(name);
    expect(s.effective).toBe(effective);
  });
});
