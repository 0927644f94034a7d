/**
 * vigil daemons in the lab: one shared config for the pair (each daemon picks its node
 * with $VIGIL_NODE), per-run key and token files (mode 0600), and a handle per director
 * to start, kill, stop, ask for /status and /metrics and run `vigil standby` inside the
 * director's namespace. The API listens on 127.0.0.1:9694 in every director namespace
 * (namespaces have their own loopback).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { Director, Lab } from './lab.js';
import { atDefaultPriority, LabError } from './netns.js';

/** The project; a tree compileGuestTree compiled (dist/.guest-*, test/e2e/ipvs-vm.ts) stands in its place. */
export const REPO = fileURLToPath(new URL('../..', import.meta.url)).replace(/dist\/\.guest-[^/]+\/$/, '');
export const CLI = join(REPO, 'dist', 'cli.js');
export const API_PORT = 9694;
export const HEARTBEAT_PORT = 694;

export type Role = 'init' | 'standby' | 'active' | 'maintenance';

export interface Timers {
  interval_ms: number;
  deadtime_ms: number;
  warntime_ms: number;
  initdead_ms: number;
}

/** The defaults of the schema (Heartbeat-like, 6 missed heartbeats). */
export const DEFAULT_TIMERS: Timers = { interval_ms: 50, deadtime_ms: 250, warntime_ms: 150, initdead_ms: 2000 }; // the schema's defaults
/** The aggressive setting of the benchmark. */
export const FAST_TIMERS: Timers = { interval_ms: 20, deadtime_ms: 80, warntime_ms: 60, initdead_ms: 2000 };

export interface ClusterOptions {
  timers?: Timers;
  preempt?: boolean;
  /** Priority per director name; default d1 150, d2 100, d3 50 (d1 is the better node). */
  priorities?: Record<string, number>;
  logLevel?: string;
  /** Config file name inside the lab directory (default vigil.yaml). */
  file?: string;
  /** `services:` of the config (default none: the failover path only). */
  services?: unknown[];
}

/** Writes the shared config (and key/token files on first use); returns its path. */
export function writeClusterConfig(lab: Lab, opts: ClusterOptions = {}): string {
  const timers = opts.timers ?? DEFAULT_TIMERS;
  const keyFile = join(lab.dir, 'authkey');
  const tokenFile = join(lab.dir, 'api-token');
  if (!existsSync(keyFile)) writeFileSync(keyFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  if (!existsSync(tokenFile)) writeFileSync(tokenFile, `${randomBytes(16).toString('hex')}\n`, { mode: 0o600 });
  const prio = (name: string, i: number): number => opts.priorities?.[name] ?? [150, 100, 50][i] ?? 10;
  const config = {
    node: 'd1',
    cluster: {
      id: `lab-${lab.id}`,
      port: HEARTBEAT_PORT,
      ...timers,
      preempt: opts.preempt ?? false,
      key_file: keyFile,
      nodes: lab.directors.map((d, i) => ({
        name: d.name,
        priority: prio(d.name, i),
        links: [...(d.hbAddr ? [{ name: 'heartbeat', address: d.hbAddr }] : []), { name: 'lan', address: d.lanAddr }],
      })),
    },
    vips: [{ address: lab.vip, prefix: lab.lanPrefix, interface: (lab.directors[0] as Director).lanIf }],
    ...(opts.services ? { services: opts.services } : {}),
    // by default no services: the failover path only; one forwarder worker keeps the daemons light
    dataplane: { mode: 'auto', forwarder: { workers: 1 } },
    api: { listen: `127.0.0.1:${API_PORT}`, token_file: tokenFile },
    logging: { level: opts.logLevel ?? 'info' },
  };
  const file = join(lab.dir, opts.file ?? 'vigil.yaml');
  // written beside and renamed: a daemon (re)loading it never reads half a file
  writeFileSync(`${file}.tmp`, `# vigil lab ${lab.id}: written by test/lab/vigil.ts\n${stringify(config)}`);
  renameSync(`${file}.tmp`, file);
  return file;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface StatusLite {
  node: string;
  role: Role;
  peers: Array<{ name: string; alive: boolean; role: string; links: Array<{ name: string; up: boolean; rttMs: number | null }> }>;
  vips: Array<{ address: string; owned: boolean }>;
}

/** One director's vigil daemon. */
export class VigilNode {
  readonly logFile: string;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    readonly lab: Lab,
    readonly director: Director,
    public configFile: string,
  ) {
    this.logFile = join(lab.dir, `${director.name}.log`);
  }

  get name(): string {
    return this.director.name;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the daemon (logs appended to `<lab dir>/<name>.log`) and waits until its API answers. */
  async start(opts: { waitApiMs?: number; apiTimeoutS?: number; pollMs?: number } = {}): Promise<void> {
    if (this.running) return;
    if (!existsSync(CLI)) throw new LabError('LAB_NO_BUILD', `${CLI} is missing: run \`npm run build\` first`);
    const fd = openSync(this.logFile, 'a');
    const child = this.lab.spawn(this.director.ns, atDefaultPriority(['node', CLI, 'run', '--config', this.configFile]), {
      stdio: ['ignore', fd, fd],
      env: { ...process.env, VIGIL_NODE: this.name, VIGIL_LOG_LEVEL: process.env.VIGIL_LAB_LOG_LEVEL ?? 'info' },
    });
    closeSync(fd);
    this.child = child;
    this.exited = new Promise((r) => child.once('exit', () => r()));
    const deadline = Date.now() + (opts.waitApiMs ?? 60_000);
    for (;;) {
      if (!this.running) throw new LabError('LAB_START', `vigil on ${this.name} exited (${child.exitCode ?? child.signalCode}) at start; see ${this.logFile}`);
      if ((await this.get('/healthz', opts.apiTimeoutS)) !== null) return;
      if (Date.now() > deadline) throw new LabError('LAB_START', `vigil on ${this.name}: API not answering after ${opts.waitApiMs ?? 60_000} ms; see ${this.logFile}`);
      // each poll is an `ip netns exec curl`: a bench running raised polls slowly, or it starves what it starts
      await sleep(opts.pollMs ?? 100);
    }
  }

  /** Sends a signal; resolves once the process is gone (SIGKILL: immediately after it died). */
  async signal(sig: NodeJS.Signals, waitMs = 5000): Promise<void> {
    const c = this.child;
    if (!c || !this.running) return;
    c.kill(sig);
    await Promise.race([this.exited, sleep(waitMs)]);
    if (this.running) {
      c.kill('SIGKILL');
      await this.exited;
    }
  }

  /**
   * The whole director dies at once (power loss, panic): SIGKILL to its cluster process first,
   * then to the daemon and everything under it, in the same tick, so nothing can send a
   * leaving frame. `signal('SIGKILL')` kills the daemon alone, whose cluster process then
   * releases and says leaving: a different, gentler event.
   */
  async crash(): Promise<void> {
    const c = this.child;
    if (!c || !this.running) return;
    const tree = this.processTree();
    const cluster = tree.filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('cluster/process.js');
      } catch {
        return false;
      }
    });
    for (const pid of [...cluster, ...tree.filter((p) => !cluster.includes(p))]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await this.exited;
  }

  /** The pid of the daemon (ip netns exec execs it, so this is node's pid). */
  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  async stop(): Promise<void> {
    await this.signal('SIGTERM');
  }

  /** The daemon's pid and its descendants' (forwarder workers, probe spawners), from /proc. */
  processTree(): number[] {
    const root = this.pid;
    if (root === undefined) return [];
    const out: number[] = [];
    const walk = (pid: number): void => {
      out.push(pid);
      let tasks: string[];
      try {
        tasks = readdirSync(`/proc/${pid}/task`);
      } catch {
        return;
      }
      for (const t of tasks) {
        let kids = '';
        try {
          kids = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8');
        } catch {
          // the thread ended
        }
        for (const k of kids.split(/\s+/)) if (/^\d+$/.test(k)) walk(Number(k));
      }
    };
    walk(root);
    return out;
  }

  /** GET on the daemon's API from inside its namespace; null when it does not answer. */
  async get(path: string, timeoutS = 2): Promise<string | null> {
    const r = await this.lab.exec(this.director.ns, ['curl', '-sf', '-m', String(timeoutS), `http://127.0.0.1:${API_PORT}${path}`], { allowFail: true });
    return r.exitCode === 0 ? r.stdout : null;
  }

  async status(): Promise<StatusLite | null> {
    const s = await this.get('/status');
    if (s === null) return null;
    try {
      return JSON.parse(s) as StatusLite;
    } catch {
      return null;
    }
  }

  async role(): Promise<Role | null> {
    return (await this.status())?.role ?? null;
  }

  /** Sum of a metric's samples (all label sets) from /metrics; null when unreachable. */
  async metric(name: string): Promise<number | null> {
    const text = await this.get('/metrics');
    if (text === null) return null;
    return sumMetric(text, name);
  }

  /** Polls /status until the role is `role`; throws after `timeoutMs`. */
  async waitRole(role: Role, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: Role | null = null;
    for (;;) {
      last = await this.role();
      if (last === role) return;
      if (Date.now() > deadline) throw new LabError('LAB_TIMEOUT', `vigil on ${this.name} is ${last ?? 'unreachable'}, not ${role}, after ${timeoutMs} ms; see ${this.logFile}`);
      await sleep(50);
    }
  }

  /** Waits until the peer is alive on every link (both heartbeat paths up). */
  async waitPeerLinks(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.status();
      const ok = s !== null && s.peers.length > 0 && s.peers.every((p) => p.alive && p.links.length > 0 && p.links.every((l) => l.up));
      if (ok) return;
      if (Date.now() > deadline) throw new LabError('LAB_TIMEOUT', `vigil on ${this.name}: peers not alive on every link after ${timeoutMs} ms: ${JSON.stringify(s?.peers ?? null)}`);
      await sleep(50);
    }
  }

  /** `vigil standby` (POST /v1/standby with the token from api.token_file), run inside the namespace. */
  standby(): Promise<string> {
    return this.control('standby');
  }

  /** `vigil takeover` (POST /v1/takeover). */
  takeover(): Promise<string> {
    return this.control('takeover');
  }

  private async control(command: 'standby' | 'takeover'): Promise<string> {
    const r = await this.lab.exec(this.director.ns, ['env', `VIGIL_NODE=${this.name}`, 'node', CLI, command, '--config', this.configFile], { allowFail: true });
    if (r.exitCode !== 0) throw new LabError('LAB_CONTROL', `vigil ${command} on ${this.name} failed (exit ${r.exitCode}): ${r.stderr.trim() || r.stdout.trim()}`);
    return r.stdout.trim();
  }

  /** Whether the VIP is configured on this director's LAN interface right now. */
  async hasVip(): Promise<boolean> {
    const r = await this.lab.exec(this.director.ns, ['ip', '-o', '-4', 'addr', 'show', 'dev', this.director.lanIf], { allowFail: true });
    return r.stdout.includes(` ${this.lab.vip}/`);
  }
}

/** Sum of every sample of `name` in Prometheus text (0 when absent). */
export function sumMetric(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== '{' && rest[0] !== ' ') continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) sum += v;
  }
  return sum;
}

/** One VigilNode per director of the lab, all on the same config. */
export function clusterNodes(lab: Lab, configFile: string): VigilNode[] {
  return lab.directors.map((d) => new VigilNode(lab, d, configFile));
}

/** Waits until exactly one node is active and every other running node is standby; returns the active one. */
export async function waitSettled(nodes: readonly VigilNode[], timeoutMs = 15_000): Promise<VigilNode> {
  const deadline = Date.now() + timeoutMs;
  let roles: Array<Role | null> = [];
  for (;;) {
    const running = nodes.filter((n) => n.running);
    roles = await Promise.all(running.map((n) => n.role()));
    const active = running.filter((_, i) => roles[i] === 'active');
    if (active.length === 1 && roles.every((r) => r === 'active' || r === 'standby')) return active[0] as VigilNode;
    if (Date.now() > deadline) {
      throw new LabError('LAB_TIMEOUT', `cluster not settled after ${timeoutMs} ms: ${running.map((n, i) => `${n.name}=${roles[i] ?? 'unreachable'}`).join(' ')}`);
    }
    await sleep(50);
  }
}
