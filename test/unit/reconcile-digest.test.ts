import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { configSchema, type Config } from '../../src/config/schema.js';
import { createMetrics } from '../../src/metrics.js';
import { desired, type HealthView } from '../../src/reconcile/desired.js';
import { tableCanonical, tableDigest } from '../../src/reconcile/digest.js';
import { diff } from '../../src/reconcile/diff.js';
import { formatOperation, formatSave, parseSave } from '../../src/reconcile/ipvsadm.js';
import { Reconciler } from '../../src/reconcile/reconciler.js';
import type { Dataplane, Table } from '../../src/reconcile/table.js';

const web = {
  name: 'web',
  vip: '10.0.0.1',
  port: 80,
  scheduler: 'mh',
  scheduler_flags: ['mh-port', 'mh-fallback'],
  real_servers: [{ address: '10.0.1.2', weight: 2 }, { address: '10.0.1.3' }, { address: '10.0.1.4' }],
};
const dns = { name: 'dns', protocol: 'udp', vip: '2001:DB8::1', port: 53, scheduler: 'mh', scheduler_flags: ['mh-port'], quiescent: true, real_servers: [{ address: '2001:db8::10' }, { address: '2001:db8::11' }] };

function config(services: unknown[]): Config {
  return configSchema.parse({
    node: 'a',
    cluster: { nodes: [{ name: 'a', links: [{ name: 'l', address: '127.0.0.1' }] }] },
    vips: [{ address: '10.0.0.1', interface: 'lo' }, { address: '2001:DB8::1', interface: 'lo' }],
    services,
  });
}
const allUp: HealthView = () => true;
const reversed = <T>(xs: readonly T[]): T[] => [...xs].reverse();

describe('tableDigest', () => {
  const base = tableDigest(desired(config([web, dns]), allUp, new Set()));

  it('is sha256 over a versioned canonical text', () => {
    expect(base).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(tableCanonical(desired(config([web]), allUp, new Set()))).toBe(
      'vigil-table 1\nS tcp 10.0.0.1:80 tcp mh b=mh-fallback,mh-port p=-\nR 10.0.1.2:80 dr 2\nR 10.0.1.3:80 dr 1\nR 10.0.1.4:80 dr 1\n',
    );
  });

  it('is independent of the order of services, real servers and flags in the config', () => {
    const shuffledWeb = { ...web, scheduler_flags: reversed(web.scheduler_flags), real_servers: reversed(web.real_servers) };
    const shuffledDns = { ...dns, vip: '2001:db8:0::1', real_servers: reversed(dns.real_servers) };
    expect(tableDigest(desired(config([shuffledDns, shuffledWeb]), allUp, new Set()))).toBe(base);
  });

  it('is independent of the order of a table as a dataplane reads it back', () => {
    const t = desired(config([web, dns]), allUp, new Set());
    const readBack: Table = reversed(t).map((s) => ({ ...s, realServers: reversed(s.realServers) }));
    expect(tableDigest(readBack)).toBe(base);
  });

  it.each([
    ['a weight', [{ ...web, real_servers: [{ address: '10.0.1.2', weight: 3 }, ...web.real_servers.slice(1)] }, dns]],
    ['a flag', [{ ...web, scheduler_flags: ['mh-port'] }, dns]],
    ['the scheduler', [{ ...web, scheduler: 'wlc', scheduler_flags: [] }, dns]],
    ['a real server', [{ ...web, real_servers: web.real_servers.slice(1) }, dns]],
    ['persistence', [{ ...web, persistence: { timeout_s: 60 } }, dns]],
    ['a service', [web]],
  ])('changes with %s', (_what, services) => {
    expect(tableDigest(desired(config(services), allUp, new Set()))).not.toBe(base);
  });

  it('follows the health view: a failed real server (removed, or weight 0 when quiescent) and a drain', () => {
    const c = config([web, dns]);
    const webDown: HealthView = (s, a) => !(s === 'web' && a === '10.0.1.3');
    const dnsDown: HealthView = (s, a) => !(s === 'dns' && a === '2001:db8::11');
    const digests = new Set([
      base,
      tableDigest(desired(c, webDown, new Set())),
      tableDigest(desired(c, dnsDown, new Set())),
      tableDigest(desired(c, allUp, new Set(['web 10.0.1.3:80']))),
    ]);
    expect(digests.size).toBe(4);
    // the same health view on another director: the same digest
    expect(tableDigest(desired(config([dns, web]), webDown, new Set()))).toBe(tableDigest(desired(c, webDown, new Set())));
  });
});

describe('desired: mh keeps the configured weight of a weight-0 real server', () => {
  it('a failed real server of a quiescent mh service and a drained one carry configuredWeight; others do not', () => {
    const c = config([web, dns]);
    const dnsDown: HealthView = (s, a) => !(s === 'dns' && a === '2001:db8::11');
    const t = desired(c, dnsDown, new Set(['web 10.0.1.2:80']));
    const rs = (key: string) => t.find((s) => s.key === key)?.realServers;
    expect(rs('udp [2001:db8::1]:53')).toEqual([
      { address: '2001:db8::10', port: 53, forward: 'dr', weight: 1 },
      { address: '2001:db8::11', port: 53, forward: 'dr', weight: 0, configuredWeight: 1 },
    ]);
    expect(rs('tcp 10.0.0.1:80')?.[0]).toEqual({ address: '10.0.1.2', port: 80, forward: 'dr', weight: 0, configuredWeight: 2 });
    const wlc = desired(config([{ ...web, scheduler: 'wlc', scheduler_flags: [] }]), allUp, new Set(['web 10.0.1.2:80']));
    expect(wlc[0]?.realServers[0]).toEqual({ address: '10.0.1.2', port: 80, forward: 'dr', weight: 0 });
  });
});

describe('desired and diff for mh on IPVS (the kernel table depends on the add order and last_weight)', () => {
  it('mh real servers are in one canonical order whatever the config order; other schedulers keep the config order', () => {
    const three = [{ address: '10.0.1.9' }, { address: '10.0.1.10' }, { address: '10.0.1.2' }];
    const order = (svc: object): string[] | undefined => desired(config([svc]), allUp, new Set())[0]?.realServers.map((r) => r.address);
    expect(order({ ...web, real_servers: three })).toEqual(['10.0.1.2', '10.0.1.9', '10.0.1.10']);
    expect(order({ ...web, real_servers: reversed(three) })).toEqual(['10.0.1.2', '10.0.1.9', '10.0.1.10']);
    expect(order({ ...web, scheduler: 'wrr', scheduler_flags: [], real_servers: three })).toEqual(['10.0.1.9', '10.0.1.10', '10.0.1.2']);
  });

  it('a real server added at weight 0 with a configured weight is added at that weight, then set to 0 in the same batch', () => {
    const c = config([{ ...web, quiescent: true }]);
    const want = desired(c, (_s, a) => a !== '10.0.1.3', new Set());
    const ops = diff([], want, new Set(['tcp 10.0.0.1:80']));
    expect(ops.map(formatOperation)).toEqual([
      '-A -t 10.0.0.1:80 -s mh -b mh-fallback,mh-port',
      '-a -t 10.0.0.1:80 -r 10.0.1.2:80 -g -w 2',
      '-a -t 10.0.0.1:80 -r 10.0.1.3:80 -g -w 1',
      '-e -t 10.0.0.1:80 -r 10.0.1.3:80 -g -w 0',
      '-a -t 10.0.0.1:80 -r 10.0.1.4:80 -g -w 1',
    ]);
    // the read-back (weight 0, no configuredWeight: ipvsadm cannot show it) needs nothing more
    const readBack = parseSave(formatSave(want));
    expect(diff(readBack, want, new Set(['tcp 10.0.0.1:80']))).toEqual([]);
  });
});

describe('Reconciler.digest()', () => {
  /** A dataplane that already holds whatever is desired (every run finds nothing to do). */
  function inSync(get: () => Table): Dataplane {
    return {
      kind: 'forwarder',
      start: async () => undefined,
      close: async () => undefined,
      read: async () => structuredClone(get()),
      apply: async () => undefined,
      setRole: async () => undefined,
      counters: async () => new Map(),
    };
  }

  it('is undefined before the first run, then the desired table digest; an event on each change only', async () => {
    const cfg = config([web, dns]);
    const down = new Set<string>();
    const health: HealthView = (_s, a) => !down.has(a);
    const rec = new Reconciler({
      dataplane: inSync(() => desired(cfg, health, new Set())),
      config: () => cfg,
      health,
      metrics: createMetrics({ defaults: false }),
      logger: pino({ level: 'silent' }),
    });
    const events: string[] = [];
    rec.on('digest', (d) => events.push(d));
    expect(rec.digest()).toBeUndefined();
    await rec.start();
    expect(rec.digest()).toBe(tableDigest(desired(cfg, allUp, new Set())));
    await rec.request('periodic');
    expect(events).toHaveLength(1);
    down.add('10.0.1.4');
    await rec.request('health');
    expect(rec.digest()).toBe(tableDigest(desired(cfg, health, new Set())));
    expect(events).toEqual([tableDigest(desired(cfg, allUp, new Set())), tableDigest(desired(cfg, health, new Set()))]);
    await rec.close();
  });
});
