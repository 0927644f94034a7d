/**
 * The health runner driven by a fake clock and a recording fake executor: rise/fall
 * events, no overlap, the concurrency cap, passive failures, reloads, close.
 */
import { describe, expect, it } from 'vitest';
import { configSchema, type Config } from '../../src/config/schema.js';
import type { ProbeExecutor, ProbeResult } from '../../src/health/probes.js';
import { HealthRunner, type HealthEvent, type RunnerClock } from '../../src/health/runner.js';
import type { ProbeTarget } from '../../src/health/targets.js';
import { createMetrics } from '../../src/metrics.js';

class FakeClock implements RunnerClock {
  t = 1_000;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private ids = 0;
  now(): number {
    return this.t;
  }
  setTimer(fn: () => void, ms: number): unknown {
    const id = ++this.ids;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  }
  clearTimer(h: unknown): void {
    this.timers = this.timers.filter((x) => x.id !== h);
  }
  wallTime(): Date {
    return new Date(1_700_000_000_000 + this.t);
  }
  /** Moves time forward, firing timers in order and letting promises settle between. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await flush();
      this.timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      this.t = Math.max(this.t, next.at);
      next.fn();
    }
    this.t = end;
    await flush();
  }
}

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
}

/** A fake executor: each real server's results are scripted; runs take `durationMs` of fake time. */
class FakeProbes {
  readonly calls: { address: string; at: number }[] = [];
  running = new Map<string, number>();
  maxRunning = 0;
  maxSameTarget = 0;
  results = new Map<string, boolean[]>();
  defaultOk = true;
  constructor(
    private readonly clock: FakeClock,
    public durationMs = 10,
  ) {}
  readonly exec: ProbeExecutor = (t: ProbeTarget, signal: AbortSignal) => {
    this.calls.push({ address: t.address, at: this.clock.now() });
    const n = (this.running.get(t.id) ?? 0) + 1;
    this.running.set(t.id, n);
    this.maxSameTarget = Math.max(this.maxSameTarget, n);
    const total = [...this.running.values()].reduce((a, b) => a + b, 0);
    this.maxRunning = Math.max(this.maxRunning, total);
    const scripted = this.results.get(t.address);
    const ok = scripted && scripted.length > 0 ? (scripted.shift() as boolean) : this.defaultOk;
    return new Promise<ProbeResult>((resolve) => {
      const end = (r: ProbeResult) => {
        this.running.set(t.id, (this.running.get(t.id) ?? 1) - 1);
        resolve(r);
      };
      const h = this.clock.setTimer(() => end({ ok, result: ok ? 'up' : 'down', reason: ok ? 'fine' : 'refused', durationMs: this.durationMs }), this.durationMs);
      signal.addEventListener('abort', () => {
        this.clock.clearTimer(h);
        end({ ok: false, result: 'error', reason: 'stopped', durationMs: 0 });
      });
    });
  };
  count(address: string): number {
    return this.calls.filter((c) => c.address === address).length;
  }
}

function config(realServers: object[], opts: { check?: object; health?: object } = {}): Config {
  return configSchema.parse({
    node: 'a',
    cluster: { nodes: [{ name: 'a', links: [{ name: 'l', address: '127.0.0.1' }] }] },
    vips: [{ address: '10.0.0.1', interface: 'lo' }],
    services: [
      {
        name: 'web',
        vip: '10.0.0.1',
        port: 80,
        check: opts.check ?? { type: 'tcp', interval_ms: 1000, timeout_ms: 500, rise: 2, fall: 2 },
        real_servers: realServers,
      },
    ],
    health: opts.health ?? {},
  });
}

function setup(cfg: Config, durationMs = 10) {
  const clock = new FakeClock();
  const probes = new FakeProbes(clock, durationMs);
  const metrics = createMetrics({ defaults: false });
  const runner = new HealthRunner({ config: cfg, metrics, clock, executor: probes.exec, random: () => 0 });
  const events: { kind: 'up' | 'down'; ev: HealthEvent }[] = [];
  runner.on('realServerUp', (ev) => events.push({ kind: 'up', ev }));
  runner.on('realServerDown', (ev) => events.push({ kind: 'down', ev }));
  return { clock, probes, metrics, runner, events };
}

describe('HealthRunner', () => {
  it('is down until proven up (rise), then goes down after fall consecutive failures', async () => {
    const { clock, probes, runner, events } = setup(config([{ address: '10.1.0.1' }]));
    probes.results.set('10.1.0.1', [true, true, false, true, false, false]);
    await runner.start();
    expect(runner.isHealthy('web', '10.1.0.1', 80)).toBe(false);
    await clock.advance(20); // run 1 (ok) at t=1000
    expect(events).toEqual([]);
    await clock.advance(1000); // run 2 (ok): rise 2 reached
    expect(events.map((e) => e.kind)).toEqual(['up']);
    expect(events[0]?.ev).toMatchObject({ service: 'web', address: '10.1.0.1', port: 80, reason: 'fine', consecutive: 2, probe: 'tcp', passive: false });
    expect(runner.isHealthy('web', '10.1.0.1', 80)).toBe(true);
    await clock.advance(3000); // fail, ok, fail: never two in a row
    expect(events.map((e) => e.kind)).toEqual(['up']);
    await clock.advance(1000); // second consecutive failure
    expect(events.map((e) => e.kind)).toEqual(['up', 'down']);
    expect(events[1]?.ev).toMatchObject({ reason: 'refused', consecutive: 2, durationMs: 10 });
    expect(runner.isHealthy('web', '10.1.0.1', 80)).toBe(false);
    expect(runner.get('web', '10.1.0.1', 80)).toMatchObject({ healthy: false, consecutiveFail: 2, lastCheck: { ok: false, reason: 'refused', durationMs: 10 } });
    await runner.close();
  });

  it('tells once of a real server down since start (fall failed runs, never up): one event, no transition', async () => {
    const { clock, probes, runner, events, metrics } = setup(config([{ address: '10.1.0.1' }, { address: '10.1.0.2' }]));
    const mine = () => events.filter((e) => e.ev.address === '10.1.0.1').map((e) => [e.kind, e.ev.sinceStart, e.ev.consecutive, e.ev.reason]);
    probes.results.set('10.1.0.1', [false, false, false, false, false, true, true]);
    await runner.start();
    await clock.advance(20); // run 1 fails: not yet fall
    expect(mine()).toEqual([]);
    await clock.advance(1000); // run 2 fails: fall reached, still down since start
    expect(mine()).toEqual([['down', true, 2, 'refused']]);
    await clock.advance(3000); // more failures: nothing more
    expect(mine()).toHaveLength(1);
    expect(await metrics.registry.getSingleMetricAsString('vigil_real_server_transitions_total')).not.toContain('real_server="10.1.0.1:80",to="down"} 1');
    await clock.advance(2000); // up after rise: an ordinary transition
    expect(mine()).toEqual([
      ['down', true, 2, 'refused'],
      ['up', undefined, 2, 'fine'],
    ]);
    await runner.close();
  });

  it('starts up when initial: up and emits nothing while the verdict holds', async () => {
    const { clock, probes, runner, events } = setup(config([{ address: '10.1.0.1' }], { check: { type: 'tcp', interval_ms: 1000, timeout_ms: 500, initial: 'up', rise: 1, fall: 3 } }));
    probes.results.set('10.1.0.1', [false, false, true, true, false, false, false]);
    await runner.start();
    expect(runner.isHealthy('web', '10.1.0.1', 80)).toBe(true);
    await clock.advance(6020);
    expect(events.map((e) => e.kind)).toEqual(['down']);
    expect(probes.count('10.1.0.1')).toBe(7);
    await runner.close();
  });

  it('counts a real server without any check as healthy', async () => {
    const cfg = config([{ address: '10.1.0.1', check: { type: 'tcp', interval_ms: 1000, timeout_ms: 100 } }]);
    const svc = cfg.services[0];
    if (!svc) throw new Error('no service');
    svc.check = undefined;
    svc.real_servers.push({ address: '10.1.0.2', weight: 1 });
    const { runner, clock, probes } = setup(cfg);
    await runner.start();
    await clock.advance(5000);
    expect(runner.isHealthy('web', '10.1.0.2', 80)).toBe(true);
    expect(probes.count('10.1.0.2')).toBe(0);
    expect(runner.snapshot().map((s) => s.address)).toEqual(['10.1.0.1']);
    await runner.close();
  });

  it('spreads first runs over the interval and keeps the period', async () => {
    const cfg = config([{ address: '10.1.0.1' }, { address: '10.1.0.2' }]);
    const clock = new FakeClock();
    const probes = new FakeProbes(clock);
    const jitter = [0.1, 0.6];
    const runner = new HealthRunner({ config: cfg, metrics: createMetrics({ defaults: false }), clock, executor: probes.exec, random: () => jitter.shift() ?? 0 });
    await runner.start();
    await clock.advance(3000);
    expect(probes.calls.map((c) => [c.address, c.at])).toEqual([
      ['10.1.0.1', 1100],
      ['10.1.0.2', 1600],
      ['10.1.0.1', 2100],
      ['10.1.0.2', 2600],
      ['10.1.0.1', 3100],
      ['10.1.0.2', 3600],
    ]);
    await runner.close();
  });

  it('never runs a probe twice at once: a run longer than the interval skips the next due time (overrun)', async () => {
    const { clock, probes, runner, metrics } = setup(config([{ address: '10.1.0.1' }]), 1500);
    await runner.start();
    await clock.advance(10_000);
    expect(probes.maxSameTarget).toBe(1);
    // runs at 1000, 3000, 5000, 7000, 9000, 11000: every other due time was skipped
    expect(probes.calls.map((c) => c.at)).toEqual([1000, 3000, 5000, 7000, 9000, 11000]);
    const overruns = await metrics.probeOverruns.get();
    expect(overruns.values[0]?.value).toBe(5);
    await runner.close();
  });

  it('caps probes in flight at health.concurrency and measures the wait as scheduling delay', async () => {
    const rs = Array.from({ length: 10 }, (_, i) => ({ address: `10.1.0.${i + 1}` }));
    const { clock, probes, runner, metrics } = setup(config(rs, { health: { concurrency: 3 } }), 100);
    await runner.start();
    await clock.advance(950);
    expect(probes.maxRunning).toBe(3);
    expect(probes.calls.map((c) => c.at)).toEqual([1000, 1000, 1000, 1100, 1100, 1100, 1200, 1200, 1200, 1300]);
    const delay = await metrics.probeScheduleDelay.get();
    const sum = delay.values.find((v) => v.metricName === 'vigil_probe_schedule_delay_seconds_sum')?.value;
    expect(sum).toBeCloseTo((3 * 0.1 + 3 * 0.2 + 0.3), 5);
    await runner.close();
  });

  it('counts a passive failure as one failed run toward fall, once between two probe runs', async () => {
    const { clock, runner, events } = setup(config([{ address: '10.1.0.1' }], { check: { type: 'tcp', interval_ms: 1000, timeout_ms: 500, initial: 'up', rise: 2, fall: 2 } }));
    await runner.start();
    await clock.advance(20); // one ok run
    expect(runner.passiveFailure('web', '10.1.0.1', 80, 'ECONNREFUSED')).toBe(true);
    expect(runner.passiveFailure('web', '10.1.0.1', 80, 'ECONNREFUSED')).toBe(false); // same burst
    expect(events).toEqual([]);
    expect(runner.isHealthy('web', '10.1.0.1', 80)).toBe(true);
    await clock.advance(1000); // the next probe run is ok: resets the failure count
    expect(runner.passiveFailure('web', '10.1.0.1', 80, 'ECONNREFUSED')).toBe(true);
    expect(runner.isHealthy('web', '10.1.0.1', 80)).toBe(true);
    expect(runner.passiveFailure('web', '10.9.9.9', 80, 'x')).toBe(false); // unknown: ignored
    await runner.close();
  });

  it('goes down on a passive failure followed by a failed run', async () => {
    const { clock, probes, runner, events } = setup(config([{ address: '10.1.0.1' }], { check: { type: 'tcp', interval_ms: 1000, timeout_ms: 500, initial: 'up', rise: 2, fall: 2 } }));
    probes.results.set('10.1.0.1', [true, false]);
    await runner.start();
    await clock.advance(20);
    runner.passiveFailure('web', '10.1.0.1', 80, 'ECONNREFUSED');
    await clock.advance(1000);
    expect(events.map((e) => e.kind)).toEqual(['down']);
    expect(events[0]?.ev.passive).toBe(false);
    await runner.close();
  });

  it('keeps the state of unchanged real servers across update() and starts changed ones afresh', async () => {
    const { clock, probes, runner, events } = setup(config([{ address: '10.1.0.1' }, { address: '10.1.0.2' }]));
    await runner.start();
    await clock.advance(1020);
    expect(runner.isHealthy('web', '10.1.0.1', 80)).toBe(true);
    expect(runner.isHealthy('web', '10.1.0.2', 80)).toBe(true);
    expect(events).toHaveLength(2);
    const next = config([
      { address: '10.1.0.1' },
      { address: '10.1.0.2', check: { type: 'tcp', interval_ms: 2000, timeout_ms: 500, rise: 1 } },
      { address: '10.1.0.3' },
    ]);
    runner.update(next);
    expect(runner.isHealthy('web', '10.1.0.1', 80)).toBe(true); // kept
    expect(runner.isHealthy('web', '10.1.0.2', 80)).toBe(false); // new check definition: initial state
    expect(runner.isHealthy('web', '10.1.0.3', 80)).toBe(false); // new
    const before = probes.count('10.1.0.1');
    await clock.advance(2100);
    expect(probes.count('10.1.0.1') - before).toBe(2); // same schedule as before
    expect(runner.isHealthy('web', '10.1.0.2', 80)).toBe(true);
    expect(runner.isHealthy('web', '10.1.0.3', 80)).toBe(true);
    runner.update(config([{ address: '10.1.0.3' }]));
    const n1 = probes.count('10.1.0.1');
    await clock.advance(3000);
    expect(probes.count('10.1.0.1')).toBe(n1);
    expect(runner.snapshot().map((s) => s.address)).toEqual(['10.1.0.3']);
    await runner.close();
  });

  it('close() stops scheduling and aborts runs in flight; start() and close() are idempotent', async () => {
    const { clock, probes, runner } = setup(config([{ address: '10.1.0.1' }]), 400);
    await runner.start();
    await runner.start();
    await clock.advance(100); // a run is in flight
    expect(runner.stats().running).toBe(1);
    await runner.close();
    await runner.close();
    const n = probes.calls.length;
    await clock.advance(5000);
    expect(probes.calls.length).toBe(n);
    expect(runner.stats().running).toBe(0);
  });

  it('does not count a run that never started (skipped: the director was overloaded) toward fall', async () => {
    const cfg = config([{ address: '10.1.0.1' }], { check: { type: 'tcp', interval_ms: 1000, timeout_ms: 500, initial: 'up', rise: 1, fall: 1 } });
    const clock = new FakeClock();
    const metrics = createMetrics({ defaults: false });
    const executor: ProbeExecutor = async () => ({ ok: false, result: 'skipped', reason: 'not started: the probe spawner was busy until the deadline', durationMs: 0 });
    const runner = new HealthRunner({ config: cfg, metrics, clock, executor, random: () => 0 });
    const downs: HealthEvent[] = [];
    runner.on('realServerDown', (e) => downs.push(e));
    await runner.start();
    await clock.advance(3000);
    expect(downs).toEqual([]);
    expect(runner.isHealthy('web', '10.1.0.1', 80)).toBe(true);
    expect(runner.get('web', '10.1.0.1', 80)?.lastCheck).toBeNull();
    expect(await metrics.registry.metrics()).toContain('vigil_probe_runs_total{probe="tcp",result="skipped"} 4');
    await runner.close();
  });

  it('updates the probe and health metrics', async () => {
    const { clock, runner, metrics } = setup(config([{ address: '10.1.0.1' }]));
    await runner.start();
    await clock.advance(1020);
    const text = await metrics.registry.metrics();
    expect(text).toContain('vigil_probe_up{service="web",real_server="10.1.0.1:80",probe="tcp"} 1');
    expect(text).toContain('vigil_real_server_healthy{service="web",real_server="10.1.0.1:80"} 1');
    expect(text).toContain('vigil_probe_runs_total{probe="tcp",result="up"} 2');
    expect(text).toContain('vigil_real_server_transitions_total{service="web",real_server="10.1.0.1:80",to="up"} 1');
    await runner.close();
  });
});
