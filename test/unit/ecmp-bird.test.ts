/**
 * BIRD's side of ecmp mode: the generated include file, and the parsers of `birdc show
 * protocols` / `show bfd sessions` on real output captured from bird 2.0.12 in network
 * namespaces (test/fixtures/bird/: a router with two directors; sessions up, a director's
 * link down, a director frozen so BFD timed out, a disabled static protocol).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bgpUp, parseBfdSessions, parseProtocols, renderInclude } from '../../src/ecmp/bird.js';

const fixture = (name: string): string => readFileSync(resolve(import.meta.dirname, '..', 'fixtures', 'bird', name), 'utf8');

describe('renderInclude', () => {
  it('writes one blackhole host route per announced VIP, sorted, IPv4 and IPv6 apart', () => {
    const text = renderInclude('vigil_vips', [{ address: '10.0.0.2' }, { address: '2001:db8::1' }, { address: '10.0.0.1' }], 'h');
    expect(text).toBe(
      '# h\nprotocol static vigil_vips {\n  ipv4;\n  route 10.0.0.1/32 blackhole;\n  route 10.0.0.2/32 blackhole;\n}\n' +
        'protocol static vigil_vips6 {\n  ipv6;\n  route 2001:db8::1/128 blackhole;\n}\n',
    );
  });
  it('keeps both protocols when nothing is announced (bird.conf may name them in filters)', () => {
    expect(renderInclude('p', [], 'h')).toBe('# h\nprotocol static p {\n  ipv4;\n}\nprotocol static p6 {\n  ipv6;\n}\n');
  });
});

describe('parseProtocols', () => {
  it('reads a router with two Established sessions', () => {
    const p = parseProtocols(fixture('rt-protocols-up.txt'));
    expect(p.map((x) => x.name)).toEqual(['device1', 'kernel1', 'bfd1', 'd1', 'd2']);
    expect(p[3]).toEqual({ name: 'd1', proto: 'BGP', table: '---', state: 'up', since: '16:44:37.561', info: 'Established' });
    expect(p[0]?.info).toBe('');
    expect(p.filter((x) => x.proto === 'BGP').every(bgpUp)).toBe(true);
  });
  it('reads a session dropped by BFD, with its error', () => {
    const d2 = parseProtocols(fixture('rt-protocols-bfddown.txt')).find((x) => x.name === 'd2');
    expect(d2).toMatchObject({ proto: 'BGP', state: 'start', info: 'Idle          Error: BFD session down' });
    expect(d2 && bgpUp(d2)).toBe(false);
  });
  it('reads the director side: static protocol up, BGP in Active with a socket error', () => {
    const p = parseProtocols(fixture('d2-protocols-frozen.txt'));
    expect(p.find((x) => x.name === 'vigil_vips')).toMatchObject({ proto: 'Static', table: 'master4', state: 'up' });
    expect(p.find((x) => x.name === 'uplink')?.info).toMatch(/^Idle\s+Error: BFD session down$/);
    expect(parseProtocols(fixture('d2-protocols-linkdown.txt')).find((x) => x.name === 'uplink')?.info).toMatch(/Neighbor lost/);
  });
  it('reads a disabled protocol', () => {
    expect(parseProtocols(fixture('d1-protocols-disabled.txt')).find((x) => x.name === 'vigil_vips')?.state).toBe('down');
  });
  it('reads dates in Since (BIRD prints a date for old events)', () => {
    const p = parseProtocols('Name       Proto      Table      State  Since         Info\nb1 BGP --- up 2026-12-04 10:00:00 Established\n');
    expect(p[0]).toMatchObject({ since: '2026-12-04 10:00:00', info: 'Established' });
  });
  it('refuses text without the header, naming what it got', () => {
    expect(() => parseProtocols('Unable to connect to server control socket')).toThrow(/no "Name Proto Table State Since Info" header/);
    expect(() => parseProtocols('Name Proto Table State Since Info\nbroken row\n')).toThrow(/row 1 "broken row"/);
  });
});

describe('parseBfdSessions', () => {
  it('reads Up sessions with 50 ms × 3 timers', () => {
    const s = parseBfdSessions(fixture('rt-bfd-up.txt'));
    expect(s).toEqual([
      { protocol: 'bfd1', address: '10.250.2.1', interface: 'rt2', state: 'Up', since: '16:44:35.510', intervalS: 0.05, timeoutS: 0.15 },
      { protocol: 'bfd1', address: '10.250.1.1', interface: 'rt1', state: 'Up', since: '16:44:35.874', intervalS: 0.05, timeoutS: 0.15 },
    ]);
  });
  it('reads a Down session (timed out) beside an Up one', () => {
    const s = parseBfdSessions(fixture('rt-bfd-bfddown.txt'));
    expect(s.map((x) => `${x.address} ${x.state}`)).toEqual(['10.250.2.1 Down', '10.250.1.1 Up']);
    expect(parseBfdSessions(fixture('d2-bfd-frozen.txt'))[0]).toMatchObject({ address: '10.250.2.254', interface: 'e0', state: 'Down' });
  });
  it('reads an empty session list', () => {
    expect(parseBfdSessions(fixture('d2-bfd-linkdown.txt'))).toEqual([]);
  });
  it('refuses a row it cannot read', () => {
    expect(() => parseBfdSessions('bfd1:\n10.0.0.1 what\n')).toThrow(/cannot read "10.0.0.1 what"/);
  });
});
