/**
 * Real vigil daemons on loopback: election, crash failover, SIGTERM and `standby`
 * handovers, a frame flood, a stalled event loop, three nodes, the key file check.
 * Each node has two links (heartbeat, lan) on its own 127.0.0.x addresses.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeFrame, type Frame } from '../../src/cluster/wire.js';
import { CLI, Lab, freeTcpPort, freeUdpPort, getJson, killWhole, metric, waitFor } from './cluster-harness.js';

// the defaults but a shorter initdead: other test files load the machine at the same time
const T = { intervalMs: 100, deadtimeMs: 600, warntimeMs: 300, initdeadMs: 1500 };

async function sendUdp(to: string, port: number, frames: Buffer[], from = '127.0.0.1'): Promise<void> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, from, () => r()));
  for (const f of frames) await new Promise<void>((r) => s.send(f, port, to, () => r()));
  await new Promise<void>((r) => s.close(() => r()));
}

describe('two daemons (plus a phantom third node the test plays)', () => {
  let lab: Lab;
  let port: number;
  const addrs = { lvs1: ['127.0.0.11', '127.0.0.12'], lvs2: ['127.0.0.13', '127.0.0.14'], lvs9: ['127.0.0.15', '127.0.0.16'] };

  beforeAll(async () => {
    port = await freeUdpPort(Object.values(addrs).flat());
    lab = new Lab({
      port,
      ...T,
      nodes: [
        { name: 'lvs1', priority: 150, heartbeat: addrs.lvs1[0]!, lan: addrs.lvs1[1]!, apiPort: await freeTcpPort() },
        { name: 'lvs2', priority: 100, heartbeat: addrs.lvs2[0]!, lan: addrs.lvs2[1]!, apiPort: await freeTcpPort() },
        // configured but never started: the test sends as lvs9 (valid key) to exercise replay checks
        { name: 'lvs9', priority: 1, heartbeat: addrs.lvs9[0]!, lan: addrs.lvs9[1]!, apiPort: await freeTcpPort() },
      ],
    });
    const script = join(lab.dir, 'record.sh');
    writeFileSync(script, `#!/bin/sh\necho "$VIGIL_NODE $(basename "$0") $*" >> ${join(lab.dir, 'scripts.log')}\n`);
    chmodSync(script, 0o755);
    lab.spec.notify = script;
    lab.spec.resources = [script];
    lab.writeConfig();
    lab.start('lvs1');
    lab.start('lvs2');
  });

  afterAll(async () => {
    await lab.stopAll();
    lab.saveLogs('pair');
    lab.cleanup();
  });

  const post = (node: string, path: string, token?: string) =>
    fetch(`${lab.node(node).api}${path}`, { method: 'POST', headers: token ? { authorization: `Bearer ${token}` } : {} });

  it('elects exactly one active; /status shows peers, links with RTT and the VIP owner; scripts ran', async () => {
    await lab.waitRoles({ lvs1: 'active', lvs2: 'standby' }, 15_000);
    const s1 = await waitFor('RTT on both links', async () => {
      const s = await getJson<any>(`${lab.node('lvs1').api}/status`);
      const p = s.peers.find((x: any) => x.name === 'lvs2');
      // the cluster process reports its view to the daemon every interval: at most that old
      return p?.role === 'standby' && p.links.every((l: any) => l.up && typeof l.rttMs === 'number') ? s : undefined;
    });
    expect(s1.role).toBe('active');
    const peer = s1.peers.find((x: any) => x.name === 'lvs2');
    expect(peer).toMatchObject({ alive: true, role: 'standby', priority: 100 });
    expect(peer.links.map((l: any) => [l.name, l.local, l.remote])).toEqual([
      ['heartbeat', addrs.lvs1[0], addrs.lvs2[0]],
      ['lan', addrs.lvs1[1], addrs.lvs2[1]],
    ]);
    expect(peer.links[0].rttMs).toBeLessThan(T.deadtimeMs); // loopback: well under a millisecond when the machine is idle
    expect(s1.vips).toEqual([{ address: '127.0.0.1', prefix: 8, interface: 'lo', owned: true, owner: 'lvs1' }]);
    // lvs2's view too is at most one interval old: wait for it to name the owner
    const s2 = await waitFor('lvs2 sees lvs1 own the VIP', async () => {
      const s = await getJson<any>(`${lab.node('lvs2').api}/status`);
      return s.vips[0]?.owner === 'lvs1' ? s : undefined;
    });
    expect(s2).toMatchObject({ role: 'standby', effectivePriority: 100 });
    expect(s2.vips[0]).toMatchObject({ owned: false, owner: 'lvs1' });
    expect(s2.history.some((h: any) => h.kind === 'role' && /init → standby/.test(h.message))).toBe(true);
    expect(await metric(lab.node('lvs1').api, 'vigil_cluster_role', { role: 'active' })).toBe(1);
    expect(await metric(lab.node('lvs2').api, 'vigil_cluster_peer_up', { peer: 'lvs1' })).toBe(1);
    expect(await metric(lab.node('lvs2').api, 'vigil_cluster_link_up', { peer: 'lvs1', link: 'lan' })).toBe(1);
    expect(await metric(lab.node('lvs1').api, 'vigil_cluster_heartbeat_rtt_seconds_count', { peer: 'lvs2', link: 'heartbeat' })).toBeGreaterThan(0);
    expect(await metric(lab.node('lvs1').api, 'vigil_cluster_frames_sent_total', { link: 'lan' })).toBeGreaterThan(0);
    // resource start and notify ran on the active node
    const log = await waitFor('scripts ran', () => {
      const f = join(lab.dir, 'scripts.log');
      const t = existsSync(f) ? readFileSync(f, 'utf8') : '';
      return t.includes('lvs1 record.sh start') && t.includes('lvs1 record.sh active init') ? t : undefined;
    });
    expect(log).toMatch(/lvs2 record\.sh standby init/);
  });

  it('a flood of random, bit-flipped, truncated, oversized, wrong-cluster, wrong-key and replayed frames changes nothing', async () => {
    const before = { lvs1: lab.transitions('lvs1').length, lvs2: lab.transitions('lvs2').length };
    const key = Buffer.from('a shared secret of enough length');
    const base: Frame = {
      cluster: 'itest', node: 'lvs9', link: 'heartbeat', role: 'standby', priority: 1, releasing: false, leaving: false,
      takeover: false, yielding: false, incarnation: BigInt(Date.now()) * 1000n, seq: 1, sentUs: 0, echoSeq: 0, echoSentUs: 0, echoHoldUs: 0,
    };
    const valid = [1, 2, 3].map((seq) => encodeFrame({ ...base, seq }, key));
    const junk: Buffer[] = [];
    for (let i = 0; i < 300; i++) junk.push(Buffer.from(Array.from({ length: Math.floor(Math.random() * 300) }, () => Math.floor(Math.random() * 256))));
    for (let i = 0; i < 300; i++) {
      const c = Buffer.from(valid[0]!);
      const at = Math.floor(Math.random() * c.length);
      c[at] = c[at]! ^ (1 << Math.floor(Math.random() * 8));
      junk.push(c);
    }
    for (let n = 0; n < valid[0]!.length; n += 7) junk.push(valid[0]!.subarray(0, n));
    junk.push(Buffer.alloc(2000, 0x41));
    junk.push(encodeFrame({ ...base, cluster: 'other' }, key));
    junk.push(encodeFrame({ ...base, node: 'lvs1', seq: 99 }, Buffer.from('wrong key')));
    junk.push(encodeFrame({ ...base, node: 'mallory' }, key));
    for (const target of ['lvs1', 'lvs2'] as const) {
      const to = addrs[target][0]!;
      // from lvs9's own heartbeat address: authentic, but lvs9 never echoed the target's
      // incarnation (unconfirmed); the repeats are replays
      await sendUdp(to, port, [...valid, ...valid, ...valid], addrs.lvs9[0]);
      await sendUdp(to, port, [encodeFrame({ ...base, incarnation: 5n, seq: 10 }, key)], addrs.lvs9[0]); // older incarnation
      await sendUdp(addrs[target][1]!, port, [valid[2]!], addrs.lvs9[1]); // a heartbeat-link frame sent to the lan address
      await sendUdp(to, port, [encodeFrame({ ...base, seq: 50 }, key)]); // signed, but not from lvs9's address on that link
      await sendUdp(to, port, junk);
    }
    await new Promise((r) => setTimeout(r, 6 * T.intervalMs));
    for (const n of ['lvs1', 'lvs2']) {
      const api = lab.node(n).api;
      expect(lab.node(n).proc.exitCode).toBeNull();
      for (const reason of ['truncated', 'oversized', 'bad_magic', 'bad_hmac', 'wrong_cluster', 'unknown_node', 'replayed', 'stale_incarnation', 'wrong_link', 'wrong_source', 'unconfirmed']) {
        expect(await metric(api, 'vigil_cluster_frames_rejected_total', { reason }), `${n} ${reason}`).toBeGreaterThan(0);
      }
    }
    expect(lab.transitions('lvs1').slice(before.lvs1)).toEqual([]);
    expect(lab.transitions('lvs2').slice(before.lvs2)).toEqual([]);
    expect(lab.role('lvs1')).toBe('active');
    expect(lab.role('lvs2')).toBe('standby');
    expect((await getJson<any>(`${lab.node('lvs2').api}/status`)).peers.find((p: any) => p.name === 'lvs1').alive).toBe(true);
  });

  it('a reload (SIGHUP) applies a new priority in place without a transition', async () => {
    const before = { lvs1: lab.transitions('lvs1').length, lvs2: lab.transitions('lvs2').length };
    lab.writeConfig({ nodes: lab.spec.nodes.map((n) => (n.name === 'lvs2' ? { ...n, priority: 120 } : n)) });
    lab.node('lvs2').proc.kill('SIGHUP');
    await waitFor('priority 120', async () => (await getJson<any>(`${lab.node('lvs2').api}/status`)).priority === 120, 5000, 20);
    await waitFor('lvs1 sees it', async () => {
      const s = await getJson<any>(`${lab.node('lvs1').api}/status`);
      return s.peers.find((p: any) => p.name === 'lvs2')?.priority === 120;
    }, 5000, 20);
    expect(lab.transitions('lvs1').length).toBe(before.lvs1);
    expect(lab.transitions('lvs2').length).toBe(before.lvs2);
    expect(await metric(lab.node('lvs2').api, 'vigil_cluster_effective_priority')).toBe(120);
    lab.writeConfig();
  });

  it('a standby whose event loop stalls for 1.5 × deadtime does not take over', async () => {
    const before = lab.transitions('lvs2').length;
    const api = lab.node('lvs2').api;
    lab.node('lvs2').proc.kill('SIGUSR2'); // test hook: busy-wait 1.5 × deadtime
    await waitFor('the stall', () => lab.node('lvs2').logs.some((l) => l.msg === 'test hook: stalling the event loop'), 3000);
    await new Promise((r) => setTimeout(r, T.deadtimeMs * 1.5 + 10 * T.intervalMs));
    expect(lab.transitions('lvs2').length).toBe(before);
    expect(lab.role('lvs2')).toBe('standby');
    expect(await metric(api, 'vigil_cluster_verdicts_deferred_total')).toBeGreaterThanOrEqual(1);
    expect(await metric(api, 'vigil_cluster_timer_lateness_max_seconds')).toBeGreaterThan((1.5 * T.deadtimeMs - T.intervalMs) / 1000);
    expect(await metric(api, 'vigil_cluster_failovers_total')).toBe(0);
    expect(lab.role('lvs1')).toBe('active');
  });

  it('`standby` via the API hands over at once; `takeover` takes it back; both need the token', async () => {
    expect((await post('lvs1', '/v1/standby')).status).toBe(401);
    const n2 = lab.transitions('lvs2').length;
    const t0 = performance.now();
    const r = await post('lvs1', '/v1/standby', lab.token);
    expect(r.status).toBe(200);
    const tr = await waitFor('lvs2 active', () => lab.transitions('lvs2').slice(n2).find((x) => x.to === 'active'), 3000, 1);
    const ms = tr.t - t0;
    console.log(`vigil standby → peer active: ${ms.toFixed(1)} ms`);
    expect(ms).toBeLessThan(T.deadtimeMs); // on receipt, not after deadtime
    expect(lab.role('lvs1')).toBe('standby');
    const back = await post('lvs2', '/v1/standby', lab.token); // lvs1 is yielding too: rank falls back to priority
    expect([200, 409]).toContain(back.status);
    const t = await post('lvs1', '/v1/takeover', lab.token);
    expect(t.status).toBe(200);
    await lab.waitRoles({ lvs1: 'active', lvs2: 'standby' }, 3000);
  });

  it('SIGTERM on the active hands over in about one round trip (leaving frame)', async () => {
    const n2 = lab.transitions('lvs2').length;
    const t0 = performance.now();
    lab.node('lvs1').proc.kill('SIGTERM');
    const tr = await waitFor('lvs2 active', () => lab.transitions('lvs2').slice(n2).find((x) => x.to === 'active'), 3000, 1);
    console.log(`SIGTERM → peer active: ${(tr.t - t0).toFixed(1)} ms (reason ${tr.reason})`);
    expect(tr.reason).toBe('peer-left');
    expect(tr.t - t0).toBeLessThan(T.deadtimeMs);
    expect(await lab.node('lvs1').exit).toBe(0);
    const log = readFileSync(join(lab.dir, 'scripts.log'), 'utf8');
    expect(log).toMatch(/lvs1 record\.sh stop/);
  });

  it('a crashed active is replaced after deadtime; the restarted node comes back as standby', async () => {
    lab.start('lvs1');
    await lab.waitRoles({ lvs1: 'standby' }, 10_000);
    expect(lab.role('lvs2')).toBe('active'); // no preempt
    const n1 = lab.transitions('lvs1').length;
    const t0 = performance.now();
    killWhole(lab.node('lvs2').proc); // daemon and cluster process: no leaving frame
    const tr = await waitFor('lvs1 active', () => lab.transitions('lvs1').slice(n1).find((x) => x.to === 'active'), 5000, 1);
    const ms = tr.t - t0;
    console.log(`SIGKILL → peer active: ${ms.toFixed(1)} ms (deadtime ${T.deadtimeMs} ms)`);
    expect(tr.reason).toBe('peer-dead');
    expect(ms).toBeGreaterThan(T.deadtimeMs - 2 * T.intervalMs);
    expect(ms).toBeLessThan(T.deadtimeMs + 4 * T.intervalMs + 300);
    expect(await metric(lab.node('lvs1').api, 'vigil_cluster_failovers_total', { reason: 'peer-dead' })).toBe(1);
  });
});

describe('three daemons', () => {
  let lab: Lab;
  beforeAll(async () => {
    const a = ['127.0.0.21', '127.0.0.22', '127.0.0.23'];
    lab = new Lab({
      port: await freeUdpPort(a),
      ...T,
      nodes: [
        { name: 'a', priority: 150, heartbeat: a[0]!, apiPort: await freeTcpPort() },
        { name: 'b', priority: 120, heartbeat: a[1]!, apiPort: await freeTcpPort() },
        { name: 'c', priority: 100, heartbeat: a[2]!, apiPort: await freeTcpPort() },
      ],
    });
    for (const n of ['c', 'b', 'a']) lab.start(n);
  });
  afterAll(async () => {
    await lab.stopAll();
    lab.saveLogs('trio');
    lab.cleanup();
  });

  it('elect the best; when it dies the next best takes over and the third stays standby', async () => {
    await lab.waitRoles({ a: 'active', b: 'standby', c: 'standby' }, 15_000);
    lab.node('a').proc.kill('SIGKILL');
    await lab.waitRoles({ b: 'active' }, 5000);
    await new Promise((r) => setTimeout(r, 3 * T.deadtimeMs));
    expect(lab.role('b')).toBe('active');
    expect(lab.role('c')).toBe('standby');
    expect(lab.transitions('c').filter((t) => t.to === 'active')).toEqual([]);
    const s = await getJson<any>(`${lab.node('c').api}/status`);
    expect(s.peers.map((p: any) => [p.name, p.alive, p.role])).toEqual([
      ['a', false, 'unknown'],
      ['b', true, 'active'],
    ]);
  });
});

describe('key file', () => {
  it('refuses to start with a key file readable by others, naming the file and its mode', async () => {
    const lab = new Lab({
      port: await freeUdpPort(['127.0.0.31', '127.0.0.32']),
      ...T,
      nodes: [
        { name: 'x', priority: 100, heartbeat: '127.0.0.31', apiPort: await freeTcpPort() },
        { name: 'y', priority: 100, heartbeat: '127.0.0.32', apiPort: await freeTcpPort() },
      ],
    });
    try {
      chmodSync(lab.keyFile, 0o644);
      const r = spawnSync(process.execPath, [CLI, 'run', '--config', lab.configFile('x')], { encoding: 'utf8', timeout: 15_000, env: { ...process.env, VIGIL_LOG_LEVEL: 'info' } });
      // 78 (EX_CONFIG): a config problem, which the unit does not restart (RestartPreventExitStatus)
      expect(r.status).toBe(78);
      const out = r.stdout + r.stderr;
      expect(out).toContain(`${lab.configFile('x')}: cluster.key_file: ${lab.keyFile} has mode 0644; it must be 0600`);
    } finally {
      lab.cleanup();
    }
  });
});
