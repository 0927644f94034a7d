/**
 * The cluster runner: the thin I/O shell around the pure election (election.ts). It
 * owns one UDP socket per link bound to this node's address on that link (never
 * 0.0.0.0), sends a heartbeat to every peer on every shared link each interval, decodes
 * and authenticates what arrives (wire.ts), feeds events to `step()` and performs the
 * actions it returns: VIPs (vip/), resource and notify scripts, immediate sends.
 *
 * Timing: the tick runs on the monotonic clock (performance.now) at fixed due times;
 * how late each tick fires is measured and exported (own lateness). A time-based
 * verdict (peer dead, initdead over) is taken only after the frames already queued in
 * the sockets were read (setImmediate runs after the poll phase) and not within one
 * interval of a tick that fired more than an interval late.
 *
 * Actions that touch the system run one at a time in a queue, in the order the
 * election produced them; a release completes before the frame that announces it.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFileSync, statSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { getPriority, setPriority } from 'node:os';
import DgramAsPromised, { type SocketAsPromised } from 'dgram-as-promised';
import type { PeerStatus, Role, VipStatus } from '../api/types.js';
import type { Config } from '../config/schema.js';
import { VigilError } from '../errors.js';
import { rateLimited, type Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { VipManager } from '../vip/manager.js';
import { IpVipPort, type VipPort } from '../vip/port.js';
import { effectivePriority, handoverGraceLeftMs, initialState, step, type Action, type Command, type ElectionConfig, type ElectionEvent, type ElectionState } from './election.js';
import { startIncarnation, writeIncarnation } from './incarnation.js';
import { ScriptRunner } from './scripts.js';
import { Tracks } from './tracks.js';
import { judgeTables, tableGraceMs, type PeerTableVerdict, type TablesState } from '../ecmp/peer-tables.js';
import { NOT_ECMP, ReplayGuard, VERSION, decodeFrame, digestPrefix, encodeFrame, monoUs, usDiff, type Frame, type FrameTable, type WireVersion } from './wire.js';

export interface RoleEvent {
  role: Role;
  previous: Role;
  reason: string;
  failover: boolean;
}

export interface ClusterEvents {
  role: [RoleEvent];
}

export interface ClusterOptions {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  /** Default: the real `ip`/`arping` port. */
  vipPort?: VipPort;
  env?: NodeJS.ProcessEnv;
  /** Monotonic clock in ms (tests may inject one). */
  now?: () => number;
}

/**
 * Heartbeats must not starve behind other work on a busy director (Heartbeat's
 * `realtime on` without realtime): with CAP_SYS_NICE the calling thread runs at nice -10
 * (Linux nice is per thread; children forked later inherit it). Best effort;
 * VIGIL_NO_RENICE=1 turns it off.
 */
const SCHED_RR = 2;

/** This process's scheduling policy (/proc/self/stat field 41; 0 SCHED_OTHER, 2 SCHED_RR), or -1. */
function ownSchedPolicy(): number {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    // fields after the command name, which is in parentheses and may hold spaces
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[41 - 3] ?? -1);
  } catch {
    return -1;
  }
}

export function raiseOwnPriority(env: NodeJS.ProcessEnv, logger: Logger): void {
  if (env.VIGIL_NO_RENICE === '1') return;
  try {
    if (getPriority() > -10) setPriority(-10);
  } catch (err) {
    logger.debug({ err: (err as Error).message }, 'cannot raise the scheduling priority (needs CAP_SYS_NICE)');
  }
}

/** Reads the HMAC key; the file must not be readable by group or others. */
export function loadKey(file: string): Buffer {
  let mode: number;
  try {
    mode = statSync(file).mode & 0o777;
  } catch (err) {
    throw new VigilError('VIGIL_KEY_FILE', `cluster.key_file ${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, 500, { cause: err });
  }
  if ((mode & 0o077) !== 0) {
    throw new VigilError(
      'VIGIL_KEY_FILE',
      `cluster.key_file ${file} has mode ${mode.toString(8).padStart(4, '0')}; it must be 0600 (readable by its owner only): chmod 600 ${file}`,
    );
  }
  const key = readFileSync(file);
  const trimmed = key.subarray(0, key.length - (/\s*$/.exec(key.toString('latin1'))?.[0].length ?? 0));
  if (trimmed.length === 0) throw new VigilError('VIGIL_KEY_FILE', `cluster.key_file ${file} is empty`);
  return trimmed;
}

/** The election's view of the config: this node, its peers and the links it shares with each. */
export function electionConfig(c: Config): ElectionConfig {
  const me = c.cluster.nodes.find((n) => n.name === c.node);
  if (!me) throw new VigilError('VIGIL_CONFIG_INVALID', `node "${c.node}" is not one of cluster.nodes`);
  const mine = new Set(me.links.map((l) => l.name));
  return {
    self: c.node,
    priority: me.priority,
    peers: c.cluster.nodes.filter((n) => n.name !== c.node).map((n) => ({ name: n.name, links: n.links.map((l) => l.name).filter((l) => mine.has(l)) })),
    intervalMs: c.cluster.interval_ms,
    deadtimeMs: c.cluster.deadtime_ms,
    warntimeMs: c.cluster.warntime_ms,
    initdeadMs: c.cluster.initdead_ms,
    preempt: c.cluster.preempt,
  };
}

interface LinkSocket {
  name: string;
  address: string;
  sock: SocketAsPromised;
}

interface Echo {
  seq: number;
  sentUs: number;
  receivedAt: number;
  incarnation: bigint;
}

/** The canonical text of an IP address (IPv6 compressed, lower case), for comparisons. */
export function canonicalIp(a: string): string {
  const bare = a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
  if (!isIPv6(bare)) return bare;
  try {
    return new URL(`http://[${bare}]/`).hostname.slice(1, -1);
  } catch {
    return bare.toLowerCase();
  }
}

const LATENESS_WINDOW_MS = 60_000;
const SHUTDOWN_SCRIPT_BUDGET_MS = 1000;
const SHUTDOWN_NOTIFY_WAIT_MS = 300;
/** Longest a starting node stays silent waiting for its takeover path (announcing()). */
const WARMUP_MAX_MS = 1000;

export class Cluster extends EventEmitter<ClusterEvents> {
  readonly name = 'cluster';
  private config: Config;
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  private readonly now: () => number;
  private readonly env: NodeJS.ProcessEnv;
  private readonly vips: VipManager;
  private readonly scripts: ScriptRunner;
  private tracks: Tracks;
  private readonly replay = new ReplayGuard();
  private readonly logReject: ReturnType<typeof rateLimited>;
  private state: ElectionState;
  private key: Buffer = randomBytes(32);
  private sockets: LinkSocket[] = [];
  private incarnation = BigInt(Date.now()) * 1000n;
  private seq = 0;
  private readonly echoes = new Map<string, Echo>(); // `${peer}/${link}`
  private readonly rtt = new Map<string, number>(); // `${peer}/${link}` → ms
  private tickTimer: NodeJS.Timeout | undefined;
  /** The extra evaluation at the earliest link expiry (armDeadline). */
  private deadlineTimer: NodeJS.Timeout | undefined;
  private deadlineDue = Infinity;
  private due = 0;
  private latenessMax = { value: 0, since: 0 };
  private queue: Promise<void> = Promise.resolve();
  private releasing = 0;
  private pending = 0;
  private started: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private stallHandler: (() => void) | undefined;
  /** Ends a running hand-over grace early (handoverGrace). */
  private cutGrace: (() => void) | null = null;
  /**
   * When this node started (now()) and whether it announces itself yet: a starting node is
   * silent until its takeover path is armed (warm-up, sendAll), at most WARMUP_MAX_MS.
   */
  private startedAt = 0;
  private warm = false;
  private peerNames: ReadonlySet<string> = new Set();
  /** `${peer}/${link}` → the peer's canonical address on that link: frames come from there only. */
  private sources = new Map<string, string>();
  /** Peers heard speaking an older wire version (an older vigil): answered in that version. */
  private readonly peerVersions = new Map<string, WireVersion>();
  /** cluster.mode ecmp: this director's table digest prefix and announced-VIP count (setTable). */
  private ownTable: FrameTable | undefined;
  /** The table extension of each peer's last accepted frame (undefined: it carried none). */
  private readonly peerTables = new Map<string, FrameTable | undefined>();
  private tablesState: TablesState = {};
  private tableVerdicts: PeerTableVerdict[] = [];
  /** tableGraceMs of the config in force (computed once per config: it walks every check). */
  private tableGrace: number;

  constructor(opts: ClusterOptions) {
    super();
    this.config = opts.config;
    this.logger = opts.logger.child({ component: 'cluster' });
    this.metrics = opts.metrics;
    this.now = opts.now ?? (() => performance.now());
    this.env = opts.env ?? process.env;
    this.vips = new VipManager({ port: opts.vipPort ?? new IpVipPort(), vips: opts.config.vips, logger: this.logger, metrics: this.metrics });
    this.scripts = new ScriptRunner({ logger: this.logger, metrics: this.metrics, node: opts.config.node, killGraceMs: opts.config.health.kill_grace_ms });
    this.tracks = this.makeTracks(opts.config);
    this.logReject = rateLimited(this.logger);
    this.state = initialState(electionConfig(opts.config), this.now());
    this.peerNames = new Set(this.state.cfg.peers.map((p) => p.name));
    this.computeSources(opts.config);
    this.tableGrace = tableGraceMs(opts.config);
  }

  private computeSources(c: Config): void {
    const m = new Map<string, string>();
    for (const n of c.cluster.nodes) {
      if (n.name === c.node) continue;
      for (const l of n.links) m.set(`${n.name}/${l.name}`, canonicalIp(l.address));
    }
    this.sources = m;
  }

  // ------------------------------------------------------------------ reads

  role(): Role {
    return this.state.role;
  }

  /** True once the first election is done (INIT left). */
  elected(): boolean {
    return this.state.elected;
  }

  priority(): number {
    return this.state.cfg.priority;
  }

  effectivePriority(): number {
    return effectivePriority(this.state);
  }

  peers(): PeerStatus[] {
    const me = this.config.cluster.nodes.find((n) => n.name === this.config.node);
    return Object.values(this.state.peers).map((p) => {
      const node = this.config.cluster.nodes.find((n) => n.name === p.name);
      return {
        name: p.name,
        alive: p.alive,
        role: p.alive ? p.role : 'unknown',
        priority: p.role === 'unknown' ? null : p.priority,
        links: Object.entries(p.links).map(([name, l]) => ({
          name,
          local: me?.links.find((x) => x.name === name)?.address ?? '',
          remote: node?.links.find((x) => x.name === name)?.address ?? '',
          up: l.up,
          rttMs: this.rtt.get(`${p.name}/${name}`) ?? null,
          lastHeardMsAgo: l.lastHeard === null ? null : Math.round(this.now() - l.lastHeard),
        })),
        ...(this.isEcmp() ? { table: this.tableStatus(p.name) } : {}),
      };
    });
  }

  private isEcmp(): boolean {
    return this.config.cluster.mode === 'ecmp';
  }

  /** /status peers[].table: the peer's digest and how it compares with ours (ecmp/peer-tables.ts). */
  private tableStatus(peer: string): NonNullable<PeerStatus['table']> {
    const v = this.tableVerdicts.find((x) => x.peer === peer);
    const wall = (t: number | null): string | null => (t === null ? null : new Date(Date.now() - (this.now() - t)).toISOString());
    return {
      digest: v?.digest ?? null,
      announced: v?.announced === undefined || v.announced === null || v.announced === NOT_ECMP ? null : v.announced,
      match: v?.match ?? null,
      since: wall(v?.since ?? null),
      mismatched: v?.mismatched ?? false,
    };
  }

  /** This director's own table as it sends it (undefined before the daemon's first setTable). */
  table(): FrameTable | undefined {
    return this.ownTable;
  }

  /**
   * cluster.mode ecmp: the daemon's desired-table digest (`sha256:<hex>`, reconcile/digest.ts)
   * and how many VIPs it announces (NOT_ECMP when unknown). Carried in every heartbeat from
   * now on; the peers' digests are compared with it (judgeTables).
   */
  setTable(digest: string, announced: number): void {
    const next: FrameTable = { digest: digestPrefix(digest), announced: Number.isInteger(announced) && announced >= 0 && announced < NOT_ECMP ? announced : NOT_ECMP };
    if (this.ownTable?.digest === next.digest && this.ownTable.announced === next.announced) return;
    this.ownTable = next;
    this.judgeTables();
  }

  /** Compares the peers' digests with ours; exports a change of verdict (metric, log line). */
  private judgeTables(): void {
    if (!this.isEcmp() || !this.started) return;
    const peers = Object.values(this.state.peers).map((p) => {
      const t = this.peerTables.get(p.name);
      return { name: p.name, alive: p.alive, digest: t?.digest, announced: t?.announced };
    });
    const prev = this.tableVerdicts;
    const { state, verdicts } = judgeTables(this.tablesState, { own: this.ownTable?.digest, peers, graceMs: this.tableGrace }, this.now());
    this.tablesState = state;
    this.tableVerdicts = verdicts;
    for (const v of verdicts) {
      const before = prev.find((x) => x.peer === v.peer);
      if ((before?.mismatched ?? false) === v.mismatched) continue;
      this.metrics.ecmpTableMismatch.set({ peer: v.peer }, v.mismatched ? 1 : 0);
      if (v.mismatched) {
        this.logger.error(
          { peer: v.peer, peerDigest: v.digest, ownDigest: this.ownTable?.digest, differsMs: Math.round(this.now() - (v.since ?? this.now())) },
          'peer\'s forwarding table differs from ours for longer than the grace: its health view or config disagrees (flows may reach different real servers)',
        );
      } else {
        this.logger.info({ peer: v.peer, match: v.match }, 'peer\'s forwarding table no longer differs from ours');
      }
    }
  }

  vipStatus(): VipStatus[] {
    const activePeer = Object.values(this.state.peers).find((p) => p.alive && p.role === 'active');
    return this.vips.list().map((v) => {
      const owned = this.vips.isOwned(v.address);
      return {
        address: v.address,
        prefix: v.prefix,
        interface: v.interface,
        owned,
        owner: owned ? this.config.node : activePeer ? activePeer.name : null,
      };
    });
  }

  // ------------------------------------------------------------------ life cycle

  start(): Promise<void> {
    this.started ??= this.doStart();
    return this.started;
  }

  private async doStart(): Promise<void> {
    const c = this.config;
    if (c.cluster.key_file) this.key = loadKey(c.cluster.key_file);
    else if (c.cluster.nodes.length > 1) throw new VigilError('VIGIL_KEY_FILE', 'cluster.key_file is required when the cluster has more than one node');
    if (c.cluster.state_file) this.incarnation = startIncarnation(c.cluster.state_file, BigInt(Date.now()) * 1000n, this.logger);
    // before any frame can start an election: a VIP left over from a crash goes first
    const stale = await this.vips.removeStale();
    if (stale.length > 0) this.logger.warn({ vips: stale }, 'removed stale VIPs at start');
    this.raisePriority();
    this.armTakeover();
    await this.bindSockets();
    this.state = initialState(electionConfig(c), this.now());
    this.startedAt = this.now();
    this.peerNames = new Set(this.state.cfg.peers.map((p) => p.name));
    this.publishRole();
    this.metrics.effectivePriority.set(this.effectivePriority());
    for (const p of Object.values(this.state.peers)) this.metrics.peerUp.set({ peer: p.name }, 0);
    this.primeTableMetric();
    this.tracks.start();
    this.installTestHooks();
    this.due = this.now();
    this.scheduleTick();
    this.logger.info(
      { links: this.sockets.map((s) => `${s.name}=${s.address}:${c.cluster.port}`), peers: this.state.cfg.peers.map((p) => p.name), initdeadMs: c.cluster.initdead_ms },
      'cluster started',
    );
  }

  /** vigil_ecmp_table_digest_mismatch: 0 for every configured peer (ecmp mode only), none for a peer gone. */
  private primeTableMetric(): void {
    if (!this.isEcmp()) return;
    const peers = new Set(Object.keys(this.state.peers));
    for (const v of this.tableVerdicts) if (!peers.has(v.peer)) this.metrics.ecmpTableMismatch.remove({ peer: v.peer });
    for (const p of peers) this.metrics.ecmpTableMismatch.set({ peer: p }, this.tableVerdicts.find((v) => v.peer === p)?.mismatched ? 1 : 0);
  }

  /** After a sequence wrap (2^32 frames): a failure to store is logged, the frames go on. */
  private persistIncarnation(file: string): void {
    try {
      writeIncarnation(file, this.incarnation);
    } catch (err) {
      this.logger.error({ err }, 'cannot store the new incarnation; a restart with the clock stepped back may be refused by the peers');
    }
  }

  /** Releases (if active), tells the peers this node is leaving, closes the sockets. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    if (this.tickTimer) clearTimeout(this.tickTimer);
    this.tickTimer = undefined;
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    this.tracks.close();
    if (this.stallHandler) process.removeListener('SIGUSR2', this.stallHandler);
    if (!this.started) return;
    await this.started.catch(() => undefined);
    await this.queue;
    const wasActive = this.state.role === 'active';
    if (wasActive) {
      this.releasing += 1;
      // the daemon has 2 s to stop: stop scripts get 1 s in all, then the VIPs go and the peers are told
      await this.releaseResources('shutdown', SHUTDOWN_SCRIPT_BUDGET_MS);
      this.releasing -= 1;
    }
    // the peers take over on receipt, without waiting for deadtime
    await this.sendAll({ leaving: true });
    if (wasActive) {
      const prev = this.state.role;
      this.state = { ...this.state, role: 'standby' };
      this.onTransition({ type: 'transition', from: prev, to: 'standby', reason: 'shutdown', failover: false });
      this.emit('role', { role: 'standby', previous: prev, reason: 'shutdown', failover: false });
    }
    await this.scripts.idle(SHUTDOWN_NOTIFY_WAIT_MS);
    await this.vips.close(100);
    await Promise.allSettled(this.sockets.map((s) => s.sock.close()));
    this.sockets = [];
    this.logger.info({ wasActive }, 'cluster stopped');
  }

  // ------------------------------------------------------------------ control

  takeover(): Promise<string> {
    return this.command('takeover');
  }
  standby(): Promise<string> {
    return this.command('standby');
  }
  maintenance(on: boolean): Promise<string> {
    return this.command(on ? 'maintenance-on' : 'maintenance-off');
  }

  /**
   * The daemon's lease verdict (process.ts): false = this node cannot serve; a peer that
   * can takes the VIPs. `recovering`: not ok only because the daemon came back from a
   * lapse too recently (hysteresis): it keeps VIPs it holds, and takes them as a last
   * resort when no peer can serve.
   */
  setServing(ok: boolean, why: string, recovering = false): void {
    if (!this.started || this.closing) return;
    const rec = !ok && recovering;
    if (this.state.serving === ok && this.state.recovering === rec) return;
    if (this.state.serving !== ok) this.logger[ok ? 'info' : 'error']({ why }, ok ? 'the daemon serves again: eligible' : 'the daemon cannot serve: not eligible, the VIPs go to a peer that can');
    else if (rec) this.logger.info({ why }, 'the daemon renews its lease again: eligible once it has for the hysteresis; meanwhile it keeps the VIPs it holds and takes them only if no peer can');
    this.apply({ type: 'serving', ok, recovering: rec });
  }

  /** True while the daemon's lease says this node can serve. */
  serving(): boolean {
    return this.state.serving;
  }

  /** The VIP manager's view, for a supervisor cleaning up after this process. */
  holdsVips(): boolean {
    return this.vips.list().some((v) => v.managed && this.vips.isOwned(v.address));
  }

  private async command(cmd: Command): Promise<string> {
    if (!this.started || this.closing) throw new VigilError('VIGIL_UNAVAILABLE', 'the cluster is not running', 409);
    const actions = this.apply({ type: 'command', command: cmd });
    const reply = actions.find((a): a is Extract<Action, { type: 'reply' }> => a.type === 'reply');
    await this.queue; // the release (if any) is done and the peers are told
    if (!reply) return 'ok';
    if (!reply.ok) throw new VigilError('VIGIL_CONFLICT', `${cmd}: ${reply.message}`, 409);
    if (this.state.handover) {
      // make-before-break: answer once a peer holds the VIPs (or nobody took them)
      const c = this.config.cluster;
      const until = this.now() + c.deadtime_ms + 2 * c.interval_ms + 1000;
      while (this.state.handover && this.state.role === 'active' && this.now() < until && !this.closing) {
        await new Promise((r) => setTimeout(r, 5));
      }
      await this.queue;
      if (this.state.role === 'active') {
        throw new VigilError('VIGIL_CONFLICT', `${cmd}: no peer took the VIPs within deadtime; staying active${this.state.yielding ? ' (still yielding to the first eligible peer)' : ''}`, 409);
      }
      return `handed over: a peer holds the VIPs, this node is ${this.state.role}`;
    }
    return reply.message;
  }

  /** Applies a new config in place: timers, priorities, peers, tracks, scripts, VIPs. */
  async reload(next: Config): Promise<void> {
    const prev = this.config;
    const mine = (c: Config) => JSON.stringify(c.cluster.nodes.find((n) => n.name === c.node)?.links ?? []);
    if (mine(prev) !== mine(next) || prev.cluster.port !== next.cluster.port || prev.cluster.id !== next.cluster.id || prev.cluster.state_file !== next.cluster.state_file) {
      this.logger.warn('changes to this node\'s links, cluster.port, cluster.id or cluster.state_file take effect at the next restart');
    }
    if (next.cluster.key_file) this.key = loadKey(next.cluster.key_file); // also picks up a key rotated in place
    this.config = {
      ...next,
      cluster: { ...next.cluster, id: prev.cluster.id, port: prev.cluster.port, state_file: prev.cluster.state_file, nodes: next.cluster.nodes.map((n) => (n.name === prev.node ? { ...n, links: prev.cluster.nodes.find((p) => p.name === prev.node)!.links } : n)) },
    };
    if (JSON.stringify(prev.cluster.tracks) !== JSON.stringify(next.cluster.tracks)) {
      this.tracks.close();
      this.tracks = this.makeTracks(this.config);
      if (this.started) this.tracks.start();
      this.apply({ type: 'track', penalty: 0 });
    }
    const intervalChanged = prev.cluster.interval_ms !== next.cluster.interval_ms;
    this.computeSources(this.config);
    this.apply({ type: 'config', cfg: electionConfig(this.config) });
    for (const name of [...this.peerTables.keys()]) if (!this.peerNames.has(name)) this.peerTables.delete(name);
    this.tableGrace = tableGraceMs(this.config);
    this.judgeTables();
    this.primeTableMetric();
    await this.vips.update(next.vips);
    if (intervalChanged && this.tickTimer) {
      clearTimeout(this.tickTimer);
      this.due = this.now();
      this.scheduleTick();
    }
    await this.queue;
  }

  // ------------------------------------------------------------------ the election

  private apply(ev: ElectionEvent): Action[] {
    const { state, actions } = step(this.state, ev, this.now());
    this.state = state;
    if (ev.type === 'config') this.peerNames = new Set(state.cfg.peers.map((p) => p.name));
    for (const a of actions) this.perform(a);
    this.armDeadline();
    // Subscribers (the reconciler) hear of a transition once this step's actions are done:
    // an active node's VIPs exist when the dataplane starts serving them, and the
    // `ip addr add` is not delayed behind their work.
    for (const a of actions) {
      if (a.type !== 'transition') continue;
      const e: RoleEvent = { role: a.to, previous: a.from, reason: a.reason, failover: a.failover };
      this.enqueue('role event', async () => void this.emit('role', e));
    }
    this.metrics.effectivePriority.set(this.effectivePriority());
    return actions;
  }

  /** Runs fn after the actions queued before it; at once (synchronously started) when idle. */
  private enqueue(what: string, fn: () => Promise<void>): void {
    const run = (): Promise<void> =>
      fn()
        .catch((err: unknown) => {
          this.logger.error({ err, action: what }, 'cluster action failed');
        })
        .finally(() => {
          this.pending -= 1;
        });
    this.pending += 1;
    this.queue = this.pending === 1 ? run() : this.queue.then(run);
  }

  /**
   * Waits out a hand-over's grace, or less: every frame read meanwhile may show that the
   * successor has been active longer already (its queued frames, after this node stalled),
   * and then the wait ends (handoverGraceLeftMs).
   */
  private handoverGrace(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.cutGrace = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.cutGrace = done;
    });
  }

  private perform(a: Action): void {
    switch (a.type) {
      case 'transition':
        return this.onTransition(a);
      case 'acquire':
        return this.enqueue('acquire', async () => {
          await this.vips.acquire();
          await this.scripts.start(this.config.cluster.resources, a.reason);
        });
      case 'release':
        // the successor's GARPs must be the last the clients hear, also during the grace
        this.vips.silence();
        this.releasing += 1;
        return this.enqueue('release', async () => {
          try {
            if (a.graceMs) await this.handoverGrace(a.graceMs);
            await this.releaseResources(a.reason);
          } finally {
            this.releasing -= 1;
          }
        });
      case 'send':
        return this.enqueue('send', () => this.sendAll({}));
      case 'regarp':
        if (a.reason === 'split-brain') this.logger.warn({ reason: a.reason }, 'another node was active too; staying active: fresh GARP and notify');
        else this.logger.info({ reason: a.reason }, 'a peer restarted: fresh GARP, in case it still answers ARP for the VIPs');
        return this.enqueue('regarp', async () => this.vips.regarp(a.reason));
      case 'renotify':
        void this.scripts.notify(this.config.cluster.notify, this.state.role, this.state.role, a.reason);
        return;
      case 'peer':
        this.metrics.peerUp.set({ peer: a.peer }, a.alive ? 1 : 0);
        this.logger[a.alive ? 'info' : 'warn']({ peer: a.peer, reason: a.reason }, a.alive ? 'peer alive' : 'peer dead');
        return;
      case 'link':
        this.metrics.linkUp.set({ peer: a.peer, link: a.link }, a.up ? 1 : 0);
        this.logger[a.up ? 'info' : 'warn']({ peer: a.peer, link: a.link }, a.up ? 'link up' : 'link down');
        return;
      case 'late':
        this.metrics.heartbeatLate.inc({ peer: a.peer });
        this.logReject(`late:${a.peer}`, { peer: a.peer, link: a.link, gapMs: Math.round(a.gapMs) }, 'late heartbeat');
        return;
      case 'drain':
        // setImmediate runs after the poll phase: every datagram already queued is read first
        setImmediate(() => setImmediate(() => {
          if (this.closing || !this.tickTimer) return;
          this.apply({ type: 'tick', lateness: 0, drained: true });
        }));
        return;
      case 'deferred':
        this.metrics.verdictsDeferred.inc();
        this.logger.warn({ latenessMs: Math.round(a.latenessMs) }, 'this node stalled: peer verdicts deferred by one interval');
        return;
      case 'handover':
        this.logger.warn({ reason: a.reason }, a.phase === 'start' ? 'handing over: keeping the VIPs until a peer says it holds them' : 'hand-over cancelled: no peer took the VIPs within deadtime; staying active');
        return;
      case 'reply':
        return;
    }
  }

  private async releaseResources(reason: string, scriptBudgetMs?: number): Promise<void> {
    await this.scripts.stop(this.config.cluster.resources, reason, scriptBudgetMs);
    await this.vips.release();
  }

  private onTransition(a: Extract<Action, { type: 'transition' }>): void {
    this.metrics.transitions.inc({ from: a.from, to: a.to, reason: a.reason });
    if (a.failover && a.to === 'active') this.metrics.failovers.inc({ reason: a.reason });
    this.publishRole(a.to);
    const line = { from: a.from, to: a.to, reason: a.reason, priority: this.effectivePriority() };
    if (a.to === 'active' || a.from === 'active') this.logger.warn(line, `role ${a.from} → ${a.to} (${a.reason})`);
    else this.logger.info(line, `role ${a.from} → ${a.to} (${a.reason})`);
    void this.scripts.notify(this.config.cluster.notify, a.to, a.from, a.reason);
  }

  private publishRole(role: Role = this.state.role): void {
    for (const r of ['init', 'standby', 'active', 'maintenance'] as const) this.metrics.role.set({ role: r }, r === role ? 1 : 0);
  }

  // ------------------------------------------------------------------ timers

  /**
   * A link's deadtime rarely ends on a tick: without this the verdict waited up to one
   * more interval (half on average: 25 ms at the default 50/250). An extra evaluation is
   * armed for the moment the earliest up link expires; it is a tick event like any other,
   * with its own lateness, so a stall that delays it still defers the verdict (election.ts).
   */
  private armDeadline(): void {
    if (this.closing || !this.tickTimer) return;
    const dead = this.config.cluster.deadtime_ms;
    let due = Infinity;
    for (const p of Object.values(this.state.peers)) {
      for (const l of Object.values(p.links)) if (l.up && l.lastHeard !== null) due = Math.min(due, l.lastHeard + dead);
    }
    if (due === this.deadlineDue) return;
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    this.deadlineDue = due;
    if (due === Infinity) return;
    this.deadlineTimer = setTimeout(() => {
      this.deadlineTimer = undefined;
      this.deadlineDue = Infinity;
      if (this.closing || !this.tickTimer) return;
      this.apply({ type: 'tick', lateness: Math.max(0, this.now() - due), drained: false });
    }, Math.max(0, due - this.now()) + 1);
  }

  private scheduleTick(): void {
    const interval = this.config.cluster.interval_ms;
    this.due += interval;
    const now = this.now();
    if (this.due < now - interval) this.due = now; // far behind after a stall: do not fire a burst
    this.tickTimer = setTimeout(() => this.onTick(), Math.max(0, this.due - now));
  }

  private onTick(): void {
    if (this.closing) return;
    const now = this.now();
    const lateness = Math.max(0, now - this.due);
    this.metrics.timerLateness.observe(lateness / 1000);
    if (lateness >= this.latenessMax.value || now - this.latenessMax.since > LATENESS_WINDOW_MS) {
      if (now - this.latenessMax.since > LATENESS_WINDOW_MS) this.latenessMax = { value: 0, since: now };
      this.latenessMax.value = Math.max(this.latenessMax.value, lateness);
      this.metrics.timerLatenessMax.set(this.latenessMax.value / 1000);
    }
    this.scheduleTick();
    // All links in the same tick, on purpose: the peer's verdict comes deadtime after the
    // newest frame it heard, so frames spread over the interval (one link every interval/k)
    // would make the newest one fresher at a crash and the verdict later (2.5 ms on average
    // at 10/40 with two links).
    void this.sendAll({});
    this.apply({ type: 'tick', lateness, drained: false });
    this.judgeTables();
    this.metrics.vipTakeoverReady.set(this.vips.takeoverReady() ? 1 : 0);
  }

  /** Test-only: SIGUSR2 busy-waits the event loop (VIGIL_TEST_HOOKS=1). */
  private installTestHooks(): void {
    if (this.env.VIGIL_TEST_HOOKS !== '1') return;
    const ms = Number(this.env.VIGIL_TEST_STALL_MS ?? 1.5 * this.config.cluster.deadtime_ms);
    this.stallHandler = () => {
      this.logger.warn({ ms }, 'test hook: stalling the event loop');
      const until = performance.now() + ms;
      while (performance.now() < until) {
        // busy-wait: nothing else runs, datagrams queue in the sockets
      }
    };
    process.on('SIGUSR2', this.stallHandler);
  }

  private raisePriority(): void {
    raiseOwnPriority(this.env, this.logger);
  }

  /**
   * The takeover's `ip addr add` and first `arping` wait forked and blocked (vip/armed.ts).
   * They must be forked at this process's final scheduling: with cluster.realtime the
   * supervisor applies SCHED_RR (chrt) just after this process starts, and a shell forked
   * before that would run the takeover at normal priority, behind the hogs. So they are
   * armed once /proc says SCHED_RR, or after 10 s without it (chrt failed; logged there).
   */
  private armTakeover(): void {
    if (!this.config.cluster.realtime) return this.vips.arm();
    const since = performance.now();
    const poll = (): void => {
      if (this.closing) return;
      if (ownSchedPolicy() === SCHED_RR || performance.now() - since > 10_000) return this.vips.arm();
      // the supervisor's chrt follows the start within milliseconds; the warm-up waits on it
      setTimeout(poll, performance.now() - since < 2000 ? 5 : 100).unref();
    };
    poll();
  }

  private makeTracks(c: Config): Tracks {
    return new Tracks({
      tracks: c.cluster.tracks,
      logger: this.logger,
      metrics: this.metrics,
      onChange: (penalty) => {
        if (this.started && !this.closing) this.apply({ type: 'track', penalty });
      },
    });
  }

  // ------------------------------------------------------------------ transport

  private async bindSockets(): Promise<void> {
    const c = this.config;
    const me = c.cluster.nodes.find((n) => n.name === c.node)!;
    for (const l of me.links) {
      const sock = DgramAsPromised.createSocket({ type: isIPv6(l.address) ? 'udp6' : 'udp4' }, (msg, rinfo) =>
        this.onDatagram(l.name, msg, rinfo.address),
      );
      sock.socket.on('error', (err) => this.logger.error({ err, link: l.name }, 'heartbeat socket error'));
      try {
        await sock.bind(c.cluster.port, l.address);
      } catch (err) {
        await Promise.allSettled(this.sockets.map((s) => s.sock.close()));
        this.sockets = [];
        throw new VigilError(
          'VIGIL_BIND_FAILED',
          `cannot bind the heartbeat socket of link "${l.name}" to ${l.address}:${c.cluster.port}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
          500,
          { cause: err },
        );
      }
      try {
        sock.setRecvBufferSize(1 << 20); // room for frames queued while this node is stalled
      } catch {
        // capped by net.core.rmem_max; the default is enough for a few seconds of heartbeats
      }
      this.sockets.push({ name: l.name, address: l.address, sock });
    }
  }

  private onDatagram(link: string, msg: Buffer, from: string): void {
    if (this.closing && !this.tickTimer) return;
    const r = decodeFrame(msg, {
      key: this.key,
      cluster: this.config.cluster.id,
      self: this.config.node,
      peers: this.peerNames,
      link,
    });
    if (!r.ok) return this.reject(r.reason, link, from);
    const f = r.frame;
    // a signed frame counts only from the address the peer has on that link
    if (this.sources.get(`${f.node}/${link}`) !== canonicalIp(from)) return this.reject('wrong_source', link, from);
    const verdict = this.replay.check(f);
    if (verdict !== 'ok') return this.reject(verdict, link, from);
    this.replay.accept(f);
    const now = this.now();
    // echoed back whatever it says: that is how the peer confirms this node's incarnation
    this.echoes.set(`${f.node}/${link}`, { seq: f.seq, sentUs: f.sentUs, receivedAt: now, incarnation: f.incarnation });
    const version = f.version ?? VERSION;
    if (version !== VERSION && this.peerVersions.get(f.node) !== version) {
      this.logger.warn(
        { peer: f.node, version },
        `peer speaks heartbeat wire version ${version} (an older vigil): answering in version ${version}` +
          (version === 1 ? '; replayed frames cannot be told from fresh ones until it is upgraded' : '') +
          (this.isEcmp() ? '; its forwarding-table digest is not exchanged until it is upgraded' : ''),
      );
    }
    if (version === VERSION) this.peerVersions.delete(f.node);
    else this.peerVersions.set(f.node, version);
    if (version !== 1) {
      // Freshness across restarts: a frame recorded before this node started (a replay,
      // or one queued in the network) cannot echo the current incarnation. Until the peer
      // echoes it, its frames are not believed: the peer has not heard this node yet.
      if (f.echoIncarnation !== this.incarnation) return this.reject('unconfirmed', link, from);
    }
    this.metrics.framesReceived.inc({ link });
    if (f.echoSeq !== 0) {
      const rttUs = usDiff(usDiff(monoUs(now), f.echoSentUs), f.echoHoldUs);
      if (rttUs < this.config.cluster.deadtime_ms * 1000) {
        this.rtt.set(`${f.node}/${link}`, rttUs / 1000);
        this.metrics.heartbeatRtt.observe({ peer: f.node, link }, rttUs / 1e6);
      }
    }
    const prevTable = this.peerTables.get(f.node);
    this.peerTables.set(f.node, f.table);
    const prevRole = this.state.peers[f.node]?.role;
    this.apply({
      type: 'frame',
      peer: f.node,
      link,
      role: f.role,
      priority: f.priority,
      releasing: f.releasing,
      leaving: f.leaving,
      takeover: f.takeover,
      yielding: f.yielding,
      sentUs: f.sentUs,
    });
    if (this.cutGrace && handoverGraceLeftMs(this.state) === 0) this.cutGrace();
    if (f.table?.digest !== prevTable?.digest || f.table?.announced !== prevTable?.announced) this.judgeTables();
    const role = this.state.peers[f.node]?.role;
    if (role !== prevRole) {
      for (const x of ['init', 'standby', 'active', 'maintenance'] as const) this.metrics.peerRole.set({ peer: f.node, role: x }, x === role ? 1 : 0);
    }
  }

  private reject(reason: string, link: string, from: string): void {
    this.metrics.framesRejected.inc({ reason });
    this.logReject(`reject:${reason}`, { reason, link, from }, 'heartbeat frame dropped');
  }

  /**
   * Warm-up: a starting node says nothing until a takeover would start no process (the
   * `ip -batch` co-process and the GARP helper or armed shells run; vip/port.ts), or
   * WARMUP_MAX_MS passed, or it went active on its own. A better peer with preempt would
   * otherwise be handed the VIPs by the active within a few ms of its start and pay two
   * process spawns in the hand-over (10/40: failback 35 ms median instead of single
   * digits). Silence costs nothing: it is still in INIT, and its peers do not know it yet.
   */
  private announcing(s: ElectionState, opts: { leaving?: boolean }): boolean {
    if (this.warm) return true;
    const waited = this.now() - this.startedAt;
    const ready = this.vips.takeoverReady();
    if (!(ready || opts.leaving || s.role === 'active' || this.releasing > 0 || waited >= WARMUP_MAX_MS)) return false;
    this.warm = true;
    if (ready) this.logger.info({ warmupMs: Math.round(waited) }, 'announcing this node: takeover path armed');
    else this.logger.warn({ warmupMs: Math.round(waited) }, 'announcing this node before its takeover path is armed: a takeover now spawns ip and arping (slower); check that ip, perl and arping run here (vigil_vip_takeover_ready)');
    return true;
  }

  private async sendAll(opts: { leaving?: boolean }): Promise<void> {
    const c = this.config;
    const s = this.state;
    if (!this.announcing(s, opts)) return;
    // while a release is in progress the node still holds VIPs: it does not say standby yet
    const role: Role = this.releasing > 0 ? 'active' : s.role;
    const priority = this.releasing > 0 ? Math.max(1, effectivePriority(s)) : effectivePriority(s);
    const releasing = this.releasing > 0 || s.handover !== null;
    const sends: Promise<unknown>[] = [];
    for (const peer of s.cfg.peers) {
      const node = c.cluster.nodes.find((n) => n.name === peer.name);
      if (!node) continue;
      for (const linkName of peer.links) {
        const sock = this.sockets.find((x) => x.name === linkName);
        const to = node.links.find((l) => l.name === linkName)?.address;
        if (!sock || !to) continue;
        const echo = this.echoes.get(`${peer.name}/${linkName}`);
        const now = this.now();
        this.seq += 1;
        if (this.seq > 0xffff_ffff) {
          this.incarnation += 1n; // the sequence wrapped: a new incarnation keeps frames newer
          this.seq = 1;
          if (c.cluster.state_file) this.persistIncarnation(c.cluster.state_file);
        }
        const frame: Frame = {
          cluster: c.cluster.id,
          node: c.node,
          link: linkName,
          role,
          priority,
          releasing,
          leaving: opts.leaving === true,
          takeover: s.takeover,
          yielding: s.yielding,
          incarnation: this.incarnation,
          seq: this.seq,
          sentUs: monoUs(now),
          echoSeq: echo?.seq ?? 0,
          echoSentUs: echo?.sentUs ?? 0,
          echoHoldUs: echo ? Math.round((now - echo.receivedAt) * 1000) : 0,
          echoIncarnation: echo?.incarnation ?? 0n,
          version: this.peerVersions.get(peer.name) ?? VERSION,
          ...(this.ownTable ? { table: this.ownTable } : {}),
        };
        const buf = encodeFrame(frame, this.key);
        sends.push(
          sock.sock.send(buf, c.cluster.port, to).then(
            () => this.metrics.framesSent.inc({ link: linkName }),
            (err: NodeJS.ErrnoException) => this.logReject(`send:${linkName}:${err.code}`, { link: linkName, to, err: err.code ?? err.message }, 'heartbeat send failed'),
          ),
        );
      }
    }
    await Promise.all(sends);
  }
}
