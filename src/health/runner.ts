/**
 * The health runner: keeps every real server's probe on schedule, steps its rise/fall
 * verdict and tells the rest of the daemon when a real server goes up or down.
 *
 *   config ─► targets ─► ProbeScheduler (pure: due, jitter, overrun, concurrency cap)
 *                              │ starts
 *                              ▼
 *                        ProbeExecutor (tcp / http(s) in-process, exec via src/proc.ts)
 *                              │ ProbeResult
 *                              ▼
 *                        stepVerdict (pure rise/fall) ─ changed? ─► 'realServerUp' / 'realServerDown'
 *
 * Time comes from an injected clock (monotonic ms plus a timer), so the unit tests drive
 * the whole runner with a fake clock and a recording executor. Probes run whatever the
 * cluster role is: a standby knows every real server's health before it takes over.
 */
import { EventEmitter } from 'node:events';
import type { Config } from '../config/schema.js';
import { rateLimited, type Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { realServerId } from '../reconcile/table.js';
import { createExecutor, type ProbeExecutor, type ProbeResult } from './probes.js';
import { ProbeScheduler, type Start } from './scheduler.js';
import { ProbeSpawner } from './spawner.js';
import { realServerKey, targetsFromConfig, type ProbeTarget } from './targets.js';
import { initialVerdict, stepVerdict, type Verdict } from './verdict.js';

/** Monotonic time and a timer; `realClock` in the daemon, a fake in unit tests. */
export interface RunnerClock {
  /** Monotonic milliseconds. */
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
  /** Wall-clock time, for timestamps shown to people only. */
  wallTime(): Date;
}

export const realClock: RunnerClock = {
  now: () => performance.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (h) => clearTimeout(h as NodeJS.Timeout),
  wallTime: () => new Date(),
};

export interface HealthEvent {
  service: string;
  address: string;
  port: number;
  /** The probe's reason for the run that decided it (`connected`, `exit 2: refused`). */
  reason: string;
  /** Run time of that probe. */
  durationMs: number;
  /** Wall-clock time (ISO 8601), for logs and /status. */
  at: string;
  /** Monotonic time (performance.now() in the daemon) of the decision. */
  atMs: number;
  /** Consecutive results that made the decision (≥ rise or ≥ fall). */
  consecutive: number;
  probe: string;
  /** True when a passive failure (the forwarder's failed connect) tipped the verdict. */
  passive: boolean;
  /**
   * True on the one realServerDown of a real server that started down (`initial: down`)
   * and was confirmed down by `fall` failed runs without ever being up: no transition,
   * but the operator must hear of it once.
   */
  sinceStart?: boolean;
}

export interface ProbeRunEvent {
  service: string;
  address: string;
  port: number;
  probe: string;
  /** Actual start − planned start, ms. */
  delayMs: number;
  result: ProbeResult;
}

export interface LastCheck {
  at: string;
  ok: boolean;
  reason: string;
  durationMs: number;
}

export interface RealServerHealth {
  service: string;
  address: string;
  port: number;
  probe: string;
  healthy: boolean;
  consecutiveOk: number;
  consecutiveFail: number;
  lastCheck: LastCheck | null;
}

interface HealthRunnerEvents {
  realServerUp: [HealthEvent];
  realServerDown: [HealthEvent];
  /** Every finished run (benchmarks and debugging); nothing in the daemon needs it. */
  probeRun: [ProbeRunEvent];
}

interface TargetState {
  target: ProbeTarget;
  verdict: Verdict;
  lastCheck: LastCheck | null;
  /** A passive failure already counted since the last probe run (never count twice). */
  passiveCounted: boolean;
  run: { id: number; ac: AbortController } | undefined;
  /** A verdict was reached since the start: a transition, or the initial state confirmed by rise/fall runs. */
  confirmed?: boolean;
}

export interface HealthRunnerOptions {
  config: Config;
  metrics: Metrics;
  logger?: Logger;
  clock?: RunnerClock;
  /** Default: the real probes, configured from `config.health`. */
  executor?: ProbeExecutor;
  /** Jitter source for first runs, uniform in [0, 1). */
  random?: () => number;
}

export class HealthRunner extends EventEmitter<HealthRunnerEvents> {
  readonly name = 'health';
  private config: Config;
  private readonly metrics: Metrics;
  private readonly logger: Logger | undefined;
  private readonly warnLimited: ReturnType<typeof rateLimited> | undefined;
  private readonly clock: RunnerClock;
  private readonly injectedExecutor: ProbeExecutor | undefined;
  private executor: ProbeExecutor;
  private readonly scheduler: ProbeScheduler;
  private readonly states = new Map<string, TargetState>();
  private readonly byRealServer = new Map<string, TargetState>();
  private readonly inFlight = new Set<Promise<void>>();
  private timer: unknown;
  private armedAt: number | undefined;
  private processes = 0;
  /** Exec probes run in this helper process (created with the real executor). */
  private spawner: ProbeSpawner | undefined;
  private started = false;
  private closed = false;

  constructor(opts: HealthRunnerOptions) {
    super();
    this.config = opts.config;
    this.metrics = opts.metrics;
    this.logger = opts.logger;
    this.warnLimited = opts.logger ? rateLimited(opts.logger) : undefined;
    this.clock = opts.clock ?? realClock;
    this.injectedExecutor = opts.executor;
    this.executor = opts.executor ?? this.realExecutor(opts.config);
    this.scheduler = new ProbeScheduler({ concurrency: opts.config.health.concurrency, random: opts.random });
    for (const t of targetsFromConfig(opts.config)) this.addTarget(t);
  }

  /** Starts probing (first runs spread over each interval). Idempotent. */
  async start(): Promise<void> {
    if (this.started || this.closed) return;
    this.started = true;
    if (!this.injectedExecutor && [...this.states.values()].some((st) => st.target.check.type === 'exec')) await this.spawner?.warm();
    const now = this.clock.now();
    for (const st of this.states.values()) this.scheduler.add(st.target.id, st.target.check.interval_ms, now);
    this.pump();
    this.logger?.info({ probes: this.states.size, concurrency: this.config.health.concurrency }, 'health checks started');
  }

  /** Stops scheduling, stops running probes (exec: their process groups) and waits for them. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.disarm();
    for (const st of this.states.values()) {
      st.run?.ac.abort();
      this.scheduler.remove(st.target.id);
    }
    await Promise.allSettled([...this.inFlight]);
    await this.spawner?.close();
    this.metrics.probesInFlight.set(0);
    this.metrics.probeQueued.set(0);
  }

  /**
   * Applies a reloaded config. Real servers whose identity (service, address, port and
   * check definition) is unchanged keep their verdict, counters and schedule; removed
   * ones stop (a run in flight is stopped and its result ignored); new ones start with
   * their `initial` state and a jittered first run.
   */
  update(config: Config): void {
    this.config = config;
    if (!this.injectedExecutor) this.executor = this.realExecutor(config);
    this.scheduler.setConcurrency(config.health.concurrency);
    const next = new Map(targetsFromConfig(config).map((t) => [t.id, t]));
    for (const [id, st] of [...this.states]) {
      const t = next.get(id);
      if (t) {
        st.target = t; // same identity; other fields (the VIP) may have changed
        continue;
      }
      st.run?.ac.abort();
      this.scheduler.remove(id);
      this.states.delete(id);
      const key = realServerKey(st.target.service, st.target.address, st.target.port);
      if (this.byRealServer.get(key) === st) this.byRealServer.delete(key);
      const rs = realServerId(st.target.address, st.target.port);
      this.metrics.probeUp.remove({ service: st.target.service, real_server: rs, probe: st.target.probe });
      this.metrics.realServerHealthy.remove({ service: st.target.service, real_server: rs });
    }
    const now = this.clock.now();
    for (const [id, t] of next) {
      if (this.states.has(id)) continue;
      this.addTarget(t);
      if (this.started && !this.closed) this.scheduler.add(id, t.check.interval_ms, now);
    }
    if (this.started && !this.closed) this.pump();
  }

  /** A real server without a check counts as healthy. */
  isHealthy(service: string, address: string, port: number): boolean {
    const st = this.byRealServer.get(realServerKey(service, address, port));
    return st ? st.verdict.state === 'up' : true;
  }

  get(service: string, address: string, port: number): RealServerHealth | undefined {
    const st = this.byRealServer.get(realServerKey(service, address, port));
    return st ? view(st) : undefined;
  }

  /** Every checked real server, for /status. */
  snapshot(): RealServerHealth[] {
    return [...this.states.values()].map(view);
  }

  /**
   * The forwarder could not connect to a real server: counts as one failed run toward
   * `fall`, at most once between two probe runs (a burst of failed connects is one
   * signal, not many). Returns whether it was counted. Unchecked real servers ignore it.
   */
  passiveFailure(service: string, address: string, port: number, reason: string): boolean {
    const st = this.byRealServer.get(realServerKey(service, address, port));
    if (!st || st.passiveCounted || this.closed) return false;
    st.passiveCounted = true;
    this.applyResult(st, { ok: false, result: 'down', reason: `passive: ${reason}`, durationMs: 0 }, true);
    return true;
  }

  /** Scheduler figures for tests and the benchmark. */
  stats(): { probes: number; running: number; queued: number; processes: number } {
    return { probes: this.scheduler.size, running: this.scheduler.running, queued: this.scheduler.queued, processes: this.processes };
  }

  // ---------------------------------------------------------------- internals

  private realExecutor(config: Config): ProbeExecutor {
    this.spawner ??= new ProbeSpawner();
    return createExecutor({
      spawner: this.spawner,
      checksDir: config.health.checks_dir ?? 'checks',
      killGraceMs: config.health.kill_grace_ms,
      outputLimitBytes: config.health.output_limit_bytes,
      onProcess: (d) => {
        this.processes += d;
        this.metrics.probeProcesses.set(this.processes);
      },
    });
  }

  private addTarget(t: ProbeTarget): void {
    const st: TargetState = { target: t, verdict: initialVerdict(t.check.initial), lastCheck: null, passiveCounted: false, run: undefined };
    this.states.set(t.id, st);
    this.byRealServer.set(realServerKey(t.service, t.address, t.port), st);
    this.metrics.realServerHealthy.set({ service: t.service, real_server: realServerId(t.address, t.port) }, st.verdict.state === 'up' ? 1 : 0);
  }

  /** Polls the scheduler, starts what is due, re-arms the timer for the next due time. */
  private pump(): void {
    if (this.closed) return;
    const now = this.clock.now();
    const { start, overruns } = this.scheduler.poll(now);
    for (const id of overruns) {
      const st = this.states.get(id);
      if (st) {
        this.metrics.probeOverruns.inc({ service: st.target.service });
        this.logger?.debug({ service: st.target.service, realServer: realServerId(st.target.address, st.target.port) }, 'probe still running at its next due time; run skipped');
      }
    }
    for (const s of start) this.launch(s);
    this.metrics.probesInFlight.set(this.scheduler.running);
    this.metrics.probeQueued.set(this.scheduler.queued);
    this.arm(now);
  }

  private arm(now: number): void {
    const next = this.scheduler.nextDueAt();
    if (next === this.armedAt && this.timer !== undefined) return;
    this.disarm();
    if (next === undefined) return;
    this.armedAt = next;
    this.timer = this.clock.setTimer(() => {
      this.timer = undefined;
      this.armedAt = undefined;
      this.pump();
    }, Math.max(0, Math.ceil(next - now)));
  }

  private disarm(): void {
    if (this.timer !== undefined) this.clock.clearTimer(this.timer);
    this.timer = undefined;
    this.armedAt = undefined;
  }

  private launch(s: Start): void {
    const st = this.states.get(s.id);
    if (!st) {
      this.scheduler.finish(s.run);
      return;
    }
    this.metrics.probeScheduleDelay.observe(s.delay / 1000);
    const ac = new AbortController();
    st.run = { id: s.run, ac };
    const target = st.target;
    let p: Promise<void>;
    try {
      p = this.executor(target, ac.signal).then(
        (r) => this.complete(st, s, r),
        (err: unknown) => this.complete(st, s, { ok: false, result: 'error', reason: `probe failed: ${(err as Error).message}`, durationMs: 0 }),
      );
    } catch (err) {
      p = Promise.resolve().then(() => this.complete(st, s, { ok: false, result: 'error', reason: `probe failed: ${(err as Error).message}`, durationMs: 0 }));
    }
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  private complete(st: TargetState, s: Start, r: ProbeResult): void {
    this.scheduler.finish(s.run);
    if (st.run?.id === s.run) st.run = undefined;
    const current = this.states.get(s.id) === st;
    if (current && !this.closed && r.result === 'skipped') {
      // the probe never ran (this director was overloaded): no verdict either way
      const t = st.target;
      this.metrics.probeRuns.inc({ probe: t.probe, result: 'skipped' });
      this.warnLimited?.('probe-skipped', { service: t.service, realServer: realServerId(t.address, t.port), reason: r.reason }, 'probe run skipped; not counted toward rise or fall');
      this.emit('probeRun', { service: t.service, address: t.address, port: t.port, probe: t.probe, delayMs: s.delay, result: r });
    } else if (current && !this.closed) {
      const t = st.target;
      const rs = realServerId(t.address, t.port);
      this.metrics.probeUp.set({ service: t.service, real_server: rs, probe: t.probe }, r.ok ? 1 : 0);
      this.metrics.probeDuration.observe({ probe: t.probe }, r.durationMs / 1000);
      this.metrics.probeRuns.inc({ probe: t.probe, result: r.result });
      if (r.result === 'timeout') this.metrics.probeTimeouts.inc({ service: t.service });
      st.passiveCounted = false;
      st.lastCheck = { at: this.clock.wallTime().toISOString(), ok: r.ok, reason: r.reason, durationMs: Math.round(r.durationMs * 10) / 10 };
      this.applyResult(st, r, false);
      this.emit('probeRun', { service: t.service, address: t.address, port: t.port, probe: t.probe, delayMs: s.delay, result: r });
    }
    this.pump();
  }

  /** The one event of a real server that has been down since it started (never a transition). */
  private downSinceStart(st: TargetState, r: ProbeResult, passive: boolean): void {
    const ev: HealthEvent = { ...this.healthEvent(st, r, passive, st.verdict.consecutiveFail), sinceStart: true };
    this.logger?.warn({ service: ev.service, realServer: realServerId(ev.address, ev.port), probe: ev.probe, reason: ev.reason, consecutive: ev.consecutive, sinceStart: true }, 'real server down since start');
    this.emit('realServerDown', ev);
  }

  private healthEvent(st: TargetState, r: ProbeResult, passive: boolean, consecutive: number): HealthEvent {
    const t = st.target;
    return {
      service: t.service,
      address: t.address,
      port: t.port,
      reason: r.reason,
      durationMs: r.durationMs,
      at: this.clock.wallTime().toISOString(),
      atMs: this.clock.now(),
      consecutive,
      probe: t.probe,
      passive,
    };
  }

  private applyResult(st: TargetState, r: ProbeResult, passive: boolean): void {
    const c = st.target.check;
    const { verdict, changed } = stepVerdict(st.verdict, r.ok, { rise: c.rise, fall: c.fall });
    st.verdict = verdict;
    if (!changed && !st.confirmed) {
      if (verdict.state === 'up' && verdict.consecutiveOk >= c.rise) st.confirmed = true;
      if (verdict.state === 'down' && verdict.consecutiveFail >= c.fall) {
        st.confirmed = true;
        this.downSinceStart(st, r, passive);
      }
    }
    if (!changed) return;
    st.confirmed = true;
    const t = st.target;
    const rs = realServerId(t.address, t.port);
    const up = verdict.state === 'up';
    this.metrics.realServerHealthy.set({ service: t.service, real_server: rs }, up ? 1 : 0);
    this.metrics.healthTransitions.inc({ service: t.service, real_server: rs, to: verdict.state });
    const ev = this.healthEvent(st, r, passive, up ? verdict.consecutiveOk : verdict.consecutiveFail);
    this.logger?.info({ service: t.service, realServer: rs, probe: t.probe, reason: r.reason, consecutive: ev.consecutive, passive }, up ? 'real server up' : 'real server down');
    this.emit(up ? 'realServerUp' : 'realServerDown', ev);
  }
}

function view(st: TargetState): RealServerHealth {
  return {
    service: st.target.service,
    address: st.target.address,
    port: st.target.port,
    probe: st.target.probe,
    healthy: st.verdict.state === 'up',
    consecutiveOk: st.verdict.consecutiveOk,
    consecutiveFail: st.verdict.consecutiveFail,
    lastCheck: st.lastCheck,
  };
}
