import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { vipSchema } from '../../src/config/schema.js';
import { createMetrics } from '../../src/metrics.js';
import { VipManager, vipSpec } from '../../src/vip/manager.js';
import { RecordingVipPort } from '../../src/vip/port.js';

const logger = pino({ level: 'silent' });
const vip = (o: Record<string, unknown>) => vipSchema.parse({ interface: 'eth0', ...o });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function setup(vips = [vip({ address: '10.0.0.100', prefix: 24, garp: { count: 3, interval_ms: 10, repeat_after_ms: 60 } }), vip({ address: '10.0.0.101' }), vip({ address: '127.0.0.1', interface: 'lo', managed: false })]) {
  const port = new RecordingVipPort();
  const metrics = createMetrics({ defaults: false });
  const m = new VipManager({ port, vips, logger, metrics });
  return { port, metrics, m };
}

describe('VIP manager (recording port)', () => {
  it('silence() stops the GARP schedule at once (a successor holds the VIPs) but keeps the addresses until release', async () => {
    const { port, m } = setup([vip({ address: '10.0.0.100', prefix: 24, garp: { count: 3, interval_ms: 20, repeat_after_ms: 80, refresh_ms: 30 } })]);
    await m.acquire();
    const garps = (): number => port.calls.filter((c) => c.op === 'garp').length;
    expect(garps()).toBe(1); // the first of the burst, at once
    m.silence();
    m.regarp('split brain healed'); // nothing either: the successor announces
    await sleep(150); // past the burst, the repeat and several refreshes
    expect(garps()).toBe(1);
    expect(m.isOwned('10.0.0.100')).toBe(true);
    expect(port.configured.has('10.0.0.100/24@eth0')).toBe(true);
    await m.release();
    expect(port.configured.size).toBe(0);
    // taking over again ends the silence
    await m.acquire();
    await sleep(60);
    expect(garps()).toBeGreaterThanOrEqual(3);
    await m.close();
  });

  it('arm() has the port hold the managed VIPs\' takeover ready; a reload re-arms the new set; close drops it', async () => {
    const { port, m } = setup();
    expect(port.prepared).toBeNull(); // nothing until the cluster side arms it
    await m.update([vip({ address: '10.0.0.102' })]);
    expect(port.prepared, 'a reload does not arm a manager that was never armed').toBeNull();
    m.arm();
    expect(port.prepared).toEqual(['10.0.0.102']);
    await m.update([vip({ address: '10.0.0.103' }), vip({ address: '10.0.0.104', managed: false })]);
    expect(port.prepared).toEqual(['10.0.0.103']);
    await m.close();
    expect(port.prepared).toBeNull();
  });

  it('takeoverReady: true with no managed VIP; otherwise only once armed and the port\'s co-processes run', async () => {
    const { port, m } = setup();
    expect(m.takeoverReady(), 'not armed yet').toBe(false);
    m.arm();
    expect(m.takeoverReady()).toBe(true);
    port.readyAnswer = false; // e.g. the GARP helper still starting, no arping armed
    expect(m.takeoverReady()).toBe(false);
    port.readyAnswer = true;
    await m.close();
    expect(m.takeoverReady(), 'closed: disarmed').toBe(false);
    const unmanaged = setup([vip({ address: '127.0.0.1', interface: 'lo', managed: false })]);
    expect(unmanaged.m.takeoverReady(), 'nothing to take over').toBe(true);
    await unmanaged.m.close();
  });

  it('acquire adds managed VIPs in order, never touches unmanaged ones, and sends a GARP burst then a repeat', async () => {
    const { port, m, metrics } = setup();
    await m.acquire();
    expect(port.calls.filter((c) => c.op === 'add').map((c) => c.address)).toEqual(['10.0.0.100', '10.0.0.101']);
    expect(port.calls.some((c) => c.address === '127.0.0.1')).toBe(false);
    expect(m.isOwned('10.0.0.100')).toBe(true);
    expect(m.isOwned('127.0.0.1')).toBe(true); // unmanaged: owned while active
    await sleep(40);
    const garps = port.calls.filter((c) => c.op === 'garp' && c.address === '10.0.0.100');
    expect(garps.map((g) => g.mode)).toEqual(['U', 'A', 'U']);
    await sleep(60);
    expect(port.calls.filter((c) => c.op === 'garp' && c.address === '10.0.0.100')).toHaveLength(4); // + repeat
    const sent = await metrics.garpSent.get();
    expect(sent.values.find((v) => v.labels.address === '10.0.0.100')?.value).toBe(4);
    await m.close();
  });

  it('acquire is idempotent (an address already present is fine) and release removes in reverse order', async () => {
    const { port, m } = setup();
    port.configured.add('10.0.0.100/24@eth0');
    await m.acquire();
    await m.acquire();
    await m.release();
    expect(port.calls.filter((c) => c.op === 'del').map((c) => c.address)).toEqual(['10.0.0.101', '10.0.0.100']);
    expect(port.configured.size).toBe(0);
    expect(m.isOwned('10.0.0.100')).toBe(false);
    expect(m.isOwned('127.0.0.1')).toBe(false);
    await m.release(); // already gone: still fine
    await m.close();
  });

  it('a failing ip command is counted and logged, not thrown', async () => {
    const { port, m, metrics } = setup();
    port.fail.add = 'RTNETLINK answers: Operation not permitted';
    await expect(m.acquire()).resolves.toBeUndefined();
    expect(m.isOwned('10.0.0.100')).toBe(false);
    const errs = await metrics.vipErrors.get();
    expect(errs.values.filter((v) => v.labels.op === 'add').map((v) => v.value)).toEqual([1, 1]);
    await m.close();
  });

  it('removes a managed VIP found on a standby at start, and only managed ones', async () => {
    const { port, m } = setup();
    port.configured.add('10.0.0.101/32@eth0');
    expect(await m.removeStale()).toEqual(['10.0.0.101']);
    expect(port.configured.size).toBe(0);
  });

  it('a reload while active adds new VIPs and removes dropped ones', async () => {
    const { port, m } = setup([vip({ address: '10.0.0.100' })]);
    await m.acquire();
    await m.update([vip({ address: '10.0.0.102' })]);
    expect([...port.configured]).toEqual(['10.0.0.102/32@eth0']);
    await m.close();
  });

  it('labels default to <interface>:vigil when that fits in 15 characters', () => {
    expect(vipSpec(vip({ address: '10.0.0.1' })).label).toBe('eth0:vigil');
    expect(vipSpec(vip({ address: '10.0.0.1', interface: 'enp0s31f6abc' })).label).toBeUndefined();
    expect(vipSpec(vip({ address: '10.0.0.1', label: 'eth0:1' })).label).toBe('eth0:1');
  });
});
