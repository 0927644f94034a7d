/**
 * One long-lived `ip -force -batch -` that takes `ip` commands on its stdin: adding or
 * removing a VIP costs a line written to a pipe and about a tenth of a millisecond of
 * netlink, not a process start (about 4 ms per exec on a director like the lab's, plus
 * the fork of the caller — docs/ARCHITECTURE.md has the figures).
 *
 * iproute2 answers nothing on success and writes errors to stderr, which is unbuffered,
 * followed by `Command failed -:LINE`. So each command is followed by a sentinel line
 * (`vigil-done-N`, an object ip does not know) whose own error marks the end of the
 * command's answer: what stderr said before it belongs to the command, and the command
 * failed exactly when a `Command failed` line came before the sentinel's. Commands run
 * one at a time, in order.
 *
 * If the co-process dies or stops answering, run() rejects and the caller spawns `ip`
 * the ordinary way; the co-process is started again a second later.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface BatchResult {
  code: number;
  stderr: string;
}

interface Pending {
  id: number;
  resolve: (r: BatchResult) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

const SENTINEL = /^Object "vigil-done-(\d+)" is unknown/;
const FAILED = /^Command failed -:\d+$/;
const RESTART_MS = 1000;

export class IpBatch {
  private child: ChildProcess | undefined;
  private pending: Pending[] = [];
  private lines: string[] = [];
  private partial = '';
  private next = 1;
  private closed = false;
  private restartTimer: NodeJS.Timeout | undefined;

  /** `ip` and the arguments before `-force -batch -` (e.g. `-n NS` in tests). */
  constructor(
    private readonly ip: string,
    private readonly pre: readonly string[],
    private readonly timeoutMs: number,
  ) {}

  /** Starts the co-process (idempotent). */
  start(): void {
    if (this.closed || this.usable) return;
    const child = spawn(this.ip, [...this.pre, '-force', '-batch', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    this.child = child;
    this.partial = '';
    this.lines = [];
    this.sentinelFailed = false;
    child.stdin?.on('error', () => undefined); // EPIPE after it died: 'exit' tells
    child.stderr?.on('data', (d: Buffer) => this.onStderr(d));
    const gone = (why: string): void => {
      if (this.child !== child) return;
      this.child = undefined;
      this.failAll(new Error(`ip -batch co-process ${why}`));
      if (!this.closed) {
        this.restartTimer = setTimeout(() => {
          this.restartTimer = undefined;
          this.start();
        }, RESTART_MS);
        this.restartTimer.unref();
      }
    };
    child.once('error', (e: NodeJS.ErrnoException) => gone(`cannot run: ${e.code ?? e.message}`));
    child.once('exit', (code, signal) => gone(`exited (${signal ?? code})`));
    // it waits for work that may never come: it must not keep a process alive
    child.unref();
    for (const s of [child.stdin, child.stderr]) (s as unknown as { unref?: () => void } | null)?.unref?.();
  }

  /** The co-process's pid while it runs. */
  get pid(): number | undefined {
    return this.usable ? this.child?.pid : undefined;
  }

  get usable(): boolean {
    const c = this.child;
    return c !== undefined && c.exitCode === null && c.signalCode === null && c.pid !== undefined && !this.closed;
  }

  /** Runs one ip command (no `ip` itself: ['addr', 'add', ...]); arguments must not hold whitespace. */
  run(args: readonly string[]): Promise<BatchResult> {
    const child = this.child;
    if (!this.usable || !child?.stdin) return Promise.reject(new Error('ip -batch co-process not running'));
    if (args.some((a) => a === '' || /\s|"|'|\\/.test(a))) return Promise.reject(new Error(`ip -batch: cannot pass ${JSON.stringify(args)} on one line`));
    const id = this.next++;
    return new Promise<BatchResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        // stuck: kill it; every waiting command fails and goes the ordinary way
        child.kill('SIGKILL');
        this.failAll(new Error(`ip -batch: no answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.push({ id, resolve, reject, timer });
      child.stdin!.write(`${args.join(' ')}\nvigil-done-${id}\n`);
    });
  }

  /** Ends the co-process; waiting commands reject. Idempotent. */
  close(): void {
    this.closed = true;
    clearTimeout(this.restartTimer);
    const c = this.child;
    this.child = undefined;
    this.failAll(new Error('ip -batch co-process closed'));
    c?.stdin?.end();
  }

  private onStderr(d: Buffer): void {
    const text = this.partial + d.toString('utf8');
    const parts = text.split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) {
      if (this.sentinelFailed) {
        // the sentinel's own "Command failed -:N" line, which follows its error
        this.sentinelFailed = false;
        if (FAILED.test(line)) continue;
      }
      const m = SENTINEL.exec(line);
      if (!m) {
        this.lines.push(line);
        continue;
      }
      this.sentinelFailed = true;
      const answer = this.lines;
      this.lines = [];
      const p = this.pending[0];
      if (!p || p.id !== Number(m[1])) continue; // the answer of a command already failed (timeout)
      this.pending.shift();
      clearTimeout(p.timer);
      const failed = answer.some((l) => FAILED.test(l));
      p.resolve({ code: failed ? 1 : 0, stderr: answer.filter((l) => !FAILED.test(l)).join('\n').trim() });
    }
  }

  private sentinelFailed = false;

  private failAll(err: Error): void {
    const waiting = this.pending;
    this.pending = [];
    for (const p of waiting) {
      clearTimeout(p.timer);
      p.reject(err);
    }
  }
}
