/** The chaos bench's invariant checker (test/lab/invariants.ts) on synthetic timelines. */
import { describe, expect, it } from 'vitest';
import { evaluateInvariants, type FaultEvent, type InvariantParams, type OwnershipChange } from '../lab/invariants.js';
import { acquisitions, ownersAt, parseAddrMonitorLine } from '../lab/vipwatch.js';

// defaults-like timers: interval 100, deadtime 600 → lost after 400 ms, heal allowance 120 ms
const base = (over: Partial<InvariantParams> = {}): InvariantParams => ({
  nodes: ['d1', 'd2', 'd3'],
  links: [
    { name: 'heartbeat', nodes: ['d1', 'd2'] },
    { name: 'lan', nodes: ['d1', 'd2', 'd3'] },
  ],
  intervalMs: 100,
  deadtimeMs: 600,
  takeoverMs: 100,
  from: 0,
  to: 10_000,
  initialOwners: ['d1'],
  ...over,
});
const own = (node: string, at: number, owned = true): OwnershipChange => ({ node, at, owned });
const f = (kind: 'kill' | 'start' | 'stop' | 'cont', node: string, at: number): FaultEvent => ({ kind, node, at });
const cut = (a: string, b: string, link: string, at: number, kind: 'cut' | 'mend' = 'cut'): FaultEvent => ({ kind, a, b, link, at });

describe('evaluateInvariants', () => {
  it('a quiet run with one owner throughout is clean', () => {
    const r = evaluateInvariants([], [], base());
    expect(r.ok).toBe(true);
    expect(r.twoOwners.totalMs).toBe(0);
    expect(r.noOwner.totalMs).toBe(0);
    expect(r.takeovers).toEqual({ total: 0, spurious: 0 });
    expect(r.windowMs).toBe(10_000);
  });

  it('a crash whose VIP goes with the daemon and a takeover within deadtime + takeover is clean', () => {
    const r = evaluateInvariants([f('kill', 'd1', 1000), f('start', 'd1', 3000)], [own('d1', 1001, false), own('d2', 1650)], base());
    expect(r.ok).toBe(true);
    expect(r.noOwner).toMatchObject({ episodes: 1, longestMs: 649, budgetMs: 700, violatingEpisodes: 0 });
    expect(r.takeovers).toEqual({ total: 1, spurious: 0 });
  });

  it('a dead daemon that leaves its VIP behind makes two owners, never allowed', () => {
    const r = evaluateInvariants([f('kill', 'd1', 1000), f('start', 'd1', 3000)], [own('d2', 1650), own('d1', 3100, false)], base());
    expect(r.ok).toBe(false);
    expect(r.takeovers.spurious).toBe(0); // d1 was dead: the takeover itself was right
    expect(r.twoOwners.violatingMs).toBeCloseTo(1450, 6);
    expect(r.twoOwners.deadOwnerMs).toBeCloseTo(1350, 6);
    expect(r.violations.map((v) => v.kind)).toEqual(['two-owners']);
    expect(r.violations[0]?.detail).toContain('d1 and d2');
  });

  it('a takeover later than deadtime + takeover after the VIP went is a no-owner violation', () => {
    const r = evaluateInvariants([f('kill', 'd1', 1000)], [own('d1', 1000, false), own('d2', 2000)], base());
    expect(r.noOwner).toMatchObject({ episodes: 1, longestMs: 1000, violatingEpisodes: 1 });
    expect(r.violations).toEqual([expect.objectContaining({ kind: 'no-owner', at: 1000, durationMs: 1000 })]);
  });

  it('no owner is only counted once some director has been up for deadtime', () => {
    // d2 dead before the window; d1 starts at 500 and is eligible from 1100; it takes the VIP at 2500
    const r = evaluateInvariants(
      [f('kill', 'd1', -200), f('kill', 'd2', -100), f('start', 'd1', 500)],
      [own('d1', 2500)],
      base({ nodes: ['d1', 'd2'], links: [{ name: 'lan', nodes: ['d1', 'd2'] }], initialOwners: [] }),
    );
    expect(r.noOwner).toMatchObject({ totalMs: 1400, episodes: 1, violatingEpisodes: 1 });
    expect(r.violations[0]).toMatchObject({ kind: 'no-owner', at: 1100 });
  });

  it('a restarted director that hears nobody is eligible only initdead after its restart', () => {
    // every director dead; d1 back at 500 waits initdead 2000 (no one to hear), takes the VIP at 2550
    const faults = [f('kill', 'd1', -200), f('kill', 'd2', -100), f('start', 'd1', 500)];
    const params = base({ nodes: ['d1', 'd2'], links: [{ name: 'lan', nodes: ['d1', 'd2'] }], initialOwners: [] });
    const r = evaluateInvariants(faults, [own('d1', 2550)], { ...params, initdeadMs: 2000 });
    expect(r.ok).toBe(true);
    expect(r.noOwner).toMatchObject({ totalMs: 50, episodes: 1, violatingEpisodes: 0 });
    // later than initdead + takeover is still a violation
    const late = evaluateInvariants(faults, [own('d1', 3400)], { ...params, initdeadMs: 2000 });
    expect(late.violations).toEqual([expect.objectContaining({ kind: 'no-owner', at: 2500, durationMs: 900 })]);
  });

  it('a stall below deadtime that makes the peer take over is a spurious takeover', () => {
    const r = evaluateInvariants([f('stop', 'd1', 1000), f('cont', 'd1', 1200)], [own('d2', 1150), own('d1', 1250, false)], base());
    expect(r.takeovers).toEqual({ total: 1, spurious: 1 });
    // the two owners themselves are within the freeze and one interval after it
    expect(r.twoOwners).toMatchObject({ totalMs: 100, allowedMs: 100, violatingMs: 0 });
    expect(r.violations.map((v) => v.kind)).toEqual(['spurious-takeover']);
    expect(r.violations[0]?.detail).toMatch(/d2 took the VIP while d1 held it/);
  });

  it('a stall above deadtime: the takeover is right, two owners allowed until one interval after SIGCONT', () => {
    const clean = evaluateInvariants([f('stop', 'd1', 1000), f('cont', 'd1', 3000)], [own('d2', 1600), own('d1', 3050, false)], base());
    expect(clean.ok).toBe(true);
    expect(clean.twoOwners).toMatchObject({ totalMs: 1450, allowedMs: 1450 });
    const slow = evaluateInvariants([f('stop', 'd1', 1000), f('cont', 'd1', 3000)], [own('d2', 1600), own('d1', 3300, false)], base());
    expect(slow.ok).toBe(false);
    expect(slow.twoOwners.violatingMs).toBeCloseTo(180, 6); // 3120 → 3300
    expect(slow.violations).toEqual([expect.objectContaining({ kind: 'two-owners', at: 3120 })]);
  });

  it('one link cut while the other carries heartbeats: a takeover is spurious and so are the two owners', () => {
    const r = evaluateInvariants([cut('d1', 'd2', 'heartbeat', 1000), cut('d1', 'd2', 'heartbeat', 5000, 'mend')], [own('d2', 1700), own('d2', 1800, false)], base());
    expect(r.takeovers.spurious).toBe(1);
    expect(r.twoOwners.violatingMs).toBe(100);
  });

  it('every shared link cut (a partition): split brain allowed, healed within one interval', () => {
    const faults = [cut('d1', 'd2', 'heartbeat', 1000), cut('d1', 'd2', 'lan', 1000), cut('d1', 'd2', 'heartbeat', 3000, 'mend'), cut('d1', 'd2', 'lan', 3000, 'mend')];
    const r = evaluateInvariants(faults, [own('d2', 1650), own('d2', 3060, false)], base());
    expect(r.ok).toBe(true);
    expect(r.takeovers).toEqual({ total: 1, spurious: 0 });
    const late = evaluateInvariants(faults, [own('d2', 1650), own('d2', 3500, false)], base());
    expect(late.twoOwners.violatingMs).toBeCloseTo(380, 6);
  });

  it('a takeover decided just before the heal still counts as legitimate', () => {
    const faults = [cut('d1', 'd2', 'heartbeat', 1000), cut('d1', 'd2', 'lan', 1000), cut('d1', 'd2', 'heartbeat', 1700, 'mend'), cut('d1', 'd2', 'lan', 1700, 'mend')];
    const r = evaluateInvariants(faults, [own('d2', 1750), own('d1', 1790, false)], base());
    expect(r.ok).toBe(true);
    const tooLate = evaluateInvariants(faults, [own('d2', 1900), own('d1', 1950, false)], base());
    expect(tooLate.takeovers.spurious).toBe(1);
  });

  it('a director whose only link to the active is cut is lost to it; a third director that hears both is not', () => {
    // d3 shares only the LAN with d1: cut it and d3 may take over (its own view), d2 may not
    const faults = [cut('d1', 'd3', 'lan', 1000), cut('d1', 'd3', 'lan', 4000, 'mend')];
    const byD3 = evaluateInvariants(faults, [own('d3', 1600), own('d3', 4050, false)], base());
    expect(byD3.ok).toBe(true);
    const byD2 = evaluateInvariants(faults, [own('d2', 1600), own('d2', 1700, false)], base());
    expect(byD2.takeovers.spurious).toBe(1);
    expect(byD2.twoOwners.violatingMs).toBe(100);
  });

  it('takeovers into a gap (nobody held the VIP) are never spurious', () => {
    const r = evaluateInvariants([], [own('d1', 1000, false), own('d2', 1100)], base());
    expect(r.takeovers).toEqual({ total: 1, spurious: 0 });
    expect(r.noOwner.longestMs).toBe(100);
    expect(r.ok).toBe(true);
  });

  it('honours the window: changes before it only set the initial state', () => {
    const r = evaluateInvariants([], [own('d2', 5, true)], base({ from: 100, to: 1000, initialOwners: ['d2'] }));
    expect(r.takeovers.total).toBe(0);
    expect(r.ok).toBe(true);
  });
});

describe('the VIP watch timeline (test/lab/vipwatch.ts)', () => {
  it('parses ip -ts -o monitor address lines, additions and deletions, as local time with microseconds', () => {
    const add = parseAddrMonitorLine('[2026-12-04T16:44:23.632520] 3: l1ab2c    inet 10.9.0.100/24 scope global secondary l1ab2c:vigil\\       valid_lft forever preferred_lft forever');
    expect(add).toEqual({ at: new Date('2026-12-04T16:44:23').getTime() + 632.52, deleted: false, ifname: 'l1ab2c', address: '10.9.0.100' });
    const del = parseAddrMonitorLine('[2026-12-04T16:44:23.646292] Deleted 3: l1ab2c    inet 10.9.0.100/24 scope global l1ab2c:vigil\\       valid_lft forever preferred_lft forever');
    expect(del).toMatchObject({ deleted: true, address: '10.9.0.100' });
    expect(parseAddrMonitorLine('[2026-12-04T16:44:23.6] 3: l1ab2c    inet6 fe80::1/64 scope link')).toBeNull();
    expect(parseAddrMonitorLine('3: l1ab2c    inet 10.9.0.100/24 scope global')).toBeNull();
    expect(parseAddrMonitorLine('')).toBeNull();
  });

  it('reads owners at a time and acquisitions in a window, repeated states (a snapshot) included', () => {
    const changes = [own('d1', 100), own('d1', 100), own('d2', 500), own('d1', 600, false), own('d2', 900, false), own('d1', 950), own('d1', 960)];
    expect(ownersAt(changes, 50)).toEqual([]);
    expect(ownersAt(changes, 550)).toEqual(['d1', 'd2']);
    expect(ownersAt(changes, 920)).toEqual([]);
    expect(ownersAt(changes, Infinity)).toEqual(['d1']);
    expect(acquisitions(changes, 200, 1000).map((c) => `${c.node}@${c.at}`)).toEqual(['d2@500', 'd1@950']);
    expect(acquisitions(changes, 0, 1000)).toHaveLength(3);
  });
});
