/**
 * cluster.state_file with a real daemon: a node restarted with its wall clock behind the
 * incarnation it used before still sends frames its peer accepts (a higher incarnation),
 * and the file holds the incarnation in use. The peer here is a UDP socket of the test
 * that decodes the daemon's heartbeats with the shared key.
 */
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeFrame } from '../../src/cluster/wire.js';
import { freePort, startDaemon, tmpDir, writeFile, type RunningDaemon } from '../helpers/daemon.js';

const KEY = 'a shared secret of enough length';
let daemon: RunningDaemon | undefined;
afterEach(async () => {
  await daemon?.stop();
  daemon = undefined;
});

/** The incarnation of the first heartbeat the daemon sends to its peer (this test). */
async function firstIncarnation(port: number): Promise<bigint> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(port, '127.0.0.2', () => r()));
  try {
    return await new Promise<bigint>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no heartbeat from the daemon in 10 s')), 10_000);
      sock.on('message', (buf) => {
        const r = decodeFrame(buf, { key: Buffer.from(KEY), cluster: 'inc', self: 'd2', peers: new Set(['d1']), link: 'hb' });
        if (!r.ok) return;
        clearTimeout(t);
        resolve(r.frame.incarnation);
      });
    });
  } finally {
    sock.close();
  }
}

describe('cluster.state_file', () => {
  it('a restart continues above the stored incarnation when the clock is behind it, and stores the new one', async () => {
    const dir = tmpDir('vigil-inc-');
    const keyFile = writeFile(dir, 'authkey', `${KEY}\n`, 0o600);
    // the last run used an incarnation an hour ahead of this clock (the clock was since stepped back)
    const ahead = (BigInt(Date.now()) + 3_600_000n) * 1000n;
    const stateFile = writeFile(dir, 'incarnation', `${ahead}\n`);
    const port = await freePort();
    const config = writeFile(
      dir,
      'vigil.yaml',
      `node: d1
cluster:
  id: inc
  port: ${port}
  key_file: ${keyFile}
  state_file: ${stateFile}
  nodes:
    - name: d1
      links: [{ name: hb, address: 127.0.0.1 }]
    - name: d2
      links: [{ name: hb, address: 127.0.0.2 }]
api:
  listen: 127.0.0.1:${await freePort()}
`,
    );
    for (const want of [ahead + 1n, ahead + 2n]) {
      daemon = startDaemon(config);
      expect(await firstIncarnation(port)).toBe(want);
      expect(readFileSync(stateFile, 'utf8')).toBe(`${want}\n`);
      await daemon.stop();
      daemon = undefined;
    }
  });
});
