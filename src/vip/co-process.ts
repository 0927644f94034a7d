/**
 * A long-lived helper process spoken to in lines: requests written to its stdin, answers
 * read as lines from its stdout or stderr. The takeover path uses two (ip-batch.ts,
 * garp-sender.ts) so that adding a VIP and announcing it start no process.
 *
 * What they share lives here: start (idempotent), the restart a second after the helper
 * died or could not run, one timeout per request (a helper that does not answer in time
 * is killed and every waiting request fails, so the caller goes the ordinary way), and
 * close. Subclasses parse their lines and settle requests by id.
 */
import { spawn, type ChildProcess } from 'node:child_process';

const RESTART_MS = 1000;

interface Pending<T> {
  id: number;
  resolve: (r: T) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export abstract class LineCoProcess<T> {
  protected child: ChildProcess | undefined;
  protected pending: Array<Pending<T>> = [];
  private partial = '';
  private next = 1;
  protected closed = false;
  private restartTimer: NodeJS.Timeout | undefined;

  /**
   * `what` names the helper in errors ("ip -batch co-process"); `argv` is its command
   * line; answers come on `answers`; a request unanswered after `timeoutMs` kills it.
   */
  protected constructor(
    protected readonly what: string,
    private readonly argv: readonly string[],
    private readonly answers: 'stdout' | 'stderr',
    private readonly timeoutMs: number,
  ) {}

  /** Called with each complete line the helper wrote on its answer stream. */
  protected abstract onLine(line: string): void;
  /** Called when a new helper was spawned (reset per-helper state). */
  protected onSpawn(): void {}
  /** Called once when the current helper is gone (died, could not run: `closing` false; close(): true). */
  protected onGone(_why: string, _closing: boolean): void {}

  /** Starts the helper (idempotent while one runs). */
  start(): void {
    if (this.closed || this.child) return;
    const stdio: ['pipe', 'pipe' | 'ignore', 'pipe' | 'ignore'] = this.answers === 'stdout' ? ['pipe', 'pipe', 'ignore'] : ['pipe', 'ignore', 'pipe'];
    const child = spawn(this.argv[0] as string, this.argv.slice(1), { stdio });
    this.child = child;
    this.partial = '';
    this.onSpawn();
    const out = this.answers === 'stdout' ? child.stdout : child.stderr;
    child.stdin?.on('error', () => undefined); // EPIPE after it died: 'exit' tells
    out?.on('data', (d: Buffer) => {
      if (this.child === child) this.onData(d);
    });
    const gone = (why: string): void => {
      if (this.child !== child) return;
      this.child = undefined;
      this.failAll(new Error(`${this.what} ${why}`));
      this.onGone(why, false);
      if (!this.closed) {
        this.restartTimer = setTimeout(() => {
          this.restartTimer = undefined;
          this.start();
        }, RESTART_MS);
        this.restartTimer.unref();
      }
    };
    child.once('error', (e: NodeJS.ErrnoException) => gone(`cannot run ${this.argv[0]}: ${e.code ?? e.message}`));
    child.once('exit', (code, signal) => gone(`exited (${signal ?? code})`));
    // it waits for work that may never come: it must not keep a process alive
    child.unref();
    for (const s of [child.stdin, out]) (s as unknown as { unref?: () => void } | null)?.unref?.();
  }

  /** The helper's process is alive (subclasses may ask for more, e.g. a ready line). */
  protected get running(): boolean {
    const c = this.child;
    return c !== undefined && c.exitCode === null && c.signalCode === null && c.pid !== undefined && !this.closed;
  }

  /** Whether requests go to the helper now. */
  abstract get usable(): boolean;

  /** The helper's pid while it is usable. */
  get pid(): number | undefined {
    return this.usable ? this.child?.pid : undefined;
  }

  /** Writes `text(id)` for a new request id; settles when a subclass calls settle(id, ...). */
  protected request(text: (id: number) => string): Promise<T> {
    const child = this.child;
    if (!this.usable || !child?.stdin) return Promise.reject(new Error(`${this.what} not running`));
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        // stuck: kill it; every waiting request fails and goes the ordinary way
        child.kill('SIGKILL');
        this.failAll(new Error(`${this.what}: no answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.push({ id, resolve, reject, timer });
      child.stdin!.write(text(id));
    });
  }

  /** Settles the waiting request `id`; false when none waits (its answer came after it failed). */
  protected settle(id: number, result: { ok: true; value: T } | { ok: false; error: Error }): boolean {
    const i = this.pending.findIndex((p) => p.id === id);
    if (i < 0) return false;
    const [p] = this.pending.splice(i, 1) as [Pending<T>];
    clearTimeout(p.timer);
    if (result.ok) p.resolve(result.value);
    else p.reject(result.error);
    return true;
  }

  /** Ends the helper; waiting requests reject. Idempotent. */
  close(): void {
    this.closed = true;
    clearTimeout(this.restartTimer);
    const c = this.child;
    this.child = undefined;
    this.failAll(new Error(`${this.what} closed`));
    c?.stdin?.end();
    if (c) this.onGone('closed', true);
  }

  private onData(d: Buffer): void {
    const parts = (this.partial + d.toString('utf8')).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) this.onLine(line);
  }

  private failAll(err: Error): void {
    const waiting = this.pending;
    this.pending = [];
    for (const p of waiting) {
      clearTimeout(p.timer);
      p.reject(err);
    }
  }
}
