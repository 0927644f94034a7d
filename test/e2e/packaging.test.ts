/**
 * What an operator installs, installed for real:
 *
 *   - `npm pack` (its prepack builds) holds dist/, and the tarball installed into an empty
 *     prefix runs: `vigil --version`, `vigil validate` on the packaged config
 *   - every dependency in the lockfile accepts the Node floor package.json declares
 *   - `npm run package:deb`'s builder makes a .deb that dpkg installs into a clean Debian 12
 *     root (mmdebstrap minbase, cached in /tmp): the vigil user, /etc/vigil as a conffile,
 *     then, chrooted, `vigil --version`, `vigil validate /etc/vigil/vigil.yaml`, and the
 *     validation of the unit's ExecStart config as the unit runs it (user vigil)
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; engines: { node: string }; files: string[] };
const exec = promisify(execFile);
const root = process.getuid?.() === 0;
const has = (bin: string): boolean => ['/usr/bin', '/usr/sbin', '/bin', '/sbin'].some((d) => existsSync(join(d, bin)));
const cleanup: (() => Promise<unknown> | void)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
}, 300_000); // removing a Debian root on a loaded machine takes a while

/** Runs a command; `clean`: with only `env` (a chroot must not inherit this machine's NODE_*, ...). */
async function run(cmd: string, args: string[], opts: { cwd?: string; timeout?: number; env?: NodeJS.ProcessEnv; clean?: boolean } = {}) {
  try {
    const env = opts.clean ? opts.env : { ...process.env, ...opts.env };
    const r = await exec(cmd, args, { cwd: opts.cwd ?? ROOT, timeout: opts.timeout ?? 120_000, env, maxBuffer: 64 << 20 });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const x = e as { code: number | string; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : -1, out: x.stdout ?? '', err: x.stderr ?? String(e) };
  }
}

/** `>=20.5.0`, `>= 10.x`, `^18.19.0 || >=20.5.0`: does `v` (x.y.z) satisfy it? Unknown forms throw. */
export function satisfies(v: string, range: string): boolean {
  const [a, b, c] = v.split('.').map(Number) as [number, number, number];
  const cmp = (x: number[]): number => a - (x[0] ?? 0) || b - (x[1] ?? 0) || c - (x[2] ?? 0);
  return range.split('||').some((alt) => {
    const m = /^\s*(>=|\^)\s*(\d+)(?:\.(\d+|x))?(?:\.(\d+|x))?\s*$/.exec(alt);
    if (!m) throw new Error(`engine range "${range}" not understood`);
    const want = [Number(m[2]), m[3] === 'x' || m[3] === undefined ? 0 : Number(m[3]), m[4] === 'x' || m[4] === undefined ? 0 : Number(m[4])];
    return m[1] === '>=' ? cmp(want) >= 0 : a === want[0] && cmp(want) >= 0;
  });
}

describe('engines', () => {
  it.each([
    ['20.5.0', '>=20', true],
    ['20.5.0', '^18.19.0 || >=20.5.0', true],
    ['20.4.0', '^18.19.0 || >=20.5.0', false],
    ['20.5.0', '>=22', false],
    ['20.5.0', '>= 10.x', true],
    ['20.5.0', '^16 || ^18 || >=20', true],
  ])('satisfies(%s, %s) = %s', (v, r, ok) => expect(satisfies(v, r)).toBe(ok));

  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string; dev?: boolean; engines?: { node?: string } }> };
  const refusing = (v: string, dev: boolean) =>
    Object.entries(lock.packages)
      .filter(([path, p]) => path !== '' && Boolean(p.dev) === dev && p.engines?.node !== undefined && !satisfies(v, p.engines.node))
      .map(([path, p]) => `${path}@${p.version}: node ${p.engines?.node}`);

  it('every runtime dependency in the lockfile accepts the Node floor package.json declares (no EBADENGINE)', () => {
    const floor = /^>=(\d+\.\d+\.\d+)$/.exec(pkg.engines.node)?.[1];
    expect(floor, `engines.node "${pkg.engines.node}" is not >=x.y.z`).toBeDefined();
    expect(refusing(floor as string, false)).toEqual([]);
    // and one below the floor is refused by some dependency: the floor is not lower than it must be
    const [maj, min] = (floor as string).split('.').map(Number) as [number, number];
    expect(refusing(`${maj}.${Math.max(0, min - 1)}.0`, false).length).toBeGreaterThan(0);
  });

  it('the development tools accept the Node running the tests (vitest 4 needs 20.19: README says so)', () => {
    expect(refusing(process.versions.node, true)).toEqual([]);
  });
});

describe('npm pack', () => {
  it('the tarball holds dist/ and LICENSE, and installed into an empty prefix `vigil --version` runs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-pack-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const p = await run('npm', ['pack', '--json', '--pack-destination', dir], { timeout: 600_000 }); // prepack builds
    expect(p.code, p.err).toBe(0);
    const [info] = JSON.parse(p.out) as { filename: string; files: { path: string }[] }[];
    const files = info!.files.map((f) => f.path);
    for (const f of ['dist/cli.js', 'dist/daemon.js', 'dist/api/page.js', 'bin/vigil.js', 'LICENSE', 'CHANGELOG.md', 'README.md', 'package.json', 'config/vigil.yaml', 'checks/tcp'])
      expect(files, f).toContain(f);
    expect(files.filter((f) => f.startsWith('test/') || f.startsWith('src/') || f.startsWith('node_modules/'))).toEqual([]);

    const prefix = join(dir, 'prefix');
    // dependencies from npm's cache when it has them, else the registry (npm's ordinary client)
    const i = await run('npm', ['install', '--global', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', join(dir, info!.filename)], { timeout: 600_000 });
    expect(i.code, i.err).toBe(0);
    const v = await run(join(prefix, 'bin', 'vigil'), ['--version']);
    expect(v.err).toBe('');
    expect(v.out.trim()).toBe(pkg.version);
    const installed = join(prefix, 'lib', 'node_modules', 'vigil');
    const val = await run(join(prefix, 'bin', 'vigil'), ['validate', join(installed, 'config', 'vigil.yaml')]);
    expect(val.out.trim()).toBe(`${join(installed, 'config', 'vigil.yaml')}: ok`);
    expect(val.code).toBe(0);
  }, 900_000);
});

const debTools = root && has('dpkg-deb') && has('mmdebstrap') && has('chroot');
if (!debTools) console.log('packaging: the .deb test needs root, dpkg-deb, chroot and mmdebstrap (apt-get install mmdebstrap; .ci/run does): it skips');

/** A clean Debian 12 root as a tarball, made once per machine (in /tmp) by mmdebstrap from Debian's mirror. */
async function debianRootTar(): Promise<string> {
  const tar = join(tmpdir(), 'vigil-debroot-bookworm-minbase.tar');
  if (existsSync(tar)) return tar;
  // --format=tar: mmdebstrap guesses the format from the name, and a ".partial" one made a directory
  const partial = `${tar}.${process.pid}.partial`;
  const r = await run('mmdebstrap', ['--variant=minbase', '--format=tar', '--include=iproute2', '--mode=root', 'bookworm', partial], { timeout: 1_500_000 });
  if (r.code !== 0) throw new Error(`mmdebstrap failed (${r.code}): ${r.err.split('\n').slice(-5).join('\n')}`);
  renameSync(partial, tar);
  return tar;
}

describe.skipIf(!debTools)('the Debian package in a clean Debian 12 root', () => {
  it('installs with dpkg; vigil --version and validate run there, also as the unit runs (user vigil)', async () => {
    const work = mkdtempSync(join(tmpdir(), 'vigil-deb-test-'));
    cleanup.push(() => rmSync(work, { recursive: true, force: true }));
    const b = await run(process.execPath, [join(ROOT, 'deploy', 'debian', 'build-deb.mjs'), '--out', work], { timeout: 600_000 });
    expect(b.code, b.err).toBe(0);
    const deb = readdirSync(work).find((f) => f.endsWith('.deb'));
    expect(deb).toMatch(new RegExp(`^vigil_${pkg.version.replaceAll('.', '\\.')}-1_\\w+\\.deb$`));

    const contents = (await run('dpkg-deb', ['--contents', join(work, deb!)])).out;
    for (const f of ['./usr/lib/vigil/dist/cli.js', './usr/lib/vigil/runtime/node', './usr/bin/vigil', './etc/vigil/vigil.yaml', './lib/systemd/system/vigil.service'])
      expect(contents, f).toContain(f);
    expect((await run('dpkg-deb', ['--info', join(work, deb!), 'conffiles'])).out.trim()).toBe('/etc/vigil/vigil.yaml');

    const tar = await debianRootTar();
    const target = join(work, 'root');
    expect((await run('mkdir', [target])).code).toBe(0);
    const x = await run('tar', ['-C', target, '-xf', tar], { timeout: 300_000 });
    expect(x.code, x.err).toBe(0);
    expect((await run('cp', [join(work, deb!), join(target, 'tmp', 'vigil.deb')])).code).toBe(0);
    expect((await run('mount', ['-t', 'proc', 'proc', join(target, 'proc')])).code).toBe(0);
    cleanup.push(() => run('umount', ['-l', join(target, 'proc')]));
    const inRoot = (...args: string[]) => run('/usr/sbin/chroot', [target, ...args], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' }, clean: true, timeout: 300_000 });

    // a clean root: no node at all, and no vigil user yet
    expect((await inRoot('sh', '-c', 'command -v node || echo none')).out.trim()).toBe('none');
    const i = await inRoot('dpkg', '-i', '/tmp/vigil.deb');
    expect(i.code, i.out + i.err).toBe(0);
    expect((await inRoot('getent', 'passwd', 'vigil')).out).toMatch(/^vigil:x:\d+:\d+:.*:\/var\/lib\/vigil:\/usr\/sbin\/nologin$/m);
    expect((await inRoot('stat', '-c', '%U:%G %a', '/etc/vigil')).out.trim()).toBe('root:vigil 750');
    expect((await inRoot('dpkg-query', '-W', '-f=${Conffiles}', 'vigil')).out).toContain('/etc/vigil/vigil.yaml');

    const v = await inRoot('vigil', '--version');
    expect(v.out.trim()).toBe(pkg.version);
    const val = await inRoot('vigil', 'validate', '/etc/vigil/vigil.yaml');
    expect(val.out.trim()).toBe('/etc/vigil/vigil.yaml: ok');
    expect(val.code).toBe(0);

    // the config the unit's ExecStart reads, validated as the unit runs (user vigil, ${VIGIL_CONFIG}
    // from Environment=). The unit has no ExecStartPre: `vigil run` refuses an invalid config
    // itself with exit 78, which RestartPreventExitStatus honours (test/e2e/systemd-unit.test.ts)
    const unit = readFileSync(join(target, 'lib', 'systemd', 'system', 'vigil.service'), 'utf8');
    const env = Object.fromEntries([...unit.matchAll(/^Environment=(\w+)=(.*)$/gm)].map((m) => [m[1], m[2]]));
    const start = /^ExecStart=(.*)$/m.exec(unit)?.[1]?.replace(/\$\{(\w+)\}/g, (_, k: string) => env[k] ?? '');
    expect(start).toBe('/usr/bin/vigil run --config /etc/vigil/vigil.yaml');
    const asVigil = await run('/usr/sbin/chroot', ['--userspec=vigil:vigil', target, '/usr/bin/vigil', 'validate', start!.split(' ').at(-1)!], { env: { PATH: '/usr/bin:/bin' }, clean: true });
    expect(asVigil.err).toBe('');
    expect(asVigil.out.trim()).toBe('/etc/vigil/vigil.yaml: ok');
    expect(asVigil.code).toBe(0);
    // and the user is not given what it should not have
    const write = await run('/usr/sbin/chroot', ['--userspec=vigil:vigil', target, 'sh', '-c', 'echo x >> /etc/vigil/vigil.yaml'], { env: { PATH: '/usr/bin:/bin' }, clean: true });
    expect(write.err).toContain('Permission denied');
  }, 1_800_000);
});

