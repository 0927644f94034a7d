/** The ecmp part of /status: `vigil status` lines, and the published schema accepts it. */
import { describe, expect, it } from 'vitest';
import type { EcmpStatus } from '../../src/api/types.js';
import { columns } from '../../src/cli/format.js';
import { formatEcmp } from '../../src/ecmp/format.js';
import { statusSchemaErrors } from '../support/status-schema.js';

const ecmp: EcmpStatus = {
  mode: 'ecmp',
  vipInterface: 'lo',
  birdError: null,
  vips: [
    { address: '198.51.100.1', announced: true, reason: 'serving', since: '2026-12-04T12:00:00.000Z' },
    { address: '198.51.100.2', announced: false, reason: 'service dns has no healthy real server', since: '2026-12-04T12:01:00.000Z' },
  ],
  bgp: [
    { name: 'uplink1', state: 'up', info: 'Established', up: true },
    { name: 'uplink2', state: 'start', info: 'Idle          Error: BFD session down', up: false },
  ],
  bfd: [{ address: '192.0.2.1', interface: 'eth0', state: 'Up' }, { address: '192.0.2.2', interface: 'eth1', state: 'Down' }],
};

describe('ecmp status', () => {
  it('prints each VIP announced or WITHDRAWN with why, then BGP and BFD', () => {
    expect(formatEcmp(ecmp, (rows) => columns(rows))).toEqual([
      'ECMP (VIPs on lo, announced through BIRD):',
      '  VIP           Announced  Why                                     Since',
      '  198.51.100.1  yes        serving                                 2026-12-04 12:00:00Z',
      '  198.51.100.2  WITHDRAWN  service dns has no healthy real server  2026-12-04 12:01:00Z',
      '  BGP      State  Info',
      '  uplink1  up     Established',
      '  uplink2  DOWN   Idle          Error: BFD session down',
      '  BFD peer   Interface  State',
      '  192.0.2.1  eth0       Up',
      '  192.0.2.2  eth1       DOWN',
    ]);
  });

  it('says so when BIRD could not be updated, and when there is no BGP session', () => {
    const lines = formatEcmp({ ...ecmp, birdError: 'birdc -s /run/bird/bird.ctl configure: Unable to connect\nmore', bgp: [], bfd: [] }, (rows) => columns(rows));
    expect(lines[0]).toBe('ECMP (VIPs on lo, announced through BIRD): BIRD UPDATE FAILED: birdc -s /run/bird/bird.ctl configure: Unable to connect:');
    expect(lines.at(-1)).toBe('  BGP: no session (is BIRD running, with a bgp protocol?)');
  });

  it('conforms to docs/status.schema.json', async () => {
    const doc = { node: 'a', version: '0', role: 'active', priority: 1, effectivePriority: 1, uptimeSeconds: 1, ready: true, peers: [], vips: [], services: [], history: [], ecmp };
    expect(await statusSchemaErrors(doc)).toEqual([]);
    expect(await statusSchemaErrors({ ...doc, ecmp: { ...ecmp, vips: [{ address: 'x' }] } })).not.toEqual([]);
  }, 240_000); // fastify's schema compile: slow on a loaded machine
});
