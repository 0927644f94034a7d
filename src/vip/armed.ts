/**
 * Commands started ahead of time and held until needed: the takeover path without a
 * process spawn on it.
 *
 * Adding a VIP and sending its first gratuitous ARP are each one run of a program (`ip`,
 * `arping`). Spawning one from the cluster process costs a fork of that process, an exec
 * and the program's start-up: 12–20 ms per command at 10/40 under load (tcpdump at the
 * client, docs/ARCHITECTURE.md), twice on the critical path. An armed command pays for
 * the fork while nothing is urgent: `sh -c 'read -r go && [ "$go" = go ] && exec "$0" "$@"'`
 * sits blocked on its stdin; `fire()` writes `go` and the shell execs the program at once.
 * Closing stdin (disarm, or this process dying) makes the shell exit without running it,
 * so an armed command never outlives its owner and never runs by accident.
 *
 * One armed run is used once; ArmedCommands keeps one per distinct command line and
 * re-arms it after use, off the critical path.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

const GATE = 'read -r go && [ "$go" = go ] && exec "$0" "$@"';
const OUTPUT_LIMIT = 64 * 1024;

/** One command line held blocked in a shell until fire() (or until disarm()). */
class Armed {
  private readonly child: ChildProcess;
  private readonly out: Buffer[] = [];
  private readonly err: Buffer[] = [];
  private kept = 0;
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: string }>;
  fired = false;

  constructor(file: string, args: readonly string[]) {
    this.child = spawn('sh', ['-c', GATE, file, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const keep = (into: Buffer[]) => (b: Buffer) => {
      if (this.kept >= OUTPUT_LIMIT) return;
      const part = b.subarray(0, OUTPUT_LIMIT - this.kept);
      into.push(part);
      this.kept += part.length;
    };
    this.child.stdout?.on('data', keep(this.out));
    this.child.stderr?.on('data', keep(this.err));
    this.child.stdin?.on('error', () => undefined); // EPIPE when the shell is gone: exited tells
    this.exited = new Promise((resolve) => {
      this.child.once('error', (e: NodeJS.ErrnoException) => resolve({ code: null, signal: null, error: e.code ?? e.message }));
      // 'close': the exit and both pipes drained, so the output is whole
      this.child.once('close', (code, signal) => resolve({ code, signal }));
    });
    // an armed shell waits for a takeover that may never come: it must not keep a process alive
    this.child.unref();
    for (const s of [this.child.stdin, this.child.stdout, this.child.stderr]) (s as unknown as { unref?: () => void } | null)?.unref?.();
  }

  /** Lets the command run; resolves with its result, or rejects after timeoutMs (the run is killed). */
  async fire(what: string, timeoutMs: number): Promise<CommandResult> {
    this.fired = true;
    this.child.stdin?.end('go\n');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
    const r = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (r === 'timeout') {
      this.child.kill('SIGKILL');
      await this.exited;
      throw new Error(`${what}: timed out after ${timeoutMs} ms`);
    }
    if (r.error !== undefined) throw new Error(`${what}: ${r.error}`);
    if (r.code === null) throw new Error(`${what}: killed by ${r.signal ?? 'a signal'}`);
    return { code: r.code, stdout: Buffer.concat(this.out).toString('utf8'), stderr: Buffer.concat(this.err).toString('utf8').trim() };
  }

  /** The shell exits without running the command. */
  disarm(): void {
    if (this.fired) return;
    this.fired = true;
    this.child.stdin?.end();
  }

  /** Whether the shell is still there to be fired (it may have died, e.g. killed from outside). */
  get usable(): boolean {
    return !this.fired && this.child.exitCode === null && this.child.signalCode === null && this.child.pid !== undefined;
  }
}

const keyOf = (file: string, args: readonly string[]): string => JSON.stringify([file, ...args]);

/**
 * Armed runs by command line, at most `limit` of them (each is an idle shell: about 1 MB
 * of mostly shared memory and three pipes).
 */
export class ArmedCommands {
  private readonly armed = new Map<string, Armed>();
  private wanted = new Map<string, { file: string; args: readonly string[] }>();
  private closed = false;
  private rearmTimer: NodeJS.Timeout | undefined;

  constructor(private readonly limit = 32) {}

  /** Keeps exactly these command lines armed (the first `limit`): arms the new, disarms the rest. */
  want(commands: ReadonlyArray<{ file: string; args: readonly string[] }>): void {
    if (this.closed) return;
    this.wanted = new Map(commands.slice(0, this.limit).map((c) => [keyOf(c.file, c.args), c]));
    for (const [k, a] of this.armed) {
      if (!this.wanted.has(k)) {
        a.disarm();
        this.armed.delete(k);
      }
    }
    this.fill();
  }

  /** How many runs are armed and usable now. */
  get size(): number {
    return [...this.armed.values()].filter((a) => a.usable).length;
  }

  /**
   * Runs the command: the armed run when there is one (then re-arms it shortly), else
   * undefined and the caller spawns it the ordinary way.
   */
  take(file: string, args: readonly string[]): Armed | undefined {
    const k = keyOf(file, args);
    const a = this.armed.get(k);
    if (!a) return undefined;
    this.armed.delete(k);
    this.scheduleRefill();
    return a.usable ? a : undefined;
  }

  /** Disarms everything; later want() calls do nothing. */
  close(): void {
    this.closed = true;
    clearTimeout(this.rearmTimer);
    for (const a of this.armed.values()) a.disarm();
    this.armed.clear();
  }

  private fill(): void {
    for (const [k, c] of this.wanted) {
      const a = this.armed.get(k);
      if (a?.usable) continue;
      this.armed.set(k, new Armed(c.file, c.args));
    }
  }

  /** Re-arming forks this process: done after the burst of a takeover, not during it. */
  private scheduleRefill(): void {
    if (this.rearmTimer || this.closed) return;
    this.rearmTimer = setTimeout(() => {
      this.rearmTimer = undefined;
      if (!this.closed) this.fill();
    }, 200);
    this.rearmTimer.unref();
  }
}

export type { Armed };
