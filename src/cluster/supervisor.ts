/**
 * The daemon's side of the cluster process (process.ts): forks it, hands it the config,
 * renews its lease every interval, forwards commands and reloads, keeps the last snapshot
 * it reported for synchronous reads (/status), re-emits its role events, and fetches its
 * metrics for /metrics.
 *
 * When the cluster process dies (crash, SIGKILL, out of memory) its VIPs must not stay
 * behind: a stale VIP on a live interface answers ARP and steals the peer's traffic. The
 * supervisor removes every managed VIP of the config at once, then forks a new process
 * (after a second), which starts in INIT like a restarted node.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PeerStatus, Role, VipStatus } from '../api/types.js';
import { leaseMs, type Config } from '../config/schema.js';
import { VigilError } from '../errors.js';
import type { Logger } from '../log.js';
import { VipManager } from '../vip/manager.js';
import { IpVipPort, type VipPort } from '../vip/port.js';
import { createMetrics, type Metrics } from '../metrics.js';
import type { ClusterEvents } from './cluster.js';
import type { ClusterCommand, ClusterSnapshot, FromCluster, ToCluster, WireError } from './protocol.js';

/** The compiled cluster process: beside this file in dist/, or dist/cluster/ when running from src/ (tests). */
export function clusterEntry(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const beside = join(here, 'process.js');
  if (existsSync(beside)) return beside;
  const built = resolve(here, '..', '..', 'dist', 'cluster', 'process.js');
  if (existsSync(built)) return built;
  throw new VigilError('VIGIL_CLUSTER_MISSING', `cluster process not found at ${beside} or ${built}; run npm run build`);
}

export interface SupervisorOptions {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  env?: NodeJS.ProcessEnv;
  /** Can the dataplane serve? Asked at every lease renewal. */
  serving?: () => { ok: boolean; why?: string };
  /** Default: the real `ip`/`arping` port (VIP clean-up after the process died). */
  vipPort?: VipPort;
}

interface Pending {
  resolve: (msg: string) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * How long the cluster process may take to report it started. Node starts it in well under
 * a second on real hardware, but tens of seconds under emulation (qemu TCG, the IPVS VM)
 * or on a starved host; `$VIGIL_CLUSTER_START_TIMEOUT_MS` overrides the default.
 */
export const DEFAULT_CLUSTER_START_TIMEOUT_MS = 90_000;

/** The start timeout from `$VIGIL_CLUSTER_START_TIMEOUT_MS` (a positive integer of ms), else the default. */
export function clusterStartTimeoutMs(env: NodeJS.ProcessEnv): number {
  const raw = env.VIGIL_CLUSTER_START_TIMEOUT_MS;
  if (raw === undefined || raw === '') return DEFAULT_CLUSTER_START_TIMEOUT_MS;
  const v = raw.trim();
  if (!/^[0-9]+$/.test(v) || Number(v) <= 0 || !Number.isSafeInteger(Number(v))) {
    throw new VigilError('VIGIL_CONFIG_INVALID', `$VIGIL_CLUSTER_START_TIMEOUT_MS: "${raw}" is not a positive integer of milliseconds (default ${DEFAULT_CLUSTER_START_TIMEOUT_MS})`, 400);
  }
  return Number(v);
}
const CLOSE_TIMEOUT_MS = 1800;
const RESTART_DELAY_MS = 1000;

function toError(e: WireError): VigilError {
  return new VigilError(e.code ?? 'VIGIL_CLUSTER', e.message, e.status ?? 500);
}

export class ClusterSupervisor extends EventEmitter<ClusterEvents> {
  readonly name = 'cluster';
  private config: Config;
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  private readonly env: NodeJS.ProcessEnv;
  private readonly servingOf: () => { ok: boolean; why?: string };
  private readonly vipPort: VipPort;
  private readonly startTimeoutMs: number;
  private child: ChildProcess | undefined;
  private snap: ClusterSnapshot | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private leaseTimer: NodeJS.Timeout | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private started: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private stallHandler: (() => void) | undefined;
  /** cluster.mode ecmp: the last table sent (re-sent to a restarted cluster process). */
  private table: { digest: string; announced: number } | undefined;
  /** Times the cluster process was forked again after dying. */
  restarts = 0;

  constructor(opts: SupervisorOptions) {
    super();
    this.config = opts.config;
    this.logger = opts.logger.child({ component: 'cluster-supervisor' });
    this.metrics = opts.metrics;
    this.env = opts.env ?? process.env;
    this.startTimeoutMs = clusterStartTimeoutMs(this.env);
    this.servingOf = opts.serving ?? (() => ({ ok: true }));
    this.vipPort = opts.vipPort ?? new IpVipPort();
  }

  // ------------------------------------------------------------------ reads (last snapshot)

  role(): Role {
    return this.snap?.role ?? 'init';
  }
  elected(): boolean {
    return this.snap?.elected ?? false;
  }
  priority(): number {
    return this.snap?.priority ?? this.config.cluster.nodes.find((n) => n.name === this.config.node)?.priority ?? 0;
  }
  effectivePriority(): number {
    return this.snap?.effectivePriority ?? 0;
  }
  peers(): PeerStatus[] {
    return this.snap?.peers ?? [];
  }
  vipStatus(): VipStatus[] {
    return (
      this.snap?.vips ??
      this.config.vips.map((v) => ({ address: v.address, prefix: v.prefix, interface: v.interface, owned: false, owner: null }))
    );
  }
  /** The cluster process's pid (tests, the chaos bench). */
  pid(): number | undefined {
    return this.child?.pid;
  }

  // ------------------------------------------------------------------ life cycle

  start(): Promise<void> {
    this.started ??= this.spawnChild(true);
    return this.started;
  }

  private spawnChild(first: boolean): Promise<void> {
    const child = fork(clusterEntry(), [], {
      // V8 collects on the main thread alone: a parallel collection makes the main thread
      // sleep until the helper threads finish, and on a saturated machine they wait behind
      // the hogs (measured: a SCHED_RR cluster process 679 ms late under stress-ng)
      execArgv: [...process.execArgv, '--single-threaded-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
      env: this.env,
    });
    this.child = child;
    return new Promise<void>((resolveStart, rejectStart) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        child.kill('SIGKILL');
        rejectStart(new VigilError('VIGIL_CLUSTER', `the cluster process did not start within ${this.startTimeoutMs / 1000} s ($VIGIL_CLUSTER_START_TIMEOUT_MS)`));
      }, this.startTimeoutMs);
      child.on('message', (m: FromCluster) => {
        if (m.type === 'started') {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          if (!m.ok) return rejectStart(toError(m.error));
          this.logger.info({ pid: m.pid, restart: !first }, 'cluster process started');
          this.applyRealtime(m.pid);
          this.startLease();
          if (this.table) this.post({ type: 'table', ...this.table });
          return resolveStart();
        }
        this.onMessage(m);
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (!settled) {
          settled = true;
          rejectStart(new VigilError('VIGIL_CLUSTER', `the cluster process exited while starting (${signal ?? `exit ${code}`})`));
        }
        void this.onExit(child, code, signal);
      });
      child.on('error', (err) => this.logger.error({ err }, 'cluster process error'));
      this.post({ type: 'start', config: this.config, env: this.env, leaseMs: leaseMs(this.config.cluster) });
    });
  }

  private onMessage(m: FromCluster): void {
    switch (m.type) {
      case 'snapshot':
        this.snap = m.snapshot;
        return;
      case 'role':
        this.emit('role', m.event);
        return;
      case 'reply': {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        clearTimeout(p.timer);
        if (m.ok) p.resolve(m.message);
        else p.reject(toError(m.error));
        return;
      }
      default:
        return;
    }
  }

  private async onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    if (this.child !== child) return;
    this.child = undefined;
    this.stopLease();
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new VigilError('VIGIL_UNAVAILABLE', 'the cluster process exited', 409));
      this.pending.delete(id);
    }
    if (this.closing) return;
    const wasRole = this.snap?.role ?? 'init';
    this.logger.error({ code, signal, role: wasRole }, 'the cluster process died: removing its VIPs, restarting it in 1 s');
    await this.removeVips();
    if (this.snap) this.snap = { ...this.snap, role: 'init', elected: false, vips: this.snap.vips.map((v) => ({ ...v, owned: false })) };
    if (wasRole === 'active') this.emit('role', { role: 'standby', previous: 'active', reason: 'cluster-process-died', failover: false });
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.closing) return;
      this.restarts += 1;
      this.spawnChild(false).catch((err: unknown) => this.logger.error({ err }, 'cannot restart the cluster process'));
    }, RESTART_DELAY_MS);
    this.restartTimer.unref();
  }

  /** Removes every managed VIP of the config that is configured here (the process that held them is gone). */
  async removeVips(): Promise<string[]> {
    const scratch = createMetrics({ defaults: false });
    const vips = new VipManager({ port: this.vipPort, vips: this.config.vips, logger: this.logger, metrics: scratch });
    const removed = await vips.removeStale();
    if (removed.length > 0) this.logger.warn({ vips: removed }, 'removed the VIPs of the dead cluster process');
    return removed;
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    if (this.restartTimer) clearTimeout(this.restartTimer);
    if (this.stallHandler) process.removeListener('SIGUSR2', this.stallHandler);
    this.stopLease();
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    this.post({ type: 'close', why: 'daemon stopping' });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([exited.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), CLOSE_TIMEOUT_MS)))]);
    clearTimeout(timer);
    if (timedOut) {
      this.logger.error('the cluster process did not stop in time: killing it and removing the VIPs');
      child.kill('SIGKILL');
      await exited;
      await this.removeVips();
    }
    if (this.snap?.role === 'active') {
      this.emit('role', { role: 'standby', previous: 'active', reason: 'shutdown', failover: false });
    }
  }

  // ------------------------------------------------------------------ lease

  private startLease(): void {
    this.stopLease();
    const every = Math.max(5, Math.min(this.config.cluster.interval_ms, 100));
    const renew = (): void => {
      const s = this.servingOf();
      this.post({ type: 'lease', serving: s.ok, why: s.why });
    };
    renew();
    this.leaseTimer = setInterval(renew, every);
    this.installTestHooks();
  }

  private stopLease(): void {
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    this.leaseTimer = undefined;
  }

  /**
   * Test-only (VIGIL_TEST_HOOKS=1): SIGUSR2 to the daemon stalls the cluster process's
   * event loop (VIGIL_TEST_STALL=cluster, the default) or the daemon's own
   * (VIGIL_TEST_STALL=daemon), for VIGIL_TEST_STALL_MS.
   */
  private installTestHooks(): void {
    if (this.env.VIGIL_TEST_HOOKS !== '1' || this.stallHandler) return;
    const ms = Number(this.env.VIGIL_TEST_STALL_MS ?? 1.5 * this.config.cluster.deadtime_ms);
    this.stallHandler = () => {
      if (this.env.VIGIL_TEST_STALL === 'daemon') {
        this.logger.warn({ ms }, 'test hook: stalling the daemon event loop');
        const until = performance.now() + ms;
        while (performance.now() < until) {
          // busy-wait: no lease renewal, no API
        }
        return;
      }
      this.child?.kill('SIGUSR2');
    };
    process.on('SIGUSR2', this.stallHandler);
  }

  // ------------------------------------------------------------------ realtime

  /**
   * `cluster.realtime: true`: SCHED_RR at `realtime_priority` for every thread of the
   * cluster process (util-linux chrt --all-tasks; Node has no sched_setscheduler; threads
   * started later inherit it). The main thread alone was not enough: it waits for libuv
   * and V8 helper threads, which then waited behind the hogs at normal priority. Needs CAP_SYS_NICE
   * (root, or the unit's AmbientCapabilities); a failure is logged, the process runs on.
   */
  private applyRealtime(pid: number): void {
    const c = this.config.cluster;
    if (!c.realtime) return;
    const p = spawn('chrt', ['--all-tasks', '--rr', '-p', String(c.realtime_priority), String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', (e) => this.logger.warn({ err: e.message }, 'cluster.realtime: cannot run chrt (util-linux); the cluster process runs at nice -10 instead'));
    p.on('exit', (code) => {
      if (code === 0) this.logger.info({ pid, priority: c.realtime_priority }, 'cluster process runs at realtime priority (SCHED_RR)');
      else this.logger.warn({ pid, code, err: err.trim() }, 'cluster.realtime: chrt failed (needs CAP_SYS_NICE and RestrictRealtime=no); the cluster process runs at nice -10 instead');
    });
  }

  // ------------------------------------------------------------------ requests

  private post(m: ToCluster): void {
    const c = this.child;
    if (c?.connected) c.send(m);
  }

  private request(build: (id: number) => ToCluster, timeoutMs: number): Promise<string> {
    if (!this.child?.connected) return Promise.reject(new VigilError('VIGIL_UNAVAILABLE', 'the cluster process is not running', 409));
    const id = this.nextId++;
    return new Promise<string>((resolveReq, rejectReq) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        rejectReq(new VigilError('VIGIL_UNAVAILABLE', `the cluster process did not answer within ${timeoutMs} ms`, 503));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolveReq, reject: rejectReq, timer });
      this.post(build(id));
    });
  }

  private commandTimeout(): number {
    const c = this.config.cluster;
    return c.deadtime_ms + 2 * c.interval_ms + 5000;
  }

  takeover(): Promise<string> {
    return this.command('takeover');
  }
  standby(): Promise<string> {
    return this.command('standby');
  }
  maintenance(on: boolean): Promise<string> {
    return this.command(on ? 'maintenance-on' : 'maintenance-off');
  }
  private command(command: ClusterCommand): Promise<string> {
    if (!this.started || this.closing) return Promise.reject(new VigilError('VIGIL_UNAVAILABLE', 'the cluster is not running', 409));
    return this.request((id) => ({ type: 'command', id, command }), this.commandTimeout());
  }

  /** cluster.mode ecmp: the table digest and announced-VIP count the heartbeats carry (Cluster.setTable). */
  setTable(digest: string, announced: number): void {
    if (this.table?.digest === digest && this.table.announced === announced) return;
    this.table = { digest, announced };
    this.post({ type: 'table', digest, announced });
  }

  async reload(next: Config): Promise<void> {
    await this.request((id) => ({ type: 'reload', id, config: next }), this.commandTimeout());
    this.config = next;
    if (this.leaseTimer) this.startLease();
  }

  /** The cluster process's metrics (exposition text), or '' when it does not answer in time. */
  async metricsText(timeoutMs = 1000): Promise<string> {
    try {
      return await this.request((id) => ({ type: 'metrics', id }), timeoutMs);
    } catch {
      return '';
    }
  }
}
