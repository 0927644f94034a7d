/**
 * What passes no transition must still be told (issue 14): a peer never heard from since
 * start, and a real server down since start, each give one log line and one event in
 * /status history — the real daemon as a child process.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { neverHeardPeers } from '../../src/cluster/silent-peers.js';
import { freePort, startDaemon, tmpDir, until, writeFile, type RunningDaemon } from '../helpers/daemon.js';

const running: RunningDaemon[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((d) => d.stop()));
});

describe('silence is reported', () => {
  it('a peer never heard from and a real server down since start: one log line and one event each', async () => {
    const dir = tmpDir();
    const apiPort = await freePort();
    const clusterPort = await freePort();
    const deadPort = await freePort(); // nobody listens: the real server is down from the start
    const key = join(dir, 'authkey');
    writeFileSync(key, 'k'.repeat(32), { mode: 0o600 });
    const file = writeFile(
      dir,
      'vigil.yaml',
      `node: solo
cluster:
  port: ${clusterPort}
  initdead_ms: 200
  deadtime_ms: 400
  interval_ms: 100
  warntime_ms: 200
  key_file: ${key}
  nodes:
    - name: solo
      links: [{ name: lo, address: 127.0.0.1 }]
    - name: ghost
      links: [{ name: lo, address: 127.0.0.2 }]
api:
  listen: 127.0.0.1:${apiPort}
logging:
  level: info
vips:
  - { address: 127.0.0.1, prefix: 8, interface: lo, managed: false }
services:
  - name: web
    vip: 127.0.0.1
    port: ${await freePort()}
    forward: nat
    check: { type: tcp, interval_ms: 200, timeout_ms: 100, rise: 1, fall: 2 }
    real_servers:
      - { address: 127.0.0.1, port: ${deadPort} }
dataplane: forwarder
`,
    );
    const d = startDaemon(file);
    running.push(d);
    // a loaded 2-core machine: the forwarder's workers and the cluster take seconds to start
    await d.waitForLog(/"msg":"vigil started"/, 60_000);
    const peerLine = JSON.parse(await d.waitForLog(/"msg":"peer never heard from since start"/, 10_000)) as Record<string, unknown>;
    expect(peerLine).toMatchObject({ level: 'warn', peer: 'ghost', afterMs: 600 });
    const rsLine = JSON.parse(await d.waitForLog(/"msg":"real server down since start"/, 10_000)) as Record<string, unknown>;
    expect(rsLine).toMatchObject({ level: 'warn', service: 'web', realServer: `127.0.0.1:${deadPort}`, sinceStart: true });
    let history: { kind: string; message: string }[] = [];
    await until(async () => {
      history = ((await (await fetch(`http://127.0.0.1:${apiPort}/status`)).json()) as { history: typeof history }).history;
      return history.some((h) => h.message.startsWith('peer ghost')) && history.some((h) => h.kind === 'health');
    });
    expect(history.filter((h) => h.message.startsWith('peer ghost never heard from since start'))).toHaveLength(1);
    const health = history.filter((h) => h.kind === 'health');
    expect(health).toHaveLength(1);
    expect(health[0]?.message).toMatch(new RegExp(`^web 127\\.0\\.0\\.1:${deadPort} down since start: `));
    // told once: more failed runs and more time add nothing
    await new Promise((r) => setTimeout(r, 1000));
    expect(d.logs().match(/real server down since start/g)).toHaveLength(1);
    expect(d.logs().match(/peer never heard from since start/g)).toHaveLength(1);
  }, 120_000);
});

describe('neverHeardPeers', () => {
  const link = (lastHeardMsAgo: number | null) => ({ name: 'l', local: '', remote: '', up: false, rttMs: null, lastHeardMsAgo });
  it.each([
    ['never heard on any link', { alive: false, links: [link(null), link(null)] }, ['p']],
    ['heard once on one link, dead now', { alive: false, links: [link(null), link(5000)] }, []],
    ['alive', { alive: true, links: [link(10)] }, []],
  ])('%s', (_what, p, want) => {
    expect(neverHeardPeers([{ name: 'p', role: 'unknown', priority: null, ...p }])).toEqual(want);
  });
});
