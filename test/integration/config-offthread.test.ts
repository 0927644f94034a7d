/**
 * loadConfigInWorker (the reload path): the same result as loadConfig, assembled from the
 * worker's parts; the same ConfigError for a refused file; and this event loop kept
 * running while a large accepted config (10,000 real servers) is parsed. The margin is
 * generous (the machine running the suite is busy): the loop's max lag must stay below
 * half the time the worker spent parsing, which is what parsing inline would have
 * stalled it for. The tight figure is bench:config's.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { loadConfigInWorker } from '../../src/config/offthread.js';
import { tmpDir } from '../helpers/daemon.js';

const dir = tmpDir('vigil-offthread-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tenThousand(): string {
  const out = ['node: a', 'cluster:', '  nodes:', '    - name: a', '      links: [{ name: lo, address: 127.0.0.1 }]', 'vips:', '  - { address: 127.0.0.1, prefix: 8, interface: lo, managed: false }', 'services:'];
  for (let i = 0; i < 1000; i++) {
    out.push(`  - name: svc${i}`, '    vip: 127.0.0.1', `    port: ${10000 + i}`, '    forward: nat');
    if (i % 2 === 0) out.push('    check: { type: tcp, interval_ms: 5000, timeout_ms: 1000 }');
    out.push('    real_servers:');
    for (let j = 0; j < 10; j++) out.push(`      - { address: 127.1.${i >> 2}.${(i & 3) * 10 + j + 1}, port: 8080, weight: ${1 + (j % 3)} }`);
  }
  return `${out.join('\n')}\n`;
}

describe('loadConfigInWorker', { timeout: 300_000 }, () => {
  it('returns what loadConfig returns, and refuses what it refuses with the same problems', async () => {
    const ok = join(dir, 'ok.yaml');
    writeFileSync(ok, 'node: a\ncluster:\n  nodes:\n    - name: a\n      links: [{ name: lo, address: 127.0.0.1 }]\n  key_file: k\n');
    const inWorker = await loadConfigInWorker(ok, { VIGIL_NODE: 'a' });
    expect({ config: inWorker.config, file: inWorker.file }).toEqual(loadConfig(ok, { VIGIL_NODE: 'a' }));
    expect(inWorker.config.cluster.key_file).toBe(join(dir, 'k'));

    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, `node: a\ncluster:\n  nodes: [{ name: a, links: [{ name: lo, address: 127.0.0.1 }] }]\nvips: [${'{}, '.repeat(256)}{}]\n`);
    const err = await loadConfigInWorker(bad, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toBe(`${bad}: 1 problem:\n${bad}: vips: too many VIPs: 257 (limit 256) (line 4)`);
    await expect(loadConfigInWorker(join(dir, 'missing.yaml'), {})).rejects.toThrow(`${join(dir, 'missing.yaml')}: (top level): cannot read: ENOENT`);
  });

  it('keeps this event loop running while a 10,000-real-server config is parsed', async () => {
    const file = join(dir, 'large.yaml');
    writeFileSync(file, tenThousand());
    // the longest gap of a 1 ms interval timer (a histogram reset just before a block under-reports it)
    let last = performance.now();
    let lagMs = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      lagMs = Math.max(lagMs, now - last - 1);
      last = now;
    }, 1);
    const t0 = performance.now();
    const loaded = await loadConfigInWorker(file, {});
    const wallMs = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 10));
    clearInterval(timer);
    console.log(`10,000 real servers: worker parse ${loaded.parseMs.toFixed(0)} ms, call ${wallMs.toFixed(0)} ms, this loop's max lag ${lagMs.toFixed(1)} ms`);
    expect(loaded.config.services).toHaveLength(1000);
    expect(loaded.config.services.reduce((n, s) => n + s.real_servers.length, 0)).toBe(10_000);
    expect(loaded.config.services[999]?.real_servers[9]).toEqual({ address: '127.1.249.40', port: 8080, weight: 1 });
    expect(lagMs).toBeLessThan(loaded.parseMs / 2);
  });
});
