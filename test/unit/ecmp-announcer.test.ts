/**
 * The ECMP announcer's order of effects, with a recording BIRD port and VIP port (the
 * real BIRD is exercised by test/e2e/ecmp-*.test.ts): VIPs on lo before anything is
 * announced, the include file follows the decisions, a withdraw waits for the routers
 * before returning, a failed configure is retried, a reload withdraws removed VIPs first.
 */
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { configSchema, type Config } from '../../src/config/schema.js';
import { EcmpAnnouncer, type BirdPort } from '../../src/ecmp/announcer.js';
import { createMetrics } from '../../src/metrics.js';
import type { Table } from '../../src/reconcile/table.js';
import { RecordingVipPort } from '../../src/vip/port.js';

function config(vips: string[]): Config {
  return configSchema.parse({
    node: 'd1',
    cluster: { mode: 'ecmp', ecmp: { include_file: '/x/vips.conf', withdraw_wait_ms: 500 }, nodes: [{ name: 'd1', links: [{ name: 'lan', address: '10.9.0.1' }] }] },
    vips: vips.map((address) => ({ address, interface: 'lo' })),
    services: vips.map((vip, i) => ({ name: `s${i}`, vip, port: 80, real_servers: [{ address: '10.9.1.1' }] })),
  });
}

const table = (vips: string[], weight = 1): Table =>
  vips.map((vip) => ({ key: `tcp ${vip}:80`, protocol: 'tcp', vip, port: 80, scheduler: 'wlc', realServers: [{ address: '10.9.1.1', port: 80, forward: 'dr', weight }] }));

function setup(vips: string[]) {
  const log: string[] = [];
  let failConfigure: string | undefined;
  const bird: BirdPort = {
    writeInclude: (file, text) => log.push(`write ${file} ${[...text.matchAll(/route (\S+)\/\d+/g)].map((m) => m[1]).join(',') || '-'}`),
    configure: async () => {
      if (failConfigure) {
        log.push('configure failed');
        throw new Error(failConfigure);
      }
      log.push('configure');
    },
    protocols: async () => [{ name: 'uplink', proto: 'BGP', table: '---', state: 'up', since: '1', info: 'Established' }],
    bfdSessions: async () => [{ protocol: 'bfd1', address: '10.9.0.254', interface: 'e0', state: 'Up', since: '1', intervalS: 0.05, timeoutS: 0.15 }],
  };
  const vipPort = new RecordingVipPort();
  const state = { config: config(vips), table: table(vips) as Table | undefined, ready: true };
  const metrics = createMetrics({ defaults: false });
  const a = new EcmpAnnouncer({
    config: () => state.config,
    bird,
    vipPort,
    table: () => state.table,
    dataplaneReady: () => state.ready,
    logger: pino({ level: 'silent' }),
    metrics,
    sleep: async (ms) => void log.push(`sleep ${ms}`),
    wallClock: () => new Date('2026-12-04T12:00:00Z'),
  });
  return { a, log, vipPort, state, metrics, setFail: (m: string | undefined) => (failConfigure = m) };
}

describe('EcmpAnnouncer', () => {
  it('puts the VIPs on lo as host routes, writes an empty file first, then announces', async () => {
    const { a, log, vipPort } = setup(['10.0.0.1', '10.0.0.2']);
    await a.start();
    expect(vipPort.calls.filter((c) => c.op === 'add')).toEqual([
      { op: 'add', address: '10.0.0.1', interface: 'lo' },
      { op: 'add', address: '10.0.0.2', interface: 'lo' },
    ]);
    expect([...vipPort.configured]).toEqual(['10.0.0.1/32@lo', '10.0.0.2/32@lo']);
    expect(log).toEqual(['write /x/vips.conf -', 'configure', 'write /x/vips.conf 10.0.0.1,10.0.0.2', 'configure']);
    expect(a.status().vips).toEqual([
      { address: '10.0.0.1', announced: true, reason: 'serving', since: '2026-12-04T12:00:00.000Z' },
      { address: '10.0.0.2', announced: true, reason: 'serving', since: '2026-12-04T12:00:00.000Z' },
    ]);
    await a.close();
  });

  it('does not rewrite the file when the announced set did not change', async () => {
    const { a, log } = setup(['10.0.0.1']);
    await a.start();
    const n = log.length;
    await a.request();
    await a.request();
    expect(log.length).toBe(n);
    await a.close();
  });

  it('withdraws a VIP whose service lost its last real server, and announces it again', async () => {
    const { a, log, state, metrics } = setup(['10.0.0.1', '10.0.0.2']);
    await a.start();
    state.table = [...table(['10.0.0.1'], 0), ...table(['10.0.0.2'])];
    log.length = 0;
    await a.request();
    expect(log).toEqual(['write /x/vips.conf 10.0.0.2', 'configure']);
    expect(a.status().vips[0]).toMatchObject({ announced: false, reason: 'service s0 has no healthy real server' });
    expect((await metrics.ecmpVipAnnounced.get()).values.map((v) => [v.labels.vip, v.value])).toEqual([['10.0.0.1', 0], ['10.0.0.2', 1]]);
    state.table = table(['10.0.0.1', '10.0.0.2']);
    await a.request();
    expect(a.status().vips[0]).toMatchObject({ announced: true, reason: 'serving' });
    await a.close();
  });

  it('standby and maintenance withdraw everything and wait for the routers before returning', async () => {
    const { a, log } = setup(['10.0.0.1']);
    await a.start();
    log.length = 0;
    expect(await a.setStandby(true)).toBe('standby: 1 VIP(s) withdrawn (waited 500 ms for the routers)');
    expect(log).toEqual(['write /x/vips.conf -', 'configure', 'sleep 500']);
    expect(await a.setMaintenance(true)).toBe('maintenance: 0 VIP(s) withdrawn');
    expect(a.status().vips[0]?.reason).toBe('maintenance');
    await a.setMaintenance(false);
    expect(await a.setStandby(false)).toBe('standby off: 1 of 1 VIP(s) announced');
    expect(a.status().vips[0]).toMatchObject({ announced: true });
    await a.close();
  });

  it('close: withdraw, wait, and only then take the VIPs off lo', async () => {
    const { a, log, vipPort } = setup(['10.0.0.1']);
    await a.start();
    log.length = 0;
    vipPort.calls.length = 0;
    const order: string[] = [];
    const origDel = vipPort.del.bind(vipPort);
    vipPort.del = async (v) => {
      order.push(`del after [${log.join('; ')}]`);
      return origDel(v);
    };
    await a.close();
    expect(order).toEqual(['del after [write /x/vips.conf -; configure; sleep 500]']);
    expect(a.status().vips[0]).toMatchObject({ announced: false, reason: 'stopping' });
  });

  it('keeps retrying a failed configure and reports the error meanwhile', async () => {
    const { a, log, setFail } = setup(['10.0.0.1']);
    setFail('birdc: Unable to connect');
    await a.start();
    expect(a.status().birdError).toBe('birdc: Unable to connect');
    expect(a.status().vips[0]).toMatchObject({ announced: false, reason: 'serving' });
    setFail(undefined);
    log.length = 0;
    await a.request(); // the poll does this
    expect(log).toEqual(['write /x/vips.conf 10.0.0.1', 'configure']);
    expect(a.status()).toMatchObject({ birdError: null, vips: [{ announced: true }] });
    await a.close();
  });

  it('a reload that removes a VIP withdraws it and waits before the new config applies', async () => {
    const { a, log, state, vipPort } = setup(['10.0.0.1', '10.0.0.2']);
    await a.start();
    log.length = 0;
    const next = config(['10.0.0.2', '10.0.0.3']);
    await a.beforeReload(next);
    expect(log).toEqual(['write /x/vips.conf 10.0.0.2', 'configure', 'sleep 500']);
    state.config = next;
    state.table = table(['10.0.0.2', '10.0.0.3']);
    await a.afterReload();
    expect([...vipPort.configured].sort()).toEqual(['10.0.0.2/32@lo', '10.0.0.3/32@lo']);
    expect(a.status().vips.map((v) => `${v.address} ${v.announced}`)).toEqual(['10.0.0.2 true', '10.0.0.3 true']);
    await a.close();
  });

  it('reports BGP and BFD sessions read from BIRD', async () => {
    const { a, metrics } = setup(['10.0.0.1']);
    await a.start();
    await new Promise((r) => setTimeout(r, 20));
    expect(a.status().bgp).toEqual([{ name: 'uplink', state: 'up', info: 'Established', up: true }]);
    expect(a.status().bfd).toEqual([{ address: '10.9.0.254', interface: 'e0', state: 'Up' }]);
    expect((await metrics.ecmpBgpUp.get()).values).toEqual([{ labels: { protocol: 'uplink' }, value: 1 }]);
    await a.close();
  });
});
