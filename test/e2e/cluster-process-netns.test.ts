/**
 * The cluster process and its coupling with the daemon, in the network-namespace lab with
 * real daemons, real `ip` and `arping`:
 * - the daemon SIGKILLed: its cluster process releases the VIP and tells the peer (no VIP
 *   left behind on a live interface);
 * - the cluster process SIGKILLed: the daemon removes the VIP at once, the peer takes
 *   over after deadtime, the restarted process rejoins as standby;
 * - the daemon's event loop blocked past cluster.lease_ms: the VIP moves to the peer,
 *   make-before-break, while the blocked daemon's heartbeats never stopped;
 * - frames of a peer captured earlier and replayed at a freshly restarted node whose peer
 *   is down: not believed (they cannot echo the new incarnation); it becomes active after
 *   initdead as if nothing was heard.
 * Generous bounds: the machine is shared. Needs root and `npm run build`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { Lab } from '../lab/lab.js';
import { isRoot } from '../lab/netns.js';
import { clusterNodes, DEFAULT_TIMERS, HEARTBEAT_PORT, sumMetric, waitSettled, writeClusterConfig, type VigilNode } from '../lab/vigil.js';

const root = isRoot();
if (!root) console.log('cluster-process-netns: skipped, the network-namespace lab needs root');

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const TIMERS = { ...DEFAULT_TIMERS, initdead_ms: 1000 };
const LEASE_MS = 400;

async function until(what: string, pred: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await pred()) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(25);
  }
}

/** The cluster process of a daemon: its child running dist/cluster/process.js. */
function clusterPid(daemonPid: number): number | undefined {
  const children = readFileSync(`/proc/${daemonPid}/task/${daemonPid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  return children.find((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('cluster/process.js');
    } catch {
      return false;
    }
  });
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe.skipIf(!root)('the cluster process and the daemon', () => {
  let lab: Lab;
  let nodes: VigilNode[];
  const node = (name: string): VigilNode => nodes.find((n) => n.name === name) as VigilNode;

  beforeAll(async () => {
    lab = await Lab.create({ prefix: 'vcp' });
    const base = writeClusterConfig(lab, { timers: TIMERS });
    const doc = parse(readFileSync(base, 'utf8')) as { cluster: Record<string, unknown> };
    doc.cluster.lease_ms = LEASE_MS;
    const file = join(lab.dir, 'vigil-lease.yaml');
    writeFileSync(file, stringify(doc));
    process.env.VIGIL_TEST_HOOKS = '1';
    process.env.VIGIL_TEST_STALL = 'daemon';
    process.env.VIGIL_TEST_STALL_MS = '2500';
    nodes = clusterNodes(lab, file);
    await Promise.all(nodes.map((n) => n.start()));
    await waitSettled(nodes, 30_000);
  }, 90_000);

  afterAll(async () => {
    delete process.env.VIGIL_TEST_HOOKS;
    delete process.env.VIGIL_TEST_STALL;
    delete process.env.VIGIL_TEST_STALL_MS;
    await Promise.all((nodes ?? []).map((n) => n.stop()));
    await lab?.destroy();
  });

  /** d1 active with the VIP, d2 standby: both (re)started together, the better one wins. */
  async function settle(): Promise<void> {
    let active = nodes.every((n) => n.running) ? await waitSettled(nodes, 30_000) : undefined;
    if (active?.name !== 'd1') {
      // d1 first, alone, then d2 joins as standby: starting both together let a d1 whose
      // daemon was slow to start (a loaded machine: its lease late, not eligible for a
      // moment) lose the first election to d2, and without preempt d2 kept the VIP
      await Promise.all(nodes.map((n) => n.stop()));
      await node('d1').start();
      await node('d1').waitRole('active', 30_000);
      await node('d2').start();
      active = await waitSettled(nodes, 30_000);
    }
    await node('d1').waitRole('active', 15_000);
    await node('d2').waitRole('standby', 15_000);
    await until('d1 holds the VIP', () => node('d1').hasVip(), 10_000);
  }

  it('a SIGKILLed daemon leaves no VIP behind: its cluster process releases it and the peer takes over at once', async () => {
    await settle();
    const pid = node('d1').pid!;
    const cpid = clusterPid(pid);
    expect(cpid, 'd1 runs a cluster process').toBeDefined();
    await node('d1').signal('SIGKILL');
    // 25-135 ms measured alone and beside stress-ng; the bound is for a CI machine running other suites
    const gone = await until('the VIP left d1', async () => !(await node('d1').hasVip()), 10_000).catch((err: unknown) => {
      // what the cluster process did instead (the daemon's log holds its lines too)
      console.log(`d1 log, last lines:\n${readFileSync(node('d1').logFile, 'utf8').split('\n').slice(-40).join('\n')}`);
      throw err;
    });
    await until('the cluster process of d1 exited', async () => !alive(cpid!), 5000);
    const took = await until('d2 active', async () => (await node('d2').role()) === 'active', 5000);
    console.log(`daemon SIGKILL: VIP gone from d1 after ${gone} ms, d2 active after ${took} ms`);
    // the leaving frame made it quick: well under deadtime + initdead
    expect(took).toBeLessThan(5000);
    expect(await node('d2').hasVip()).toBe(true);
  }, 120_000);

  it('a SIGKILLed cluster process: the daemon removes the VIP at once; the peer takes over; the process rejoins as standby', async () => {
    await settle();
    const pid = node('d1').pid!;
    const cpid = clusterPid(pid)!;
    expect(cpid).toBeDefined();
    process.kill(cpid, 'SIGKILL');
    const gone = await until('the VIP left d1', async () => !(await node('d1').hasVip()), 3000);
    const took = await until('d2 active', async () => (await node('d2').role()) === 'active', 10_000);
    console.log(`cluster process SIGKILL: VIP gone from d1 after ${gone} ms, d2 active after ${took} ms`);
    // the daemon lives on and forks a new cluster process, which comes back as standby
    expect(node('d1').running).toBe(true);
    await node('d1').waitRole('standby', 20_000);
    // the new process said nothing until its takeover path (ip -batch, GARP helper or an
    // armed arping) was up: a preempting return then costs no process start
    const announced = readFileSync(node('d1').logFile, 'utf8').split('\n').filter((l) => l.includes('announcing this node'));
    expect(announced.at(-1), 'the restarted cluster process announced itself once armed').toMatch(/takeover path armed/);
    await until('vigil_vip_takeover_ready = 1', async () => (await node('d1').metric('vigil_vip_takeover_ready')) === 1, 5000);
    const again = clusterPid(pid);
    expect(again).toBeDefined();
    expect(again).not.toBe(cpid);
    expect(await node('d1').hasVip()).toBe(false);
  }, 120_000);

  it('a daemon blocked past lease_ms hands the VIP over make-before-break; its heartbeats never stopped', async () => {
    await settle();
    const lateBefore = (await node('d2').metric('vigil_cluster_heartbeats_late_total')) ?? 0;
    // the logs run on from the earlier tests: read only what this one adds
    const from = { d1: readFileSync(node('d1').logFile, 'utf8').length, d2: readFileSync(node('d2').logFile, 'utf8').length };
    const logOf = (n: 'd1' | 'd2'): string => readFileSync(node(n).logFile, 'utf8').slice(from[n]);
    process.kill(node('d1').pid!, 'SIGUSR2'); // blocks d1's daemon loop for 2.5 s (not its cluster process)
    const took = await until('d2 active', async () => (await node('d2').role()) === 'active', 10_000);
    await until('d1 let go of the VIP', async () => !(await node('d1').hasVip()), 10_000);
    console.log(`daemon blocked: d2 active after ${took} ms`);
    // d1's cluster process kept sending: d2 never saw a late heartbeat, never declared d1 dead
    const lateAfter = (await node('d2').metric('vigil_cluster_heartbeats_late_total')) ?? 0;
    expect(lateAfter - lateBefore).toBe(0);
    const log = logOf('d1');
    expect(log).toMatch(/no lease from the daemon/);
    expect(log).toMatch(/handing over/);
    expect(logOf('d2')).not.toMatch(/"peer":"d1","reason":"deadtime"/);
    // when the daemon is back the lease renews and d1 is eligible again (standby: no preempt)
    await until('d1 serving again', () => Promise.resolve(logOf('d1').includes('the daemon serves again')), 15_000);
    await node('d1').waitRole('standby', 5000);
  }, 120_000);

  it('replayed frames of a dead peer do not fool a freshly restarted node: it becomes active after initdead', async () => {
    await settle();
    const d1 = lab.director('d1');
    const d2 = lab.director('d2');
    const d2Addrs = [d2.hbAddr!, d2.lanAddr];
    // 1. d2 goes down; a capture bound to its addresses records d1's frames (active, echoing
    //    d2's old incarnation) — what an attacker on the wire could record, no key needed
    await node('d2').signal('SIGKILL');
    await sleep(300);
    const capture = join(lab.dir, 'capture.hex');
    const capScript = `
      const dgram = require('node:dgram'); const fs = require('node:fs'); const out = [];
      const socks = ${JSON.stringify(d2Addrs)}.map((a) => { const s = dgram.createSocket('udp4'); s.on('message', (m) => out.push(m.toString('hex'))); s.bind(${HEARTBEAT_PORT}, a); return s; });
      setTimeout(() => { fs.writeFileSync(${JSON.stringify(capture)}, out.join('\\n')); socks.forEach((s) => s.close()); }, 2000);`;
    await lab.exec(d2.ns, ['node', '-e', capScript], { timeoutMs: 30_000 });
    const frames = readFileSync(capture, 'utf8').split('\n').filter(Boolean);
    expect(frames.length, 'captured frames of d1').toBeGreaterThan(10);
    // 2. d1 dies too (its cluster process says leaving; nobody is active now)
    await node('d1').signal('SIGKILL');
    await until('d1 VIP gone', async () => !(await node('d1').hasVip()), 5000);
    // 3. the replay: d1's captured frames, from d1's own addresses, to d2, every 20 ms
    // it replays until told to stop (a file), not for a fixed time: a loaded machine may take
    // longer than any fixed time to start d2, and then d2 would hear no replay at all
    const stopFile = join(lab.dir, 'replay.stop');
    const replayScript = `
      const dgram = require('node:dgram'); const fs = require('node:fs');
      const frames = ${JSON.stringify(frames)}.map((h) => Buffer.from(h, 'hex'));
      const links = [[${JSON.stringify(d1.hbAddr)}, ${JSON.stringify(d2.hbAddr)}], [${JSON.stringify(d1.lanAddr)}, ${JSON.stringify(d2.lanAddr)}]];
      const socks = links.map(([from]) => { const s = dgram.createSocket('udp4'); s.bind(0, from); return s; });
      let i = 0; const end = Date.now() + 50000;
      const t = setInterval(() => { const f = frames[i++ % frames.length]; for (const [k, [, to]] of links.entries()) socks[k].send(f, ${HEARTBEAT_PORT}, to, () => {});
        if (Date.now() > end || fs.existsSync(${JSON.stringify(stopFile)})) { clearInterval(t); socks.forEach((s) => s.close()); } }, 20);`;
    const replay = lab.exec(d1.ns, ['node', '-e', replayScript], { timeoutMs: 60_000 });
    await sleep(300);
    // 4. d2 restarts (a new incarnation) into the replay
    await node('d2').start();
    let took: number;
    try {
      took = await until('d2 active', async () => (await node('d2').role()) === 'active', 5500);
      await sleep(500); // the replay goes on a little after d2 is active: it must not move it
      expect(await node('d2').role()).toBe('active');
    } finally {
      writeFileSync(stopFile, '');
      await replay;
    }
    console.log(`replay at a restarted node: d2 active ${took} ms after its API answered (initdead ${TIMERS.initdead_ms} ms)`);
    const metrics = (await node('d2').get('/metrics')) ?? '';
    expect(sumMetric(metrics, 'vigil_cluster_frames_rejected_total{reason="unconfirmed"}')).toBeGreaterThan(0);
    const st = await node('d2').status();
    expect(st?.peers.find((p) => p.name === 'd1')?.alive).toBe(false);
    expect(await node('d2').hasVip()).toBe(true);
  }, 120_000);

  it('`vigil cleanup` (the unit\'s ExecStopPost) removes a VIP a dead daemon left behind, and says so', async () => {
    await Promise.all(nodes.map((n) => n.signal('SIGKILL')));
    const d2 = lab.director('d2');
    await lab.exec(d2.ns, ['ip', 'addr', 'add', `${lab.vip}/${lab.lanPrefix}`, 'dev', d2.lanIf]);
    expect(await node('d2').hasVip()).toBe(true);
    const cli = join(process.cwd(), 'dist', 'cli.js');
    const r = await lab.exec(d2.ns, ['node', cli, 'cleanup', '--config', node('d2').configFile], { allowFail: true });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(`removed ${lab.vip}/${lab.lanPrefix} from ${d2.lanIf}`);
    expect(await node('d2').hasVip()).toBe(false);
    const again = await lab.exec(d2.ns, ['node', cli, 'cleanup', '--config', node('d2').configFile], { allowFail: true });
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toContain('no VIP of this config is configured here');
  }, 60_000);
});
