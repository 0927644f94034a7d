/**
 * The control commands on a real pair of daemons on loopback (the cluster harness):
 * `vigil status` shows the peer with both links and their RTTs, `vigil standby` hands the
 * VIP to the peer and `vigil takeover` brings it back, each confirmed by `vigil status`
 * on the other node.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, Lab, freeTcpPort, freeUdpPort, waitFor } from './cluster-harness.js';

const run = promisify(execFile);
const addrs = { lvs1: ['127.0.0.41', '127.0.0.42'], lvs2: ['127.0.0.43', '127.0.0.44'] };

describe('vigil status / standby / takeover on a pair', () => {
  let lab: Lab;

  async function vigil(node: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const r = await run(process.execPath, [CLI, ...args, '--config', lab.configFile(node)], { env: { ...process.env, VIGIL_API_TOKEN: '' }, timeout: 20_000 });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (e) {
      const x = e as { code: number; stdout: string; stderr: string };
      return { code: x.code, stdout: x.stdout, stderr: x.stderr };
    }
  }
  const roleLine = async (node: string) => (await vigil(node, 'status')).stdout.split('\n')[0] ?? '';
  /** Polling goes straight to the API (a CLI run costs a Node start); assertions use the CLI. */
  const role = async (node: string) => ((await (await fetch(`${lab.node(node).api}/status`)).json()) as { role: string }).role;

  beforeAll(async () => {
    lab = new Lab({
      port: await freeUdpPort(Object.values(addrs).flat()),
      intervalMs: 50,
      deadtimeMs: 300,
      warntimeMs: 150,
      initdeadMs: 1000,
      nodes: [
        { name: 'lvs1', priority: 150, heartbeat: addrs.lvs1[0]!, lan: addrs.lvs1[1]!, apiPort: await freeTcpPort() },
        { name: 'lvs2', priority: 100, heartbeat: addrs.lvs2[0]!, lan: addrs.lvs2[1]!, apiPort: await freeTcpPort() },
      ],
    });
    lab.start('lvs1');
    lab.start('lvs2');
    await waitFor('lvs1 active, lvs2 standby', () => lab.role('lvs1') === 'active' && lab.role('lvs2') === 'standby', 15_000);
  }, 30_000);
  afterAll(async () => {
    await lab?.stopAll();
    lab?.cleanup();
  });

  it('status shows the role, the peer, both links with their RTT, and the VIP owner', async () => {
    await waitFor('RTT on both links', async () => {
      const doc = (await (await fetch(`${lab.node('lvs1').api}/status`)).json()) as { peers: { links: { up: boolean; rttMs: number | null }[] }[] };
      return doc.peers[0]?.links.every((l) => l.up && l.rttMs !== null);
    }, 10_000, 50);
    const out = (await vigil('lvs1', 'status')).stdout;
    const lines = out.split('\n');
    expect(lines[0]).toMatch(/^vigil \S+ on lvs1: ACTIVE, priority 150, up /);
    expect(out).toMatch(/^ {2}lvs2 +alive +standby +100 +heartbeat +127\.0\.0\.41 -> 127\.0\.0\.43 +up +\d+\.\d+ ms$/m);
    expect(out).toMatch(/^ +lan +127\.0\.0\.42 -> 127\.0\.0\.44 +up +\d+\.\d+ ms$/m);
    expect(out).toMatch(/^ {2}127\.0\.0\.1\/8 +lo +lvs1 +yes$/m);
    expect(await roleLine('lvs2')).toMatch(/on lvs2: STANDBY/);
  });

  it('standby on the active node hands over; takeover brings it back', async () => {
    const s = await vigil('lvs1', 'standby');
    expect(s.stderr).toBe('');
    expect(s.code).toBe(0);
    expect(s.stdout.trim().length).toBeGreaterThan(0);
    await waitFor('lvs2 active', async () => (await role('lvs2')) === 'active', 10_000, 50);
    expect(await roleLine('lvs2')).toMatch(/on lvs2: ACTIVE/);
    expect(await roleLine('lvs1')).toMatch(/on lvs1: STANDBY/);
    const owner = await vigil('lvs1', 'status');
    expect(owner.stdout).toMatch(/^ {2}127\.0\.0\.1\/8 +lo +lvs2 +no$/m);

    const t = await vigil('lvs1', 'takeover');
    expect(t.code).toBe(0);
    await waitFor('lvs1 active, lvs2 standby again', async () => (await role('lvs1')) === 'active' && (await role('lvs2')) === 'standby', 10_000, 50);
    expect(await roleLine('lvs1')).toMatch(/on lvs1: ACTIVE/);
    const events = (await vigil('lvs1', 'status', '--events', '20')).stdout;
    expect(events).toMatch(/control/);
  }, 40_000);

  it('status exit codes tell a script what is wrong; maintenance on needs another director alive', async () => {
    await waitFor('lvs1 active, lvs2 standby', async () => (await role('lvs1')) === 'active' && (await role('lvs2')) === 'standby', 10_000, 50);
    expect((await vigil('lvs1', 'status')).code).toBe(0);
    expect((await vigil('lvs2', 'status')).code).toBe(0);

    // lvs2 into maintenance is fine (lvs1 serves); then lvs1 has no standby: exit 9
    const m = await vigil('lvs2', 'maintenance', 'on');
    expect(m.code).toBe(0);
    await waitFor('lvs1 sees lvs2 in maintenance', async () => (await vigil('lvs1', 'status')).code === 9, 10_000, 50);
    expect((await vigil('lvs1', 'status')).stdout.split('\n')[1]).toBe('  ! no standby: no other director could take over if lvs1 fails');
    expect((await vigil('lvs2', 'maintenance', 'off')).code).toBe(0);
    await waitFor('lvs2 standby again', async () => (await role('lvs2')) === 'standby', 10_000, 50);

    // lvs2 dies: exit 8 on lvs1, and maintenance on lvs1 is refused like standby
    lab.node('lvs2').proc.kill('SIGKILL');
    await lab.node('lvs2').exit;
    await waitFor('lvs1 sees lvs2 dead', async () => (await vigil('lvs1', 'status')).code === 8, 10_000, 50);
    const st = await vigil('lvs1', 'status');
    expect(st.stdout).toContain('\n  ! peer lvs2 is dead (no heartbeat on any link)\n');
    const refused = await vigil('lvs1', 'maintenance', 'on');
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim()).toBe('vigil maintenance: maintenance-on: no eligible peer is alive to take over; not entering maintenance (409 VIGIL_CONFLICT)');
    const standby = await vigil('lvs1', 'standby');
    expect(standby.code).toBe(1);
    expect(await role('lvs1')).toBe('active');
  }, 60_000);
});
