/**
 * judgeTables (src/ecmp/peer-tables.ts): which peer's forwarding-table digest has
 * differed from ours for longer than the grace. Pure, on an injected clock.
 */
import { describe, expect, it } from 'vitest';
import { judgeTables, tableGraceMs, type PeerTableInput, type TablesState } from '../../src/ecmp/peer-tables.js';

const A = 'aaaaaaaaaaaaaaaa';
const B = 'bbbbbbbbbbbbbbbb';
const C = 'cccccccccccccccc';
const peer = (name: string, digest: string | undefined, over: Partial<PeerTableInput> = {}): PeerTableInput => ({ name, alive: true, digest, announced: 2, ...over });

/** Feeds a sequence of (time, own, peers) and returns the verdicts of the last step. */
function run(steps: Array<[number, string | undefined, PeerTableInput[]]>, graceMs = 1000) {
  let state: TablesState = {};
  let verdicts: ReturnType<typeof judgeTables>['verdicts'] = [];
  for (const [now, own, peers] of steps) ({ state, verdicts } = judgeTables(state, { own, peers, graceMs }, now));
  return verdicts;
}

describe('judgeTables', () => {
  it('a peer with our digest matches, since the first time it did', () => {
    const v = run([
      [0, A, [peer('d2', A)]],
      [5000, A, [peer('d2', A)]],
    ]);
    expect(v).toEqual([{ peer: 'd2', digest: A, announced: 2, match: true, since: 0, mismatched: false }]);
  });

  it('names a peer only once its digest has differed for longer than the grace', () => {
    const steps: Array<[number, string | undefined, PeerTableInput[]]> = [
      [0, A, [peer('d2', A)]],
      [100, A, [peer('d2', B)]],
    ];
    expect(run(steps)[0]).toMatchObject({ match: false, since: 100, mismatched: false });
    expect(run([...steps, [1100, A, [peer('d2', B)]]])[0]).toMatchObject({ match: false, since: 100, mismatched: false });
    expect(run([...steps, [1101, A, [peer('d2', B)]]])[0]).toMatchObject({ match: false, since: 100, mismatched: true });
  });

  it('a difference that ends within the grace names nobody, and a new one starts the grace afresh', () => {
    const v = run([
      [0, A, [peer('d2', B)]],
      [900, A, [peer('d2', A)]],
      [1000, A, [peer('d2', C)]],
      [1900, A, [peer('d2', C)]],
    ]);
    expect(v[0]).toMatchObject({ match: false, since: 1000, mismatched: false });
  });

  it('a peer that moves from one wrong digest to another keeps its since', () => {
    const v = run([
      [0, A, [peer('d2', B)]],
      [600, A, [peer('d2', C)]],
      [1200, A, [peer('d2', C)]],
    ]);
    expect(v[0]).toMatchObject({ match: false, since: 0, mismatched: true });
  });

  it('our own digest changing while the peer differs keeps since; catching up clears it', () => {
    const v = run([
      [0, A, [peer('d2', B)]],
      [500, C, [peer('d2', B)]],
      [1500, C, [peer('d2', B)]],
    ]);
    expect(v[0]).toMatchObject({ match: false, since: 0, mismatched: true });
    const cleared = run([
      [0, A, [peer('d2', B)]],
      [1500, A, [peer('d2', B)]],
      [1600, B, [peer('d2', B)]],
    ]);
    expect(cleared[0]).toMatchObject({ match: true, since: 1600, mismatched: false });
  });

  it.each<[string, string | undefined, PeerTableInput]>([
    ['no digest of ours yet (before the first reconcile)', undefined, peer('d2', B)],
    ['a dead peer', A, peer('d2', B, { alive: false })],
    ['a peer that sends no table (an older vigil)', A, peer('d2', undefined, { announced: undefined })],
  ])('%s is unknown, never named, and resets the grace', (_what, own, p) => {
    const v = run([
      [0, A, [peer('d2', B)]],
      [900, own, [p]],
      [1800, A, [peer('d2', B)]],
    ]);
    const mid = run([
      [0, A, [peer('d2', B)]],
      [5000, own, [p]],
    ]);
    expect(mid[0]).toMatchObject({ match: null, since: null, mismatched: false });
    expect(v[0]).toMatchObject({ match: false, since: 1800, mismatched: false });
  });

  it('a dead peer shows no digest or count', () => {
    const v = run([[0, A, [peer('d2', B, { alive: false })]]]);
    expect(v[0]).toEqual({ peer: 'd2', digest: null, announced: null, match: null, since: null, mismatched: false });
  });

  it('judges every peer on its own', () => {
    const v = run([
      [0, A, [peer('d2', A), peer('d3', B), peer('d4', undefined)]],
      [2000, A, [peer('d2', A), peer('d3', B), peer('d4', undefined)]],
    ]);
    expect(v.map((x) => [x.peer, x.match, x.mismatched])).toEqual([
      ['d2', true, false],
      ['d3', false, true],
      ['d4', null, false],
    ]);
  });

  it('forgets a peer no longer in the input', () => {
    const state = judgeTables({}, { own: A, peers: [peer('d2', B), peer('d3', B)], graceMs: 1000 }, 0).state;
    expect(Object.keys(judgeTables(state, { own: A, peers: [peer('d2', B)], graceMs: 1000 }, 10).state)).toEqual(['d2']);
  });
});

describe('tableGraceMs', () => {
  const check = (interval_ms: number, timeout_ms: number) => ({ interval_ms, timeout_ms });
  it.each<[string, Parameters<typeof tableGraceMs>[0], number]>([
    ['no probes: max(5 × interval, 1 s)', { cluster: { interval_ms: 50 }, services: [] }, 1000],
    ['a slow heartbeat interval: 5 × interval', { cluster: { interval_ms: 400 }, services: [] }, 2000],
    ['plus the longest probe interval + timeout', { cluster: { interval_ms: 50 }, services: [{ check: check(1000, 800), real_servers: [{}] }] }, 2800],
    [
      'a real server\'s own check counts too',
      { cluster: { interval_ms: 50 }, services: [{ check: check(500, 200), real_servers: [{ check: check(3000, 1000) }, {}] }] },
      5000,
    ],
  ])('%s', (_what, config, expected) => {
    expect(tableGraceMs(config)).toBe(expected);
  });
});
