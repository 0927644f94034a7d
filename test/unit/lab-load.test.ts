/** The lab's load config (test/lab/load.ts): what the chaos bench and the load scenario hand the daemons must be a valid config. */
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { crossCheck } from '../../src/config/validate.js';
import { LISTEN_BASE_PORT, loadServices } from '../lab/load.js';

const config = (services: unknown[]) => ({
  node: 'd1',
  cluster: { nodes: [{ name: 'd1', links: [{ name: 'lan', address: '10.9.0.1' }] }] },
  vips: [{ address: '10.9.0.100', prefix: 24, interface: 'l0' }],
  services,
});

describe('loadServices', () => {
  it('makes 1,000 probed real servers and a 10,000-real-server table that the schema and the cross-checks accept', () => {
    const services = loadServices('10.9.0.100', { probes: 1000, realServers: 10_000 });
    const raw = config(services);
    expect(crossCheck(raw)).toEqual([]);
    const parsed = configSchema.parse(raw);
    expect(parsed.services.reduce((a, s) => a + s.real_servers.length, 0)).toBe(10_000);
    const probed = parsed.services.filter((s) => s.check !== undefined);
    expect(probed).toHaveLength(1);
    expect(probed[0]?.real_servers).toHaveLength(1000);
    expect(probed[0]?.real_servers[999]).toMatchObject({ address: '127.0.0.1', port: LISTEN_BASE_PORT + 999 });
    expect(probed[0]?.check).toMatchObject({ type: 'tcp', interval_ms: 2000, timeout_ms: 1000 });
  });

  it('changes only the first probed weight between the two reload variants', () => {
    const a = loadServices('10.9.0.100', { probes: 3, weight: 1 });
    const b = loadServices('10.9.0.100', { probes: 3, weight: 2 });
    expect(JSON.stringify(a)).not.toEqual(JSON.stringify(b));
    expect((b[0] as { real_servers: Array<{ weight?: number }> }).real_servers.map((r) => r.weight)).toEqual([2, undefined, undefined]);
  });
});
