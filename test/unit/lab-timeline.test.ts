/** The failover lab's timeline analysis (test/lab/timeline.ts): what the e2e tests and the benchmark read. */
import { describe, expect, it } from 'vitest';
import { alternatingAnswers, longestGap, parseProbeLine, summarize, switches, type ProbeEvent } from '../lab/timeline.js';
import { sumMetric } from '../lab/vigil.js';

const a = (at: number, name: string, startedAt = at - 1): ProbeEvent => ({ kind: 'answer', at, startedAt, name });
const e = (at: number, startedAt = at - 100, code = 'timeout'): ProbeEvent => ({ kind: 'error', at, startedAt, code });

describe('parseProbeLine', () => {
  it.each([
    ['a 1700000000123.456 1700000000120.001 d1', { kind: 'answer', at: 1700000000123.456, startedAt: 1700000000120.001, name: 'd1' }],
    ['e 1700000000223.5 1700000000123.5 timeout', { kind: 'error', at: 1700000000223.5, startedAt: 1700000000123.5, code: 'timeout' }],
    ['e 5 1 ECONNREFUSED', { kind: 'error', at: 5, startedAt: 1, code: 'ECONNREFUSED' }],
  ])('parses %s', (line, want) => {
    expect(parseProbeLine(line)).toEqual(want);
  });

  it.each(['ready', '', 'a 12 d1', 'x 1 2 d1', 'a one two d1', 'a 1 2 d1 extra'])('ignores %j', (line) => {
    expect(parseProbeLine(line)).toBeNull();
  });
});

describe('switches', () => {
  it('measures the outage from the last answer of the old active to the first of the new', () => {
    const ev = [a(100, 'd1'), a(105, 'd1'), e(250, 110), e(255, 115), a(700, 'd2', 695), a(705, 'd2')];
    expect(switches(ev)).toEqual([{ from: 'd1', to: 'd2', lastOld: 105, firstNew: 700, outageMs: 595, errors: 2 }]);
  });

  it('ignores a straggling answer of the old active to an attempt started before the switch', () => {
    const ev = [a(100, 'd1'), a(200, 'd2', 199), a(210, 'd1', 95), a(215, 'd2', 214)];
    expect(switches(ev).map((s) => `${s.from}->${s.to}`)).toEqual(['d1->d2']);
  });

  it('counts a real switch back', () => {
    const ev = [a(100, 'd1'), a(200, 'd2', 199), a(300, 'd1', 299)];
    expect(switches(ev).map((s) => `${s.from}->${s.to}:${s.outageMs}`)).toEqual(['d1->d2:100', 'd2->d1:100']);
  });

  it('sorts by arrival and honours the window', () => {
    const ev = [a(300, 'd2', 299), a(100, 'd1'), a(50, 'd1')];
    expect(switches(ev).length).toBe(1);
    expect(switches(ev, { from: 200 })).toEqual([]);
    expect(switches(ev, { to: 150 })).toEqual([]);
  });

  it('is empty when one director answers throughout', () => {
    expect(switches([a(1, 'd1'), e(2), a(3, 'd1')])).toEqual([]);
  });
});

describe('longestGap', () => {
  it('includes the edges of the window', () => {
    expect(longestGap([a(110, 'd1'), a(130, 'd1'), a(135, 'd2')], 100, 200)).toBe(65);
    expect(longestGap([], 100, 200)).toBe(100);
  });
});

describe('summarize', () => {
  it('gives min, median, nearest-rank p90 and max', () => {
    expect(summarize([10, 1, 9, 2, 8, 3, 7, 4, 6, 5])).toEqual({ runs: 10, min: 1, median: 5.5, p90: 9, max: 10 });
    expect(summarize([3, 1, 2])).toEqual({ runs: 3, min: 1, median: 2, p90: 3, max: 3 });
    expect(summarize([])).toBeNull();
  });
});

describe('sumMetric', () => {
  it('sums every label set of one metric and nothing else', () => {
    const text = [
      '# HELP vigil_cluster_failovers_total Times this node became active',
      '# TYPE vigil_cluster_failovers_total counter',
      'vigil_cluster_failovers_total{reason="peer_dead"} 2',
      'vigil_cluster_failovers_total{reason="peer_leaving"} 1',
      'vigil_cluster_failovers_total_extra 7',
      'vigil_cluster_transitions_total{from="init",to="standby",reason="x"} 1',
    ].join('\n');
    expect(sumMetric(text, 'vigil_cluster_failovers_total')).toBe(3);
    expect(sumMetric(text, 'vigil_cluster_transitions_total')).toBe(1);
    expect(sumMetric(text, 'vigil_absent')).toBe(0);
  });
});

describe('alternatingAnswers', () => {
  it('counts answers of the old director to attempts started after the new one answered', () => {
    // d2 answers first at 200; d1 answers attempts started at 205 and 215 (alternating), a straggler started at 150 does not count
    const ev = [a(100, 'd1'), a(200, 'd2', 199), a(210, 'd1', 150), a(212, 'd1', 205), a(220, 'd2', 219), a(225, 'd1', 215), a(300, 'd2', 299)];
    expect(alternatingAnswers(ev, 'd1', 200)).toBe(2);
    expect(alternatingAnswers(ev, 'd1', 200, 220)).toBe(1);
  });

  it('is 0 for a clean switch', () => {
    const ev = [a(100, 'd1'), e(150, 110), a(200, 'd2', 199), a(205, 'd2')];
    expect(alternatingAnswers(ev, 'd1', 200)).toBe(0);
  });
});
