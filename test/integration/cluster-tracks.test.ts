/**
 * Tracks with real probes: an interface's operstate (read from a sysfs-like directory
 * the test controls) and ping to loopback (a real `ping` process).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { Tracks, interfaceUp, pingOnce } from '../../src/cluster/tracks.js';
import { clusterSchema, type TrackConfig } from '../../src/config/schema.js';
import { createMetrics } from '../../src/metrics.js';

/** One `cluster.tracks[]` entry parsed by the real schema (defaults filled). */
function trackSchemaForTest(t: Record<string, unknown>): TrackConfig {
  return clusterSchema.parse({ nodes: [{ name: 'n', links: [{ name: 'l', address: '127.0.0.1' }] }], tracks: [t] }).tracks[0]!;
}

const sys = mkdtempSync(join(tmpdir(), 'vigil-sysnet-'));
afterAll(() => rmSync(sys, { recursive: true, force: true }));
const operstate = (iface: string, state: string) => {
  mkdirSync(join(sys, iface), { recursive: true });
  writeFileSync(join(sys, iface, 'operstate'), `${state}\n`);
};

describe('tracks', () => {
  it('reads interface operstate: up and unknown count as up, anything else or a missing interface as down', async () => {
    operstate('eth0', 'up');
    operstate('lo', 'unknown');
    operstate('eth1', 'down');
    expect(await interfaceUp(sys, 'eth0')).toBe(true);
    expect(await interfaceUp(sys, 'lo')).toBe(true);
    expect(await interfaceUp(sys, 'eth1')).toBe(false);
    expect(await interfaceUp(sys, 'nosuch')).toBe(false);
    expect(await interfaceUp('/sys/class/net', 'lo')).toBe(true);
  });

  it('ping to loopback answers', async () => {
    expect(await pingOnce('127.0.0.1', 1000)).toBe(true);
  });

  it('a failed interface lowers the priority by its weight, and recovery restores it', async () => {
    operstate('eth2', 'up');
    const changes: number[] = [];
    const metrics = createMetrics({ defaults: false });
    const tracks = new Tracks({
      tracks: [trackSchemaForTest({ type: 'interface', interface: 'eth2', weight: 60, interval_ms: 100 }), trackSchemaForTest({ type: 'ping', target: '127.0.0.1', weight: 30, interval_ms: 200, timeout_ms: 150 })],
      logger: pino({ level: 'silent' }),
      metrics,
      onChange: (p) => changes.push(p),
      sysClassNet: sys,
    });
    tracks.start();
    try {
      await new Promise((r) => setTimeout(r, 250));
      expect(changes).toEqual([]);
      operstate('eth2', 'down');
      const until = async (n: number) => {
        const end = performance.now() + 3000;
        while (changes.length < n && performance.now() < end) await new Promise((r) => setTimeout(r, 10));
      };
      await until(1);
      expect(changes).toEqual([60]);
      expect(tracks.states()).toEqual([
        { name: 'interface eth2', up: false, weight: 60 },
        { name: 'ping 127.0.0.1', up: true, weight: 30 },
      ]);
      expect((await metrics.trackUp.get()).values.find((v) => v.labels.track === 'interface eth2')?.value).toBe(0);
      operstate('eth2', 'up');
      await until(2);
      expect(changes).toEqual([60, 0]);
    } finally {
      tracks.close();
    }
  });
});
