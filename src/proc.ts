/**
 * The one helper that owns a child process's whole life (STYLE.md #5): resource and
 * notify scripts (cluster), exec probes (health). Each run is spawned in its own process
 * group (`detached: true`) so a timeout can signal the script *and* everything it
 * forked: TERM to `-pid`, then KILL after `killGraceMs`. Output is bounded: the first
 * `outputLimit` bytes are kept, the rest is read and discarded so the child never blocks
 * on a full pipe. Every run ends classified: exited(code), signalled(signal), timeout, or
 * error (could not be spawned: missing file, not executable).
 */
import { spawn } from 'node:child_process';

export interface RunScriptOptions {
  /** Kill the process group after this long. */
  timeoutMs: number;
  /** Grace between TERM and KILL of the process group (default 500 ms). */
  killGraceMs?: number;
  /** Extra environment, merged over process.env. */
  env?: NodeJS.ProcessEnv;
  /** Bytes of stdout+stderr kept (default 1024). */
  outputLimit?: number;
  cwd?: string;
  /** Aborting ends the run like a timeout (TERM to the group, KILL after the grace). */
  signal?: AbortSignal;
  /**
   * When the script itself has exited, KILL whatever it left in its process group
   * (`sleep 1000 &`) at once. Health probes set it so a run leaves nothing behind;
   * resource scripts that start daemons must not.
   */
  killLeftovers?: boolean;
}

export interface ScriptResult {
  kind: 'exited' | 'signalled' | 'timeout' | 'error';
  /** Exit code when kind is 'exited'. */
  code: number | null;
  /** Signal that ended it ('signalled'; the kill signal for 'timeout'). */
  signal: NodeJS.Signals | null;
  /** First non-empty line of stdout (else stderr), trimmed; for 'error' the reason. */
  firstLine: string;
  /** The kept output (at most outputLimit bytes). */
  output: string;
  durationMs: number;
}

/** True when the run exited with status 0. */
export const succeeded = (r: ScriptResult): boolean => r.kind === 'exited' && r.code === 0;

/** Short human description: `exit 0`, `exit 3`, `signal SIGSEGV`, `timeout after 100 ms`. */
export function describeResult(r: ScriptResult, timeoutMs?: number): string {
  switch (r.kind) {
    case 'exited':
      return `exit ${r.code}`;
    case 'signalled':
      return `signal ${r.signal}`;
    case 'timeout':
      return `timeout${timeoutMs !== undefined ? ` after ${timeoutMs} ms` : ''}`;
    case 'error':
      return `cannot run: ${r.firstLine}`;
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is already gone
  }
}

/** Runs `path args...`; never rejects. */
export function runScript(path: string, args: readonly string[], opts: RunScriptOptions): Promise<ScriptResult> {
  const started = performance.now();
  const limit = opts.outputLimit ?? 1024;
  const grace = opts.killGraceMs ?? 500;
  return new Promise<ScriptResult>((resolve) => {
    const chunks: Buffer[] = [];
    let kept = 0;
    let timedOut = false;
    let done = false;
    let killTimer: NodeJS.Timeout | undefined;
    let closeTimer: NodeJS.Timeout | undefined;

    const finish = (kind: ScriptResult['kind'], code: number | null, signal: NodeJS.Signals | null, err?: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (killTimer) clearTimeout(killTimer);
      if (closeTimer) clearTimeout(closeTimer);
      const output = Buffer.concat(chunks).toString('utf8');
      const firstLine = err ?? output.split('\n').map((l) => l.trim()).find((l) => l.length > 0) ?? '';
      resolve({ kind, code, signal, firstLine, output, durationMs: performance.now() - started });
    };

    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(path, [...args], {
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: opts.env ? { ...process.env, ...opts.env } : process.env,
        cwd: opts.cwd,
      });
    } catch (e) {
      // synchronous spawn failures (bad arguments); missing files arrive as 'error'
      resolve({ kind: 'error', code: null, signal: null, firstLine: (e as Error).message, output: '', durationMs: performance.now() - started });
      return;
    }

    const collect = (b: Buffer): void => {
      if (kept >= limit) return;
      const part = b.subarray(0, limit - kept);
      chunks.push(part);
      kept += part.length;
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);

    const expire = (): void => {
      if (timedOut || done) return;
      timedOut = true;
      if (child.pid !== undefined) {
        killGroup(child.pid, 'SIGTERM');
        killTimer = setTimeout(() => {
          if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
        }, grace);
      }
    };
    const timer = setTimeout(expire, opts.timeoutMs);
    const onAbort = (): void => {
      clearTimeout(timer);
      expire();
    };
    if (opts.signal) {
      if (opts.signal.aborted) setImmediate(onAbort);
      else opts.signal.addEventListener('abort', onAbort, { once: true });
    }

    child.on('error', (e: NodeJS.ErrnoException) => {
      finish('error', null, null, `${path}: ${e.code ?? e.message}`);
    });
    child.on('exit', (code, signal) => {
      // The exit is what counts; output pipes may be held open by a grandchild that
      // escaped the group, so wait for them only briefly.
      const settle = (): void => {
        if (timedOut) finish('timeout', code, signal ?? 'SIGTERM');
        else if (signal !== null) finish('signalled', null, signal);
        else finish('exited', code, null);
      };
      if (timedOut || opts.killLeftovers) {
        // make sure nothing of the group survives the TERM (or the script's own exit)
        if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
      }
      if (timedOut) {
        settle();
        return;
      }
      closeTimer = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        settle();
      }, 100);
      child.once('close', settle);
    });
  });
}
