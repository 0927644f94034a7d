/**
 * The reconciler: keeps a dataplane's table equal to desired(config, health, drains).
 *
 *   request(trigger) ──► pending triggers (merged) ──► one run at a time:
 *        plan = desired(config, health, drains)              (unchanged services reused)
 *        actual = cached read-back of the last run | dataplane.read()
 *        ops = diff(actual, plan.table, declared)            (nothing changed → no ops)
 *        dataplane.apply(ops)                                  (one batch)
 *        readBack = dataplane.read(); diff(readBack, ...) must be empty, else failure
 *
 * - Triggers: health, config, role, drain (at once; several arriving in the same tick,
 *   or while a run is in flight, merge into one run), periodic (every
 *   dataplane.reconcile_interval_ms, always from a fresh read: repairs drift and counts
 *   it), retry (after a failure, exponential backoff).
 * - One bad entry never keeps the others out: `ipvsadm -R` stops at a line it cannot
 *   parse and its exit status is the last line's, so when the read-back still misses
 *   operations after the batch, each missing one is applied again on its own (its own
 *   exit status tells whether the dataplane refuses it), then the table is read back
 *   once more. Every refused entry is logged by service and real server, exported as
 *   vigil_reconcile_entry_failing and carried in the run's result; the rest is installed.
 * - A health-triggered run diffs against the read-back of the previous run, so one
 *   health change costs exactly one batch plus its read-back. If the table drifted in
 *   between, the read-back shows entries the batch did not touch wrong: that is counted
 *   as drift and repaired at once by a second batch from that read-back.
 * - Never throws out of the loop: a failure is logged with the lines still missing,
 *   counted in vigil_reconcile_failures_total and retried with backoff.
 * - The table is loaded whatever the role (a warm standby: a failover only moves the
 *   VIP); the role goes to dataplane.setRole (IPVS sync daemon, forwarder listening).
 * - Drains: weight 0, then wait until the real server's connections reach 0 (from
 *   dataplane.counters()) or the deadline passes; enable() restores the weight.
 */
import { EventEmitter } from 'node:events';
import type { DrainResult } from '../api/types.js';
import type { Config } from '../config/schema.js';
import { badRequest, notFound } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { canonicalIp, drainKey, Planner, tableKey, type HealthView, type Plan } from './desired.js';
import { countByKind, diff, type DiffOptions } from './diff.js';
import { formatOperation } from './ipvsadm.js';
import { realServerId, type Dataplane, type DataplaneRole, type Operation, type RealServerCounters, type Table, type TableService } from './table.js';
import { tableDigest } from './digest.js';

/** What an operation changes: a service, or one real server of a service. */
function opTarget(op: Operation): string {
  switch (op.kind) {
    case 'add_service':
    case 'edit_service':
      return op.service.key;
    case 'delete_service':
      return op.key;
    case 'add_real_server':
    case 'edit_real_server':
      return `${op.serviceKey} ${realServerId(op.realServer.address, op.realServer.port)}`;
    case 'delete_real_server':
      return `${op.serviceKey} ${realServerId(op.address, op.port)}`;
  }
}

export type Trigger = 'start' | 'health' | 'config' | 'role' | 'drain' | 'periodic' | 'retry';

/** Most important first: the label a merged run is counted under. */
const TRIGGER_ORDER: Trigger[] = ['start', 'role', 'config', 'health', 'drain', 'retry', 'periodic'];

/** Monotonic time and timers, injected so unit tests drive them. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface RunResult {
  ok: boolean;
  /** The triggers merged into this run. */
  triggers: Trigger[];
  /** Operations applied (0 when nothing changed). */
  operations: number;
  /** Operations still missing after the read-back (failure), as lines. */
  failedLines: string[];
  /** True when a periodic run found and repaired drift. */
  drift: boolean;
  durationMs: number;
  error?: string;
  /** Entries the dataplane refused, each with its own error (retried one at a time). */
  refused?: RefusedEntry[];
}

/** One operation the dataplane refused: the service by name, the real server when it is one. */
export interface RefusedEntry {
  service: string;
  serviceKey: string;
  realServer?: string;
  line: string;
  error: string;
}

export interface ReconcilerOptions {
  dataplane: Dataplane;
  /** The config in force (re-read on every run, so a reload needs only a 'config' trigger). */
  config: () => Pick<Config, 'services' | 'dataplane'>;
  health: HealthView;
  metrics: Metrics;
  logger: Logger;
  clock?: Clock;
  /** First retry delay after a failure; doubles per failure up to maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Poll period of a drain waiting for connections to finish. */
  drainPollMs?: number;
  /** Counters older than this are refreshed in the background when asked for. */
  countersMaxAgeMs?: number;
}

export interface ReconcilerEvents {
  reconciled: [RunResult];
  failed: [RunResult];
  /** The digest of the desired table changed (see digest.ts); emitted before the run applies it. */
  digest: [string];
}

export class Reconciler extends EventEmitter<ReconcilerEvents> {
  readonly name = 'reconcile';
  private readonly dp: Dataplane;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly m: Metrics;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly drainPollMs: number;
  private readonly countersMaxAgeMs: number;

  private pending = new Set<Trigger>();
  private waiters: ((r: RunResult) => void)[] = [];
  private running = false;
  private kickScheduled = false;
  private idle: Promise<void> = Promise.resolve();
  private idleResolve: (() => void) | undefined;

  private started = false;
  private closed = false;
  private periodicTimer: unknown;
  private retryTimer: unknown;
  private failuresInRow = 0;

  /** The read-back of the last run that ended with the table as desired. */
  private cache: Table | undefined;
  /** Keys vigil declared in earlier configs and has not yet seen removed. */
  private owned = new Set<string>();
  private readonly drains = new Set<string>();
  private role: DataplaneRole = 'init';
  private roleApplied: DataplaneRole | undefined;

  /** desired(): reuses the services whose config, health and drains did not change. */
  private readonly planner = new Planner();
  private lastPlan: Plan | undefined;
  private lastDigest: string | undefined;
  /** IPVS read in the kernel's list order (ecmp): keep mh services in canonical add order. */
  private get diffOptions(): DiffOptions {
    return { mhListOrder: this.dp.listOrder === true };
  }
  /** The services the last digest was computed from (shared, frozen objects: same ⇒ same digest). */
  private digestOf: readonly TableService[] = [];
  private firstSuccess = false;
  private lastResult: RunResult | undefined;
  private countersCache = new Map<string, Map<string, RealServerCounters>>();
  private countersAt = -Infinity;
  private countersInFlight: Promise<void> | undefined;
  /** Entries refused by the last run (see applyAndReadBack); key → entry, for the metric. */
  private refused = new Map<string, RefusedEntry>();
  private refusedInRun: RefusedEntry[] = [];

  constructor(private readonly opts: ReconcilerOptions) {
    super();
    this.dp = opts.dataplane;
    this.clock = opts.clock ?? systemClock;
    this.log = opts.logger;
    this.m = opts.metrics;
    this.backoffMs = opts.backoffMs ?? 250;
    this.maxBackoffMs = opts.maxBackoffMs ?? 30_000;
    this.drainPollMs = opts.drainPollMs ?? 500;
    this.countersMaxAgeMs = opts.countersMaxAgeMs ?? 2000;
  }

  get dataplaneKind(): Dataplane['kind'] {
    return this.dp.kind;
  }

  /** Runs the first reconcile (its failure is retried, not thrown) and arms the period. */
  async start(): Promise<void> {
    if (this.started || this.closed) return;
    this.started = true;
    await this.request('start');
  }

  /** Stops the timers and waits for a run in flight. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.clock.clearTimeout(this.periodicTimer);
    this.clock.clearTimeout(this.retryTimer);
    await this.idle;
    const skipped = this.result([...this.pending], false, 0, [], false, 0, 'closed');
    for (const w of this.waiters.splice(0)) w(skipped);
    this.pending.clear();
  }

  /**
   * True once a reconcile has ended with the dataplane holding the desired table, or all
   * of it but entries the dataplane refused one by one (they stay failures, retried).
   */
  get ready(): boolean {
    return this.firstSuccess;
  }

  /** The plan of the last run (weights and reasons, for /status). */
  get current(): Plan | undefined {
    return this.lastPlan;
  }

  get last(): RunResult | undefined {
    return this.lastResult;
  }

  /**
   * The digest of the table this director wants programmed (config + health + drains;
   * digest.ts), undefined before the first run. Equal on every director with the same
   * config and health view; cluster.mode ecmp compares it across directors.
   */
  digest(): string | undefined {
    return this.lastDigest;
  }

  private updateDigest(table: readonly TableService[]): void {
    const prev = this.digestOf;
    if (this.lastDigest !== undefined && prev.length === table.length && table.every((s, i) => s === prev[i])) return;
    this.digestOf = table;
    const d = tableDigest(table as TableService[]);
    if (d === this.lastDigest) return;
    this.lastDigest = d;
    this.emit('digest', d);
  }

  /**
   * Asks for a reconcile. Requests made in the same tick, or while a run is in flight,
   * merge into one run; the promise resolves with the run that covered this request.
   */
  request(trigger: Trigger): Promise<RunResult> {
    if (this.closed) return Promise.resolve(this.result([trigger], false, 0, [], false, 0, 'closed'));
    this.pending.add(trigger);
    const p = new Promise<RunResult>((resolve) => this.waiters.push(resolve));
    this.kick();
    return p;
  }

  /** Follows the cluster role: the dataplane's setRole, then a reconcile. */
  async setRole(role: DataplaneRole): Promise<void> {
    this.role = role;
    if (this.closed) return; // stopping: the dataplane is closed next
    await this.applyRole();
    await this.request('role');
  }

  /** Drained real servers as `service address:port`. */
  drained(): ReadonlySet<string> {
    return this.drains;
  }

  async drain(service: string, address: string, port: number | undefined, deadlineMs: number): Promise<DrainResult> {
    const rs = this.resolve(service, address, port);
    const key = drainKey(service, rs.address, rs.port);
    const first = !this.drains.has(key);
    this.drains.add(key);
    if (first) this.log.info({ service, realServer: realServerId(rs.address, rs.port), deadlineMs }, 'drain started');
    const run = await this.request('drain');
    if (!run.ok) this.log.warn({ service, realServer: realServerId(rs.address, rs.port) }, 'drain recorded; the dataplane has not applied weight 0 yet (retrying)');
    const t0 = this.clock.now();
    const count = async (): Promise<number> => {
      const c = await this.refreshCounters().then(() => this.countersCache.get(rs.serviceKey)?.get(realServerId(rs.address, rs.port)));
      if (!c) return 0;
      return rs.protocol === 'udp' ? c.active + c.inactive : c.active;
    };
    let remaining = await count().catch(() => -1);
    if (deadlineMs <= 0) {
      return { service, address: rs.address, port: rs.port, outcome: 'started', remainingConnections: Math.max(remaining, 0), waitedMs: 0 };
    }
    while (remaining !== 0 && !this.closed && this.drains.has(key)) {
      const waited = this.clock.now() - t0;
      if (waited >= deadlineMs) break;
      await new Promise<void>((r) => this.clock.setTimeout(r, Math.min(this.drainPollMs, deadlineMs - waited)));
      remaining = await count().catch(() => -1);
    }
    const waitedMs = Math.round(this.clock.now() - t0);
    const outcome = remaining === 0 ? 'drained' : 'deadline';
    this.log.info({ service, realServer: realServerId(rs.address, rs.port), outcome, remaining, waitedMs }, 'drain finished waiting');
    return { service, address: rs.address, port: rs.port, outcome, remainingConnections: Math.max(remaining, 0), waitedMs };
  }

  async enable(service: string, address: string, port: number | undefined): Promise<string> {
    const rs = this.resolve(service, address, port);
    const key = drainKey(service, rs.address, rs.port);
    const id = realServerId(rs.address, rs.port);
    if (!this.drains.delete(key)) return `${service} ${id} was not drained`;
    this.log.info({ service, realServer: id }, 'real server enabled');
    const run = await this.request('drain');
    return run.ok ? `${service} ${id} enabled (weight ${rs.weight})` : `${service} ${id} enabled; the dataplane has not applied it yet (retrying)`;
  }

  /**
   * The dataplane's counters as of the last refresh (never waits). When they are older
   * than countersMaxAgeMs a refresh starts in the background.
   */
  counters(): Map<string, Map<string, RealServerCounters>> {
    if (this.clock.now() - this.countersAt > this.countersMaxAgeMs) void this.refreshCounters().catch(() => undefined);
    return this.countersCache;
  }

  /** Reads the counters now (one refresh at a time). */
  refreshCounters(): Promise<void> {
    this.countersInFlight ??= (async () => {
      try {
        this.countersCache = await this.dp.counters();
        this.countersAt = this.clock.now();
      } catch (err) {
        this.log.warn({ err }, 'cannot read the dataplane counters');
        throw err;
      } finally {
        this.countersInFlight = undefined;
      }
    })();
    return this.countersInFlight;
  }

  // ------------------------------------------------------------------ internals

  private resolve(service: string, address: string, port: number | undefined) {
    const svc = this.opts.config().services.find((s) => s.name === service);
    if (!svc) throw notFound(`service "${service}"`);
    const addr = canonicalIp(address);
    const matches = svc.real_servers.filter((r) => canonicalIp(r.address) === addr && (port === undefined || (r.port ?? svc.port ?? 0) === port));
    if (matches.length === 0) throw notFound(`real server ${port === undefined ? address : realServerId(address, port)} in service "${service}"`);
    if (matches.length > 1) throw badRequest(`${address} has several ports in service "${service}"; give address:port`);
    const r = matches[0] as (typeof matches)[number];
    return { serviceKey: tableKey(svc), protocol: svc.protocol, address: addr, port: r.port ?? svc.port ?? 0, weight: r.weight };
  }

  private kick(): void {
    if (this.running || this.kickScheduled || this.closed) return;
    this.kickScheduled = true;
    // setImmediate: events emitted in the same tick (a burst of health changes) merge
    setImmediate(() => {
      this.kickScheduled = false;
      void this.loop();
    });
  }

  private async loop(): Promise<void> {
    if (this.running || this.closed) return;
    this.running = true;
    this.idle = new Promise((r) => (this.idleResolve = r));
    try {
      while (this.pending.size > 0 && !this.closed) {
        const triggers = TRIGGER_ORDER.filter((t) => this.pending.has(t));
        const waiters = this.waiters;
        this.pending = new Set();
        this.waiters = [];
        const result = await this.runOnce(triggers);
        for (const w of waiters) w(result);
      }
    } finally {
      this.running = false;
      this.idleResolve?.();
    }
  }

  private result(triggers: Trigger[], ok: boolean, operations: number, failedLines: string[], drift: boolean, durationMs: number, error?: string): RunResult {
    const r: RunResult = { ok, triggers, operations, failedLines, drift, durationMs };
    if (error !== undefined) r.error = error;
    return r;
  }

  private async applyRole(): Promise<void> {
    if (this.roleApplied === this.role) return;
    const role = this.role;
    try {
      await this.dp.setRole(role);
      this.roleApplied = role;
    } catch (err) {
      this.log.error({ err, role }, 'dataplane could not follow the role; retrying at the next reconcile');
    }
  }

  private async runOnce(triggers: Trigger[]): Promise<RunResult> {
    const kind = this.dp.kind;
    const t0 = this.clock.now();
    const primary = triggers[0] ?? 'periodic';
    this.m.reconcileRuns.inc({ dataplane: kind, trigger: primary });
    let result: RunResult;
    this.refusedInRun = [];
    try {
      if (this.roleApplied !== this.role && primary !== 'role') await this.applyRole();
      const cfg = this.opts.config();
      const p = this.planner.plan(cfg, this.opts.health, this.drains);
      this.pruneDrains(p);
      this.lastPlan = p;
      this.updateDigest(p.table);
      this.m.tableServices.set(p.table.length);
      this.m.tableRealServers.set(p.table.reduce((n, s) => n + s.realServers.length, 0));
      const declared = new Set([...p.declared, ...this.owned]);
      // health/drain/role runs trust the last read-back; periodic, config, start and retry read afresh
      const useCache = this.cache !== undefined && triggers.every((t) => t === 'health' || t === 'drain' || t === 'role');
      const actual = useCache ? (this.cache as Table) : await this.dp.read();
      const ops = diff(actual, p.table, declared, this.diffOptions);
      // drift: the kernel no longer holds what the last successful run left there
      let drift = !useCache && this.cache !== undefined && ops.length > 0 && diff(actual, this.cache, declared).length > 0;
      if (drift) this.onDrift(ops);
      let remaining: Operation[] = [];
      let applied = ops.length;
      if (ops.length > 0) {
        this.cache = undefined;
        remaining = await this.applyAndReadBack(ops, p.table, declared);
        // a run that trusted the last read-back finds entries it did not touch wrong: the
        // table drifted in between; repair it now, in this run, from the fresh read-back
        const touched = new Set(ops.map(opTarget));
        const untouched = remaining.filter((op) => !touched.has(opTarget(op)));
        if (useCache && untouched.length > 0) {
          drift = true;
          this.onDrift(remaining);
          applied += remaining.length;
          remaining = await this.applyAndReadBack(remaining, p.table, declared);
        }
      } else this.cache = actual;
      const durationMs = this.clock.now() - t0;
      if (remaining.length > 0) {
        const refused = this.refusedInRun;
        const error = refused.length > 0 ? `the dataplane refused ${refused.length} entr${refused.length === 1 ? 'y' : 'ies'}: ${refused.map((e) => `${e.service}${e.realServer ? ` ${e.realServer}` : ''} (${e.error})`).slice(0, 3).join('; ')}` : 'the read-back differs from the desired table';
        result = this.result(triggers, false, applied, remaining.map(formatOperation), drift, durationMs, error);
        if (refused.length > 0) result.refused = refused;
        // everything the dataplane accepts is in: the first reconcile is done (ready), the
        // refused entries stay a failure (counted, logged, retried with backoff)
        const refusedLines = new Set(refused.map((e) => e.line));
        // (not when it refused every operation: then it is the dataplane that fails, not an entry)
        if (refused.length > 0 && refused.length < applied && result.failedLines.every((l) => refusedLines.has(l))) this.firstSuccess = true;
      } else {
        this.owned = p.declared;
        result = this.result(triggers, true, applied, [], drift, durationMs);
      }
    } catch (err) {
      this.cache = undefined;
      result = this.result(triggers, false, 0, [], false, this.clock.now() - t0, (err as Error).message);
      this.log.error({ err, triggers }, 'reconcile failed');
    }
    this.m.reconcileDuration.observe({ dataplane: kind }, result.durationMs / 1000);
    this.exportRefused(result);
    this.lastResult = result;
    if (result.ok) this.onSuccess(result);
    else this.onFailure(result);
    return result;
  }

  /**
   * One batch, then the read-back; what is still missing is applied again one operation
   * at a time and read back once more. Returns what is still missing (the cache is set
   * when nothing is). The batch's own error is not trusted either way (`ipvsadm -R`
   * reports the last line only): the read-back decides.
   */
  private async applyAndReadBack(ops: Operation[], want: Table, declared: ReadonlySet<string>): Promise<Operation[]> {
    let batchError: unknown;
    try {
      await this.dp.apply(ops);
    } catch (err) {
      batchError = err;
    }
    for (const [k, n] of countByKind(ops)) this.m.reconcileOperations.inc({ dataplane: this.dp.kind, kind: k }, n);
    let readBack = await this.dp.read();
    let remaining = diff(readBack, want, declared, this.diffOptions);
    // only what this batch touched: entries missing elsewhere are drift (runOnce repairs them)
    const touched = new Set(ops.map(opTarget));
    const retry = remaining.filter((op) => touched.has(opTarget(op)));
    if (retry.length > 0) {
      if (batchError) this.log.warn({ err: batchError, missing: retry.length }, 'the batch failed; applying the missing operations one at a time');
      const names = new Map(this.lastPlan?.services.map((s) => [s.key, s.name]) ?? []);
      for (const op of retry) {
        try {
          await this.dp.apply([op]);
        } catch (err) {
          const entry = refusedEntry(op, names, err);
          this.refusedInRun.push(entry);
          this.log.error({ service: entry.service, serviceKey: entry.serviceKey, realServer: entry.realServer, line: entry.line, error: entry.error }, `the dataplane refused ${entry.realServer ? `real server ${entry.realServer} of` : 'service'} ${entry.service}; every other entry is installed`);
        }
      }
      readBack = await this.dp.read();
      remaining = diff(readBack, want, declared, this.diffOptions);
    } else if (batchError && remaining.length === 0) {
      this.log.warn({ err: batchError }, 'the batch reported an error but the read-back matches the desired table');
    }
    if (remaining.length === 0) this.cache = readBack;
    return remaining;
  }

  /** vigil_reconcile_entry_failing follows the entries the last run could not install. */
  private exportRefused(r: RunResult): void {
    const now = new Map((r.refused ?? []).map((e) => [`${e.service} ${e.realServer ?? ''}`, e]));
    if (now.size === 0 && this.refused.size === 0) return;
    this.m.reconcileEntryFailing.reset();
    for (const e of now.values()) this.m.reconcileEntryFailing.set(e.realServer ? { service: e.service, real_server: e.realServer } : { service: e.service }, 1);
    for (const [k, e] of this.refused) if (!now.has(k)) this.log.info({ service: e.service, realServer: e.realServer }, 'the dataplane accepts the entry again');
    this.refused = now;
  }

  private onDrift(ops: Operation[]): void {
    this.m.reconcileDriftRepairs.inc({ dataplane: this.dp.kind });
    this.log.warn({ operations: ops.length, lines: ops.slice(0, 20).map(formatOperation) }, 'the dataplane table changed behind vigil (drift); repairing');
  }

  private onSuccess(r: RunResult): void {
    if (this.failuresInRow > 0) this.log.info({ after: this.failuresInRow }, 'reconcile succeeded again');
    this.failuresInRow = 0;
    // the counters are read once the table is in, so the first /status has them (they are
    // otherwise read on demand, in the background, when older than countersMaxAgeMs)
    if (!this.firstSuccess) void this.refreshCounters().catch(() => undefined);
    this.firstSuccess = true;
    this.m.reconcileLastSuccess.set({ dataplane: this.dp.kind }, Date.now() / 1000);
    this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (r.operations > 0) this.log.info({ triggers: r.triggers, operations: r.operations, ms: Math.round(r.durationMs) }, 'reconciled');
    else this.log.debug({ triggers: r.triggers }, 'reconciled: nothing to change');
    this.armPeriodic();
    this.emit('reconciled', r);
  }

  private onFailure(r: RunResult): void {
    this.failuresInRow += 1;
    this.m.reconcileFailures.inc({ dataplane: this.dp.kind });
    const delay = Math.min(this.backoffMs * 2 ** (this.failuresInRow - 1), this.maxBackoffMs);
    this.log.error(
      { triggers: r.triggers, error: r.error, failedLines: r.failedLines.slice(0, 50), failed: r.failedLines.length, failuresInRow: this.failuresInRow, retryInMs: delay },
      'reconcile failed; retrying with backoff',
    );
    if (!this.closed) {
      this.clock.clearTimeout(this.retryTimer);
      this.retryTimer = this.clock.setTimeout(() => {
        this.retryTimer = undefined;
        void this.request('retry');
      }, delay);
    }
    this.armPeriodic();
    this.emit('failed', r);
  }

  private armPeriodic(): void {
    if (this.closed) return;
    this.clock.clearTimeout(this.periodicTimer);
    this.periodicTimer = this.clock.setTimeout(() => {
      this.periodicTimer = undefined;
      void this.request('periodic');
    }, this.opts.config().dataplane.reconcile_interval_ms);
  }

  /** Drains of real servers a reload removed are forgotten. */
  private pruneDrains(p: Plan): void {
    if (this.drains.size === 0) return;
    const exist = new Set<string>();
    for (const s of p.services) for (const r of s.realServers) exist.add(drainKey(s.name, r.address, r.port));
    for (const k of this.drains) if (!exist.has(k)) this.drains.delete(k);
  }
}

function refusedEntry(op: Operation, names: ReadonlyMap<string, string>, err: unknown): RefusedEntry {
  const serviceKey = op.kind === 'add_service' || op.kind === 'edit_service' ? op.service.key : op.kind === 'delete_service' ? op.key : op.serviceKey;
  const e: RefusedEntry = { service: names.get(serviceKey) ?? serviceKey, serviceKey, line: formatOperation(op), error: firstErrorLine(err) };
  if (op.kind === 'add_real_server' || op.kind === 'edit_real_server') e.realServer = realServerId(op.realServer.address, op.realServer.port);
  if (op.kind === 'delete_real_server') e.realServer = realServerId(op.address, op.port);
  return e;
}

/** ipvsadm's own message (its stderr's first line) when there is one, else the error's. */
function firstErrorLine(err: unknown): string {
  const stderr = (err as { stderr?: unknown }).stderr;
  const text = typeof stderr === 'string' && stderr.trim() !== '' ? stderr : (err as Error).message ?? String(err);
  return text.split('\n').find((l) => l.trim() !== '')?.trim() ?? String(err);
}
