/**
 * What `vigil status` warns about and the exit status a script sees (the status page's
 * warning strip uses the same statusWarnings), table-tested on documents derived from
 * the sample director.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { StatusDoc } from '../../src/api/types.js';
import { statusWarnings } from '../../src/api/warnings.js';
import { EXIT } from '../../src/cli/client.js';
import { statusExitCode, whyNotFound } from '../../src/cli/control.js';
import { formatStatus } from '../../src/cli/format.js';
import { sampleStatus } from '../support/operate-fixtures.js';

/** The sample with every real server healthy and not drained: nothing to warn about. */
function healthy(): StatusDoc {
  const d = sampleStatus();
  for (const s of d.services) for (const r of s.realServers) Object.assign(r, { healthy: true, drained: false, weight: r.configuredWeight });
  d.services = d.services.filter((s) => s.realServers.length > 0);
  return d;
}

/** cluster.mode ecmp: our table digest and every peer's, all equal. */
function withTables(d: StatusDoc): void {
  d.table = { digest: `sha256:${'a'.repeat(64)}`, announced: 1, graceMs: 2800 };
  for (const p of d.peers) p.table = { digest: 'aaaaaaaaaaaaaaaa', announced: 1, match: true, since: '2026-01-01T11:00:00.000Z', mismatched: false };
}

describe('status warnings and exit codes', () => {
  it.each<[string, (d: StatusDoc) => void, number, string[]]>([
    ['all well', () => undefined, EXIT.ok, []],
    ['a real server down', (d) => Object.assign(d.services[0]!.realServers[1]!, { healthy: false }), 10, ['web 172.16.100.11:80 is down']],
    ['a drained real server is not a warning', (d) => Object.assign(d.services[0]!.realServers[1]!, { drained: true }), 0, []],
    [
      'a service with no healthy real server',
      (d) => d.services[0]!.realServers.forEach((r) => (r.healthy = false)),
      10,
      ['service web has no healthy real server', 'web 172.16.100.10:80 is down', 'web 172.16.100.11:80 is down', 'web 172.16.100.12:80 is down'],
    ],
    [
      'a dead peer (and so no standby)',
      (d) => Object.assign(d.peers[0]!, { alive: false, role: 'unknown', priority: null }),
      8,
      ['peer lvs2 is dead (no heartbeat on any link)', 'no standby: no other director could take over if lvs1 fails'],
    ],
    ['a peer in maintenance: no standby', (d) => Object.assign(d.peers[0]!, { role: 'maintenance' }), 9, ['no standby: no other director could take over if lvs1 fails']],
    ['both active: split brain', (d) => Object.assign(d.peers[0]!, { role: 'active' }), 7, ['split brain: lvs1 and lvs2 are both active']],
    [
      'nobody active',
      (d) => Object.assign(d, { role: 'standby' }),
      6,
      ['no director is active: nobody holds the VIPs'],
    ],
    [
      'nobody active and a peer dead: the most serious wins',
      (d) => (Object.assign(d, { role: 'standby' }), Object.assign(d.peers[0]!, { alive: false, role: 'unknown' })),
      6,
      ['no director is active: nobody holds the VIPs', 'peer lvs2 is dead (no heartbeat on any link)'],
    ],
    ['a cluster of one has no standby by design', (d) => (d.peers = []), 0, []],
    [
      'ecmp: a peer whose table differs within the grace is not named',
      (d) => (withTables(d), Object.assign(d.peers[0]!.table!, { match: false, digest: 'bbbbbbbbbbbbbbbb', mismatched: false })),
      0,
      [],
    ],
    ['ecmp: every peer with our table', (d) => withTables(d), 0, []],
    [
      'ecmp: a peer whose table differs past the grace is named',
      (d) => (withTables(d), Object.assign(d.peers[0]!.table!, { match: false, digest: 'bbbbbbbbbbbbbbbb', mismatched: true })),
      11,
      ["forwarding table of lvs2 differs from lvs1's (digest bbbbbbbbbbbbbbbb, here aaaaaaaaaaaaaaaa): their health views or configs disagree"],
    ],
    [
      'ecmp: a real server down here is more serious than the mismatch it causes',
      (d) => (withTables(d), Object.assign(d.peers[0]!.table!, { match: false, digest: 'bbbbbbbbbbbbbbbb', mismatched: true }), Object.assign(d.services[0]!.realServers[1]!, { healthy: false })),
      10,
      ['web 172.16.100.11:80 is down', "forwarding table of lvs2 differs from lvs1's (digest bbbbbbbbbbbbbbbb, here aaaaaaaaaaaaaaaa): their health views or configs disagree"],
    ],
  ])('%s → exit %i', (_what, change, code, messages) => {
    const d = healthy();
    change(d);
    expect(statusWarnings(d).map((w) => w.message)).toEqual(messages);
    expect(statusExitCode(d)).toBe(code);
    const lines = formatStatus(d, Date.parse('2026-01-01T12:00:05Z'), 0);
    expect(lines.filter((l) => l.startsWith('  ! '))).toEqual(messages.map((m) => `  ! ${m}`));
  });

  it('the exit codes are distinct from the other control commands\' (1-5) and from each other', () => {
    const status = [EXIT.noActive, EXIT.splitBrain, EXIT.deadPeer, EXIT.noStandby, EXIT.realServerDown, EXIT.tableMismatch];
    expect(new Set(status).size).toBe(status.length);
    expect(Math.min(...status)).toBeGreaterThan(EXIT.deadline);
  });
});

describe('drain: finding the real server before waiting', () => {
  it.each([
    ['web', '172.16.100.10:80', undefined],
    ['web', '172.16.100.10', undefined],
    ['web', '172.16.100.10:81', 'real server 172.16.100.10:81 not found in service "web" (real servers: 172.16.100.10:80, 172.16.100.11:80, 172.16.100.12:80)'],
    ['db', '172.16.100.10:80', 'service "db" not found (services: web, dns)'],
  ])('%s %s', (service, addr, why) => {
    expect(whyNotFound(sampleStatus(), service, addr)).toBe(why);
  });

  it('IPv6 written another way is the same real server', () => {
    const d = sampleStatus();
    d.services[0]!.realServers[0]!.address = '2001:db8::10';
    expect(whyNotFound(d, 'web', '[2001:DB8:0::10]:80')).toBeUndefined();
  });
});

describe('module graph', () => {
  it('no module imports back from src/cli.ts (the command context lives in src/cli/context.ts)', () => {
    const src = join(import.meta.dirname, '..', '..', 'src');
    const files: string[] = [];
    const walk = (d: string): void => {
      for (const f of readdirSync(d)) {
        const p = join(d, f);
        if (statSync(p).isDirectory()) walk(p);
        else if (p.endsWith('.ts')) files.push(p);
      }
    };
    walk(src);
    const importers = files.filter((f) => /from '(?:\.\.\/)+cli\.js'|from '\.\/cli\.js'/.test(readFileSync(f, 'utf8'))).map((f) => relative(src, f));
    expect(importers).toEqual([]);
    expect(files.map((f) => relative(src, f))).toContain('cli/context.ts');
  });
});
