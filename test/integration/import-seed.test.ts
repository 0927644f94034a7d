/**
 * `vigil import` as an operator runs it: the built CLI on the reference deployment's
 * files (test/fixtures/import/seed), its output checked by `vigil validate`.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadKey } from '../../src/cluster/cluster.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'cli.js');
const SEED = join(ROOT, 'test', 'fixtures', 'import', 'seed');
const dir = mkdtempSync(join(tmpdir(), 'vigil-import-seed-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const vigil = (...args: string[]) => execa('node', [CLI, ...args], { reject: false, cwd: dir });
const seedArgs = [
  '--ha-cf', join(SEED, 'ha.cf'),
  '--haresources', join(SEED, 'haresources'),
  '--authkeys', join(SEED, 'authkeys'),
  '--mon-cf', join(SEED, 'mon.cf'),
  '--ipvsadm-save', join(SEED, 'ipvsadm.rules'),
  '--node', 'lvs1',
];

describe('vigil import on the seed deployment', () => {
  it('writes a config that vigil validate accepts, the key file 0600, and the report', async () => {
    const out = join(dir, 'etc', 'vigil.yaml');
    const r = await vigil('import', ...seedArgs, '--address', 'eth1=10.10.10.1', '-o', out);
    expect(r.stderr).toMatch(/the output validates/);
    expect(r.exitCode).toBe(0);
    const v = await vigil('validate', out);
    expect(v.stdout).toBe(`${out}: ok`);
    expect(v.exitCode).toBe(0);

    const key = join(dir, 'etc', 'vigil.key');
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(readFileSync(key, 'utf8')).toBe('4f1c2a9e0b7d36e58a1f9c02d4b6e7a3');
    // the daemon's own key loader accepts it as written
    expect(loadKey(key).toString()).toBe('4f1c2a9e0b7d36e58a1f9c02d4b6e7a3');
    expect(r.stderr).not.toContain('4f1c2a9e0b7d36e58a1f9c02d4b6e7a3');

    const cfg = parseYaml(readFileSync(out, 'utf8'));
    expect(cfg.node).toBe('lvs1');
    expect(cfg.cluster.nodes).toEqual([
      { name: 'lvs1', priority: 150, links: [{ name: 'eth1', address: '10.10.10.1' }] },
      { name: 'lvs2', priority: 100, links: [{ name: 'eth1', address: '10.10.10.2' }] },
    ]);
    expect(cfg.cluster).toMatchObject({ interval_ms: 2000, deadtime_ms: 10_000, warntime_ms: 5000, initdead_ms: 60_000, preempt: false, key_file: 'vigil.key' });
    expect(cfg.cluster.resources).toEqual([{ path: '/etc/ha.d/resource.d/LvsScript' }]);
    expect(cfg.vips).toEqual([{ address: '172.16.81.141', prefix: 24, interface: 'eth1' }]);
    expect(cfg.services).toHaveLength(1);
    expect(cfg.services[0]).toMatchObject({
      vip: '172.16.81.141',
      port: 80,
      scheduler: 'wlc',
      forward: 'tun',
      check: { type: 'http', interval_ms: 5000, timeout_ms: 4000, fall: 2 },
      real_servers: [
        { address: '172.19.81.139', weight: 1 },
        { address: '172.19.80.50', weight: 1 },
      ],
    });

    // the report names every line that was not translated, with file and line
    const untranslated = r.stderr.split('\n').filter((l) => l.includes(': untranslated: '));
    expect(untranslated.map((l) => l.replace(/ — .*/, '').replace(SEED + '/', ''))).toEqual([
      'ha.cf:2: untranslated: logfacility     local0',
      'mon.cf:2: untranslated: alertdir   = /usr/lib/mon/alert.d',
      'mon.cf:5: untranslated: histlength = 100',
      'mon.cf:6: untranslated: randstart  = 10s',
      'mon.cf:19: untranslated: period wd {Sun-Sat}',
      'mon.cf:20: untranslated: alert mail.alert root@localhost',
    ]);
    // and the YAML carries them as comments at the end
    expect(readFileSync(out, 'utf8')).toMatch(/# Not translated[\s\S]*logfacility/);
  });

  it('without this node’s heartbeat address: exit 1, and the report says which line and what to pass', async () => {
    const out = join(dir, 'noaddr.yaml');
    const r = await vigil('import', ...seedArgs, '--key-file', join(dir, 'noaddr.key'), '-o', out);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/ha\.cf:8: untranslated: ucast eth1 10\.10\.10\.2 — lvs1's own address on eth1 is not in ha\.cf .*--address eth1=<address>/);
    expect(r.stderr).toMatch(/does not validate: cluster\.nodes\[0\]\.links/);
    expect(r.stderr).toMatch(/the output does NOT validate/);
    const v = await vigil('validate', out);
    expect(v.exitCode).toBe(1);
  });

  it('writes to stdout and the report to a file when asked', async () => {
    const report = join(dir, 'report.txt');
    const r = await vigil('import', ...seedArgs, '--address', 'eth1=10.10.10.1', '--key-file', join(dir, 'k2'), '--report', report);
    expect(r.exitCode).toBe(0);
    expect(parseYaml(r.stdout).node).toBe('lvs1');
    expect(r.stderr).toBe('');
    expect(readFileSync(report, 'utf8')).toMatch(/ha\.cf:2: untranslated: logfacility/);
  });

  it('ipvsadm -S without -n: names resolve through /etc/services and the system resolver', async () => {
    const rules = join(dir, 'named.rules');
    (await import('node:fs')).writeFileSync(
      rules,
      '-A -t localhost:http -s wlc\n-a -t localhost:http -r localhost:http -m -w 1\n-A -u localhost:domain -s rr\n-A -t no-such-host.invalid:https -s rr\n',
    );
    const out = join(dir, 'named.yaml');
    // an unresolvable name is an error (exit 1); --partial keeps the rest
    const r = await vigil('import', '--ipvsadm-save', rules, '-o', out, '--partial');
    expect(r.exitCode).toBe(0);
    const cfg = parseYaml(readFileSync(out, 'utf8'));
    expect(cfg.services.map((s: { protocol: string; vip: string; port: number }) => `${s.protocol} ${s.vip}:${s.port}`)).toEqual(['tcp 127.0.0.1:80', 'udp 127.0.0.1:53']);
    expect(r.stderr).toMatch(/named\.rules:4: error: .* — cannot resolve "no-such-host\.invalid"/);
  });

  it('refuses to overwrite a different key, and usage errors exit 2', async () => {
    const out = join(dir, 'k3.yaml');
    const key = join(dir, 'k3.key');
    await vigil('import', '--authkeys', join(SEED, 'authkeys'), '--key-file', key, '-o', out);
    const other = join(dir, 'other-authkeys');
    (await import('node:fs')).writeFileSync(other, 'auth 1\n1 sha1 a-different-key-for-this-test\n');
    const r = await vigil('import', '--authkeys', other, '--key-file', key, '-o', out);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/exists with a different key; not overwritten/);
    expect((await vigil('import')).exitCode).toBe(2);
    expect((await vigil('import', '--address', 'nonsense', '--ha-cf', join(SEED, 'ha.cf'))).exitCode).toBe(2);
    const help = await vigil('import', '--help');
    expect(help.stdout).toMatch(/--vip-interface/);
  });
});
