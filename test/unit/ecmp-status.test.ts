/** The ecmp part of /status: `vigil status` lines, and the published schema accepts it. */
import { describe, expect, it } from 'vitest';
import type { EcmpStatus, PeerStatus, StatusDoc } from '../../src/api/types.js';
import { columns, formatStatus } from '../../src/cli/format.js';
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

  it('prints this director\'s table digest and the grace', () => {
    const lines = formatEcmp(ecmp, (rows) => columns(rows), { digest: `sha256:${'0123456789abcdef'.repeat(4)}`, announced: 1, graceMs: 2800 });
    expect(lines[1]).toBe('  Table digest 0123456789abcdef (in the heartbeats); a peer whose digest differs for more than 2.8 s is named');
    expect(formatEcmp(ecmp, (rows) => columns(rows), { digest: null, announced: 0, graceMs: 1000 })[1]).toContain('Table digest not computed yet');
  });

  it('shows each peer\'s table in the peers table: same, different within the grace, MISMATCH, unknown', () => {
    const peer = (name: string, table: PeerStatus['table']): PeerStatus => ({ name, alive: true, role: 'standby', priority: 100, links: [{ name: 'lan', local: '10.0.0.1', remote: '10.0.0.2', up: true, rttMs: 0.2, lastHeardMsAgo: 10 }], table });
    const now = Date.parse('2026-12-04T12:00:10.000Z');
    const doc: StatusDoc = {
      node: 'd1', version: '0', role: 'active', priority: 100, effectivePriority: 100, uptimeSeconds: 60, ready: true, vips: [], services: [], history: [], ecmp,
      table: { digest: `sha256:${'a'.repeat(64)}`, announced: 1, graceMs: 2800 },
      peers: [
        peer('d2', { digest: 'aaaaaaaaaaaaaaaa', announced: 1, match: true, since: '2026-12-04T11:00:00.000Z', mismatched: false }),
        peer('d3', { digest: 'bbbbbbbbbbbbbbbb', announced: 1, match: false, since: '2026-12-04T12:00:09.000Z', mismatched: false }),
        peer('d4', { digest: 'cccccccccccccccc', announced: 0, match: false, since: '2026-12-04T12:00:05.000Z', mismatched: true }),
        peer('d5', { digest: null, announced: null, match: null, since: null, mismatched: false }),
      ],
    };
    const lines = formatStatus(doc, now, 0);
    const row = (name: string) => lines.find((l) => l.startsWith(`  ${name} `)) ?? '';
    expect(lines.find((l) => l.startsWith('  Peer '))).toMatch(/RTT\s+Table$/);
    expect(row('d2')).toMatch(/ same$/);
    expect(row('d3')).toMatch(/ different 1\.0 s \(bbbbbbbbbbbbbbbb\)$/);
    expect(row('d4')).toMatch(/ MISMATCH 5\.0 s \(cccccccccccccccc\)$/);
    expect(row('d5')).toMatch(/ \?$/);
    expect(lines).toContain("  ! forwarding table of d4 differs from d1's (digest cccccccccccccccc, here aaaaaaaaaaaaaaaa): their health views or configs disagree");
  });

  it('conforms to docs/status.schema.json', async () => {
    const doc = { node: 'a', version: '0', role: 'active', priority: 1, effectivePriority: 1, uptimeSeconds: 1, ready: true, peers: [], vips: [], services: [], history: [], ecmp };
    expect(await statusSchemaErrors(doc)).toEqual([]);
    expect(await statusSchemaErrors({ ...doc, ecmp: { ...ecmp, vips: [{ address: 'x' }] } })).not.toEqual([]);
    // the table digests (peers[].table, table)
    const table = { digest: `sha256:${'a'.repeat(64)}`, announced: 1, graceMs: 2800 };
    const link = { name: 'lan', local: '10.0.0.1', remote: '10.0.0.2', up: true, rttMs: 0.2, lastHeardMsAgo: 10 };
    const peers = [
      { name: 'b', alive: true, role: 'standby', priority: 100, links: [link], table: { digest: 'bbbbbbbbbbbbbbbb', announced: 2, match: false, since: '2026-12-04T12:00:00.000Z', mismatched: true } },
      { name: 'c', alive: false, role: 'unknown', priority: null, links: [link], table: { digest: null, announced: null, match: null, since: null, mismatched: false } },
    ];
    expect(await statusSchemaErrors({ ...doc, peers, table })).toEqual([]);
    expect(await statusSchemaErrors({ ...doc, table: { ...table, digest: 'md5:x' } })).not.toEqual([]);
    expect(await statusSchemaErrors({ ...doc, peers: [{ ...peers[0], table: { ...peers[0]!.table, digest: 'zz' } }] })).not.toEqual([]);
  }, 240_000); // fastify's schema compile: slow on a loaded machine
});
