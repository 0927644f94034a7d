/**
 * SchedReader (src/cluster/schedstat.ts) on this process's real /proc: counters that move,
 * every thread found, files kept open between reads, threads that come and go.
 */
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { SchedReader } from '../../src/cluster/schedstat.js';

const spin = (ms: number): void => {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // burn CPU so the counter moves
  }
};

describe('SchedReader', () => {
  it('reads the main thread\'s CPU time and every thread\'s wait, keeping the files open', () => {
    let t = 0;
    const r = new SchedReader(process.pid, () => t);
    const a = r.read()!;
    expect(a.cpuMs).toBeGreaterThan(0);
    expect(a.threads?.has(process.pid)).toBe(true); // the main thread's tid is the pid
    const open = r.openFiles;
    expect(open).toBeGreaterThanOrEqual(2); // main schedstat + at least the main task
    spin(30);
    t += 10; // within a second: no new listing, same files
    const b = r.read()!;
    expect(b.cpuMs).toBeGreaterThan(a.cpuMs + 10);
    expect(r.openFiles).toBe(open);
    r.close();
    expect(r.openFiles).toBe(0);
  });

  it('finds a new thread at the next listing and drops one that ended', async () => {
    let t = 0;
    const r = new SchedReader(process.pid, () => t);
    const before = new Set(r.read()!.threads!.keys());
    const w = new Worker('setInterval(() => {}, 1000)', { eval: true });
    await new Promise((res) => w.once('online', res));
    t += 2000;
    const during = new Set(r.read()!.threads!.keys());
    const added = [...during].filter((x) => !before.has(x));
    expect(added.length).toBeGreaterThanOrEqual(1);
    await w.terminate();
    // give the kernel a moment to reap the thread
    await new Promise((res) => setTimeout(res, 200));
    t += 10; // no listing due: the gone thread is noticed by its failed read
    const after = r.read()!.threads!;
    for (const tid of added) expect(after.has(tid)).toBe(false);
    r.close();
  });

  it('a process that does not exist reads as undefined', () => {
    const r = new SchedReader(2 ** 22 + 12345);
    expect(r.read()).toBeUndefined();
    expect(r.openFiles).toBe(0);
  });
});
