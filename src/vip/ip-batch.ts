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
import { LineCoProcess } from './co-process.js';

export interface BatchResult {
  code: number;
  stderr: string;
}

const SENTINEL = /^Object "vigil-done-(\d+)" is unknown/;
const FAILED = /^Command failed -:\d+$/;

export class IpBatch extends LineCoProcess<BatchResult> {
  private lines: string[] = [];
  private sentinelFailed = false;

  /** `ip` and the arguments before `-force -batch -` (e.g. `-n NS` in tests). */
  constructor(ip: string, pre: readonly string[], timeoutMs: number) {
    super('ip -batch co-process', [ip, ...pre, '-force', '-batch', '-'], 'stderr', timeoutMs);
  }

  get usable(): boolean {
    return this.running;
  }

  /** Runs one ip command (no `ip` itself: ['addr', 'add', ...]); arguments must not hold whitespace. */
  run(args: readonly string[]): Promise<BatchResult> {
    if (this.usable && args.some((a) => a === '' || /\s|"|'|\\/.test(a))) return Promise.reject(new Error(`ip -batch: cannot pass ${JSON.stringify(args)} on one line`));
    return this.request((id) => `${args.join(' ')}\nvigil-done-${id}\n`);
  }

  protected override onSpawn(): void {
    this.lines = [];
    this.sentinelFailed = false;
  }

  protected onLine(line: string): void {
    if (this.sentinelFailed) {
      // the sentinel's own "Command failed -:N" line, which follows its error
      this.sentinelFailed = false;
      if (FAILED.test(line)) return;
    }
    const m = SENTINEL.exec(line);
    if (!m) {
      this.lines.push(line);
      return;
    }
    this.sentinelFailed = true;
    const answer = this.lines;
    this.lines = [];
    const failed = answer.some((l) => FAILED.test(l));
    // no one waits: the answer of a command that already failed (timeout)
    this.settle(Number(m[1]), { ok: true, value: { code: failed ? 1 : 0, stderr: answer.filter((l) => !FAILED.test(l)).join('\n').trim() } });
  }
}
