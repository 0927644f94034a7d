/**
 * The lab itself, without vigil: the topology, the responders, the prober, moving an
 * address by gratuitous ARP alone, the nftables loss and partition helpers, cleanup,
 * and the sweep of namespaces a crashed run left behind. Needs root (network namespaces).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../lab/lab.js';
import { isRoot, listNamespaces, runDir, sweepStaleNamespaces } from '../lab/netns.js';
import { Prober, SERVICE_PORT, startResponders } from '../lab/probe.js';
import { switches } from '../lab/timeline.js';

const root = isRoot();
if (!root) console.log('failover-lab: skipped, network namespaces need root');

describe.skipIf(!root)('network-namespace lab', () => {
  let lab: Lab;
  let prober: Prober;

  beforeAll(async () => {
    lab = await Lab.create({ directors: 3, realServers: 1 });
    await startResponders(lab);
  });

  afterAll(async () => {
    await prober?.stop();
    await lab?.destroy();
  });

  it('builds namespaces and links named after the run id', async () => {
    const mine = listNamespaces().filter((n) => n.startsWith(`${lab.prefix}${lab.id}-`)).sort();
    expect(mine).toEqual(['c', 'd1', 'd2', 'd3', 'r1', 'sw'].map((h) => `${lab.prefix}${lab.id}-${h}`).sort());
    const d1 = lab.director('d1');
    const links = (await lab.exec('d1', ['ip', '-br', 'link'])).stdout;
    expect(links).toMatch(new RegExp(`^${d1.lanIf}@`, 'm'));
    expect(links).toMatch(new RegExp(`^${d1.hbIf as string}@`, 'm'));
    expect(links).toMatch(/^lo\s+UNKNOWN/m);
    expect(lab.director('d3').hbIf).toBeUndefined();
  });

  it('connects every host on the LAN and the two directors on the heartbeat veth', async () => {
    for (const h of [...lab.directors, ...lab.realServers]) {
      const r = await lab.exec('c', ['ping', '-c1', '-W2', h.lanAddr], { allowFail: true });
      expect(r.exitCode, `client → ${h.name} ${h.lanAddr}`).toBe(0);
    }
    const hb = await lab.exec('d1', ['ping', '-c1', '-W2', lab.director('d2').hbAddr as string], { allowFail: true });
    expect(hb.exitCode).toBe(0);
  });

  it('each responder answers with its own name', async () => {
    for (const h of [...lab.directors, ...lab.realServers]) {
      const p = new Prober(lab, { host: h.lanAddr, intervalMs: 20 });
      await p.start();
      await p.waitForAnswers(h.name, { count: 2, timeoutMs: 5000 });
      await p.stop();
      expect(new Set(p.events.filter((e) => e.kind === 'answer').map((e) => (e.kind === 'answer' ? e.name : '')))).toEqual(new Set([h.name]));
    }
  });

  it('the client follows the VIP from d1 to d2 by gratuitous ARP alone', async () => {
    const d1 = lab.director('d1');
    const d2 = lab.director('d2');
    await lab.exec('d1', ['ip', 'addr', 'add', `${lab.vip}/24`, 'dev', d1.lanIf]);
    prober = new Prober(lab, { port: SERVICE_PORT });
    await prober.start();
    await prober.waitForAnswers('d1', { count: 5 });
    await lab.exec('d1', ['ip', 'addr', 'del', `${lab.vip}/24`, 'dev', d1.lanIf]);
    await lab.exec('d2', ['ip', 'addr', 'add', `${lab.vip}/24`, 'dev', d2.lanIf]);
    const moved = Date.now();
    await lab.exec('d2', ['arping', '-q', '-U', '-c', '1', '-I', d2.lanIf, lab.vip], { allowFail: true });
    await prober.waitForAnswers('d2', { since: moved, count: 5, timeoutMs: 5000 });
    const sw = switches(prober.events);
    expect(sw.map((s) => `${s.from}->${s.to}`)).toEqual(['d1->d2']);
    expect(sw[0]?.outageMs).toBeLessThan(2000);
    await lab.exec('d2', ['ip', 'addr', 'del', `${lab.vip}/24`, 'dev', d2.lanIf]);
    await prober.stop();
  });

  it('drops a share of heartbeats with nftables numgen and partitions by source', async () => {
    const d2 = lab.director('d2');
    await lab.heartbeatLoss('d2', { percent: 50, port: 6940 });
    // 200 datagrams to d2's heartbeat port; about half must be dropped by the rule.
    await lab.exec('d1', ['bash', '-c', `for i in $(seq 200); do printf x > /dev/udp/${d2.hbAddr}/6940; done`]);
    const rules = await lab.filterRules('d2');
    const dropped = Number(/counter packets (\d+)/.exec(rules)?.[1] ?? NaN);
    expect(rules).toContain('numgen random mod 100 < 50');
    expect(dropped).toBeGreaterThan(50);
    expect(dropped).toBeLessThan(150);
    await lab.clearFilters('d2');
    await lab.dropFrom('d2', lab.director('d1').lanAddr);
    const blocked = await lab.exec('d1', ['ping', '-c1', '-W1', d2.lanAddr], { allowFail: true });
    expect(blocked.exitCode).not.toBe(0);
    await lab.clearFilters('d2');
    const open = await lab.exec('d1', ['ping', '-c1', '-W2', d2.lanAddr], { allowFail: true });
    expect(open.exitCode).toBe(0);
  });

  it('a link taken down stops traffic on it; up restores it', async () => {
    const d1 = lab.director('d1');
    await lab.linkDown('d1', d1.hbIf as string);
    const down = await lab.exec('d1', ['ping', '-c1', '-W1', lab.director('d2').hbAddr as string], { allowFail: true });
    expect(down.exitCode).not.toBe(0);
    await lab.linkUp('d1', d1.hbIf as string);
    const up = await lab.exec('d1', ['ping', '-c1', '-W3', lab.director('d2').hbAddr as string], { allowFail: true });
    expect(up.exitCode).toBe(0);
  });
});

describe.skipIf(!root)('lab cleanup', () => {
  it('destroy() deletes every namespace and process of the run', async () => {
    const lab = await Lab.create();
    await startResponders(lab);
    const names = listNamespaces().filter((n) => n.startsWith(`${lab.prefix}${lab.id}-`));
    expect(names).toHaveLength(4);
    await lab.destroy();
    await lab.destroy(); // idempotent
    expect(listNamespaces().filter((n) => n.startsWith(`${lab.prefix}${lab.id}-`))).toEqual([]);
    expect(existsSync(lab.dir)).toBe(false);
  });

  it('sweeps namespaces of a crashed earlier run, never those of a live one', () => {
    const crashed = `zq${Date.now().toString(36).slice(-5)}`;
    const live = `zq${(Date.now() + 1).toString(36).slice(-5)}`;
    const make = (id: string, owner: number): string => {
      const ns = `vz${id.slice(2)}-d1`;
      execFileSync('ip', ['netns', 'add', ns]);
      mkdirSync(runDir('vz', id.slice(2)), { recursive: true });
      writeFileSync(`${runDir('vz', id.slice(2))}/owner.pid`, `${owner}\n`);
      return ns;
    };
    const deadPid = 2 ** 22 + 12345; // above pid_max's default: never a live process
    const staleNs = make(crashed, deadPid);
    const liveNs = make(live, process.pid);
    try {
      const swept = sweepStaleNamespaces('vz', Date.now() + 1000);
      expect(swept).toContain(staleNs);
      expect(swept).not.toContain(liveNs);
      expect(listNamespaces()).toContain(liveNs);
      expect(listNamespaces()).not.toContain(staleNs);
    } finally {
      execFileSync('ip', ['netns', 'del', liveNs], { stdio: 'ignore' });
      execFileSync('rm', ['-rf', runDir('vz', live.slice(2)), runDir('vz', crashed.slice(2))]);
    }
  });
});
