/**
 * The probe scheduler: pure, no timers, no I/O; the caller passes the monotonic time.
 *
 *   add(id) ──► idle ──due──► queued ──slot free──► running ──finish()──► idle
 *                 ▲             │                      │
 *                 │             └──due again───────────┴──due again──► overrun: that run is
 *                 │                                                    skipped, not stacked
 *                 └────────────────────── next due = due + interval ◄──┘
 *
 * - Each probe has a fixed period: planned times are first, first + interval, ... so the
 *   phase never drifts with run time. The first run is spread over the interval (jitter)
 *   so 1,000 probes added at once do not all fire together.
 * - A probe never overlaps itself: a due time that finds the previous run still running
 *   (or still queued) is an overrun; it is counted and skipped.
 * - At most `concurrency` probes run at once; due probes beyond that wait in a FIFO queue.
 * - After a stall longer than an interval (a paused VM), the missed periods are dropped,
 *   not replayed in a burst.
 * - `delay` of a start = actual start − planned start (the scheduling delay metric).
 */

export interface Start {
  id: string;
  /** Identifies this run; pass it to finish(). */
  run: number;
  /** When this run was planned to start. */
  plannedAt: number;
  /** now − plannedAt. */
  delay: number;
}

export interface PollResult {
  /** Probes to start now, in order. */
  start: Start[];
  /** Probes whose due time found their previous run still running or queued. */
  overruns: string[];
}

interface Entry {
  id: string;
  intervalMs: number;
  due: number;
  state: 'idle' | 'queued' | 'running';
  plannedAt: number;
  removed: boolean;
  /** Bumped on every re-plan so stale heap nodes are ignored. */
  gen: number;
}

interface HeapNode {
  due: number;
  /** Push order: equal due times start in the order they were planned. */
  seq: number;
  gen: number;
  entry: Entry;
}

export interface SchedulerOptions {
  concurrency: number;
  /** Uniform in [0, 1): the first run's offset within the interval. Injected for tests. */
  random?: () => number;
}

export class ProbeScheduler {
  private readonly entries = new Map<string, Entry>();
  private readonly heap: HeapNode[] = [];
  private readonly queue: Entry[] = [];
  /** Runs in flight by run number (an entry removed mid-run stays here until finish()). */
  private readonly runs = new Map<number, Entry>();
  private nextRun = 1;
  private pushes = 0;
  private concurrency: number;
  private readonly random: () => number;

  constructor(opts: SchedulerOptions) {
    this.concurrency = Math.max(1, opts.concurrency);
    this.random = opts.random ?? Math.random;
  }

  /** Adds a probe whose first run is due at now + jitter (within one interval). */
  add(id: string, intervalMs: number, now: number, firstDelayMs = this.random() * intervalMs): void {
    if (this.entries.has(id)) throw new Error(`probe ${id} is already scheduled`);
    const entry: Entry = { id, intervalMs, due: now + firstDelayMs, state: 'idle', plannedAt: 0, removed: false, gen: 0 };
    this.entries.set(id, entry);
    this.push(entry);
  }

  /** Removes a probe. A run in flight may still finish; finish() then only frees its slot. */
  remove(id: string): void {
    const e = this.entries.get(id);
    if (!e) return;
    e.removed = true;
    e.gen += 1;
    this.entries.delete(id);
    if (e.state === 'queued') {
      const i = this.queue.indexOf(e);
      if (i >= 0) this.queue.splice(i, 1);
      e.state = 'idle';
    }
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  setConcurrency(n: number): void {
    this.concurrency = Math.max(1, n);
  }

  /** Due probes → queue → starts within the cap. Call on every wake-up and after finish(). */
  poll(now: number): PollResult {
    const overruns: string[] = [];
    for (;;) {
      const top = this.heap[0];
      if (!top || top.due > now) break;
      this.pop();
      const e = top.entry;
      if (e.removed || top.gen !== e.gen) continue;
      if (e.state === 'idle') {
        e.state = 'queued';
        e.plannedAt = e.due;
        this.queue.push(e);
      } else {
        overruns.push(e.id);
      }
      e.due += e.intervalMs;
      if (e.due <= now) {
        // stalled for more than an interval: drop the missed periods, keep the phase
        e.due += Math.ceil((now - e.due + 1) / e.intervalMs) * e.intervalMs;
      }
      this.push(e);
    }
    const start: Start[] = [];
    while (this.runs.size < this.concurrency && this.queue.length > 0) {
      const e = this.queue.shift() as Entry;
      e.state = 'running';
      const run = this.nextRun++;
      this.runs.set(run, e);
      start.push({ id: e.id, run, plannedAt: e.plannedAt, delay: now - e.plannedAt });
    }
    return { start, overruns };
  }

  /** A run ended (whatever its verdict): frees its slot. Unknown runs are ignored. */
  finish(run: number): void {
    const e = this.runs.get(run);
    if (!e) return;
    this.runs.delete(run);
    e.state = 'idle';
  }

  /** The earliest due time, or undefined when nothing is scheduled. */
  nextDueAt(): number | undefined {
    while (this.heap.length > 0) {
      const top = this.heap[0] as HeapNode;
      if (!top.entry.removed && top.gen === top.entry.gen) return top.due;
      this.pop();
    }
    return undefined;
  }

  get running(): number {
    return this.runs.size;
  }

  get queued(): number {
    return this.queue.length;
  }

  get size(): number {
    return this.entries.size;
  }

  isRunning(id: string): boolean {
    return this.entries.get(id)?.state === 'running';
  }

  // ---- binary min-heap on due time
  private push(entry: Entry): void {
    const h = this.heap;
    h.push({ due: entry.due, seq: this.pushes++, gen: entry.gen, entry });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i] as HeapNode, h[p] as HeapNode)) break;
      [h[p], h[i]] = [h[i] as HeapNode, h[p] as HeapNode];
      i = p;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop();
    if (h.length === 0 || !last) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && before(h[l] as HeapNode, h[m] as HeapNode)) m = l;
      if (r < h.length && before(h[r] as HeapNode, h[m] as HeapNode)) m = r;
      if (m === i) break;
      [h[m], h[i]] = [h[i] as HeapNode, h[m] as HeapNode];
      i = m;
    }
  }
}

function before(a: HeapNode, b: HeapNode): boolean {
  return a.due < b.due || (a.due === b.due && a.seq < b.seq);
}
