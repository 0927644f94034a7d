/**
 * The composition root: the only module that knows every subsystem. It builds each one
 * from the config, wires their events, starts them in order and stops them in reverse.
 *
 *   config ──► cluster (election, heartbeats, VIPs) ──role──►┐
 *          ──► health (probes) ──realServerUp/Down──────────►├─► reconcile ──► dataplane (ipvs | forwarder)
 *          ──► drains (API) ────────────────────────────────►┘
 *   every subsystem ──► metrics (prom-client) ──► API (/metrics, /status, control)
 */
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { createApi } from './api/server.js';
import type { Control, DrainResult, HistoryEntry, Role, StatusDoc } from './api/types.js';
import { peerCanTakeOver } from './api/warnings.js';
import { parseListen, type Config } from './config/schema.js';
import { ConfigError, loadConfig, type LoadedConfig } from './config/load.js';
import { loadConfigInWorker } from './config/offthread.js';
import { checkKeyFile } from './cli/key-file.js';
import { VigilError } from './errors.js';
import { createLogger, type Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import { exportPlanMetrics, primeConfigMetrics } from './metrics-prime.js';
import { HealthRunner } from './health/runner.js';
import { createForwarderDataplane } from './forwarder/dataplane.js';
import { Reconciler } from './reconcile/reconciler.js';
import { selectDataplane } from './reconcile/select.js';
import { FiguresBook } from './reconcile/figures.js';
import { serviceStatuses } from './reconcile/status.js';
import { realServerId, type Dataplane, type DataplaneRole } from './reconcile/table.js';
import { createNotifier } from './notify.js';
import { VERSION } from './version.js';
import { Cluster, raiseOwnPriority } from './cluster/cluster.js';
import { ClusterSupervisor } from './cluster/supervisor.js';
import { dropFamilies, partitionMetrics } from './metrics.js';
import { watchSilentPeers } from './cluster/silent-peers.js';
import type { EcmpAnnouncer } from './ecmp/announcer.js';
import { clusterView, isEcmp, modeChangeProblem, startEcmp } from './ecmp/mode.js';
import { tableGraceMs } from './ecmp/peer-tables.js';

/** A long-lived part of the daemon. start() and close() are idempotent. */
export interface Component {
  readonly name: string;
  start(): Promise<void>;
  close(): Promise<void>;
}

export interface DaemonOptions {
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
}

const HISTORY_MAX = 200;

export class Daemon implements Control {
  readonly metrics: Metrics;
  readonly logger: Logger;
  private loaded: LoadedConfig;
  private readonly env: NodeJS.ProcessEnv;
  /** Started components, in start order; closed in reverse. */
  private readonly started: Component[] = [];
  private api: FastifyInstance | undefined;
  private readonly history: HistoryEntry[] = [];
  private readonly startedAt = performance.now();
  private readonly figures = new FiguresBook(() => performance.now(), this.startedAt);
  private stopping: Promise<void> | undefined;
  private apiToken: string | undefined;
  private lastTick = performance.now();
  private tickTimer: NodeJS.Timeout | undefined;
  private cancelPeerWatch: (() => void) | undefined;
  /**
   * Health checks (src/health): probes run whatever the role (warm standby). Subscribe to
   * 'realServerUp' / 'realServerDown'; read isHealthy(), get() and snapshot() for /status.
   */
  health: HealthRunner | undefined;
  /**
   * The reconciler (src/reconcile): desired table → dataplane. Call request('health' |
   * 'config' | 'role'), setRole(role) when the cluster role changes; drains go through it.
   */
  reconciler: Reconciler | undefined;
  dataplane: Dataplane | undefined;
  /**
   * The cluster (src/cluster): heartbeats, election, VIPs, resource/notify scripts, in a
   * process of its own (supervisor.ts ↔ process.ts). Subscribe to its 'role' event
   * `{ role, previous, reason, failover }`. VIGIL_CLUSTER_INLINE=1 runs it in this
   * process instead (a measuring switch for the isolation benchmark, not for production).
   */
  cluster: Cluster | ClusterSupervisor | undefined;
  /** cluster.mode ecmp only (src/ecmp): tells the local BIRD which VIPs to announce. */
  ecmp: EcmpAnnouncer | undefined;

  constructor(loaded: LoadedConfig, opts: DaemonOptions = {}) {
    this.loaded = loaded;
    this.env = opts.env ?? process.env;
    this.logger = opts.logger ?? createLogger(loaded.config.logging.level, this.env, loaded.config.node);
    this.metrics = createMetrics({ version: VERSION });
    this.metrics.buildInfo.reset();
    this.metrics.buildInfo.set({ version: VERSION, node: loaded.config.node }, 1);
    // the config in force loaded: the alert on a rejected reload must not fire on a fresh daemon
    this.metrics.configLastReloadSuccess.set(1);
    primeConfigMetrics(this.metrics, loaded.config, undefined);
    // the vigil_ecmp_* families mean something in cluster.mode ecmp only: a pair exports
    // none (an unlabelled gauge would say 0 and fire the ecmp session alerts)
    if (!isEcmp(loaded.config)) dropFamilies(this.metrics, 'vigil_ecmp_');
  }

  get config(): Config {
    return this.loaded.config;
  }

  record(kind: HistoryEntry['kind'], message: string): void {
    this.history.push({ at: new Date().toISOString(), kind, message });
    if (this.history.length > HISTORY_MAX) this.history.splice(0, this.history.length - HISTORY_MAX);
  }

  async start(): Promise<void> {
    const { config } = this;
    this.apiToken = readToken(config.api.token_file, this.logger);
    this.tickTimer = setInterval(() => {
      this.lastTick = performance.now();
    }, 250);
    this.tickTimer.unref();

    const health = new HealthRunner({ config, metrics: this.metrics, logger: this.logger.child({ component: 'health' }) });
    const onHealth = (to: string) => (e: { service: string; address: string; port: number; reason: string; sinceStart?: boolean }) =>
      this.record('health', `${e.service} ${e.address.includes(':') ? `[${e.address}]` : e.address}:${e.port} ${to}${e.sinceStart ? ' since start' : ''}: ${e.reason}`);
    health.on('realServerUp', onHealth('up'));
    health.on('realServerDown', onHealth('down'));
    // per real server figures for /status (failed checks, time in state, downtime)
    health.on('realServerUp', (e) => this.figures.changed(e.service, e.address, e.port, true, e.atMs));
    health.on('realServerDown', (e) => this.figures.changed(e.service, e.address, e.port, false, e.atMs));
    health.on('probeRun', (e) => void (e.result.ok || this.figures.checkFailed(e.service, e.address, e.port)));
    this.health = health;
    await health.start();
    this.started.push(health);

    // ---- reconcile: desired(config, health, drains) → IPVS or the built-in forwarder
    const { dataplane, reason } = await selectDataplane(config, {
      logger: this.logger.child({ component: 'dataplane' }),
      metrics: this.metrics,
      forwarder: (c) =>
        createForwarderDataplane(c, {
          logger: this.logger.child({ component: 'forwarder' }),
          metrics: this.metrics,
          onConnectFailure: (service, address, port, why) => void this.health?.passiveFailure(service, address, port, why),
        }),
    });
    this.logger.info({ dataplane: dataplane.kind, reason }, 'dataplane selected');
    primeConfigMetrics(this.metrics, config, dataplane.kind);
    await dataplane.start();
    this.dataplane = dataplane;
    this.started.push({ name: 'dataplane', start: () => dataplane.start(), close: () => dataplane.close() });
    const reconciler = new Reconciler({
      dataplane,
      config: () => this.config,
      health: (s, a, p) => health.isHealthy(s, a, p),
      metrics: this.metrics,
      logger: this.logger.child({ component: 'reconcile' }),
    });
    health.on('realServerUp', () => void reconciler.request('health'));
    health.on('realServerDown', () => void reconciler.request('health'));
    let failing = false;
    reconciler.on('failed', () => reconciler.current && exportPlanMetrics(this.metrics, reconciler.current, dataplane.kind, false));
    reconciler.on('reconciled', () => reconciler.current && exportPlanMetrics(this.metrics, reconciler.current, dataplane.kind, true));
    reconciler.on('failed', (r) => {
      if (!failing) this.record('reconcile', `${dataplane.kind}: reconcile failed: ${r.error ?? ''} ${r.failedLines.slice(0, 3).join('; ')}`.trim());
      failing = true;
    });
    reconciler.on('reconciled', (r) => {
      if (failing) this.record('reconcile', `${dataplane.kind}: reconcile succeeded again`);
      else if (r.drift) this.record('reconcile', `${dataplane.kind}: repaired drift (${r.operations} operation(s))`);
      failing = false;
      this.metrics.ready.set(this.isReady() ? 1 : 0);
    });
    this.reconciler = reconciler;
    // not awaited: the first reconcile (a whole table into the kernel can take seconds)
    // must not delay the cluster's start; readiness waits for it instead
    void reconciler.start();
    this.started.push(reconciler);

    this.api = await createApi({
      logger: this.logger,
      metrics: this.metrics,
      status: () => this.status(),
      ready: () => this.isReady(),
      healthy: () => performance.now() - this.lastTick < 5000,
      control: this,
      token: () => this.apiToken,
      extraMetrics: () => (this.cluster instanceof ClusterSupervisor ? this.cluster.metricsText() : Promise.resolve('')),
    });
    const listen = parseListen(config.api.listen);
    if (!listen) throw new VigilError('VIGIL_CONFIG_INVALID', `api.listen "${config.api.listen}" is not host:port`);
    await this.api.listen({ host: listen.host, port: listen.port });
    const api = this.api;
    this.started.push({ name: 'api', start: async () => undefined, close: async () => void (await api.close()) });

    // ---- cluster: started last so it is closed first (release VIPs, tell the peers at once)
    // the event loop that renews the lease and follows the role runs at nice -10 (as the
    // whole daemon did before the split); the cluster process inherits it
    raiseOwnPriority(this.env, this.logger);
    const inline = this.env.VIGIL_CLUSTER_INLINE === '1';
    if (!inline) partitionMetrics(this.metrics, 'daemon');
    const cluster = inline
      ? new Cluster({ config: clusterView(config), logger: this.logger, metrics: this.metrics, env: this.env })
      : new ClusterSupervisor({ config: clusterView(config), logger: this.logger, metrics: this.metrics, env: this.env, serving: () => this.servingState() });
    cluster.on('role', (e) => {
      this.record('role', `${e.previous} → ${e.role} (${e.reason})`);
      this.metrics.ready.set(this.isReady() ? 1 : 0);
      if (!isEcmp(this.config)) void this.followRole(e.role); // ecmp: the dataplane is active on every director
    });
    this.cluster = cluster;
    await cluster.start();
    this.started.push(cluster);
    // a peer never heard from passes no transition: say so once (log line and event)
    const afterMs = config.cluster.initdead_ms + config.cluster.deadtime_ms;
    this.cancelPeerWatch = watchSilentPeers({
      peers: () => cluster.peers(),
      afterMs,
      report: (peer) => {
        this.logger.warn({ peer, afterMs }, 'peer never heard from since start');
        this.record('role', `peer ${peer} never heard from since start (${afterMs} ms): it is down, unreachable on every link, or its key differs`);
      },
    });

    // ---- ecmp mode (src/ecmp/mode.ts): started after the cluster so it is closed first (withdraw, wait, then the rest)
    if (isEcmp(config)) {
      this.ecmp = await startEcmp({ config: () => this.config, logger: this.logger, metrics: this.metrics, reconciler, cluster });
      this.started.push(this.ecmp);
    }
    this.metrics.ready.set(this.isReady() ? 1 : 0);
    this.record('config', `started with ${this.loaded.file}`);
    this.logger.info({ api: config.api.listen, config: this.loaded.file, version: VERSION }, 'vigil started');
  }

  /** The API's actual address (the port may have been 0). */
  apiAddress(): string | undefined {
    const a = this.api?.server.address();
    if (!a || typeof a === 'string') return undefined;
    return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
  }

  /** Stops components in reverse start order. Safe to call more than once. */
  stop(reason = 'stop'): Promise<void> {
    this.stopping ??= (async () => {
      this.logger.info({ reason }, 'vigil stopping');
      if (this.tickTimer) clearInterval(this.tickTimer);
      this.cancelPeerWatch?.();
      for (const c of [...this.started].reverse()) {
        try {
          await c.close();
          this.logger.debug({ component: c.name }, 'component closed');
        } catch (err) {
          this.logger.error({ err, component: c.name }, 'component failed to close');
        }
      }
      this.started.length = 0;
      this.logger.info('vigil stopped');
    })();
    return this.stopping;
  }

  /** Re-reads the config file; a valid one is applied in place, an invalid one is rejected. */
  async reload(): Promise<string> {
    let next: LoadedConfig;
    try {
      // ---- issue 15 (bounded work): read + parse + validate in a worker thread, so the
      // largest accepted config never stalls this event loop (src/config/offthread.ts)
      next = await loadConfigInWorker(this.loaded.file, this.env);
      // ---- end issue 15
    } catch (err) {
      this.metrics.configReloads.inc({ result: 'rejected' });
      this.metrics.configLastReloadSuccess.set(0);
      if (err instanceof ConfigError) {
        this.logger.error({ problems: err.problems.length, errors: err.message.split('\n').slice(1) }, 'config reload rejected; keeping the running config');
        this.record('config', `reload rejected: ${err.problems.length} problem(s)`);
        throw new VigilError('VIGIL_CONFIG_INVALID', err.message, 400, { cause: err });
      }
      throw err;
    }
    // Refused after the file loaded and validated: logged and recorded like a file that
    // does not validate, so a SIGHUP (whose caller sees no reply) still says what and why.
    if (next.config.node !== this.config.node) {
      this.refuseReload(next.file, `reload cannot change node (${this.config.node} → ${next.config.node}); restart instead`);
    }
    if (next.config.api.listen !== this.config.api.listen) {
      this.logger.warn({ from: this.config.api.listen, to: next.config.api.listen }, 'api.listen changes take effect at the next restart');
    }
    const modeChange = modeChangeProblem(this.config, next.config);
    if (modeChange) this.refuseReload(next.file, modeChange);
    try {
      await this.cluster?.reload(clusterView(next.config)); // checks the key file first; never moves the role unless required
    } catch (err) {
      this.refuseReload(next.file, (err as Error).message, err);
    }
    await this.ecmp?.beforeReload(next.config); // ecmp: withdraw removed VIPs and wait before the dataplane drops them
    this.loaded = next;
    this.health?.update(next.config);
    this.figures.retain(next.config.services.flatMap((s) => s.real_servers.map((r) => ({ service: s.name, address: r.address, port: r.port ?? s.port ?? 0 }))));
    if (this.dataplane && 'updateConfig' in this.dataplane) (this.dataplane as Dataplane & { updateConfig(c: Config): void }).updateConfig(next.config);
    void this.reconciler?.request('config');
    void this.ecmp?.afterReload();
    this.apiToken = readToken(next.config.api.token_file, this.logger);
    this.logger.level = this.env.VIGIL_LOG_LEVEL ?? next.config.logging.level;
    this.metrics.configReloads.inc({ result: 'applied' });
    this.metrics.configLastReloadSuccess.set(1);
    primeConfigMetrics(this.metrics, next.config, this.dataplane?.kind);
    this.record('config', `reloaded ${next.file}`);
    this.logger.info({ config: next.file }, 'config reloaded');
    return `reloaded ${next.file}`;
  }

  /** A reload refused after its file loaded: counted, logged (what and why), recorded, thrown. */
  private refuseReload(file: string, why: string, cause?: unknown): never {
    this.metrics.configReloads.inc({ result: 'rejected' });
    this.metrics.configLastReloadSuccess.set(0);
    this.logger.error({ config: file, reason: why }, 'config reload rejected; keeping the running config');
    this.record('config', `reload rejected: ${why}`);
    throw new VigilError('VIGIL_CONFIG_INVALID', why, 400, cause === undefined ? undefined : { cause });
  }

  isReady(): boolean {
    return this.api !== undefined && (this.cluster?.elected() ?? false) && (this.reconciler?.ready ?? false);
  }

  /** The cluster calls this on every role change: the dataplane follows (sync daemon, forwarder listening). */
  async followRole(role: DataplaneRole): Promise<void> {
    await this.reconciler?.setRole(role);
  }

  role(): Role {
    return this.cluster?.role() ?? 'init';
  }

  status(): StatusDoc {
    const c = this.config;
    const me = c.cluster.nodes.find((n) => n.name === c.node);
    return {
      node: c.node,
      version: VERSION,
      role: this.role(),
      priority: this.cluster?.priority() ?? me?.priority ?? 0,
      effectivePriority: this.cluster?.effectivePriority() ?? 0,
      uptimeSeconds: Math.round((performance.now() - this.startedAt) / 1000),
      ready: this.isReady(),
      peers: this.cluster?.peers() ?? [],
      vips: this.cluster?.vipStatus() ?? c.vips.map((v) => ({ address: v.address, prefix: v.prefix, interface: v.interface, owned: false, owner: null })),
      services: serviceStatuses({
        config: c,
        plan: this.reconciler?.current,
        dataplane: this.dataplane?.kind ?? 'none',
        health: (s, a, p) => this.health?.get(s, a, p),
        counters: this.reconciler?.counters() ?? new Map(),
        figures: (s, a, p, healthy, cps) => this.figures.read(s, a, p, healthy, cps),
      }),
      history: [...this.history].reverse(),
      ...(this.ecmp ? { ecmp: this.ecmp.status(), table: { digest: this.reconciler?.digest() ?? null, announced: this.ecmp.announcedCount(), graceMs: tableGraceMs(c) } } : {}),
    };
  }

  // ---- control operations (the API calls these)
  async takeover(): Promise<string> {
    if (this.ecmp) return this.ecmpControl('takeover', (a) => a.setStandby(false));
    return this.clusterControl('takeover', (c) => c.takeover());
  }
  async standby(): Promise<string> {
    if (this.ecmp) return this.ecmpControl('standby', (a) => a.setStandby(true));
    return this.clusterControl('standby', (c) => c.standby());
  }
  async maintenance(on: boolean): Promise<string> {
    if (this.ecmp) return this.ecmpControl(`maintenance ${on ? 'on' : 'off'}`, (a) => a.setMaintenance(on));
    return this.clusterControl(`maintenance ${on ? 'on' : 'off'}`, (c) => {
      // like `standby`: refused when no other director could serve (issue 14)
      if (on && c.role() !== 'maintenance' && !c.peers().some(peerCanTakeOver)) {
        throw new VigilError('VIGIL_CONFLICT', 'maintenance-on: no eligible peer is alive to take over; not entering maintenance', 409);
      }
      return c.maintenance(on);
    });
  }
  /** What the lease tells the cluster: can this director's dataplane serve the VIPs? */
  private servingState(): { ok: boolean; why?: string } {
    const d = this.dataplane;
    if (d && d.kind === 'forwarder' && 'workerPids' in d && (d as { workerPids(): number[] }).workerPids().length === 0) {
      return { ok: false, why: 'no forwarder worker is running' };
    }
    return { ok: true };
  }

  /** ecmp mode: standby/takeover/maintenance withdraw or announce this director's VIPs (no election involved). */
  private async ecmpControl(what: string, fn: (a: EcmpAnnouncer) => Promise<string>): Promise<string> {
    const msg = await fn(this.ecmp as EcmpAnnouncer);
    this.record('control', `${what}: ${msg}`);
    return msg;
  }
  private async clusterControl(what: string, fn: (c: Cluster | ClusterSupervisor) => Promise<string>): Promise<string> {
    if (!this.cluster) throw new VigilError('VIGIL_UNAVAILABLE', 'the cluster subsystem is not running', 409);
    try {
      const msg = await fn(this.cluster);
      this.record('control', `${what}: ${msg}`);
      return msg;
    } catch (err) {
      this.record('control', `${what} refused: ${(err as Error).message}`);
      throw err;
    }
  }
  async drain(service: string, address: string, port: number | undefined, deadlineMs: number): Promise<DrainResult> {
    if (!this.reconciler) throw new VigilError('VIGIL_UNAVAILABLE', 'the reconciler is not running', 409);
    const r = await this.reconciler.drain(service, address, port, deadlineMs);
    this.record('control', `drain ${service} ${realServerId(r.address, r.port)}: ${r.outcome} (${r.remainingConnections} connection(s) left after ${r.waitedMs} ms)`);
    return r;
  }
  async enable(service: string, address: string, port: number | undefined): Promise<string> {
    if (!this.reconciler) throw new VigilError('VIGIL_UNAVAILABLE', 'the reconciler is not running', 409);
    const msg = await this.reconciler.enable(service, address, port);
    this.record('control', `enable: ${msg}`);
    return msg;
  }
}

function readToken(file: string | undefined, logger: Logger): string | undefined {
  if (!file) return undefined;
  try {
    const t = readFileSync(file, 'utf8').trim();
    return t.length > 0 ? t : undefined;
  } catch (err) {
    logger.error({ err, file }, 'cannot read api.token_file; control requests will be refused');
    return undefined;
  }
}

/** Runs the daemon until SIGTERM/SIGINT; SIGHUP reloads. Resolves with the exit code. */
export async function runDaemon(file: string, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const loaded = loadConfig(file, env);
  // the key file as `vigil validate` checks it: a problem there is a config error (exit 78,
  // which the unit does not restart on), not a cluster process failing at each start
  const key = loaded.config.cluster.key_file;
  const keyProblem = key ? await checkKeyFile(key) : undefined;
  if (keyProblem !== undefined) throw new ConfigError(loaded.file, [{ file: loaded.file, path: ['cluster', 'key_file'], message: keyProblem.replace(/^cluster\.key_file /, '') }]);
  const daemon = new Daemon(loaded, { env });
  // Type=notify: READY=1 once started, STOPPING=1 when the stop begins (src/notify.ts)
  const systemd = createNotifier(env, (why) => daemon.logger.warn({ why }, 'cannot notify systemd'));
  let resolveDone: (code: number) => void = () => undefined;
  const done = new Promise<number>((r) => (resolveDone = r));
  let stopSignal: string | undefined;
  const onStop = (sig: string) => () => {
    // Registered with on(), not once(): execa's signal-exit treats a signal as unhandled
    // (kills its children and re-raises it) when it finds no other listener left.
    if (stopSignal !== undefined) return;
    stopSignal = sig;
    systemd.notify('STOPPING=1');
    const hard = setTimeout(() => {
      daemon.logger.error({ signal: sig }, 'stop took longer than 2 s; exiting');
      resolveDone(1);
    }, 1900);
    hard.unref();
    void daemon.stop(sig).then(() => resolveDone(0));
  };
  process.on('SIGTERM', onStop('SIGTERM'));
  process.on('SIGINT', onStop('SIGINT'));
  process.on('SIGHUP', () => {
    daemon.reload().catch(() => undefined); // reload() logged why
  });
  try {
    await daemon.start();
    systemd.notify(`READY=1\nSTATUS=started; API on ${daemon.apiAddress() ?? loaded.config.api.listen}`);
  } catch (err) {
    daemon.logger.fatal({ err }, 'vigil failed to start');
    await daemon.stop('start failed');
    return 1;
  }
  return done;
}
