/**
 * `vigil import` on the example files Debian ships in its heartbeat, mon and ldirectord
 * packages, fetched with `apt-get download` and unpacked with `dpkg -x` here (never
 * copied into the repository). Each file is converted as shipped; the Heartbeat and
 * ldirectord examples, which are templates with every directive commented out, are
 * also converted "filled in" (their example directives uncommented by rule), and each
 * result is validated by the real loader. The report must name every untranslated line.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

const ROOT = resolve(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'cli.js');
const dir = mkdtempSync(join(tmpdir(), 'vigil-import-debian-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ex = join(dir, 'x');

async function download(): Promise<string | undefined> {
  const get = () => execa('apt-get', ['download', 'heartbeat', 'mon', 'ldirectord'], { cwd: dir, reject: false, timeout: 120_000 });
  let r = await get();
  if (r.exitCode !== 0 && process.getuid?.() === 0) {
    await execa('apt-get', ['update', '-qq'], { reject: false, timeout: 180_000 });
    r = await get();
  }
  if (r.exitCode !== 0) return `apt-get download failed: ${(r.stderr || r.stdout).split('\n').slice(-2).join(' ')}`;
  for (const deb of readdirSync(dir).filter((f) => f.endsWith('.deb'))) {
    const x = await execa('dpkg', ['-x', join(dir, deb), ex], { reject: false });
    if (x.exitCode !== 0) return `dpkg -x ${deb} failed: ${x.stderr}`;
  }
  return undefined;
}

// fetched at collection time, so the whole suite can be skipped (with the reason) when apt cannot
const skipReason = await download();
if (skipReason) console.log(`import-debian: skipping, ${skipReason}`);

/** A shipped file, gunzipped when Debian compressed it. */
function shipped(path: string): string {
  const p = join(ex, path);
  if (existsSync(p)) return readFileSync(p, 'utf8');
  return gunzipSync(readFileSync(`${p}.gz`)).toString('utf8');
}
function write(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}
const vigil = (...args: string[]) => execa('node', [CLI, ...args], { reject: false, cwd: dir });

interface Entry {
  file: string;
  line: number;
  kind: string;
  reason: string;
}
function report(stderr: string): Entry[] {
  return stderr
    .split('\n')
    .map((l) => /^(.+?):(\d+): (error|untranslated|adjusted|note): .*? — (.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ file: m[1] as string, line: Number(m[2]), kind: m[3] as string, reason: m[4] as string }));
}
/** Non-blank, non-comment lines and their directive (first word, or key before =). */
function significant(text: string, comment: RegExp = /#.*/): { line: number; word: string; text: string }[] {
  return text
    .split('\n')
    .map((raw, i) => ({ line: i + 1, text: raw.replace(comment, '').trim() }))
    .filter((l) => l.text !== '')
    .map((l) => ({ ...l, word: (/^([A-Za-z0-9_]+)/.exec(l.text)?.[1] ?? '').toLowerCase() }));
}

const HA_DIRECTIVES = new Set([
  'keepalive', 'deadtime', 'warntime', 'initdead', 'udpport', 'baud', 'serial', 'bcast', 'mcast', 'ucast', 'auto_failback', 'stonith',
  'stonith_host', 'watchdog', 'node', 'ping', 'ping_group', 'hbaping', 'respawn', 'apiauth', 'hopfudge', 'deadping', 'hbgenmethod',
  'realtime', 'debug', 'msgfmt', 'use_logd', 'conn_logd_time', 'compression', 'compression_threshold', 'debugfile', 'logfile', 'logfacility',
]);
/** Uncomments `#directive value` lines of the Heartbeat template (not its prose). */
function fillHaCf(text: string): string {
  return text
    .split('\n')
    .map((l) => {
      const m = /^#([a-z_]+)([ \t]+\S.*)$/.exec(l);
      return m && HA_DIRECTIVES.has(m[1] as string) && !l.includes('...') && !l.includes('[') ? l.slice(1) : l;
    })
    .join('\n');
}

// every test runs the CLI (import, then validate) as child processes: a second each on a
// quiet machine, tens of seconds under stress-ng, hence the per-test timeout
describe.skipIf(skipReason !== undefined)('Debian example files', { timeout: 240_000 }, () => {
  it('heartbeat ha.cf as shipped: no node and no medium, so it does not validate; logfacility is reported', async () => {
    const f = write('ha.cf', shipped('usr/share/doc/heartbeat/ha.cf'));
    const r = await vigil('import', '--ha-cf', f, '--node', 'ken3', '-o', join(dir, 'hacf-shipped.yaml'));
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/lists no node/);
    expect(r.stderr).toMatch(/no heartbeat medium/);
    const lines = significant(readFileSync(f, 'utf8'));
    expect(lines.map((l) => l.text)).toEqual(['logfacility\tlocal0', 'auto_failback on']);
    const rep = report(r.stderr);
    expect(rep.filter((e) => e.kind === 'untranslated').map((e) => e.line)).toEqual([lines[0]?.line]);
  });

  it('heartbeat ha.cf, haresources-free, filled in with its example directives, and authkeys: validates; every other directive is reported', async () => {
    const filled = fillHaCf(shipped('usr/share/doc/heartbeat/ha.cf'));
    const f = write('ha.cf.filled', filled);
    const keys = write('authkeys.2', shipped('usr/share/doc/heartbeat/authkeys').replace(/^#auth 1$/m, 'auth 2').replace(/^#(\d+ (?:crc|sha1|md5).*)$/gm, '$1'));
    const out = join(dir, 'hacf-filled', 'vigil.yaml');
    const r = await vigil('import', '--ha-cf', f, '--authkeys', keys, '--node', 'ken3', '--address', 'eth0=192.168.1.1', '-o', out);
    expect(r.stderr).toMatch(/the output validates/);
    expect(r.exitCode).toBe(0);
    expect((await vigil('validate', out)).exitCode).toBe(0);
    const cfg = parseYaml(readFileSync(out, 'utf8'));
    expect(cfg.cluster).toMatchObject({ interval_ms: 2000, deadtime_ms: 30_000, warntime_ms: 10_000, initdead_ms: 120_000, port: 694, preempt: true });
    expect(cfg.cluster.nodes.map((n: { name: string }) => n.name)).toEqual(['ken3', 'kathy']);
    expect(cfg.cluster.nodes[1].links).toContainEqual({ name: 'eth0', address: '192.168.1.2' });
    expect(cfg.cluster.tracks.map((t: { target: string }) => t.target)).toEqual(['10.10.10.254', '10.10.10.253']);
    expect(r.stderr).toMatch(/ping_group group1 .*10\.10\.10\.254 is already tracked/);
    expect(r.stderr).not.toContain('mysecretpassword');
    expect(statSync(join(dir, 'hacf-filled', 'vigil.key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, 'hacf-filled', 'vigil.key'), 'utf8')).toBe('HI!');

    // every directive vigil has no counterpart for is reported by line
    const translatable = new Set(['keepalive', 'deadtime', 'warntime', 'initdead', 'udpport', 'bcast', 'mcast', 'ucast', 'auto_failback', 'node', 'ping', 'ping_group', 'deadping', 'respawn']);
    const rep = report(r.stderr);
    const reported = new Set(rep.filter((e) => e.kind === 'untranslated').map((e) => e.line));
    const lines = significant(filled);
    expect(lines.length).toBeGreaterThan(30);
    for (const l of lines) {
      if (!translatable.has(l.word)) expect(reported, `line ${l.line}: ${l.text}`).toContain(l.line);
    }
    // and the unicast mapping of bcast/mcast is reported too
    for (const l of lines.filter((x) => x.word === 'bcast' || x.word === 'mcast')) {
      expect(rep.some((e) => e.line === l.line && /mapped to unicast/.test(e.reason))).toBe(true);
    }
  });

  it('heartbeat authkeys: as shipped there is no key; crc is refused; sha1 and md5 are written 0600', async () => {
    const text = shipped('usr/share/doc/heartbeat/authkeys');
    const ha = write('ha.cf.pair', 'ucast eth1 10.0.0.2\nnode a b\n');
    const run = async (name: string, keys: string) =>
      vigil('import', '--ha-cf', ha, '--authkeys', write(name, keys), '--node', 'a', '--address', 'eth1=10.0.0.1', '--key-file', join(dir, `${name}.key`), '-o', join(dir, `${name}.yaml`));
    const asShipped = await run('authkeys.shipped', text);
    expect(asShipped.exitCode).toBe(1);
    expect(asShipped.stderr).toMatch(/no usable key \(authkeys has no "auth <n>" line\)/);
    const uncommented = text.replace(/^#(auth \d|\d+ (?:crc|sha1|md5).*)$/gm, '$1');
    const crc = await run('authkeys.crc', uncommented);
    expect(crc.exitCode).toBe(1);
    expect(crc.stderr).toMatch(/authkeys\.crc:\d+: untranslated: 1 crc — crc authenticates nothing .*HMAC-SHA256/);
    expect(existsSync(join(dir, 'authkeys.crc.key'))).toBe(false);
    for (const [n, key] of [['2', 'HI!'], ['3', 'Hello!']] as const) {
      const r = await run(`authkeys.${n}`, uncommented.replace(/^auth 1$/m, `auth ${n}`));
      expect(r.exitCode).toBe(0);
      expect(readFileSync(join(dir, `authkeys.${n}.key`), 'utf8')).toBe(key);
      expect(statSync(join(dir, `authkeys.${n}.key`)).mode & 0o777).toBe(0o600);
      expect(r.stderr).not.toContain(key);
    }
  });

  it('heartbeat haresources: each example resource group converts and validates', async () => {
    const examples = shipped('usr/share/doc/heartbeat/haresources')
      .split('\n')
      .filter((l) => /^#\S+\s+\d+\.\d+\.\d+\.\d+/.test(l))
      .map((l) => l.slice(1));
    expect(examples.length).toBeGreaterThanOrEqual(5);
    for (const [i, line] of examples.entries()) {
      const node = line.split(/\s+/)[0] as string;
      const ha = write(`ha.cf.res${i}`, `ucast eth1 10.0.0.2\nnode ${node} peer\n`);
      const res = write(`haresources.${i}`, `${line}\n`);
      const keys = write(`authkeys.res${i}`, 'auth 1\n1 sha1 a-long-enough-shared-key\n');
      const out = join(dir, `res${i}`, 'vigil.yaml');
      const r = await vigil('import', '--ha-cf', ha, '--haresources', res, '--authkeys', keys, '--node', node, '--address', 'eth1=10.0.0.1', '--vip-interface', 'eth0', '-o', out);
      expect(r.exitCode, `${line}\n${r.stderr}`).toBe(0);
      expect((await vigil('validate', out)).exitCode).toBe(0);
      const cfg = parseYaml(readFileSync(out, 'utf8'));
      const ips = line.match(/\d+\.\d+\.\d+\.\d+/g) ?? [];
      // every address of the group is a VIP, except a broadcast address
      for (const ip of ips.filter((a) => !line.includes(`/${a}`))) expect(cfg.vips.map((v: { address: string }) => v.address)).toContain(ip);
      if (line.includes('Filesystem::')) {
        expect(cfg.cluster.resources[0].path).toBe('resources/Filesystem-1.sh');
        expect(readFileSync(join(dir, `res${i}`, 'resources', 'Filesystem-1.sh'), 'utf8')).toContain("'/dev/sda1' '/data1' 'ext2'");
      }
      if (line.includes('/eth0/135.9.216.12')) expect(r.stderr).toMatch(/broadcast 135\.9\.216\.12 is not used/);
    }
  }, 480_000); // ~12 CLI runs (import + validate, which now also loads the cluster module to read the key): minutes on a loaded machine

  it.each([
    ['etc/mon/mon.cf'],
    ['usr/share/doc/mon/examples/very-simple.cf'],
    ['usr/share/doc/mon/examples/example.cf'],
  ])('mon %s alone: validates, and every line but mondir and maxprocs is reported (no real servers to check)', async (path) => {
    const text = shipped(path);
    const f = write(path.replace(/\//g, '_'), text);
    const out = join(dir, `${path.replace(/\//g, '_')}.yaml`);
    const r = await vigil('import', '--mon-cf', f, '-o', out);
    expect(r.exitCode).toBe(0);
    expect((await vigil('validate', out)).exitCode).toBe(0);
    const reported = new Set(report(r.stderr).filter((e) => e.kind === 'untranslated').map((e) => e.line));
    const lines = significant(text, /^\s*#.*/);
    for (const l of lines) {
      if (l.word === 'mondir' || l.word === 'maxprocs') expect(reported).not.toContain(l.line);
      else expect(reported, `line ${l.line}: ${l.text}`).toContain(l.line);
    }
  });

  it('mon /etc/mon/mon.cf with a virtual service whose real server is localhost: the http monitor becomes its check, and only it', async () => {
    const f = write('mon.cf.local', shipped('etc/mon/mon.cf'));
    const rules = write('rules.local', '-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 127.0.0.1:80 -m -w 1\n');
    const out = join(dir, 'mon-local.yaml');
    const r = await vigil('import', '--mon-cf', f, '--ipvsadm-save', rules, '-o', out);
    expect(r.exitCode).toBe(0);
    const cfg = parseYaml(readFileSync(out, 'utf8'));
    // http.monitor's verdict (200, 301, 302, 401 are up), its 30 s timeout, Host: as mon names the host
    expect(cfg.services[0].check).toMatchObject({ type: 'http', interval_ms: 600_000, timeout_ms: 30_000, expect_status: [200, 301, 302, 401], host: 'localhost' });
    // fping probes the host and smtp.monitor port 25: neither is attached to the :80 service
    expect(r.stderr).toMatch(/monitor fping\.monitor — fping\.monitor probes the host \(ICMP\), not a service/);
    expect(r.stderr).toMatch(/monitor smtp\.monitor -t 60 — the monitor probes tcp port 25 on localhost, where no imported virtual service has a real server/);
    expect(r.stderr).toMatch(/alert mail\.alert root@localhost — vigil runs no alert scripts/);
  });

  it('ldirectord.cf as shipped: validates; autoreload is reported', async () => {
    const f = write('ldirectord.cf', shipped('usr/share/doc/ldirectord/examples/ldirectord.cf'));
    const out = join(dir, 'ld.yaml');
    const r = await vigil('import', '--ldirectord', f, '-o', out);
    expect(r.exitCode).toBe(0);
    expect((await vigil('validate', out)).exitCode).toBe(0);
    const cfg = parseYaml(readFileSync(out, 'utf8'));
    expect(cfg.services).toHaveLength(1);
    expect(cfg.services[0]).toMatchObject({
      name: 'Web-Site',
      vip: '192.168.6.240',
      port: 80,
      scheduler: 'rr',
      sorry_server: { address: '127.0.0.1', port: 80 },
      check: { type: 'http', path: '/index.html', body_regex: 'Test Page', host: 'www.x.y.z' },
    });
    expect(cfg.services[0].real_servers.map((r: { address: string }) => r.address)).toEqual(['192.168.6.2', '192.168.6.3', '192.168.6.6']);
    expect(report(r.stderr).filter((e) => e.kind === 'untranslated').map((e) => e.line)).toEqual([16]);
    // comment= is kept as a YAML comment above the service
    expect(readFileSync(out, 'utf8')).toMatch(/# from .*ldirectord\.cf:25: Test load balanced web site\n\s+- name: Web-Site/);
  });

  it('ldirectord.cf with every example virtual service uncommented: validates; each setting vigil lacks is reported', async () => {
    // uncomment the "#virtual=..." blocks: the virtual line and its "#\t..." lines
    let inBlock = false;
    const filled = shipped('usr/share/doc/ldirectord/examples/ldirectord.cf')
      .split('\n')
      .map((l) => {
        if (/^#virtual6?\s*=/.test(l)) inBlock = true;
        else if (!/^#\t/.test(l)) inBlock = false;
        return inBlock ? l.slice(1) : l;
      })
      .join('\n');
    const f = write('ldirectord.cf.filled', filled);
    const out = join(dir, 'ld-filled.yaml');
    // errors (exit 1): sql01->sql03 does not resolve here (ldirectord would refuse to
    // start), 192.168.6.240:80 is defined twice, and negotiate checks vigil has no probe
    // for (ftp, smtp, ...); --partial accepts the rest knowingly
    const strict = await vigil('import', '--ldirectord', f, '-o', out);
    expect(strict.stderr).toMatch(/the output validates/);
    expect(strict.exitCode).toBe(1);
    const errors = report(strict.stderr).filter((e) => e.kind === 'error');
    expect(errors.some((e) => /cannot resolve "sql01"/.test(e.reason))).toBe(true);
    expect(errors.some((e) => /negotiate check for "ftp" talks the protocol/.test(e.reason))).toBe(true);
    const r = await vigil('import', '--ldirectord', f, '-o', out, '--partial');
    expect(r.exitCode).toBe(0);
    expect((await vigil('validate', out)).exitCode).toBe(0);
    const cfg = parseYaml(readFileSync(out, 'utf8'));
    expect(cfg.services.length).toBeGreaterThanOrEqual(14);
    expect(cfg.services.find((s: { fwmark?: number }) => s.fwmark === 1)).toBeDefined();
    expect(cfg.services.find((s: { vip: string }) => s.vip === '2001:db8::5')).toMatchObject({ port: 119, forward: 'nat' });
    const rep = report(r.stderr);
    const reported = new Set(rep.filter((e) => e.kind === 'untranslated').map((e) => e.line));
    for (const l of significant(filled)) {
      if (['login', 'passwd', 'database', 'secret', 'autoreload'].includes(l.word)) expect(reported, `line ${l.line}: ${l.text}`).toContain(l.line);
    }
    // the duplicate 192.168.6.240:80 block and the unresolvable sql01->sql03 are reported, not dropped
    expect(rep.some((e) => /duplicate virtual service 192\.168\.6\.240:80/.test(e.reason))).toBe(true);
    expect(rep.some((e) => /cannot resolve "sql01"/.test(e.reason))).toBe(true);
  }, 120_000); // three CLI runs (node starts) on a loaded machine
});

