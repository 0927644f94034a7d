/**
 * cluster.mode ecmp, "same table everywhere": two real cluster processes (forked by the
 * supervisor as the daemon forks them, heartbeats over real UDP on 127.0.0.1 and
 * 127.0.0.2) carry the table digest the daemon hands them (IPC `table`) in wire
 * version 3 frames; each compares the other's with its own. A mismatch is named only
 * after the grace, in /status (peers[].table) and in vigil_ecmp_table_digest_mismatch,
 * and cleared when the tables agree again. A third peer is this test's own UDP socket
 * speaking wire version 2 (an older vigil): it is answered in version 2 and its table
 * is unknown, never a mismatch.
 */
import { createSocket, type Socket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PeerStatus } from '../../src/api/types.js';
import { ClusterSupervisor } from '../../src/cluster/supervisor.js';
import { decodeFrame, encodeFrame, type Frame } from '../../src/cluster/wire.js';
import { parseConfig } from '../../src/config/load.js';
import { tableGraceMs } from '../../src/ecmp/peer-tables.js';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { freePort, tmpDir, writeFile } from '../helpers/daemon.js';

const KEY = 'a shared secret of enough length';
const A = `sha256:${'a1'.repeat(32)}`;
const B = `sha256:${'b2'.repeat(32)}`;
const INTERVAL = 50;

function configText(self: string, port: number, keyFile: string): string {
  return `node: ${self}
cluster:
  mode: ecmp
  id: tables
  port: ${port}
  interval_ms: ${INTERVAL}
  deadtime_ms: 500
  warntime_ms: 250
  initdead_ms: 1000
  key_file: ${keyFile}
  nodes:
    - { name: d1, links: [{ name: hb, address: 127.0.0.1 }] }
    - { name: d2, links: [{ name: hb, address: 127.0.0.2 }] }
    - { name: d3, links: [{ name: hb, address: 127.0.0.3 }] }
vips:
  - { address: 198.51.100.1, prefix: 32, interface: lo }
services:
  - name: web
    vip: 198.51.100.1
    port: 80
    scheduler: mh
    scheduler_flags: [mh-port]
    check: { type: tcp, interval_ms: 500, timeout_ms: 200 }
    real_servers: [{ address: 192.0.2.10 }, { address: 192.0.2.11 }]
api:
  listen: 127.0.0.1:${port}
logging:
  level: warn
`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs: number, everyMs = 5): Promise<T> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (performance.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

interface Node {
  sup: ClusterSupervisor;
  grace: number;
}
const nodes: Record<string, Node> = {};
let port = 0;
/** The version-2 peer d3: versions of the frames d1 sent it, after it spoke version 2. */
let legacy: Socket | undefined;
const versionsToLegacy: number[] = [];
let legacySpeaking = false;

const peer = (on: string, name: string): PeerStatus | undefined => nodes[on]!.sup.peers().find((p) => p.name === name);
const gauge = async (on: string, name: string): Promise<string | undefined> =>
  new RegExp(`^vigil_ecmp_table_digest_mismatch\\{peer="${name}"\\} (\\S+)$`, 'm').exec(await nodes[on]!.sup.metricsText(5000))?.[1];

beforeAll(async () => {
  const dir = tmpDir('vigil-table-');
  const keyFile = writeFile(dir, 'authkey', `${KEY}\n`, 0o600);
  port = await freePort();
  for (const name of ['d1', 'd2']) {
    const { config } = parseConfig(configText(name, port, keyFile), `${name}.yaml`, {});
    const logger = createLogger('warn', {}, name);
    const sup = new ClusterSupervisor({ config: { ...config, vips: [] }, logger, metrics: createMetrics({ defaults: false }), env: { ...process.env, VIGIL_NO_RENICE: '1' } });
    await sup.start();
    nodes[name] = { sup, grace: tableGraceMs(config) };
  }
  // d3: an older vigil (wire version 2) on 127.0.0.3, echoing what d1 sends it
  const sock = createSocket('udp4');
  legacy = sock;
  let seq = 0;
  const key = Buffer.from(KEY);
  sock.on('message', (buf) => {
    const r = decodeFrame(buf, { key, cluster: 'tables', self: 'd3', peers: new Set(['d1', 'd2']), link: 'hb' });
    if (!r.ok || r.frame.node !== 'd1') return;
    if (legacySpeaking) versionsToLegacy.push(r.frame.version ?? 0);
    const f: Frame = {
      cluster: 'tables', node: 'd3', link: 'hb', role: 'standby', priority: 100, releasing: false, leaving: false, takeover: false, yielding: false,
      incarnation: 1_000_000n, seq: ++seq, sentUs: 0, echoSeq: r.frame.seq, echoSentUs: r.frame.sentUs, echoHoldUs: 0, echoIncarnation: r.frame.incarnation, version: 2,
    };
    legacySpeaking = true;
    sock.send(encodeFrame(f, key), port, '127.0.0.1');
  });
  await new Promise<void>((r) => sock.bind(port, '127.0.0.3', () => r()));
}, 60_000);

afterAll(async () => {
  legacy?.close();
  await Promise.all(Object.values(nodes).map((n) => n.sup.close()));
});

describe('ecmp: table digests exchanged in the heartbeats', () => {
  it('every configured peer\'s mismatch gauge exists at 0 before any table is known', async () => {
    expect(await gauge('d1', 'd2')).toBe('0');
    expect(await gauge('d1', 'd3')).toBe('0');
    expect(await gauge('d2', 'd1')).toBe('0');
  });

  it('equal tables match on both sides, with the digest prefix and announced count from the peer', async () => {
    nodes.d1!.sup.setTable(A, 1);
    nodes.d2!.sup.setTable(A, 1);
    const t = await waitFor('d1 sees d2\'s table', () => peer('d1', 'd2')?.table?.match === true && peer('d1', 'd2')?.table, 10_000);
    expect(t).toMatchObject({ digest: 'a1a1a1a1a1a1a1a1', announced: 1, match: true, mismatched: false });
    await waitFor('d2 sees d1\'s table', () => peer('d2', 'd1')?.table?.match === true, 5000);
  });

  it('a differing digest is named after the grace, exported, and cleared when the tables agree again', async () => {
    const grace = nodes.d1!.grace;
    expect(grace).toBe(1000 + 700);
    const t0 = performance.now();
    nodes.d2!.sup.setTable(B, 0);
    const differ = await waitFor('d1 sees d2 differ', () => peer('d1', 'd2')?.table?.match === false && performance.now(), 5000);
    expect(peer('d1', 'd2')?.table).toMatchObject({ digest: 'b2b2b2b2b2b2b2b2', announced: 0, mismatched: false });
    const named = await waitFor('d1 names d2', () => peer('d1', 'd2')?.table?.mismatched === true && performance.now(), grace + 10_000);
    const namedBack = await waitFor('d2 names d1', () => peer('d2', 'd1')?.table?.mismatched === true && performance.now(), 10_000);
    // never before the grace (the verdict's own clock started when d1 received the frame, after t0)
    expect(named - t0).toBeGreaterThanOrEqual(grace);
    expect(namedBack - t0).toBeGreaterThanOrEqual(grace);
    expect(await gauge('d1', 'd2')).toBe('1');
    expect(await gauge('d2', 'd1')).toBe('1');
    expect(await gauge('d1', 'd3')).toBe('0');
    console.log(`cluster-table: digests differ seen by d1 after ${(differ - t0).toFixed(0)} ms, named after ${(named - t0).toFixed(0)} ms (grace ${grace} ms)`);

    const t1 = performance.now();
    nodes.d2!.sup.setTable(A, 1);
    const cleared = await waitFor('d1 clears d2', () => peer('d1', 'd2')?.table?.match === true && !peer('d1', 'd2')?.table?.mismatched && performance.now(), 10_000);
    await waitFor('d2 clears d1', () => peer('d2', 'd1')?.table?.mismatched === false, 10_000);
    // the gauge is set in the same verdict that the snapshot shows
    expect(await gauge('d1', 'd2')).toBe('0');
    expect(await gauge('d2', 'd1')).toBe('0');
    console.log(`cluster-table: cleared on d1 ${(cleared - t1).toFixed(0)} ms after d2's table agreed again`);
  }, 60_000);

  it('a peer speaking wire version 2 is answered in version 2 and its table is unknown, never a mismatch', async () => {
    await waitFor('d1 believes d3', () => peer('d1', 'd3')?.alive === true, 10_000);
    const n = versionsToLegacy.length;
    await waitFor('more frames from d1 to d3', () => versionsToLegacy.length > n + 20, 10_000);
    // after d3's first version-2 frame, d1 answers it in version 2 only
    expect(versionsToLegacy.slice(n)).toEqual(versionsToLegacy.slice(n).map(() => 2));
    expect(peer('d1', 'd3')?.table).toEqual({ digest: null, announced: null, match: null, since: null, mismatched: false });
    // d2 is still sent version 3 with the table: it sees d1's digest
    expect(peer('d2', 'd1')?.table?.digest).toBe('a1a1a1a1a1a1a1a1');
  }, 30_000);
});
