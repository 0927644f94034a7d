import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { configSchema, type Config } from '../../src/config/schema.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { Reconciler, type Clock } from '../../src/reconcile/reconciler.js';
import { realServerId, type Dataplane, type DataplaneRole, type Operation, type RealServerCounters, type Table } from '../../src/reconcile/table.js';

/** A recording in-memory dataplane: applies ops like ipvsadm -R, can drop lines like a failing one. */
class FakeDataplane implements Dataplane {
  readonly kind = 'ipvs' as const;
  table: Table = [];
  batches: Operation[][] = [];
  reads = 0;
  /** Operations for which this returns true are silently not applied (a failing -R line). */
  drop: (op: Operation) => boolean = () => false;
  /** Like a line ipvsadm cannot parse: the batch stops there and ipvsadm exits non-zero. */
  stopAt: (op: Operation) => boolean = () => false;
  failApply: Error | undefined;
  failRole: Error | undefined;
  roles: DataplaneRole[] = [];
  conns = new Map<string, number>();
  async start(): Promise<void> {}
  async close(): Promise<void> {}
  async read(): Promise<Table> {
    this.reads += 1;
    return structuredClone(this.table);
  }
  async apply(ops: Operation[]): Promise<void> {
    this.batches.push(ops);
    if (this.failApply) throw this.failApply;
    let last = true;
    for (const op of ops) {
      if (this.stopAt(op)) throw Object.assign(new Error('ipvsadm -R failed (exit 2)'), { stderr: 'ipvsadm: illegal netmask\n' });
      last = !this.drop(op) && this.applyOne(op);
    }
    // like ipvsadm -R: the exit status is the last line's
    if (!last) throw Object.assign(new Error('ipvsadm -R failed (exit 1)'), { stderr: 'Service not defined\n' });
  }
  async setRole(role: DataplaneRole): Promise<void> {
    if (this.failRole) throw this.failRole;
    this.roles.push(role);
  }
  async counters(): Promise<Map<string, Map<string, RealServerCounters>>> {
    const out = new Map<string, Map<string, RealServerCounters>>();
    for (const s of this.table) {
      const m = new Map<string, RealServerCounters>();
      for (const r of s.realServers) {
        const active = this.conns.get(`${s.key} ${realServerId(r.address, r.port)}`) ?? 0;
        m.set(realServerId(r.address, r.port), { active, inactive: 0, connections: 0, bytesIn: 0, bytesOut: 0, packetsIn: 0, packetsOut: 0, cps: 0, bpsIn: 0, bpsOut: 0 });
      }
      out.set(s.key, m);
    }
    return out;
  }
  private applyOne(op: Operation): boolean {
    const find = (key: string) => this.table.find((s) => s.key === key);
    if ((op.kind === 'add_real_server' || op.kind === 'edit_real_server' || op.kind === 'delete_real_server') && !find(op.serviceKey)) return false;
    switch (op.kind) {
      case 'add_service':
        if (!find(op.service.key)) this.table.push({ ...structuredClone(op.service), realServers: [] });
        break;
      case 'edit_service': {
        const s = find(op.service.key);
        if (s) Object.assign(s, { ...structuredClone(op.service), realServers: s.realServers });
        break;
      }
      case 'delete_service':
        this.table = this.table.filter((s) => s.key !== op.key);
        break;
      case 'add_real_server':
      case 'edit_real_server': {
        const s = find(op.serviceKey);
        if (!s) break;
        const i = s.realServers.findIndex((r) => r.address === op.realServer.address && r.port === op.realServer.port);
        if (i >= 0) s.realServers[i] = { ...op.realServer };
        else if (op.kind === 'add_real_server') s.realServers.push({ ...op.realServer });
        break;
      }
      case 'delete_real_server': {
        const s = find(op.serviceKey);
        if (s) s.realServers = s.realServers.filter((r) => !(r.address === op.address && r.port === op.port));
        break;
      }
    }
    return true;
  }
}

class FakeClock implements Clock {
  t = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  private next = 1;
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.timers.delete(h as number);
  }
  /** Moves time forward, firing due timers in order, letting the reconciler run in between. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, x]) => x.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.t = Math.max(this.t, due[1].at);
      due[1].fn();
      await settle();
    }
    this.t = end;
    await settle();
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

function makeConfig(services: unknown[], interval = 1000): Config {
  return configSchema.parse({
    node: 'a',
    cluster: { nodes: [{ name: 'a', links: [{ name: 'l', address: '127.0.0.1' }] }] },
    vips: [{ address: '10.0.0.1', interface: 'lo' }],
    services,
    dataplane: { mode: 'ipvs', reconcile_interval_ms: interval },
  });
}

const web = {
  name: 'web',
  vip: '10.0.0.1',
  port: 80,
  quiescent: false,
  real_servers: [{ address: '10.0.1.2' }, { address: '10.0.1.3' }, { address: '10.0.1.4' }],
};
const dns = { name: 'dns', protocol: 'udp', vip: '10.0.0.1', port: 53, real_servers: [{ address: '10.0.1.2' }] };

interface Rig {
  dp: FakeDataplane;
  clock: FakeClock;
  metrics: Metrics;
  rec: Reconciler;
  down: Set<string>;
  setConfig(c: Config): void;
}

const rigs: Reconciler[] = [];
afterEach(async () => {
  for (const r of rigs.splice(0)) await r.close();
});

function rig(services: unknown[] = [web, dns]): Rig {
  const dp = new FakeDataplane();
  const clock = new FakeClock();
  const metrics = createMetrics({ defaults: false });
  const down = new Set<string>();
  let config = makeConfig(services);
  const rec = new Reconciler({
    dataplane: dp,
    config: () => config,
    health: (s, a, p) => !down.has(`${s} ${a}:${p}`),
    metrics,
    logger: pino({ level: 'silent' }),
    clock,
  });
  rigs.push(rec);
  return { dp, clock, metrics, rec, down, setConfig: (c) => (config = c) };
}

const value = async (m: Metrics, name: string, labels: Record<string, string> = {}): Promise<number> => {
  const metric = (await m.registry.getMetricsAsJSON()).find((x) => x.name === name);
  const vals = (metric?.values ?? []) as { value: number; labels: Record<string, string | number> }[];
  return vals.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((a, v) => a + v.value, 0);
};

describe('Reconciler', () => {
  it('loads the whole table in one batch at start and becomes ready', async () => {
    const { dp, rec, metrics } = rig();
    expect(rec.ready).toBe(false);
    await rec.start();
    expect(rec.ready).toBe(true);
    expect(dp.batches).toHaveLength(1);
    expect(dp.batches[0]?.map((o) => o.kind)).toEqual(['add_service', 'add_service', 'add_real_server', 'add_real_server', 'add_real_server', 'add_real_server']);
    expect(await value(metrics, 'vigil_reconcile_runs_total', { trigger: 'start' })).toBe(1);
    expect(await value(metrics, 'vigil_reconcile_operations_total', { kind: 'add_real_server' })).toBe(4);
    expect(await value(metrics, 'vigil_table_virtual_services')).toBe(2);
    expect(await value(metrics, 'vigil_table_real_servers')).toBe(4);
  });

  it('reads the counters once the first table is in, so the first status has them', async () => {
    const { dp, rec } = rig();
    dp.conns.set('tcp 10.0.0.1:80 10.0.1.2:80', 3);
    await rec.start();
    await new Promise((r) => setImmediate(r));
    expect(rec.counters().get('tcp 10.0.0.1:80')?.get('10.0.1.2:80')?.active).toBe(3);
  });

  it('does nothing when nothing changed (0 operations, no batch)', async () => {
    const { dp, rec, clock } = rig();
    await rec.start();
    const r = await rec.request('config');
    expect(r).toMatchObject({ ok: true, operations: 0 });
    await clock.advance(1000); // periodic
    expect(dp.batches).toHaveLength(1);
    expect(rec.last).toMatchObject({ ok: true, operations: 0, triggers: ['periodic'] });
  });

  it('merges a burst of health changes into one batch plus its read-back', async () => {
    const { dp, rec, down } = rig();
    await rec.start();
    const reads = dp.reads;
    down.add('web 10.0.1.2:80');
    down.add('web 10.0.1.3:80');
    down.add('dns 10.0.1.2:53');
    const results = await Promise.all([rec.request('health'), rec.request('health'), rec.request('health')]);
    expect(new Set(results).size).toBe(1);
    expect(dp.batches).toHaveLength(2);
    expect(dp.batches[1]?.map((o) => o.kind)).toEqual(['delete_real_server', 'delete_real_server', 'delete_real_server']);
    expect(dp.reads - reads).toBe(1); // the read-back only: the diff used the last read-back
  });

  it('requests that arrive while a run is in flight merge into the next run', async () => {
    const { dp, rec, down } = rig();
    await rec.start();
    down.add('web 10.0.1.2:80');
    const first = rec.request('health');
    await new Promise((r) => setImmediate(r)); // the run has started
    down.add('web 10.0.1.3:80');
    const second = rec.request('health');
    down.add('web 10.0.1.4:80');
    const third = rec.request('drain');
    const [a, b, c] = await Promise.all([first, second, third]);
    expect(b).toBe(c);
    expect(a).not.toBe(b);
    expect(b.triggers).toEqual(['health', 'drain']);
    expect(dp.batches).toHaveLength(3);
  });

  it('repairs drift on the periodic run and counts it', async () => {
    const { dp, rec, clock, metrics } = rig();
    await rec.start();
    dp.table = []; // ipvsadm -C by hand
    await clock.advance(1000);
    expect(dp.table.map((s) => s.key)).toEqual(['tcp 10.0.0.1:80', 'udp 10.0.0.1:53']);
    expect(await value(metrics, 'vigil_reconcile_drift_repairs_total')).toBe(1);
    dp.table[0]?.realServers.splice(1, 1); // ipvsadm -d by hand
    await clock.advance(1000);
    expect(dp.table[0]?.realServers).toHaveLength(3);
    expect(await value(metrics, 'vigil_reconcile_drift_repairs_total')).toBe(2);
  });

  it('a health run that finds the table drifted repairs it in the same run and counts it', async () => {
    const { dp, rec, metrics, down } = rig();
    await rec.start();
    dp.table[1]!.realServers = []; // ipvsadm -d by hand on dns, unseen (no periodic run yet)
    down.add('web 10.0.1.2:80');
    const r = await rec.request('health');
    expect(r).toMatchObject({ ok: true, drift: true, operations: 2 });
    expect(dp.batches.slice(1).map((b) => b.map((o) => o.kind))).toEqual([['delete_real_server'], ['add_real_server']]);
    expect(dp.table[1]?.realServers).toHaveLength(1);
    expect(await value(metrics, 'vigil_reconcile_drift_repairs_total')).toBe(1);
    expect(await value(metrics, 'vigil_reconcile_failures_total')).toBe(0);
  });

  it('a failing line is not mistaken for drift', async () => {
    const { dp, rec, metrics, down } = rig();
    await rec.start();
    dp.drop = (op) => op.kind === 'delete_real_server';
    down.add('web 10.0.1.2:80');
    const r = await rec.request('health');
    expect(r).toMatchObject({ ok: false, drift: false, operations: 1 });
    // the batch, then the missing line again on its own
    expect(dp.batches).toHaveLength(3);
    expect(dp.batches[2]).toEqual(dp.batches[1]);
    expect(await value(metrics, 'vigil_reconcile_drift_repairs_total')).toBe(0);
  });

  it('never touches a foreign service', async () => {
    const { dp, rec, clock } = rig();
    const foreign = { key: 'tcp 10.0.0.1:8080', protocol: 'tcp' as const, vip: '10.0.0.1', port: 8080, scheduler: 'rr' as const, realServers: [{ address: '10.9.9.9', port: 8080, forward: 'nat' as const, weight: 7 }] };
    dp.table = [structuredClone(foreign)];
    await rec.start();
    dp.table = dp.table.filter((s) => s.key !== 'tcp 10.0.0.1:80');
    await clock.advance(1000);
    expect(dp.table.find((s) => s.key === foreign.key)).toEqual(foreign);
    expect(dp.batches.flat().some((o) => JSON.stringify(o).includes('8080'))).toBe(false);
  });

  it('a failing line is found by the read-back: counted, logged with the line, retried with backoff', async () => {
    const { dp, rec, clock, metrics, down } = rig();
    await rec.start();
    dp.drop = (op) => op.kind === 'delete_real_server';
    down.add('web 10.0.1.3:80');
    const r = await rec.request('health');
    expect(r.ok).toBe(false);
    expect(r.failedLines).toEqual(['-d -t 10.0.0.1:80 -r 10.0.1.3:80']);
    expect(await value(metrics, 'vigil_reconcile_failures_total')).toBe(1);
    await clock.advance(250); // first retry
    expect(await value(metrics, 'vigil_reconcile_failures_total')).toBe(2);
    await clock.advance(499);
    expect(await value(metrics, 'vigil_reconcile_failures_total')).toBe(2);
    await clock.advance(1); // second retry, 500 ms later
    expect(await value(metrics, 'vigil_reconcile_failures_total')).toBe(3);
    dp.drop = () => false;
    await clock.advance(1000);
    expect(rec.last?.ok).toBe(true);
    expect(dp.table[0]?.realServers.map((x) => x.address)).toEqual(['10.0.1.2', '10.0.1.4']);
    expect(await value(metrics, 'vigil_reconcile_failures_total')).toBe(3);
  });

  it('one entry the dataplane refuses never keeps the others out, even when the batch stops at it', async () => {
    const bad = { name: 'bad', vip: '10.0.0.1', port: 443, real_servers: [{ address: '10.0.1.5' }] };
    const { dp, rec, metrics, clock } = rig([web, bad, dns]);
    dp.stopAt = (op) => op.kind === 'add_service' && op.service.key === 'tcp 10.0.0.1:443';
    await rec.start();
    const r = rec.last;
    expect(r?.ok).toBe(false);
    // every valid entry is installed: both other services with all their real servers
    expect(dp.table.map((s) => [s.key, s.realServers.map((x) => x.address)])).toEqual([
      ['tcp 10.0.0.1:80', ['10.0.1.2', '10.0.1.3', '10.0.1.4']],
      ['udp 10.0.0.1:53', ['10.0.1.2']],
    ]);
    // exactly the bad entries are named, each with the dataplane's own message
    expect(r?.refused).toEqual([
      { service: 'bad', serviceKey: 'tcp 10.0.0.1:443', line: '-A -t 10.0.0.1:443 -s wlc', error: 'ipvsadm: illegal netmask' },
      { service: 'bad', serviceKey: 'tcp 10.0.0.1:443', realServer: '10.0.1.5:443', line: '-a -t 10.0.0.1:443 -r 10.0.1.5:443 -g -w 1', error: 'Service not defined' },
    ]);
    expect(r?.failedLines).toEqual(['-A -t 10.0.0.1:443 -s wlc', '-a -t 10.0.0.1:443 -r 10.0.1.5:443 -g -w 1']);
    expect(r?.error).toContain('the dataplane refused 2 entries: bad (ipvsadm: illegal netmask); bad 10.0.1.5:443 (Service not defined)');
    expect(await value(metrics, 'vigil_reconcile_entry_failing', { service: 'bad' })).toBe(2);
    expect(await value(metrics, 'vigil_reconcile_entry_failing', { service: 'bad', real_server: '10.0.1.5:443' })).toBe(1);
    expect(await value(metrics, 'vigil_reconcile_entry_failing', { service: 'web' })).toBe(0);
    expect(await value(metrics, 'vigil_reconcile_failures_total')).toBe(1);
    // all the dataplane accepts is in: ready, while the refusal stays a failure
    expect(rec.ready).toBe(true);
    // the retries keep the valid entries and try only the missing ones; fixed, all clear
    dp.stopAt = () => false;
    await clock.advance(250);
    expect(rec.last?.ok).toBe(true);
    expect(rec.ready).toBe(true);
    expect(dp.table).toHaveLength(3);
    expect((await metrics.registry.getSingleMetricAsString('vigil_reconcile_entry_failing')).includes('} 1')).toBe(false);
  });

  it('an apply that throws is a failure, not a crash, and the table catches up later', async () => {
    const { dp, rec, clock } = rig();
    dp.failApply = new Error('ipvsadm: cannot run');
    await rec.start();
    expect(rec.ready).toBe(false);
    expect(rec.last?.ok).toBe(false);
    expect(rec.last?.error).toContain('ipvsadm: cannot run');
    dp.failApply = undefined;
    await clock.advance(250);
    expect(rec.ready).toBe(true);
    expect(dp.table).toHaveLength(2);
  });

  it('quiescent: an unhealthy real server stays with weight 0 and comes back with its weight', async () => {
    const { dp, rec, down } = rig([{ ...web, quiescent: true, real_servers: [{ address: '10.0.1.2', weight: 5 }] }]);
    await rec.start();
    down.add('web 10.0.1.2:80');
    await rec.request('health');
    expect(dp.batches[1]).toEqual([{ kind: 'edit_real_server', serviceKey: 'tcp 10.0.0.1:80', realServer: { address: '10.0.1.2', port: 80, forward: 'dr', weight: 0 } }]);
    down.clear();
    await rec.request('health');
    expect(dp.table[0]?.realServers[0]?.weight).toBe(5);
  });

  it('a reload that removes a service deletes it; a new one is added', async () => {
    const { dp, rec, setConfig } = rig();
    await rec.start();
    setConfig(makeConfig([web, { ...dns, port: 5353 }]));
    const r = await rec.request('config');
    expect(r.ok).toBe(true);
    expect(dp.table.map((s) => s.key).sort()).toEqual(['tcp 10.0.0.1:80', 'udp 10.0.0.1:5353']);
    expect(dp.batches[1]?.[0]).toEqual({ kind: 'delete_service', key: 'udp 10.0.0.1:53' });
  });

  it('follows the role through the dataplane, and retries a role the dataplane refused', async () => {
    const { dp, rec } = rig();
    await rec.start();
    expect(dp.roles).toEqual(['init']);
    dp.failRole = new Error('sync daemon');
    await rec.setRole('active');
    expect(dp.roles).toEqual(['init']);
    dp.failRole = undefined;
    await rec.request('health');
    expect(dp.roles).toEqual(['init', 'active']);
    await rec.setRole('standby');
    expect(dp.roles).toEqual(['init', 'active', 'standby']);
    expect(dp.table).toHaveLength(2); // the table is loaded whatever the role
  });

  it('drain: weight 0 at once, then waits for the connections to finish', async () => {
    const { dp, rec, clock } = rig();
    await rec.start();
    dp.conns.set('tcp 10.0.0.1:80 10.0.1.3:80', 4);
    const p = rec.drain('web', '10.0.1.3', undefined, 10_000);
    await settle();
    expect(dp.table[0]?.realServers.find((r) => r.address === '10.0.1.3')?.weight).toBe(0);
    await clock.advance(1000);
    dp.conns.set('tcp 10.0.0.1:80 10.0.1.3:80', 0);
    await clock.advance(500);
    const r = await p;
    expect(r).toMatchObject({ service: 'web', address: '10.0.1.3', port: 80, outcome: 'drained', remainingConnections: 0 });
    expect(r.waitedMs).toBe(1500);
    expect(await rec.enable('web', '10.0.1.3', 80)).toBe('web 10.0.1.3:80 enabled (weight 1)');
    expect(dp.table[0]?.realServers.find((r) => r.address === '10.0.1.3')?.weight).toBe(1);
    expect(await rec.enable('web', '10.0.1.3', 80)).toBe('web 10.0.1.3:80 was not drained');
  });

  it('drain: the deadline passes with connections left; deadline 0 only starts it', async () => {
    const { dp, rec, clock } = rig();
    await rec.start();
    dp.conns.set('tcp 10.0.0.1:80 10.0.1.2:80', 2);
    const p = rec.drain('web', '10.0.1.2', 80, 2000);
    await settle();
    await clock.advance(2000);
    expect(await p).toMatchObject({ outcome: 'deadline', remainingConnections: 2, waitedMs: 2000 });
    expect(await rec.drain('web', '10.0.1.4', 80, 0)).toMatchObject({ outcome: 'started', waitedMs: 0 });
    expect([...rec.drained()]).toEqual(['web 10.0.1.2:80', 'web 10.0.1.4:80']);
  });

  it('drain names what it cannot find', async () => {
    const { rec } = rig();
    await rec.start();
    await expect(rec.drain('nope', '10.0.1.2', 80, 0)).rejects.toThrow('service "nope" not found');
    await expect(rec.drain('web', '10.0.1.9', 80, 0)).rejects.toThrow('real server 10.0.1.9:80 in service "web" not found');
    await expect(rec.enable('web', '10.0.1.2', 81)).rejects.toMatchObject({ code: 'VIGIL_NOT_FOUND', statusCode: 404 });
  });

  it('close() is idempotent and stops the periodic runs', async () => {
    const { dp, rec, clock } = rig();
    await rec.start();
    await rec.close();
    await rec.close();
    dp.table = [];
    await clock.advance(5000);
    expect(dp.table).toEqual([]);
    expect((await rec.request('health')).ok).toBe(false);
  });
});
