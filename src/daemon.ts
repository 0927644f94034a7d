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
import { parseListen, type Config } from './config/schema.js';
import { ConfigError, loadConfig, type LoadedConfig } from './config/load.js';
import { VigilError } from './errors.js';
import { createLogger, type Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import { VERSION } from './version.js';

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
  private stopping: Promise<void> | undefined;
  private apiToken: string | undefined;
  private lastTick = performance.now();
  private tickTimer: NodeJS.Timeout | undefined;

  constructor(loaded: LoadedConfig, opts: DaemonOptions = {}) {
    this.loaded = loaded;
    this.env = opts.env ?? process.env;
    this.logger = opts.logger ?? createLogger(loaded.config.logging.level, this.env, loaded.config.node);
    this.metrics = createMetrics({ version: VERSION });
    this.metrics.buildInfo.reset();
    this.metrics.buildInfo.set({ version: VERSION, node: loaded.config.node }, 1);
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

    this.api = await createApi({
      logger: this.logger,
      metrics: this.metrics,
      status: () => this.status(),
      ready: () => this.isReady(),
      healthy: () => performance.now() - this.lastTick < 5000,
      control: this,
      token: () => this.apiToken,
    });
    const listen = parseListen(config.api.listen);
    if (!listen) throw new VigilError('VIGIL_CONFIG_INVALID', `api.listen "${config.api.listen}" is not host:port`);
    await this.api.listen({ host: listen.host, port: listen.port });
    const api = this.api;
    this.started.push({ name: 'api', start: async () => undefined, close: async () => void (await api.close()) });
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
      for (const c of [...this.started].reverse()) {
        try {
          await c.close();
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
      next = loadConfig(this.loaded.file, this.env);
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
    if (next.config.node !== this.config.node) {
      this.metrics.configReloads.inc({ result: 'rejected' });
      throw new VigilError('VIGIL_CONFIG_INVALID', `reload cannot change node (${this.config.node} → ${next.config.node}); restart instead`, 400);
    }
    if (next.config.api.listen !== this.config.api.listen) {
      this.logger.warn({ from: this.config.api.listen, to: next.config.api.listen }, 'api.listen changes take effect at the next restart');
    }
    this.loaded = next;
    this.apiToken = readToken(next.config.api.token_file, this.logger);
    this.logger.level = this.env.VIGIL_LOG_LEVEL ?? next.config.logging.level;
    this.metrics.configReloads.inc({ result: 'applied' });
    this.metrics.configLastReloadSuccess.set(1);
    this.record('config', `reloaded ${next.file}`);
    this.logger.info({ config: next.file }, 'config reloaded');
    return `reloaded ${next.file}`;
  }

  isReady(): boolean {
    return this.api !== undefined;
  }

  role(): Role {
    return 'init';
  }

  status(): StatusDoc {
    const c = this.config;
    const me = c.cluster.nodes.find((n) => n.name === c.node);
    return {
      node: c.node,
      version: VERSION,
      role: this.role(),
      priority: me?.priority ?? 0,
      effectivePriority: me?.priority ?? 0,
      uptimeSeconds: Math.round((performance.now() - this.startedAt) / 1000),
      ready: this.isReady(),
      peers: [],
      vips: c.vips.map((v) => ({ address: v.address, prefix: v.prefix, interface: v.interface, owned: false, owner: null })),
      services: [],
      history: [...this.history].reverse(),
    };
  }

  // ---- control operations (the API calls these)
  async takeover(): Promise<string> {
    throw new VigilError('VIGIL_UNAVAILABLE', 'the cluster subsystem is not running', 409);
  }
  async standby(): Promise<string> {
    throw new VigilError('VIGIL_UNAVAILABLE', 'the cluster subsystem is not running', 409);
  }
  async maintenance(_on: boolean): Promise<string> {
    throw new VigilError('VIGIL_UNAVAILABLE', 'the cluster subsystem is not running', 409);
  }
  async drain(_service: string, _address: string, _port: number | undefined, _deadlineMs: number): Promise<DrainResult> {
    throw new VigilError('VIGIL_UNAVAILABLE', 'the reconciler is not running', 409);
  }
  async enable(_service: string, _address: string, _port: number | undefined): Promise<string> {
    throw new VigilError('VIGIL_UNAVAILABLE', 'the reconciler is not running', 409);
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
  const daemon = new Daemon(loaded, { env });
  let resolveDone: (code: number) => void = () => undefined;
  const done = new Promise<number>((r) => (resolveDone = r));
  const onStop = (sig: string) => () => {
    const hard = setTimeout(() => {
      daemon.logger.error({ signal: sig }, 'stop took longer than 2 s; exiting');
      resolveDone(1);
    }, 1900);
    hard.unref();
    void daemon.stop(sig).then(() => resolveDone(0));
  };
  process.once('SIGTERM', onStop('SIGTERM'));
  process.once('SIGINT', onStop('SIGINT'));
  process.on('SIGHUP', () => {
    daemon.reload().catch(() => undefined); // reload() logged why
  });
  try {
    await daemon.start();
  } catch (err) {
    daemon.logger.fatal({ err }, 'vigil failed to start');
    await daemon.stop('start failed');
    return 1;
  }
  return done;
}
