/**
 * Exec probes are spawned by a small helper process, not by the daemon itself.
 *
 * Why: `child_process.spawn` is synchronous: the calling thread forks, and waits until
 * the child has exec'd. The fork copies the caller's page tables, so it costs more the
 * bigger the caller is; measured on the 2-core test machine: 6 ms per spawn from a 50 MB
 * process, 10 ms from a 260 MB one, more under load. At 100 exec probes per second that
 * is most of the daemon's event loop, and every built-in probe and heartbeat timer waits
 * behind it. In a helper process the fork is cheap and blocks only the helper.
 *
 *   daemon ── run {command, args, opts} ──► spawner process (spawner-child.ts)
 *          ◄─ done {result} ─────────────── runScript() from src/proc.ts: process group,
 *                                           timeout → TERM → KILL, bounded output
 *
 * The helper is started on first use and restarted after an unexpected exit (runs in
 * flight then end as errors). close() stops every probe in flight and waits for the
 * helper to exit; if the daemon dies, the helper sees its IPC channel close, stops its
 * probes and exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runScript, type RunScriptOptions, type ScriptResult } from '../proc.js';

/**
 * A run's result; `notStarted` says why the script never ran (the helper was busy past
 * the run's deadline, exited, or did not answer): the director's trouble, not the real
 * server's, so the runner does not count it toward `fall`.
 */
export type SpawnedResult = ScriptResult & { notStarted?: string };

interface Pending {
  resolve: (r: SpawnedResult) => void;
  timer: NodeJS.Timeout;
  started: number;
}

/** The compiled helper: beside this file in dist/, or dist/health/ when running from src/ (tests). */
export function spawnerEntry(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const beside = join(here, 'spawner-child.js');
  if (existsSync(beside)) return beside;
  return resolve(here, '..', '..', 'dist', 'health', 'spawner-child.js');
}

/** One helper process. */
class SpawnerProcess {
  private child: ChildProcess | undefined;
  private ready: Promise<ChildProcess> | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  /** Runs like runScript() (never rejects), in the helper process. */
  async run(command: string, args: readonly string[], opts: RunScriptOptions): Promise<SpawnedResult> {
    const started = performance.now();
    const fail = (why: string): SpawnedResult => ({ kind: 'error', code: null, signal: null, firstLine: why, output: '', durationMs: performance.now() - started, notStarted: why });
    if (this.closed) return fail('probe spawner closed');
    if (opts.signal?.aborted) return fail('stopped');
    let child: ChildProcess;
    try {
      child = await this.start();
    } catch {
      // the helper cannot start (its file is missing?): run in this process rather than not at all
      return runScript(command, args, opts);
    }
    const id = this.nextId++;
    const { signal, ...plain } = opts;
    // the deadline counts from now: time spent queued in a busy helper is part of timeout_ms
    const deadline = Date.now() + opts.timeoutMs;
    return new Promise<SpawnedResult>((resolvePromise) => {
      // the helper enforces the timeout; this only guards against a lost answer
      const guard = opts.timeoutMs + (opts.killGraceMs ?? 500) + 2000;
      const timer = setTimeout(() => this.settle(id, fail('no answer from the probe spawner')), guard);
      this.pending.set(id, { resolve: resolvePromise, timer, started });
      const onAbort = (): void => {
        if (this.pending.has(id) && child.connected) child.send({ t: 'abort', id });
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const wrapped = resolvePromise;
      (this.pending.get(id) as Pending).resolve = (r) => {
        signal?.removeEventListener('abort', onAbort);
        wrapped(r);
      };
      child.send({ t: 'run', id, command, args: [...args], opts: plain, deadline }, (err) => {
        if (err) this.settle(id, fail(`probe spawner: ${err.message}`));
      });
    });
  }

  /** Starts the helper ahead of the first probe (optional; run() starts it anyway). */
  async warm(): Promise<void> {
    if (this.closed) return;
    await this.start().catch(() => undefined); // run() reports the failure per probe
  }

  /** The helper's pid while it runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Probes in flight in the helper. */
  get running(): number {
    return this.pending.size;
  }

  /** Stops every probe in flight (TERM/KILL to their groups) and waits for the helper to exit. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    if (child.connected) child.disconnect(); // the helper aborts its runs and exits
    const hard = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(hard);
  }

  private start(): Promise<ChildProcess> {
    if (this.ready) return this.ready;
    this.ready = new Promise<ChildProcess>((resolveStart, reject) => {
      const child = spawn(process.execPath, [spawnerEntry()], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        serialization: 'json',
        // its own session: a terminal's Ctrl-C does not reach it (it stops its probes when
        // the daemon's IPC channel closes), and the kernel's autogroup scheduler gives its
        // forking a CPU share of its own instead of taking it from the daemon's event loop
        detached: true,
      });
      this.child = child;
      const onReady = (m: { t: string }): void => {
        if (m.t === 'ready') {
          child.off('message', onReady);
          resolveStart(child);
        }
      };
      child.on('message', onReady);
      child.on('message', (m: { t: string; id?: number; result?: SpawnedResult }) => {
        if (m.t === 'done' && m.id !== undefined && m.result) this.settle(m.id, m.result);
      });
      child.once('error', (e) => {
        this.ready = undefined;
        reject(e);
      });
      child.once('exit', (code, sig) => {
        this.ready = undefined;
        this.child = undefined;
        reject(new Error(`exited (${sig ?? code}) before it was ready`));
        for (const id of [...this.pending.keys()]) {
          const p = this.pending.get(id) as Pending;
          const why = `probe spawner exited (${sig ?? code})`;
          this.settle(id, { kind: 'error', code: null, signal: null, firstLine: why, output: '', durationMs: performance.now() - p.started, notStarted: why });
        }
      });
    });
    return this.ready;
  }

  private settle(id: number, r: SpawnedResult): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.resolve(r);
  }
}

/**
 * The pool the runner uses: `size` helpers to begin with (default: one per core, at most
 * 2), growing to `max` (4) while every helper has `GROW_AT` runs waiting; each run goes to
 * the helper with the fewest in flight, so spawns proceed in parallel.
 */
export class ProbeSpawner {
  private readonly helpers: SpawnerProcess[];
  private closed = false;

  constructor(
    size = Math.min(2, availableParallelism()),
    private readonly max = 4,
  ) {
    this.helpers = Array.from({ length: Math.max(1, size) }, () => new SpawnerProcess());
  }

  run(command: string, args: readonly string[], opts: RunScriptOptions): Promise<SpawnedResult> {
    let best = this.helpers[0] as SpawnerProcess;
    for (const h of this.helpers) if (h.running < best.running) best = h;
    if (best.running >= GROW_AT && this.helpers.length < this.max && !this.closed) {
      best = new SpawnerProcess();
      this.helpers.push(best);
    }
    return best.run(command, args, opts);
  }

  /** Helpers in the pool. */
  get size(): number {
    return this.helpers.length;
  }

  async warm(): Promise<void> {
    await Promise.all(this.helpers.map((h) => h.warm()));
  }

  get running(): number {
    return this.helpers.reduce((a, h) => a + h.running, 0);
  }

  /** The helpers' pids (those running). */
  get pids(): number[] {
    return this.helpers.map((h) => h.pid).filter((p): p is number => p !== undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.helpers.map((h) => h.close()));
  }
}

const GROW_AT = 16;
