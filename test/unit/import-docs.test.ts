/**
 * docs/import-*.md cannot drift from the code: each file must equal what
 * test/support/import-docs.ts generates from the import's mapping tables
 * (VIGIL_WRITE_DOCS=1 rewrites them), and each table must say what the code does —
 * every refused option is an error line with the documented reason, every translated
 * directive is translated, and every directive ldirectord documents is in a table.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/import/build.js';
import { HACF_DIRECTIVES, NO_EQUIVALENT, parseHaCf } from '../../src/import/hacf.js';
import { IPVSADM_OPTIONS, parseIpvsadm } from '../../src/import/ipvsadm.js';
import { LD_DIRECTIVES, LD_UNSUPPORTED } from '../../src/import/ldservices.js';
import { HARESOURCES_REPLACED } from '../../src/import/build.js';
import { Ledger } from '../../src/import/ledger.js';
import type { Resolver } from '../../src/import/resolve.js';
import { importDocs } from '../support/import-docs.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const resolver: Resolver = { service: (n) => (/^\d+$/.test(n) ? Number(n) : undefined), host: async (n) => (/^[\d.]+$/.test(n) ? n : undefined) };

describe('docs/import-*.md', () => {
  const docs = importDocs();
  it.each([...docs.keys()])('%s equals the table generated from the code', (file) => {
    const path = join(ROOT, file);
    if (process.env.VIGIL_WRITE_DOCS === '1') writeFileSync(path, docs.get(file) as string);
    expect(existsSync(path), `${file} is missing: run VIGIL_WRITE_DOCS=1 npx vitest run test/unit/import-docs.test.ts`).toBe(true);
    expect(readFileSync(path, 'utf8')).toBe(docs.get(file));
  });
});

describe('the tables say what the code does', () => {
  it.each(IPVSADM_OPTIONS.filter((o) => o.refused !== undefined && o.option !== '--sctp').map((o) => [o.option, o] as const))('ipvsadm %s is an error line with the documented reason', async (_, o) => {
    const value = o.arg === 'value' ? (o.option === '--pe' ? ' sip' : o.option === '-b' ? ' sh-port' : o.option === '--tun-type' ? ' gue' : ' 7') : '';
    const ledger = new Ledger();
    const cmds = parseIpvsadm(`-a -t 10.0.0.1:80 -r 10.0.1.1 ${o.option}${value}`, 'rules', ledger);
    expect(cmds[0]?.refused).toEqual([{ option: `${o.option}${value}`, reason: o.refused }]);
  });

  /** A line using each translated option (a new option needs one here). */
  const SAMPLE: Record<string, string> = {
    '-A': '-A -t 10.0.0.1:80', '-E': '-E -t 10.0.0.1:80', '-D': '-D -t 10.0.0.1:80', '-C': '-C',
    '-a': '-a -t 10.0.0.1:80 -r 10.0.1.1', '-e': '-e -t 10.0.0.1:80 -r 10.0.1.1', '-d': '-d -t 10.0.0.1:80 -r 10.0.1.1', '-r': '-a -t 10.0.0.1:80 -r 10.0.1.1:80',
    '-t': '-A -t 10.0.0.1:80', '-u': '-A -u 10.0.0.1:53', '-f': '-A -f 3', '-6': '-A -f 3 -6',
    '-s': '-A -t 10.0.0.1:80 -s rr', '-p': '-A -t 10.0.0.1:80 -p', '-M': '-A -t 10.0.0.1:80 -p 60 -M 255.255.255.0',
    '-g': '-a -t 10.0.0.1:80 -r 10.0.1.1 -g', '-i': '-a -t 10.0.0.1:80 -r 10.0.1.1 -i', '-m': '-a -t 10.0.0.1:80 -r 10.0.1.1 -m', '-w': '-a -t 10.0.0.1:80 -r 10.0.1.1 -w 5',
  };
  it.each(IPVSADM_OPTIONS.filter((o) => o.becomes !== undefined).map((o) => [o.option] as const))('ipvsadm %s is read', (option) => {
    const ledger = new Ledger();
    const line = SAMPLE[option];
    expect(line, `no sample line for ${option}`).toBeDefined();
    const cmds = parseIpvsadm(line as string, 'rules', ledger);
    expect(ledger.entries).toEqual([]);
    expect(cmds).toHaveLength(1);
    expect(cmds[0]?.refused).toEqual([]);
  });

  it('every ldirectord.cf directive in a table is handled as the table says', async () => {
    const lines = Object.keys({ ...LD_DIRECTIVES, ...LD_UNSUPPORTED })
      .filter((k) => !['virtual', 'virtual6', 'real', 'real6', 'fallback6'].includes(k))
      .map((k) => `\t${k}=${k === 'checktype' ? 'connect' : k === 'protocol' ? 'tcp' : k === 'checkinterval' ? '10' : k === 'checktimeout' || k === 'negotiatetimeout' ? '5' : k === 'failurecount' || k === 'persistent' ? '3' : k === 'checkport' ? '80' : k === 'scheduler' ? 'rr' : k === 'netmask' ? '255.255.255.0' : k === 'checkcommand' ? '/bin/true' : k === 'fallback' ? '127.0.0.1:80' : k === 'quiescent' ? 'yes' : 'x'}`);
    const text = ['virtual=10.0.0.1:80', '\treal=10.0.1.1:80 gate', ...lines].join('\n');
    const r = await buildConfig({ ldirectord: { file: 'ld', text } }, { resolver, hostname: 'h' });
    for (const e of r.report) expect(e.reason).not.toMatch(/is not an ldirectord setting vigil translates/);
    for (const [k, why] of Object.entries(LD_UNSUPPORTED)) {
      expect(r.report.find((e) => e.text.startsWith(`${k}=`))?.reason, k).toBe(why);
    }
  });

  it.runIf(existsSync('/usr/sbin/ldirectord'))('every directive ldirectord documents is in a table', () => {
    const pod = readFileSync('/usr/sbin/ldirectord', 'utf8');
    const documented = new Set([...pod.matchAll(/^B<([a-z0-9]+) ?=/gm)].map((m) => m[1] as string));
    expect(documented.size).toBeGreaterThan(30);
    const known = new Set([...Object.keys(LD_DIRECTIVES), ...Object.keys(LD_UNSUPPORTED)]);
    expect([...documented].filter((d) => !known.has(d))).toEqual([]);
  });

  it('every ha.cf directive in a table is handled as the table says', () => {
    const ledger = new Ledger();
    const text = [...Object.keys(HACF_DIRECTIVES), ...Object.keys(NO_EQUIVALENT)].map((k) => `${k} ${k === 'ucast' ? 'eth1 10.0.0.2' : k === 'mcast' ? 'eth1 239.0.0.1 694 1 0' : k === 'ping_group' ? 'g 10.0.0.9' : k === 'auto_failback' ? 'on' : k === 'udpport' ? '694' : k === 'respawn' ? 'hacluster /usr/lib/heartbeat/ipfail' : ['keepalive', 'deadtime', 'warntime', 'initdead', 'deadping'].includes(k) ? '2' : 'x'}`);
    parseHaCf(text.join('\n'), 'ha.cf', ledger);
    const report = ledger.finish();
    for (const e of report) expect(e.reason, e.text).not.toMatch(/not a Heartbeat directive vigil knows|needs a value|is not a time|expected/);
    for (const [k, why] of Object.entries(NO_EQUIVALENT)) {
      expect(report.find((e) => e.text.split(' ')[0] === k)?.reason, k).toBe(why);
    }
  });

  it.each(Object.entries(HARESOURCES_REPLACED))('haresources %s is reported with the documented reason', async (name, why) => {
    const r = await buildConfig({ haresources: { file: 'har', text: `h 10.0.0.1/24/eth0 ${name}::arg\n` } }, { resolver, hostname: 'h' });
    expect(r.report.find((e) => e.file === 'har')?.reason).toContain(`${name}::arg: ${why}`);
  });
});
