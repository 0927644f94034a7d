/**
 * fo and ovf (added with the ipvsadm import, which must carry every IPVS scheduler):
 * ip_vs_fo.c picks the available real server with the highest weight, the first of
 * equals; ip_vs_ovf.c the same among those whose active connections do not exceed their
 * weight.
 */
import { describe, expect, it } from 'vitest';
import { createScheduler, type SchedDest } from '../../src/forwarder/schedulers.js';

const ctx = { source: 1, destination: 2 };
const d = (weight: number, active = 0, extra: Partial<SchedDest> = {}): SchedDest => ({ weight, active, inactive: 0, ...extra });

describe('fo', () => {
  const fo = createScheduler('fo');
  it.each([
    [[d(1), d(5), d(3)], 1],
    [[d(5), d(5)], 0],
    [[d(0), d(0)], -1],
    [[d(1), d(5, 0, { overloaded: true }), d(3)], 2],
    [[d(1), d(5, 0, { excluded: true })], 0],
    [[d(2, 1000), d(1)], 0],
  ])('%j → %i', (dests, want) => {
    expect(fo.pick(dests, ctx)).toBe(want);
    expect(fo.effective).toBe('fo');
  });
});

describe('ovf', () => {
  const ovf = createScheduler('ovf');
  it.each([
    [[d(1), d(5), d(3)], 1],
    [[d(1), d(5, 5), d(3)], 1],
    [[d(1), d(5, 6), d(3)], 2],
    [[d(1, 2), d(5, 6), d(3, 4)], -1],
    [[d(0), d(2, 0, { overloaded: true })], -1],
  ])('%j → %i', (dests, want) => {
    expect(ovf.pick(dests, ctx)).toBe(want);
  });
});
