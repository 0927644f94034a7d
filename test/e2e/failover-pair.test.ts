/**
 * Two vigil directors in the network-namespace lab (test/lab): each answers on the VIP
 * with its own name, and the client must follow the VIP because of vigil's gratuitous
 * ARP (no static neighbours on the client). Scenarios: crash (SIGKILL + every link
 * down), graceful stop (SIGTERM), and a cut of the dedicated heartbeat link alone, which
 * must not move the VIP. Bounds are generous (the machine is shared); the benchmark
 * (`npm run bench:failover`) measures precisely. Needs root and `npm run build`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../lab/lab.js';
import { isRoot } from '../lab/netns.js';
import { Prober, startResponders } from '../lab/probe.js';
import { crashActive, recoverCrashed, restartStopped, roles, stopActive, type Pair } from '../lab/scenarios.js';
import { switches } from '../lab/timeline.js';
import { clusterNodes, DEFAULT_TIMERS, sumMetric, writeClusterConfig, type VigilNode } from '../lab/vigil.js';

const root = isRoot();
if (!root) console.log('failover-pair: skipped, the network-namespace lab needs root');

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Defaults, but a shorter initdead so the pair settles quickly at start and restart. */
const TIMERS = { ...DEFAULT_TIMERS, initdead_ms: 1000 };

describe.skipIf(!root)('failover of a director pair in the lab', () => {
  let lab: Lab;
  let pair: Pair;
  let nodes: VigilNode[];
  const node = (name: string): VigilNode => nodes.find((n) => n.name === name) as VigilNode;

  beforeAll(async () => {
    lab = await Lab.create();
    await startResponders(lab);
    const config = writeClusterConfig(lab, { timers: TIMERS });
    nodes = clusterNodes(lab, config);
    await Promise.all(nodes.map((n) => n.start()));
    const prober = new Prober(lab);
    await prober.start();
    pair = { lab, nodes, prober };
    await roles(pair, 20_000);
  }, 60_000);

  afterAll(async () => {
    await pair?.prober.stop();
    await Promise.all((nodes ?? []).map((n) => n.stop()));
    await lab?.destroy();
  });

  it('the better director becomes active and answers on the VIP with its own name', async () => {
    const { active, standby } = await roles(pair);
    expect(active.name).toBe('d1');
    expect(standby.name).toBe('d2');
    await pair.prober.waitForAnswers('d1', { count: 5, timeoutMs: 5000 });
    expect(await node('d1').hasVip()).toBe(true);
    expect(await node('d2').hasVip()).toBe(false);
    // the standby's responder is there too, on its own address
    const direct = new Prober(lab, { host: lab.director('d2').lanAddr, intervalMs: 20 });
    await direct.start();
    await direct.waitForAnswers('d2', { count: 2, timeoutMs: 5000 });
    await direct.stop();
  }, 60_000);

  it('moves the VIP to the standby when the active crashes (SIGKILL + links down)', async () => {
    const r = await crashActive(pair, 5000);
    expect(r.from).toBe('d1');
    expect(r.to).toBe('d2');
    expect(r.outageMs).toBeGreaterThan(0);
    expect(r.outageMs).toBeLessThan(5000);
    expect(r.switches.map((s) => `${s.from}->${s.to}`)).toEqual(['d1->d2']);
    expect(await node('d2').role()).toBe('active');
    expect(await node('d2').hasVip()).toBe(true);
    const failovers = sumMetric((await node('d2').get('/metrics')) ?? '', 'vigil_cluster_failovers_total');
    expect(failovers).toBeGreaterThanOrEqual(1);
    console.log(`failover-pair: crash d1 → d2, client outage ${r.outageMs.toFixed(1)} ms`);

    // back on the network, d1 comes back as standby (no preempt) and drops its stale VIP
    await recoverCrashed(pair, r.crashed);
    expect(await node('d1').role()).toBe('standby');
    expect(await node('d1').hasVip()).toBe(false);
    await pair.prober.waitForAnswers('d2', { since: Date.now(), count: 5, timeoutMs: 5000 });
  }, 60_000);

  it('hands over at once on SIGTERM of the active', async () => {
    const r = await stopActive(pair, 5000);
    expect(r.from).toBe('d2');
    expect(r.to).toBe('d1');
    expect(r.outageMs).toBeLessThan(3000);
    expect(await node('d1').role()).toBe('active');
    expect(await node('d1').hasVip()).toBe(true);
    // a graceful stop drops the VIP before it exits (no stale address left behind)
    expect(await node('d2').hasVip()).toBe(false);
    console.log(`failover-pair: SIGTERM d2 → d1, client outage ${r.outageMs.toFixed(1)} ms`);
    await restartStopped(pair, r.stopped);
    expect(await node('d2').role()).toBe('standby');
  }, 60_000);

  it('does not fail over when only the dedicated heartbeat link is cut', async () => {
    const { active, standby } = await roles(pair);
    const d1 = lab.director('d1');
    const from = Date.now();
    await lab.linkDown('d1', d1.hbIf as string);
    try {
      await sleep(3 * TIMERS.deadtime_ms);
      const s = await standby.status();
      expect(s?.role).toBe('standby');
      const peer = s?.peers.find((p) => p.name === active.name);
      expect(peer?.alive).toBe(true);
      expect(peer?.links.find((l) => l.name === 'heartbeat')?.up).toBe(false);
      expect(peer?.links.find((l) => l.name === 'lan')?.up).toBe(true);
      expect(await active.role()).toBe('active');
    } finally {
      await lab.linkUp('d1', d1.hbIf as string);
    }
    expect(switches(pair.prober.events, { from })).toEqual([]);
    await pair.prober.waitForAnswers(active.name, { since: Date.now(), count: 3, timeoutMs: 3000 });
    await Promise.all(nodes.map((n) => n.waitPeerLinks(10_000)));
  }, 60_000);
});
