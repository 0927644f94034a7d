import { describe, expect, it } from 'vitest';
import { columns, formatDuration, formatStatus, parseDuration } from '../../src/cli/format.js';
import { sampleStatus } from '../support/operate-fixtures.js';

const NOW = Date.parse('2026-01-01T12:00:02.000Z');

describe('vigil status as text', () => {
  const lines = formatStatus(sampleStatus(), NOW);
  const text = lines.join('\n');

  it('starts with this node, its role and priorities', () => {
    expect(lines[0]).toBe('vigil 0.1.0 on lvs1: ACTIVE, priority 150 (effective 90), up 3h 12m');
  });

  it('lists the peer with one line per link, state and RTT', () => {
    const peer = lines.findIndex((l) => l.trimStart().startsWith('Peer '));
    expect(lines[peer + 1]).toMatch(/^ {2}lvs2 +alive +standby +100 +heartbeat +10\.255\.255\.1 -> 10\.255\.255\.2 +up +0\.213 ms$/);
    expect(lines[peer + 2]).toMatch(/^ +lan +172\.16\.100\.2 -> 172\.16\.100\.3 +DOWN +-$/);
    // columns line up: the link name starts at the same offset on both lines
    expect(lines[peer + 1]?.indexOf('heartbeat')).toBe(lines[peer + 2]?.indexOf('lan'));
  });

  it('lists VIPs with their owner', () => {
    expect(text).toMatch(/^ {2}172\.16\.100\.100\/24 +eth0 +lvs1 +yes$/m);
  });

  it('prints the forwarding table the way ipvsadm -L -n does, with health columns', () => {
    const head = lines.indexOf('Prot LocalAddress:Port Scheduler Flags');
    expect(head).toBeGreaterThan(0);
    expect(lines[head + 1]).toMatch(/^ {2}-> RemoteAddress:Port +Forward +Weight +ActiveConn +InActConn +Health +Checked +Last result$/);
    expect(lines[head + 2]).toBe('TCP  172.16.100.100:80 wlc persistent 300   [web: 1/3 healthy]');
    expect(lines[head + 3]).toMatch(/^ {2}-> 172\.16\.100\.10:80 +Route +1 +12 +3 +up +2\.0 s ago +HTTP 200$/);
    expect(lines[head + 4]).toMatch(/^ {2}-> 172\.16\.100\.11:80 +Route +0\/2 +0 +0 +DOWN +4\.0 s ago +connect ECONNREFUSED 172\.16\.100\.11:80$/);
    expect(lines[head + 5]).toMatch(/^ {2}-> 172\.16\.100\.12:80 +Route +0\/1 +- +- +drained +never$/);
    expect(lines[head + 6]).toBe('FWM  7 rr SORRY-SERVER   [dns: 0/0 healthy]');
    // numbers are right-aligned under their headers
    const h = lines[head + 1] as string;
    const r = lines[head + 3] as string;
    expect(r.indexOf('12') + 2).toBe(h.indexOf('ActiveConn') + 'ActiveConn'.length);
  });

  it('ends with the most recent events, newest first', () => {
    const i = lines.indexOf('Recent events:');
    expect(lines[i + 1]).toMatch(/^ {2}2026-01-01 11:59:58Z +health +web 172\.16\.100\.11:80 down/);
    expect(lines[i + 2]).toMatch(/role +standby -> active/);
    expect(formatStatus(sampleStatus(), NOW, 0)).not.toContain('Recent events:');
  });

  it('says so when there is nothing to show', () => {
    const doc = { ...sampleStatus(), peers: [], vips: [], services: [], history: [], ready: false, effectivePriority: 150 };
    expect(formatStatus(doc, NOW)).toEqual([
      'vigil 0.1.0 on lvs1: ACTIVE, priority 150, up 3h 12m, NOT READY',
      '',
      'Peers: none (a cluster of one)',
      '',
      'VIPs: none',
      '',
      'Virtual services: none',
    ]);
  });
});

describe('helpers', () => {
  it.each([
    ['30s', 30_000],
    ['30', 30_000],
    ['500ms', 500],
    ['1.5s', 1500],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['0', 0],
    ['', undefined],
    ['soon', undefined],
    ['-1s', undefined],
    ['10 days', undefined],
  ])('parseDuration(%j) = %j', (s, ms) => {
    expect(parseDuration(s)).toBe(ms);
  });

  it.each([
    [250, '250 ms'],
    [2000, '2.0 s'],
    [42_000, '42 s'],
    [125_000, '2m 5s'],
    [3 * 3600_000 + 60_000, '3h 1m'],
    [50 * 3600_000, '2d 2h'],
  ])('formatDuration(%d) = %j', (ms, s) => {
    expect(formatDuration(ms)).toBe(s);
  });

  it('pads columns, right-aligns numbers, leaves no trailing blanks', () => {
    expect(columns([['a', '1', 'x'], ['bbb', '100', '']], [false, true])).toEqual(['a      1  x', 'bbb  100']);
  });
});
