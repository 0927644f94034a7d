/**
 * Thin helpers around `ip netns` and `nft`: run a command in a namespace, list the
 * lab's namespaces, kill what runs inside one and delete it. Everything here works on
 * namespaces this process (or an earlier, crashed lab run) created; nothing touches the
 * root namespace's interfaces or routes.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { getPriority, setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

export const isRoot = (): boolean => process.getuid?.() === 0;

export class LabError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'LabError';
  }
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** Runs `argv` in the root namespace; throws LabError naming the command when it fails (unless `allowFail`). */
export async function run(argv: readonly string[], opts: { allowFail?: boolean; input?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new LabError('LAB_EXEC', 'empty command');
  const r = await execa(cmd, args, { reject: false, input: opts.input, timeout: opts.timeoutMs ?? 30_000, stripFinalNewline: true });
  const res: ExecResult = { stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), exitCode: r.exitCode ?? -1 };
  if (!opts.allowFail && res.exitCode !== 0) {
    throw new LabError('LAB_EXEC', `\`${argv.join(' ')}\` failed (exit ${res.exitCode}${r.timedOut ? ', timed out' : ''}): ${res.stderr.trim() || res.stdout.trim()}`);
  }
  return res;
}

/** Runs `argv` inside network namespace `ns`. */
export function nsRun(ns: string, argv: readonly string[], opts: { allowFail?: boolean; input?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
  return run(['ip', 'netns', 'exec', ns, ...argv], opts);
}

/** Starts a long-running process inside `ns` (`ip netns exec` execs it, so the pid is the command's). */
export function nsSpawn(ns: string, argv: readonly string[], opts: SpawnOptions = {}): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
}

/** Names of every network namespace on the machine. */
export function listNamespaces(): string[] {
  let out: string;
  try {
    out = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return [];
  }
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.length > 0);
}

/** Kills every process inside `ns` (SIGKILL), then deletes it. Synchronous so it can run in an 'exit' handler. */
export function deleteNamespaceSync(ns: string): void {
  try {
    const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split(/\s+/)
      .filter((p) => /^\d+$/.test(p))
      .map(Number);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  } catch {
    // no such namespace or no processes
  }
  try {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  } catch {
    // already deleted
  }
}

/** The directory where a lab run keeps its files (config, keys, logs) and its owner's pid. */
export const runDir = (prefix: string, id: string): string => join(tmpdir(), `vigil-lab-${prefix}${id}`);

/** Creation time of a namespace (the mtime of its bind mount under /run/netns), or 0. */
function namespaceCreatedMs(ns: string): number {
  try {
    return statSync(join('/run/netns', ns)).mtimeMs;
  } catch {
    return 0;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Deletes namespaces left behind by crashed earlier lab runs: names `<prefix><id>-*`
 * created before `olderThanMs` whose run's owner process is gone (or whose run
 * directory is missing). Runs of other live processes (someone else's tests running in
 * parallel) are left alone. Returns the namespaces deleted.
 */
export function sweepStaleNamespaces(prefix: string, olderThanMs: number, keepId?: string): string[] {
  const re = new RegExp(`^${prefix}([0-9a-z]+)-[0-9a-z]+$`);
  const swept: string[] = [];
  const verdicts = new Map<string, boolean>();
  for (const ns of listNamespaces()) {
    const m = re.exec(ns);
    if (!m) continue;
    const id = m[1] as string;
    if (id === keepId) continue;
    if (namespaceCreatedMs(ns) >= olderThanMs) continue;
    let stale = verdicts.get(id);
    if (stale === undefined) {
      const pidFile = join(runDir(prefix, id), 'owner.pid');
      const owner = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : NaN;
      stale = !(Number.isInteger(owner) && owner > 0 && pidAlive(owner));
      verdicts.set(id, stale);
    }
    if (!stale) continue;
    deleteNamespaceSync(ns);
    swept.push(ns);
  }
  for (const [id, stale] of verdicts) if (stale) rmSync(runDir(prefix, id), { recursive: true, force: true });
  return swept;
}

/**
 * `argv` prefixed so it runs at the default priority (nice 0) even when this process
 * runs raised (a bench raises itself to nice -10 as a measuring instrument; what it
 * measures and the load it makes must not inherit that).
 */
export function atDefaultPriority(argv: readonly string[]): string[] {
  let own = 0;
  try {
    own = getPriority();
  } catch {
    own = 0;
  }
  return own < 0 ? ['nice', '-n', String(-own), ...argv] : [...argv];
}

/** Raises this process to nice -10 (root only; best effort): a bench's fault injector and clock. Returns the nice value now. */
export function raiseOwnPriority(): number {
  try {
    setPriority(-10);
  } catch {
    // not allowed: stay as we are
  }
  return getPriority();
}
