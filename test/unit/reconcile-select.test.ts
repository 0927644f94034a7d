import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { configSchema, type Config } from '../../src/config/schema.js';
import { createMetrics } from '../../src/metrics.js';
import { selectDataplane } from '../../src/reconcile/select.js';
import type { Dataplane } from '../../src/reconcile/table.js';

const dir = mkdtempSync(join(tmpdir(), 'vigil-select-'));
const present = join(dir, 'ip_vs');
writeFileSync(present, 'IP Virtual Server version 1.2.1 (size=4096)\n');
const missing = join(dir, 'no_ip_vs');

const cfg = (dataplane: unknown): Config =>
  configSchema.parse({ node: 'a', cluster: { nodes: [{ name: 'a', links: [{ name: 'l', address: '127.0.0.1' }] }] }, dataplane });
const fakeForwarder = { kind: 'forwarder' } as Dataplane;
const deps = { logger: pino({ level: 'silent' }), metrics: createMetrics({ defaults: false }) };

describe('selectDataplane', () => {
  it.each([
    ['auto', present, 'ipvs'],
    ['auto', missing, 'forwarder'],
    ['forwarder', present, 'forwarder'],
    ['ipvs', present, 'ipvs'],
  ])('mode %s with %s → %s', async (mode, procPath, kind) => {
    const s = await selectDataplane(cfg(mode), { ...deps, procPath, forwarder: () => fakeForwarder });
    expect(s.dataplane.kind).toBe(kind);
    expect(s.reason).toContain(mode === 'auto' ? 'dataplane: auto' : `dataplane: ${mode}`);
  });

  it('ipvs without kernel support fails loudly at start', async () => {
    await expect(selectDataplane(cfg({ mode: 'ipvs', ipvs: { ipvsadm: join(dir, 'no-ipvsadm') } }), { ...deps, procPath: missing })).rejects.toMatchObject({
      code: 'VIGIL_IPVS_UNAVAILABLE',
      message: expect.stringContaining('this kernel has no IPVS'),
    });
  });

  it('says so when the forwarder is asked for but not built in', async () => {
    await expect(selectDataplane(cfg('auto'), { ...deps, procPath: missing })).rejects.toMatchObject({ code: 'VIGIL_DATAPLANE_UNAVAILABLE' });
  });

  it('refuses the forwarder for a config with fwmark services (auto on a kernel without IPVS)', async () => {
    const c = configSchema.parse({
      node: 'a',
      cluster: { nodes: [{ name: 'a', links: [{ name: 'l', address: '127.0.0.1' }] }] },
      services: [{ name: 'marked', fwmark: 3, real_servers: [{ address: '10.0.0.2' }] }],
    });
    await expect(selectDataplane(c, { ...deps, procPath: missing, forwarder: () => fakeForwarder })).rejects.toThrow(/service "marked" is an fwmark service, which needs IPVS/);
  });

  it('hands the sync daemon settings to the IPVS dataplane', async () => {
    const s = await selectDataplane(cfg({ mode: 'ipvs', ipvs: { sync_daemon: { interface: 'eth1', sync_id: 9 } } }), { ...deps, procPath: present });
    expect(s.dataplane.kind).toBe('ipvs');
    expect((s.dataplane as unknown as { opts: { syncDaemon: unknown } }).opts.syncDaemon).toEqual({ interface: 'eth1', syncId: 9 });
  });
});
