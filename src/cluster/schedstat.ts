/**
 * Reads the daemon's scheduler counters for the lease judge (lease.ts): the main thread's
 * /proc/PID/schedstat and every thread's /proc/PID/task/TID/schedstat.
 *
 * The judge samples them at every lease renewal, about every interval. Opening each file
 * every time cost about 13 opens per sample (a dozen threads), some 260 a second at 20 ms
 * intervals; here every file stays open and is re-read from offset 0 (the kernel
 * regenerates a /proc file's text for each read at offset 0), and the thread list is
 * re-read at most once a second, or at once when a thread has gone.
 */
import { closeSync, openSync, readdirSync, readSync } from 'node:fs';
import { parseSchedstat, type SchedSample } from './lease.js';

const RELIST_MS = 1000;

export class SchedReader {
  private mainFd: number | undefined;
  private readonly tasks = new Map<number, number>();
  private listedAt = -Infinity;
  private readonly buf = Buffer.alloc(128);

  constructor(
    private readonly pid: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The main thread's counters and every thread's wait; undefined when unreadable (the process is gone). */
  read(): SchedSample | undefined {
    const base = `/proc/${this.pid}`;
    let main: SchedSample | undefined;
    try {
      this.mainFd ??= openSync(`${base}/schedstat`, 'r');
      main = parseSchedstat(this.text(this.mainFd));
    } catch {
      this.close();
      return undefined;
    }
    if (!main) return undefined;
    if (this.now() - this.listedAt >= RELIST_MS) this.relist(base);
    const threads = new Map<number, number>();
    let lost = false;
    for (const [tid, fd] of this.tasks) {
      try {
        const t = parseSchedstat(this.text(fd));
        if (t) threads.set(tid, t.waitMs);
      } catch {
        // the thread ended: look at the list again next time
        closeQuietly(fd);
        this.tasks.delete(tid);
        lost = true;
      }
    }
    if (lost) this.listedAt = -Infinity;
    return { ...main, threads };
  }

  close(): void {
    if (this.mainFd !== undefined) closeQuietly(this.mainFd);
    this.mainFd = undefined;
    for (const fd of this.tasks.values()) closeQuietly(fd);
    this.tasks.clear();
    this.listedAt = -Infinity;
  }

  /** Open files held now (tests). */
  get openFiles(): number {
    return (this.mainFd === undefined ? 0 : 1) + this.tasks.size;
  }

  private text(fd: number): string {
    const n = readSync(fd, this.buf, 0, this.buf.length, 0);
    return this.buf.toString('utf8', 0, n);
  }

  private relist(base: string): void {
    this.listedAt = this.now();
    let tids: number[];
    try {
      tids = readdirSync(`${base}/task`).map(Number);
    } catch {
      return; // no task directory: the main thread's counters alone
    }
    const live = new Set(tids);
    for (const [tid, fd] of this.tasks) {
      if (!live.has(tid)) {
        closeQuietly(fd);
        this.tasks.delete(tid);
      }
    }
    for (const tid of tids) {
      if (this.tasks.has(tid)) continue;
      try {
        this.tasks.set(tid, openSync(`${base}/task/${tid}/schedstat`, 'r'));
      } catch {
        // it ended meanwhile
      }
    }
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}
