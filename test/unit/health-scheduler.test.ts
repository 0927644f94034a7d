/** The pure probe scheduler and the rise/fall verdict, with a fake monotonic clock. */
import { describe, expect, it } from 'vitest';
import { ProbeScheduler } from '../../src/health/scheduler.js';
import { initialVerdict, stepVerdict, type Verdict } from '../../src/health/verdict.js';

const seq = (...xs: number[]) => {
  let i = 0;
  return () => xs[i++ % xs.length] as number;
};

describe('ProbeScheduler', () => {
  it('spreads first runs over the interval (jitter) and never before now', () => {
    const s = new ProbeScheduler({ concurrency: 1000, random: seq(0, 0.25, 0.5, 0.75, 0.999) });
    for (let i = 0; i < 5; i++) s.add(`p${i}`, 1000, 10_000);
    expect(s.poll(10_000).start.map((x) => x.id)).toEqual(['p0']);
    expect(s.nextDueAt()).toBe(10_250);
    const starts = [250, 500, 750, 999].map((t) => s.poll(10_000 + t).start.map((x) => [x.id, x.plannedAt]));
    expect(starts).toEqual([[['p1', 10_250]], [['p2', 10_500]], [['p3', 10_750]], [['p4', 10_999]]]);
  });

  it('keeps a fixed period whatever the run time, and reports the scheduling delay', () => {
    const s = new ProbeScheduler({ concurrency: 10 });
    s.add('a', 1000, 0, 0);
    const first = s.poll(0).start;
    expect(first).toEqual([{ id: 'a', run: 1, plannedAt: 0, delay: 0 }]);
    s.finish(1);
    expect(s.poll(999).start).toEqual([]);
    expect(s.nextDueAt()).toBe(1000);
    const second = s.poll(1003).start;
    expect(second).toEqual([{ id: 'a', run: 2, plannedAt: 1000, delay: 3 }]);
    s.finish(2);
    expect(s.nextDueAt()).toBe(2000);
  });

  it('never overlaps a probe with itself: a due time during a run is an overrun, skipped', () => {
    const s = new ProbeScheduler({ concurrency: 10 });
    s.add('slow', 1000, 0, 0);
    const [run] = s.poll(0).start;
    expect(s.isRunning('slow')).toBe(true);
    const r1 = s.poll(1000);
    expect(r1).toEqual({ start: [], overruns: ['slow'] });
    s.finish((run as { run: number }).run);
    expect(s.poll(1500).start).toEqual([]); // the skipped run is not made up for
    expect(s.poll(2000).start.map((x) => x.plannedAt)).toEqual([2000]);
  });

  it('holds due probes beyond the concurrency cap in a FIFO queue', () => {
    const s = new ProbeScheduler({ concurrency: 2 });
    for (const id of ['a', 'b', 'c', 'd']) s.add(id, 1000, 0, 0);
    const r = s.poll(0);
    expect(r.start.map((x) => x.id)).toEqual(['a', 'b']);
    expect(s.queued).toBe(2);
    expect(s.running).toBe(2);
    s.finish((r.start[0] as { run: number }).run);
    const r2 = s.poll(40);
    expect(r2.start).toEqual([{ id: 'c', run: 3, plannedAt: 0, delay: 40 }]);
    expect(s.running).toBe(2);
    expect(s.queued).toBe(1);
  });

  it('counts a probe still queued at its next due time as an overrun', () => {
    const s = new ProbeScheduler({ concurrency: 1 });
    s.add('a', 1000, 0, 0);
    s.add('b', 1000, 0, 0);
    const [a] = s.poll(0).start;
    expect(s.poll(1000).overruns.sort()).toEqual(['a', 'b']);
    s.finish((a as { run: number }).run);
    expect(s.poll(1001).start.map((x) => [x.id, x.plannedAt])).toEqual([['b', 0]]);
  });

  it('drops periods missed during a stall instead of replaying them in a burst', () => {
    const s = new ProbeScheduler({ concurrency: 10 });
    s.add('a', 1000, 0, 0);
    s.finish((s.poll(0).start[0] as { run: number }).run);
    const r = s.poll(5500);
    expect(r.start).toHaveLength(1);
    s.finish((r.start[0] as { run: number }).run);
    expect(s.nextDueAt()).toBe(6000);
  });

  it('removes probes: queued ones leave the queue, a running one frees its slot on finish', () => {
    const s = new ProbeScheduler({ concurrency: 1 });
    s.add('a', 1000, 0, 0);
    s.add('b', 1000, 0, 0);
    const [a] = s.poll(0).start;
    s.remove('b');
    expect(s.queued).toBe(0);
    s.remove('a');
    expect(s.running).toBe(1);
    s.finish((a as { run: number }).run);
    expect(s.running).toBe(0);
    expect(s.nextDueAt()).toBeUndefined();
    s.add('a', 500, 100, 0); // the same id can come back (a reload)
    expect(s.poll(100).start.map((x) => x.id)).toEqual(['a']);
  });

  it('rejects adding an id twice', () => {
    const s = new ProbeScheduler({ concurrency: 1 });
    s.add('a', 1000, 0);
    expect(() => s.add('a', 1000, 0)).toThrow(/already scheduled/);
  });
});

describe('rise/fall verdict', () => {
  const run = (start: 'up' | 'down', results: string, rise: number, fall: number) => {
    let v: Verdict = initialVerdict(start);
    const changes: string[] = [];
    for (const ch of results) {
      const r = stepVerdict(v, ch === '+', { rise, fall });
      v = r.verdict;
      if (r.changed) changes.push(v.state);
    }
    return { state: v.state, changes, ok: v.consecutiveOk, fail: v.consecutiveFail };
  };

  it.each([
    // initial, results (+ ok, - failed), rise, fall, final state, transitions
    ['down', '+', 2, 2, 'down', []],
    ['down', '++', 2, 2, 'up', ['up']],
    ['down', '+-+', 2, 2, 'down', []],
    ['down', '+', 1, 1, 'up', ['up']],
    ['down', '++-', 2, 2, 'up', ['up']],
    ['down', '++--', 2, 2, 'down', ['up', 'down']],
    ['down', '++-+--', 2, 2, 'down', ['up', 'down']],
    ['up', '-', 2, 2, 'up', []],
    ['up', '--', 2, 2, 'down', ['down']],
    ['up', '-+-+-+', 2, 2, 'up', []],
    ['up', '---+++', 3, 3, 'up', ['down', 'up']],
    ['down', '-----', 2, 2, 'down', []],
  ] as const)('%s then %s with rise %i fall %i → %s', (initial, results, rise, fall, state, changes) => {
    const r = run(initial, results, rise, fall);
    expect(r.state).toBe(state);
    expect(r.changes).toEqual(changes);
  });

  it('keeps the consecutive counters as plain data', () => {
    expect(run('down', '++-', 2, 2)).toMatchObject({ ok: 0, fail: 1 });
    expect(run('down', '-++', 5, 2)).toMatchObject({ ok: 2, fail: 0 });
  });
});
