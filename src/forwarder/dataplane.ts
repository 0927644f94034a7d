/**
 * The forwarder as a `Dataplane`: the reconciler's only handle on it. This main-process
 * side holds the table and the role, runs the worker processes (node:cluster, SCHED_NONE:
 * each worker accepts on the shared listening socket itself), pushes every change to all
 * of them, and aggregates their counters for /status and the metrics.
 *
 *   reconciler ──apply(ops)/setRole──► dataplane (main) ──state──► worker 1..N (Engine)
 *                                          ▲  counters, connect failures, templates  │
 *                                          └──────────────────────────────────────────┘
 *
 * A worker that dies is forked again (after 1 s) and given the current state; while it is
 * down its share of the accept queue is served by the others.
 */
import type { SendHandle } from 'node:child_process';
import cluster, { type Worker } from 'node:cluster';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { MAX_ACCEPT_MAX, type Config } from '../config/schema.js';
import { serviceKey } from '../config/validate.js';
import { VigilError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Dataplane, DataplaneRole, Operation, RealServerCounters, Table, TableRealServer, TableService } from '../reconcile/table.js';
import { realServerId } from '../reconcile/table.js';
import type { EngineSettings, ServiceSnapshot } from './engine.js';
import type { FromWorker, ToWorker } from './protocol.js';
import { addCounters, RateEstimator, toRealServerCounters, zeroCounters, type DestCounters } from './stats.js';

export interface ForwarderDeps {
  logger: Logger;
  metrics: Metrics;
  /** A failed connect to a real server (refused, timed out, reset): route it to health's passiveFailure. */
  onConnectFailure?: (serviceName: string, address: string, port: number, reason: string) => void;
  /** Extra node flags for the workers (the benchmark passes --cpu-prof). */
  workerExecArgv?: string[];
}

export interface ForwarderDataplane extends Dataplane {
  readonly kind: 'forwarder';
  /** A config reload: service names (for events and metric labels) and forwarder settings. */
  updateConfig(config: Config): void;
  /** Worker process ids (the benchmark reads their CPU time). */
  workerPids(): number[];
}

export function createForwarderDataplane(config: Config, deps: ForwarderDeps): ForwarderDataplane {
  return new ForwarderMain(config, deps);
}

/** The worker entry: beside this module when built, else the built copy in dist/ (tests run src/). */
export function workerEntry(): string {
  const here = fileURLToPath(new URL('./worker.js', import.meta.url));
  if (existsSync(here)) return here;
  const built = fileURLToPath(new URL('../../dist/forwarder/worker.js', import.meta.url));
  if (existsSync(built)) return built;
  throw new VigilError('VIGIL_FORWARDER_WORKER_MISSING', `forwarder worker not found at ${here} or ${built}; run npm run build`);
}

export function workerCount(configured: number): number {
  return configured > 0 ? configured : Math.max(1, availableParallelism());
}

function settingsOf(config: Config): EngineSettings {
  const f = config.dataplane.forwarder;
  return {
    connectTimeoutMs: f.connect_timeout_ms,
    connectRetries: f.connect_retries,
    tcpIdleTimeoutMs: f.tcp_idle_timeout_ms,
    udpIdleTimeoutMs: f.udp_idle_timeout_ms,
    maxAccept: f.max_accept,
  };
}

interface Slot {
  index: number;
  worker: Worker | null;
  ready: boolean;
  /** Last counters seen from this worker incarnation (for metric deltas). */
  last: Map<string, ServiceSnapshot>;
  restartTimer: NodeJS.Timeout | null;
  /** Copies of listening sockets this process holds while it sends them to the worker. */
  inFlight: Set<{ close(): void }>;
}

const ACK_TIMEOUT_MS = 3000;
const SNAPSHOT_TIMEOUT_MS = 500;
const POLL_MS = 1000;

const cloneService = (s: TableService): TableService => ({
  ...s,
  ...(s.persistence ? { persistence: { ...s.persistence } } : {}),
  ...(s.flags ? { flags: [...s.flags] } : {}),
  realServers: s.realServers.map((r) => ({ ...r })),
});

class ForwarderMain implements ForwarderDataplane {
  readonly kind = 'forwarder' as const;
  private table = new Map<string, TableService>();
  private role: DataplaneRole = 'init';
  private settings: EngineSettings;
  private names = new Map<string, string>();
  private readonly count: number;
  private readonly slots: Slot[] = [];
  private started = false;
  private closing = false;
  private seq = 0;
  private readonly acks = new Map<number, { need: Set<number>; done: () => void }>();
  private snapId = 0;
  private readonly snaps = new Map<number, { need: Set<number>; got: Map<number, ServiceSnapshot[]>; done: () => void }>();
  private pollTimer: NodeJS.Timeout | null = null;
  /** Totals of worker incarnations that exited (so totals never go backwards). */
  private readonly retired = new Map<string, Map<string, DestCounters>>();
  private readonly rates = new Map<string, RateEstimator>();
  private readonly log: Logger;
  private readonly listenErrorsLogged = new Map<string, number>();

  constructor(
    config: Config,
    private readonly deps: ForwarderDeps,
  ) {
    this.log = deps.logger;
    this.settings = settingsOf(config);
    this.count = workerCount(config.dataplane.forwarder.workers);
    this.updateNames(config);
  }

  updateConfig(config: Config): void {
    this.updateNames(config);
    const next = settingsOf(config);
    if (JSON.stringify(next) !== JSON.stringify(this.settings)) {
      this.settings = next;
      void this.push();
    }
    const want = workerCount(config.dataplane.forwarder.workers);
    if (want !== this.count) this.log.warn({ from: this.count, to: want }, 'dataplane.forwarder.workers changes take effect at the next restart');
  }

  private updateNames(config: Config): void {
    this.names = new Map();
    for (const s of config.services) {
      const k = serviceKey(s);
      if (k !== undefined) this.names.set(k, s.name);
    }
  }

  private nameOf(key: string): string {
    return this.names.get(key) ?? key;
  }

  workerPids(): number[] {
    return this.slots.flatMap((s) => (s.worker?.process.pid !== undefined ? [s.worker.process.pid] : []));
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.closing = false;
    if (!cluster.isPrimary) throw new VigilError('VIGIL_FORWARDER_START', 'the forwarder must run in the primary process');
    // Each worker accepts on the shared socket itself; the default (round robin) would
    // funnel every connection through this process.
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    cluster.setupPrimary({ exec: workerEntry(), execArgv: this.deps.workerExecArgv ?? [], args: [], silent: false });
    const ready: Promise<void>[] = [];
    for (let i = 0; i < this.count; i++) {
      const slot: Slot = { index: i, worker: null, ready: false, last: new Map(), restartTimer: null, inFlight: new Set() };
      this.slots.push(slot);
      ready.push(this.fork(slot));
    }
    await Promise.all(ready);
    this.pollTimer = setInterval(() => void this.poll(), POLL_MS);
    this.pollTimer.unref();
    this.log.info({ workers: this.count }, 'forwarder started');
  }

  private fork(slot: Slot): Promise<void> {
    return new Promise((resolve) => {
      const w = cluster.fork({ VIGIL_FORWARDER_WORKER: String(slot.index) });
      slot.worker = w;
      slot.ready = false;
      slot.last = new Map();
      let settled = false;
      const settle = (): void => {
        if (!settled) {
          settled = true;
          resolve();
        }
      };
      const timer = setTimeout(() => {
        this.log.error({ worker: slot.index }, 'forwarder worker did not report ready within 10 s');
        settle();
      }, 10_000);
      timer.unref();
      w.on('message', (m: FromWorker, handle?: unknown) => {
        if (m.t === 'acceptHandles') this.sendAcceptHandles(slot, w, m, handle);
        else if (m.t === 'ready') {
          slot.ready = true;
          this.deps.metrics.fwdWorkers.set(this.slots.filter((s) => s.ready).length);
          this.sendState(slot, ++this.seq);
          clearTimeout(timer);
          settle();
        } else this.onMessage(slot, m);
      });
      w.on('error', (err) => this.log.warn({ err, worker: slot.index }, 'forwarder worker IPC error'));
      w.on('exit', (code, signal) => {
        clearTimeout(timer);
        settle();
        this.onExit(slot, w, code, signal);
      });
    });
  }

  private onExit(slot: Slot, w: Worker, code: number | null, signal: string | null): void {
    if (slot.worker !== w) return;
    // Keep what this incarnation counted.
    for (const s of slot.last.values()) {
      let m = this.retired.get(s.key);
      if (m === undefined) this.retired.set(s.key, (m = new Map()));
      for (const [id, c] of s.dests) {
        let r = m.get(id);
        if (r === undefined) m.set(id, (r = zeroCounters()));
        addCounters(r, { ...c, active: 0, inactive: 0 });
      }
    }
    slot.worker = null;
    slot.ready = false;
    slot.last = new Map();
    for (const h of slot.inFlight) h.close();
    slot.inFlight.clear();
    this.deps.metrics.fwdWorkers.set(this.slots.filter((s) => s.ready).length);
    for (const a of this.acks.values()) if (a.need.delete(slot.index) && a.need.size === 0) a.done();
    for (const s of this.snaps.values()) if (s.need.delete(slot.index) && s.need.size === 0) s.done();
    if (this.closing || !this.started) return;
    this.log.error({ worker: slot.index, code, signal }, 'forwarder worker exited; restarting it in 1 s');
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = null;
      if (this.started && !this.closing) void this.fork(slot);
    }, 1000);
    slot.restartTimer.unref();
  }

  private onMessage(slot: Slot, m: FromWorker): void {
    switch (m.t) {
      case 'ack': {
        const a = this.acks.get(m.seq);
        if (a && a.need.delete(slot.index) && a.need.size === 0) a.done();
        break;
      }
      case 'snapshot': {
        const s = this.snaps.get(m.id);
        this.observe(slot, m.services);
        if (s) {
          s.got.set(slot.index, m.services);
          if (s.need.delete(slot.index) && s.need.size === 0) s.done();
        }
        break;
      }
      case 'connectFailure': {
        const name = this.nameOf(m.key);
        this.deps.metrics.fwdConnectFailures.inc({ service: name, real_server: realServerId(m.address, m.port) });
        this.log.debug({ service: name, address: m.address, port: m.port, reason: m.reason }, 'connect to real server failed');
        try {
          this.deps.onConnectFailure?.(name, m.address, m.port, m.reason);
        } catch (err) {
          this.log.error({ err }, 'onConnectFailure handler threw');
        }
        break;
      }
      case 'listenError': {
        // One line per service and minute: the worker retries every second.
        const now = performance.now();
        const key = `${m.key} ${m.message}`;
        if ((this.listenErrorsLogged.get(key) ?? -Infinity) < now - 60_000) {
          this.listenErrorsLogged.set(key, now);
          const fields = { service: this.nameOf(m.key), key: m.key, error: m.message };
          if (m.copy === true) this.log.warn(fields, 'forwarder worker accepts on fewer descriptors than max_accept (the service is served; fewer connections per event-loop turn)');
          else this.log.error(fields, 'forwarder cannot listen on the virtual service; retrying every second');
        }
        break;
      }
      case 'template':
        for (const other of this.slots) {
          if (other !== slot && other.ready) this.send(other, { t: 'template', key: m.key, client: m.client, dest: m.dest });
        }
        break;
      case 'ready':
        break;
    }
  }

  /**
   * max_accept: the worker sent its listening handle; send it back `count` times. Every
   * send passes a new descriptor of the same socket, which the worker polls beside its
   * own, so one event-loop turn can accept up to that many connections (libuv accepts one
   * per descriptor and turn). This process never polls or accepts on its copy, and
   * closes it once the last send has gone (or the worker exited).
   */
  private sendAcceptHandles(slot: Slot, w: Worker, m: Extract<FromWorker, { t: 'acceptHandles' }>, handle: unknown): void {
    const h = handle as { close(): void } | null | undefined;
    if (h === null || h === undefined || typeof h.close !== 'function') return;
    const count = Math.min(Math.max(0, Math.floor(m.count)), MAX_ACCEPT_MAX);
    if (slot.worker !== w || count === 0 || !w.isConnected()) {
      h.close();
      return;
    }
    slot.inFlight.add(h);
    let left = count;
    const sent = (err: Error | null): void => {
      if (err !== null) this.log.warn({ err, worker: slot.index, service: this.nameOf(m.key) }, 'cannot pass a listening socket to a forwarder worker');
      left -= 1;
      if (left === 0 && slot.inFlight.delete(h)) h.close();
    };
    const msg: ToWorker = { t: 'acceptHandle', key: m.key, gen: m.gen };
    for (let i = 0; i < count; i++) {
      try {
        w.send(msg, h as SendHandle, sent);
      } catch (err) {
        sent(err as Error);
      }
    }
  }

  private send(slot: Slot, m: ToWorker): void {
    const w = slot.worker;
    if (w === null || !w.isConnected()) return;
    try {
      w.send(m);
    } catch (err) {
      this.log.warn({ err, worker: slot.index }, 'cannot send to forwarder worker');
    }
  }

  private sendState(slot: Slot, seq: number): void {
    const active = this.role === 'active';
    this.send(slot, {
      t: 'state',
      seq,
      settings: this.settings,
      table: [...this.table.values()],
      listen: active ? [...this.table.keys()] : [],
      udpOwner: slot.index === 0,
    });
  }

  /** Sends the current state to every worker and waits for their acks (or a timeout). */
  private push(): Promise<void> {
    if (!this.started) return Promise.resolve();
    const seq = ++this.seq;
    const live = this.slots.filter((s) => s.ready);
    if (live.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.acks.delete(seq);
        this.log.warn({ seq }, 'forwarder workers did not acknowledge a table change within 3 s');
        resolve();
      }, ACK_TIMEOUT_MS);
      this.acks.set(seq, {
        need: new Set(live.map((s) => s.index)),
        done: () => {
          clearTimeout(t);
          this.acks.delete(seq);
          resolve();
        },
      });
      for (const s of live) this.sendState(s, seq);
    });
  }

  async close(): Promise<void> {
    if (!this.started || this.closing) return;
    this.closing = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
    const exits: Promise<void>[] = [];
    for (const slot of this.slots) {
      if (slot.restartTimer) clearTimeout(slot.restartTimer);
      const w = slot.worker;
      if (w === null) continue;
      exits.push(
        new Promise<void>((resolve) => {
          if (w.isDead()) return resolve();
          const t = setTimeout(() => {
            w.process.kill('SIGKILL');
            resolve();
          }, 1000);
          w.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
          w.process.kill('SIGTERM');
        }),
      );
    }
    await Promise.all(exits);
    this.slots.length = 0;
    this.deps.metrics.fwdWorkers.set(0);
    this.started = false;
    this.log.info('forwarder stopped');
  }

  async read(): Promise<Table> {
    return [...this.table.values()].map(cloneService);
  }

  async apply(ops: Operation[]): Promise<void> {
    const next = new Map([...this.table].map(([k, v]) => [k, cloneService(v)]));
    for (const op of ops) applyOp(next, op);
    this.table = next;
    await this.push();
  }

  async setRole(role: DataplaneRole): Promise<void> {
    if (role === this.role) return;
    const was = this.role;
    this.role = role;
    this.log.info({ from: was, to: role, listening: role === 'active' }, role === 'active' ? 'forwarder listening on the virtual services' : 'forwarder not listening');
    await this.push();
  }

  /** Asks every worker for its counters; a worker that does not answer in time counts with its last report. */
  private snapshot(): Promise<Map<number, ServiceSnapshot[]>> {
    const id = ++this.snapId;
    const live = this.slots.filter((s) => s.ready);
    return new Promise((resolve) => {
      const got = new Map<number, ServiceSnapshot[]>();
      const finish = (): void => {
        clearTimeout(t);
        this.snaps.delete(id);
        for (const s of this.slots) if (!got.has(s.index) && s.last.size > 0) got.set(s.index, [...s.last.values()]);
        resolve(got);
      };
      const t = setTimeout(finish, SNAPSHOT_TIMEOUT_MS);
      if (live.length === 0) {
        finish();
        return;
      }
      this.snaps.set(id, { need: new Set(live.map((s) => s.index)), got, done: finish });
      for (const s of live) this.send(s, { t: 'snapshot', id });
    });
  }

  /** Metric deltas from one worker's new report. */
  private observe(slot: Slot, services: ServiceSnapshot[]): void {
    const m = this.deps.metrics;
    for (const s of services) {
      const prev = slot.last.get(s.key);
      const name = this.nameOf(s.key);
      if (s.retries > (prev?.retries ?? 0)) m.fwdRetries.inc({ service: name }, s.retries - (prev?.retries ?? 0));
      if (s.noRealServer > (prev?.noRealServer ?? 0)) m.fwdNoRealServer.inc({ service: name }, s.noRealServer - (prev?.noRealServer ?? 0));
      const before = new Map(prev?.dests ?? []);
      for (const [id, c] of s.dests) {
        const p = before.get(id) ?? zeroCounters();
        const labels = { service: name, real_server: id };
        const inc = (counter: { inc(l: typeof labels, v: number): void }, a: number, b: number): void => {
          if (b > a) counter.inc(labels, b - a);
        };
        inc(m.fwdConnections, p.connections, c.connections);
        inc(m.fwdBytesIn, p.bytesIn, c.bytesIn);
        inc(m.fwdBytesOut, p.bytesOut, c.bytesOut);
        inc(m.fwdPacketsIn, p.packetsIn, c.packetsIn);
        inc(m.fwdPacketsOut, p.packetsOut, c.packetsOut);
      }
      slot.last.set(s.key, s);
    }
  }

  private async poll(): Promise<void> {
    try {
      const c = await this.counters();
      const m = this.deps.metrics;
      m.fwdActive.reset();
      m.fwdInactive.reset();
      for (const [key, dests] of c) {
        const name = this.nameOf(key);
        for (const [id, rs] of dests) {
          m.fwdActive.set({ service: name, real_server: id }, rs.active);
          m.fwdInactive.set({ service: name, real_server: id }, rs.inactive);
        }
      }
    } catch (err) {
      this.log.warn({ err }, 'forwarder counters poll failed');
    }
  }

  async counters(): Promise<Map<string, Map<string, RealServerCounters>>> {
    const snaps = await this.snapshot();
    const sum = new Map<string, Map<string, DestCounters>>();
    for (const [key, m] of this.retired) {
      const into = new Map<string, DestCounters>();
      for (const [id, c] of m) {
        const z = zeroCounters();
        addCounters(z, c);
        into.set(id, z);
      }
      sum.set(key, into);
    }
    for (const services of snaps.values()) {
      for (const s of services) {
        let into = sum.get(s.key);
        if (into === undefined) sum.set(s.key, (into = new Map()));
        for (const [id, c] of s.dests) {
          let z = into.get(id);
          if (z === undefined) into.set(id, (z = zeroCounters()));
          addCounters(z, c);
        }
      }
    }
    const now = performance.now();
    const out = new Map<string, Map<string, RealServerCounters>>();
    for (const svc of this.table.values()) {
      const per = new Map<string, RealServerCounters>();
      for (const r of svc.realServers) {
        const id = realServerId(r.address, r.port);
        const c = sum.get(svc.key)?.get(id) ?? zeroCounters();
        const rk = `${svc.key} ${id}`;
        let est = this.rates.get(rk);
        if (est === undefined) this.rates.set(rk, (est = new RateEstimator()));
        est.observe(now, c);
        per.set(id, toRealServerCounters(c, est.rates()));
      }
      out.set(svc.key, per);
    }
    for (const rk of this.rates.keys()) {
      const sp = rk.lastIndexOf(' ');
      if (!out.get(rk.slice(0, sp))?.has(rk.slice(sp + 1))) this.rates.delete(rk);
    }
    return out;
  }
}

function unsupported(key: string, why: string): VigilError {
  return new VigilError('VIGIL_FORWARDER_UNSUPPORTED', `virtual service ${key}: ${why}`, 400);
}

function checkService(s: TableService): void {
  if (s.fwmark !== undefined || s.vip === undefined || s.port === undefined) {
    throw unsupported(s.key, 'fwmark services need IPVS (this kernel has none); the built-in forwarder matches VIP:port only');
  }
}

/** Applies one operation to a table; "already there" and "already gone" count as done. */
export function applyOp(table: Map<string, TableService>, op: Operation): void {
  switch (op.kind) {
    case 'add_service': {
      checkService(op.service);
      const prev = table.get(op.service.key);
      const s = cloneService(op.service);
      if (prev !== undefined && s.realServers.length === 0) s.realServers = prev.realServers;
      table.set(s.key, s);
      return;
    }
    case 'edit_service': {
      checkService(op.service);
      const prev = table.get(op.service.key);
      const s = cloneService(op.service);
      // Like ipvsadm -E: the service's attributes; its real servers stay as they are.
      if (prev !== undefined) s.realServers = prev.realServers;
      table.set(s.key, s);
      return;
    }
    case 'delete_service':
      table.delete(op.key);
      return;
    case 'add_real_server':
    case 'edit_real_server': {
      const s = table.get(op.serviceKey);
      if (s === undefined) throw new VigilError('VIGIL_FORWARDER_NO_SERVICE', `${op.kind}: virtual service ${op.serviceKey} does not exist`, 404);
      const r: TableRealServer = { ...op.realServer };
      const i = s.realServers.findIndex((x) => x.address === r.address && x.port === r.port);
      if (i >= 0) s.realServers[i] = r;
      else s.realServers.push(r);
      return;
    }
    case 'delete_real_server': {
      const s = table.get(op.serviceKey);
      if (s === undefined) return;
      s.realServers = s.realServers.filter((x) => !(x.address === op.address && x.port === op.port));
      return;
    }
  }
}
