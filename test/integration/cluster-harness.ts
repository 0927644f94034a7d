/**
 * Runs real vigil daemons (`node dist/cli.js run`) as a cluster on loopback addresses
 * (127.0.0.1, .2, .3: one per node and link), each with its own API port. Logs are
 * captured line by line with the monotonic time they arrived, so tests can time
 * transitions against the moment they killed a process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'dist', 'cli.js');

export interface LogLine {
  t: number;
  msg: string;
  [k: string]: unknown;
}

export interface NodeProc {
  name: string;
  proc: ChildProcess;
  logs: LogLine[];
  api: string;
  exit: Promise<number | null>;
}

export interface ClusterSpec {
  id?: string;
  port: number;
  intervalMs: number;
  deadtimeMs: number;
  warntimeMs: number;
  initdeadMs: number;
  preempt?: boolean;
  /** Each node: name, priority, its address on each link (heartbeat, lan). */
  nodes: { name: string; priority: number; heartbeat: string; lan?: string; apiPort: number }[];
  notify?: string;
  resources?: string[];
}

export async function freeTcpPort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => res(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** A UDP port free on every given address. */
export async function freeUdpPort(addresses: string[]): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 40000);
    const ok = await Promise.all(
      addresses.map(
        (a) =>
          new Promise<boolean>((res) => {
            const s = createSocket('udp4');
            s.once('error', () => res(false));
            s.bind(port, a, () => s.close(() => res(true)));
          }),
      ),
    );
    if (ok.every(Boolean)) return port;
  }
  throw new Error('no free UDP port');
}

export class Lab {
  readonly dir = mkdtempSync(join(tmpdir(), 'vigil-cluster-'));
  readonly keyFile = join(this.dir, 'authkey');
  readonly tokenFile = join(this.dir, 'api-token');
  readonly token = 'test-token-' + Math.random().toString(36).slice(2);
  readonly nodes = new Map<string, NodeProc>();
  /** Every process started, restarts included (for saveLogs). */
  private readonly allNodes: NodeProc[] = [];
  configFile = (name: string): string => join(this.dir, `${name}.yaml`);

  constructor(readonly spec: ClusterSpec) {
    writeFileSync(this.keyFile, 'a shared secret of enough length\n');
    chmodSync(this.keyFile, 0o600);
    writeFileSync(this.tokenFile, `${this.token}\n`);
    this.writeConfig();
  }

  /** One file per node (its name and API port differ); the same cluster section in each. */
  writeConfig(over: Partial<ClusterSpec> = {}): void {
    const s = { ...this.spec, ...over };
    for (const me of s.nodes) writeFileSync(this.configFile(me.name), this.yaml(s, me.name, me.apiPort));
  }

  private yaml(s: ClusterSpec, self: string, apiPort: number): string {
    const nodes = s.nodes
      .map(
        (n) => `    - name: ${n.name}
      priority: ${n.priority}
      links:
        - { name: heartbeat, address: ${n.heartbeat} }${n.lan ? `\n        - { name: lan, address: ${n.lan} }` : ''}`,
      )
      .join('\n');
    return `node: ${self}
cluster:
  id: ${s.id ?? 'itest'}
  port: ${s.port}
  interval_ms: ${s.intervalMs}
  deadtime_ms: ${s.deadtimeMs}
  warntime_ms: ${s.warntimeMs}
  initdead_ms: ${s.initdeadMs}
  preempt: ${s.preempt ?? false}
  key_file: ${this.keyFile}
  nodes:
${nodes}
${s.notify ? `  notify: { path: ${s.notify}, timeout_ms: 2000 }\n` : ''}${s.resources?.length ? `  resources:\n${s.resources.map((r) => `    - { path: ${r}, timeout_ms: 2000 }`).join('\n')}\n` : ''}vips:
  - { address: 127.0.0.1, prefix: 8, interface: lo, managed: false }
dataplane:
  mode: forwarder
  forwarder: { workers: 1 }
api:
  listen: 127.0.0.1:${apiPort}
  token_file: ${this.tokenFile}
logging:
  level: debug
`;
  }

  start(name: string, env: NodeJS.ProcessEnv = {}): NodeProc {
    const spec = this.spec.nodes.find((n) => n.name === name)!;
    const proc = spawn(process.execPath, [CLI, 'run', '--config', this.configFile(name)], {
      env: { ...process.env, VIGIL_NODE: name, VIGIL_TEST_HOOKS: '1', VIGIL_LOG_LEVEL: 'debug', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const node: NodeProc = {
      name,
      proc,
      logs: [],
      api: `http://127.0.0.1:${spec.apiPort}`,
      exit: new Promise((r) => proc.once('exit', (code) => r(code))),
    };
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      const t = performance.now();
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          node.logs.push({ t, ...(JSON.parse(line) as { msg: string }) });
        } catch {
          node.logs.push({ t, msg: line });
        }
      }
    });
    proc.stderr!.on('data', (d: Buffer) => node.logs.push({ t: performance.now(), msg: `stderr: ${d.toString()}` }));
    this.nodes.set(name, node);
    this.allNodes.push(node);
    return node;
  }

  node(name: string): NodeProc {
    return this.nodes.get(name)!;
  }

  /** Transitions logged by a node: `role X → Y (reason)`. */
  transitions(name: string): { t: number; from: string; to: string; reason: string }[] {
    return this.node(name)
      .logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('role ') && l.from !== undefined)
      .map((l) => ({ t: l.t, from: l.from as string, to: l.to as string, reason: l.reason as string }));
  }

  role(name: string): string {
    return this.transitions(name).at(-1)?.to ?? 'init';
  }

  /** Waits until every named node is in its role; on timeout the error carries their last log lines. */
  async waitRoles(roles: Record<string, string>, timeoutMs = 10_000): Promise<void> {
    try {
      await waitFor(JSON.stringify(roles), () => Object.entries(roles).every(([n, r]) => this.role(n) === r), timeoutMs);
    } catch (err) {
      const tail = Object.keys(roles)
        .map((n) => `--- ${n} (now ${this.role(n)}):\n${this.node(n).logs.slice(-12).map((l) => `${l.t.toFixed(0)} ${l.msg} ${l.reason ?? ''}`).join('\n')}`)
        .join('\n');
      throw new Error(`${(err as Error).message}\n${tail}`);
    }
  }

  async stopAll(): Promise<void> {
    for (const n of this.nodes.values()) {
      if (n.proc.exitCode === null && n.proc.signalCode === null) n.proc.kill('SIGKILL');
      await n.exit;
    }
    this.nodes.clear();
  }

  /** Keeps every node's log of the last run in $TMPDIR/vigil-cluster-itest-<tag>.log (for failures). */
  saveLogs(tag: string): void {
    const lines: string[] = [];
    for (const n of this.allNodes) for (const l of n.logs) lines.push(`${l.t.toFixed(1)} ${n.name} ${JSON.stringify(l)}`);
    writeFileSync(join(tmpdir(), `vigil-cluster-itest-${tag}.log`), lines.sort((a, b) => parseFloat(a) - parseFloat(b)).join('\n'));
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A director that dies whole (power loss, kernel panic): SIGKILL to its cluster process
 * and to the daemon, so nothing sends a leaving frame. A SIGKILL of the daemon alone is
 * not that: its cluster process releases and says leaving (tested in the lab).
 */
export function killWhole(proc: ChildProcess): void {
  const pid = proc.pid;
  if (pid === undefined) return;
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // already gone
  }
  for (const c of children) {
    try {
      if (readFileSync(`/proc/${c}/cmdline`, 'utf8').includes('cluster/process.js')) process.kill(c, 'SIGKILL');
    } catch {
      // gone
    }
  }
  proc.kill('SIGKILL');
}

export async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000, everyMs = 5): Promise<T> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (performance.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function getJson<T = Record<string, unknown>>(url: string): Promise<T> {
  const r = await fetch(url);
  return (await r.json()) as T;
}

export async function metric(api: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${api}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\{[^}]*\})? (.+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const l = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}
