/**
 * deploy/vigil.service under a real systemd as PID 1 and a real journald: a clean Debian 12
 * root (mmdebstrap minbase + systemd, cached in /tmp as a tarball) with `npm run
 * package:deb`'s .deb installed, booted with `systemd-nspawn --boot` on a private network
 * (only lo; the test adds a veth pair inside the container for the VIP). Commands run in
 * the container through nsenter into its PID 1's namespaces, with a clean environment.
 *
 *   - `systemd-analyze verify` of the installed unit: nothing to say
 *   - Type=notify: the unit is "activating" until the daemon's READY=1, and "active" only
 *     after the daemon logged "vigil started" (which precedes READY=1); the API answers
 *     the moment `systemctl start` returns; STATUS= shows in `systemctl status`
 *   - journal priorities: `journalctl -u vigil -p warning` holds vigil's warning (a lone
 *     director going active at initdead) and none of its info lines
 *   - the cluster process runs SCHED_RR (`chrt -p`) as user vigil with exactly the unit's
 *     four capabilities; the VIP is on the container's interface
 *   - SIGKILL of every process: ExecStopPost (`vigil cleanup`) removes the VIP, then
 *     Restart=always brings the unit back
 *   - `systemctl stop`: ExecStopPost runs, no VIP is left
 *   - an invalid config: `vigil run` exits 78 with the problem at priority err, and the
 *     unit is not restarted (RestartPreventExitStatus)
 *   - a crash loop (the API port held by another process): exactly StartLimitBurst starts,
 *     then failed ("Start request repeated too quickly") and no further start
 *
 * Needs root, systemd-nspawn (systemd-container), mmdebstrap, dpkg-deb and nsenter; skips
 * with a reason otherwise. The container, its root and work directory are removed even on
 * failure; names carry a run id.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..', '..');
const exec = promisify(execFile);
const root = process.getuid?.() === 0;
const has = (bin: string): boolean => ['/usr/bin', '/usr/sbin', '/bin', '/sbin'].some((d) => existsSync(join(d, bin)));
const missing = ['systemd-nspawn', 'mmdebstrap', 'dpkg-deb', 'nsenter', 'chroot', 'curl'].filter((b) => !has(b));
const ready = root && missing.length === 0;
if (!root) console.log('systemd-unit: skipped, needs root (systemd-nspawn, a Debian root)');
else if (missing.length > 0) console.log(`systemd-unit: skipped, missing ${missing.join(', ')} (apt-get install systemd-container mmdebstrap util-linux curl; .ci/run does)`);

const runId = `${process.pid.toString(36)}${Math.floor(Math.random() * 1e4).toString(36)}`;
const MACHINE = `vigil-unit-${runId}`;
const VIP = '10.77.0.100';
const SELF = '10.77.0.1';
/** CAP_NET_BIND_SERVICE (10), CAP_NET_ADMIN (12), CAP_NET_RAW (13), CAP_SYS_NICE (23): the unit's four. */
const UNIT_CAPS = (1n << 10n) | (1n << 12n) | (1n << 13n) | (1n << 23n);

type Result = { code: number; out: string; err: string };
async function run(cmd: string, args: string[], opts: { timeout?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Result> {
  try {
    const r = await exec(cmd, args, { cwd: ROOT, timeout: opts.timeout ?? 120_000, env: opts.env ?? process.env, maxBuffer: 64 << 20 });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const x = e as { code: number | string; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : -1, out: x.stdout ?? '', err: x.stderr ?? String(e) };
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A clean Debian 12 root with systemd as a tarball, made once per machine (in /tmp) by
 * mmdebstrap from Debian's mirror (about 4 minutes). util-linux (chrt) and perl-base (the
 * sd_notify sender) are Essential in Debian 12, so minbase has them.
 */
async function debianSystemdRootTar(): Promise<string> {
  const tar = join(tmpdir(), 'vigil-debroot-bookworm-systemd.tar');
  if (existsSync(tar)) return tar;
  const partial = `${tar}.${process.pid}.partial`;
  const r = await run('mmdebstrap', ['--variant=minbase', '--format=tar', '--include=systemd,dbus,iproute2,iputils-arping,procps', '--mode=root', 'bookworm', partial], { timeout: 1_500_000 });
  if (r.code !== 0) {
    rmSync(partial, { recursive: true, force: true });
    throw new Error(`mmdebstrap failed (${r.code}): ${r.err.split('\n').slice(-5).join('\n')}`);
  }
  renameSync(partial, tar);
  return tar;
}

/** The config the container's vigil runs: a lone director with a managed VIP on eth0, the forwarder dataplane. */
const CONFIG = `node: d1
cluster:
  id: unit-test
  port: 16694
  nodes:
    - name: d1
      priority: 100
      links:
        - name: lan
          address: ${SELF}
vips:
  - address: ${VIP}
    prefix: 24
    interface: eth0
services:
  - name: web
    protocol: tcp
    vip: ${VIP}
    port: 8080
    scheduler: wlc
    forward: nat
    real_servers:
      - address: 127.0.0.1
        port: 9694
        weight: 1
dataplane:
  mode: forwarder
api:
  listen: 127.0.0.1:9694
logging:
  level: info
`;

describe.skipIf(!ready)('deploy/vigil.service under systemd as PID 1 (systemd-nspawn --boot)', () => {
  let work = '';
  let target = '';
  let nspawn: ChildProcess | undefined;
  let nspawnExited = false;
  let leader = 0;
  const consoleLog = () => join(work, 'console.log');

  /** A command in the container: its PID 1's namespaces, a clean environment. */
  const inside = (args: string[], timeout = 120_000) =>
    run('nsenter', ['-t', String(leader), '-m', '-u', '-i', '-n', '-p', '-C', '--', 'env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'LANG=C.UTF-8', ...args], { timeout, env: { PATH: process.env.PATH } });
  const systemctl = (...args: string[]) => inside(['systemctl', '--no-pager', ...args], 300_000);
  const show = async (...props: string[]): Promise<Record<string, string>> => {
    const r = await systemctl('show', '--timestamp=us+utc', 'vigil', ...props.map((p) => `--property=${p}`));
    return Object.fromEntries(r.out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  };
  /** The unit's journal since a cursor: MESSAGE, PRIORITY, _PID, SYSLOG_IDENTIFIER per entry. */
  const journal = async (extra: string[] = []): Promise<{ MESSAGE: string; PRIORITY: string; SYSLOG_IDENTIFIER?: string; _PID?: string }[]> => {
    const r = await inside(['journalctl', '--no-pager', '-u', 'vigil', '-o', 'json', ...extra]);
    return r.out.trim() === '' ? [] : r.out.trim().split('\n').map((l) => JSON.parse(l) as { MESSAGE: string; PRIORITY: string });
  };
  const cursor = async (): Promise<string> => {
    const r = await inside(['journalctl', '--no-pager', '-n', '1', '-o', 'json']);
    return (JSON.parse(r.out.trim().split('\n').at(-1) as string) as { __CURSOR: string }).__CURSOR;
  };
  const vipPresent = async (): Promise<boolean> => (await inside(['ip', '-br', 'addr', 'show', 'dev', 'eth0'])).out.includes(`${VIP}/24`);
  /** Polls `probe` until it is true or `ms` passed. */
  const until = async (probe: () => Promise<boolean>, ms: number, step = 200): Promise<boolean> => {
    const end = Date.now() + ms;
    for (;;) {
      if (await probe()) return true;
      if (Date.now() > end) return false;
      await sleep(step);
    }
  };
  const usTime = (s: string | undefined): number => {
    // "Sat 2026-12-05 07:41:40.123456 UTC"
    const m = /(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)\.(\d{6}) UTC/.exec(s ?? '');
    if (!m) throw new Error(`not a systemd us+utc timestamp: "${s}"`);
    return Date.parse(`${m[1]}T${m[2]}Z`) * 1000 + Number(m[3]);
  };

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'vigil-unit-test-'));
    const b = await run(process.execPath, [join(ROOT, 'deploy', 'debian', 'build-deb.mjs'), '--out', work], { timeout: 600_000 });
    if (b.code !== 0) throw new Error(`build-deb failed: ${b.err}`);
    const deb = readdirSync(work).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error(`build-deb made no .deb in ${work}`);

    const tar = await debianSystemdRootTar();
    target = join(work, 'root');
    for (const [cmd, args] of [
      ['mkdir', [target]],
      ['tar', ['-C', target, '-xf', tar]],
      ['cp', [join(work, deb), join(target, 'tmp', 'vigil.deb')]],
    ] as const) {
      const r = await run(cmd, [...args], { timeout: 300_000 });
      if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.err}`);
    }
    const i = await run('/usr/sbin/chroot', [target, 'dpkg', '-i', '/tmp/vigil.deb'], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' }, timeout: 300_000 });
    if (i.code !== 0) throw new Error(`dpkg -i in the root: ${i.out}${i.err}`);
    // the operator's config (the conffile keeps its owner and mode)
    writeFileSync(join(target, 'etc', 'vigil', 'vigil.yaml'), CONFIG);

    const out = openSync(consoleLog(), 'w');
    nspawn = spawn('systemd-nspawn', ['--quiet', '--boot', '--register=no', '--keep-unit', '--private-network', '--console=read-only', '-M', MACHINE, '-D', target], {
      stdio: ['ignore', out, out],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' },
    });
    closeSync(out);
    nspawn.on('exit', () => (nspawnExited = true));
    // the container's PID 1 (systemd) is nspawn's child
    const found = await until(async () => {
      if (nspawnExited) return true;
      const r = await run('ps', ['--ppid', String(nspawn?.pid), '-o', 'pid=,comm=']);
      const m = /^\s*(\d+)\s+systemd$/m.exec(r.out);
      if (m) leader = Number(m[1]);
      return leader > 0;
    }, 60_000);
    if (!found || nspawnExited) throw new Error(`systemd-nspawn did not boot the root:\n${readFileSync(consoleLog(), 'utf8').slice(-3000)}`);
    // systemctl can reach PID 1 once it opened /run/systemd/private; then wait for the boot to end
    let boot: Result = { code: -1, out: '', err: '' };
    await until(async () => {
      boot = await inside(['systemctl', 'is-system-running', '--wait'], 300_000);
      return ['running', 'degraded'].includes(boot.out.trim());
    }, 300_000, 500);
    if (!['running', 'degraded'].includes(boot.out.trim())) throw new Error(`the container's systemd is "${boot.out.trim()}" ${boot.err}\n${readFileSync(consoleLog(), 'utf8').slice(-3000)}`);
    // the director's interface: a veth pair inside the container's own network namespace
    const net = await inside(['sh', '-ec', `ip link add eth0 type veth peer name peer0; ip addr add ${SELF}/24 dev eth0; ip link set eth0 up; ip link set peer0 up`]);
    if (net.code !== 0) throw new Error(`network in the container: ${net.err}`);
  }, 1_800_000);

  afterAll(async () => {
    if (nspawn && !nspawnExited) {
      // SIGTERM: nspawn asks the container's systemd to power off
      nspawn.kill('SIGTERM');
      if (!(await until(async () => nspawnExited, 60_000, 250))) {
        if (leader > 0) {
          try {
            process.kill(leader, 'SIGKILL'); // the PID namespace's init: takes every process in it along
          } catch {
            // already gone
          }
        }
        nspawn.kill('SIGKILL');
        await until(async () => nspawnExited, 10_000, 100);
      }
    }
    if (work) rmSync(work, { recursive: true, force: true });
  }, 300_000);

  it('systemd-analyze verify of the installed unit has nothing to say', async () => {
    const v = await inside(['systemd-analyze', 'verify', '/lib/systemd/system/vigil.service']);
    expect(v.err).toBe('');
    expect(v.out).toBe('');
    expect(v.code).toBe(0);
  }, 120_000);

  it('Type=notify: activating until READY=1, active only after the daemon started; the API answers when start returns', async () => {
    const seen = new Set<string>();
    const start = systemctl('start', 'vigil'); // returns when the start job is done
    let done = false;
    void start.then(() => (done = true));
    while (!done) {
      seen.add((await systemctl('is-active', 'vigil')).out.trim());
      await sleep(100);
    }
    const s = await start;
    expect(s.code, s.err).toBe(0);
    const health = await run('nsenter', ['-t', String(leader), '-n', '--', 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', 'http://127.0.0.1:9694/healthz']);
    expect(health.out).toBe('200');
    expect(seen).toContain('activating');

    const p = await show('ActiveState', 'SubState', 'Type', 'StatusText', 'ExecMainStartTimestamp', 'ActiveEnterTimestamp', 'NRestarts');
    expect(p).toMatchObject({ ActiveState: 'active', SubState: 'running', Type: 'notify', StatusText: 'started; API on 127.0.0.1:9694', NRestarts: '0' });
    // "vigil started" is logged just before READY=1 (src/daemon.ts): systemd entered
    // "active" after it, not when the process was exec'd (that would be Type=exec)
    const started = (await journal()).map((e) => e.MESSAGE).find((m) => m.includes('"msg":"vigil started"'));
    expect(started).toBeDefined();
    const loggedUs = Date.parse((JSON.parse(started!.replace(/^<\d>/, '')) as { time: string }).time) * 1000;
    expect(loggedUs).toBeGreaterThan(usTime(p.ExecMainStartTimestamp));
    expect(usTime(p.ActiveEnterTimestamp)).toBeGreaterThanOrEqual(loggedUs);

    const status = await systemctl('status', 'vigil');
    expect(status.out).toMatch(/Active: active \(running\)/);
    expect(status.out).toContain('Status: "started; API on 127.0.0.1:9694"');
  }, 300_000);

  it('the journal has vigil\'s priorities: -p warning shows its warning and none of its info lines', async () => {
    // a lone director goes active when initdead expires: logged at warn
    const warned = await until(async () => (await journal(['-p', 'warning'])).some((e) => e.MESSAGE.includes('role init → active')), 30_000, 500);
    expect(warned).toBe(true);
    const warnings = (await journal(['-p', 'warning'])).filter((e) => e.SYSLOG_IDENTIFIER === 'vigil');
    expect(warnings.length).toBeGreaterThan(0);
    for (const e of warnings) {
      expect(e.MESSAGE).not.toContain('"level":"info"');
      expect(e.MESSAGE.startsWith('<')).toBe(false); // journald took the prefix as the priority
    }
    const all = (await journal()).filter((e) => e.SYSLOG_IDENTIFIER === 'vigil' && e.MESSAGE.startsWith('{'));
    const byLevel = (level: string) => all.filter((e) => e.MESSAGE.startsWith(`{"level":"${level}"`)).map((e) => e.PRIORITY);
    expect(byLevel('info').length).toBeGreaterThan(3);
    expect(new Set(byLevel('info'))).toEqual(new Set(['6']));
    expect(new Set(byLevel('warn'))).toEqual(new Set(['4']));
  }, 120_000);

  it('the cluster process runs SCHED_RR as user vigil with the unit\'s four capabilities; the VIP is up', async () => {
    const ps = await inside(['ps', '-eo', 'pid=,user:20=,args=']);
    const cluster = ps.out.split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f.slice(2).join(' ').includes('/usr/lib/vigil/dist/cluster/process.js'));
    expect(cluster.length, ps.out).toBe(1);
    const [pid, user] = cluster[0] as [string, string];
    expect(user).toBe('vigil');
    const chrt = await inside(['chrt', '-p', pid]);
    expect(chrt.out).toContain('scheduling policy: SCHED_RR');
    expect(chrt.out).toMatch(/scheduling priority: 10$/m);
    const status = (await inside(['cat', `/proc/${pid}/status`])).out;
    const cap = (name: string) => BigInt(`0x${new RegExp(`^${name}:\\s*([0-9a-f]+)$`, 'm').exec(status)?.[1] ?? 'x'}`);
    expect(cap('CapEff')).toBe(UNIT_CAPS);
    expect(cap('CapBnd')).toBe(UNIT_CAPS);
    expect(status).toMatch(/^NoNewPrivs:\s*1$/m);
    expect(await until(vipPresent, 30_000)).toBe(true);
  }, 120_000);

  it('SIGKILL of every process: ExecStopPost removes the VIP, then Restart=always brings vigil back', async () => {
    const from = await cursor();
    // every process of user vigil at once, by PID (`systemctl kill` of systemd 252 in this
    // container once failed with "Failed to send signal SIGKILL to auxiliary processes:
    // Input/output error" after killing some of them); a sd_notify sender that ended
    // between ps and kill is no error
    const pids = (await inside(['ps', '-u', 'vigil', '-o', 'pid='])).out.trim().split(/\s+/).filter(Boolean);
    expect(pids.length).toBeGreaterThan(2); // the daemon, the cluster process, forwarder workers
    const k = await inside(['sh', '-c', `for p in ${pids.join(' ')}; do kill -KILL "$p" 2>/dev/null; done; true`]);
    expect(k.code, k.err).toBe(0);
    expect(await until(async () => (await journal([`--after-cursor=${from}`])).some((e) => e.MESSAGE.includes('Main process exited, code=killed, status=9/KILL')), 30_000, 250)).toBe(true);
    // the cleanup's own line, from ExecStopPost, after the kill
    const cleaned = await until(async () => (await journal([`--after-cursor=${from}`])).some((e) => e.MESSAGE === `removed ${VIP}/24 from eth0`), 60_000, 250);
    expect(cleaned).toBe(true);
    const back = await until(async () => {
      const p = await show('ActiveState', 'NRestarts');
      return p.ActiveState === 'active' && p.NRestarts === '1';
    }, 120_000, 500);
    expect(back).toBe(true);
    expect(await until(vipPresent, 30_000)).toBe(true);
  }, 300_000);

  it('systemctl stop: ExecStopPost runs and no VIP is left', async () => {
    const from = await cursor();
    const s = await systemctl('stop', 'vigil');
    expect(s.code, s.err).toBe(0);
    expect((await show('ActiveState')).ActiveState).toBe('inactive');
    expect(await vipPresent()).toBe(false);
    const after = (await journal([`--after-cursor=${from}`])).map((e) => e.MESSAGE);
    // the daemon released the VIP itself; ExecStopPost then found nothing left to remove
    expect(after).toContain('no VIP of this config is configured here');
    expect(after.some((m) => m.includes('"msg":"vigil stopped"'))).toBe(true);
  }, 300_000);

  it('an invalid config: vigil run exits 78, its problem at priority err, and the unit is not restarted (RestartPreventExitStatus)', async () => {
    const cfg = join(target, 'etc', 'vigil', 'vigil.yaml');
    writeFileSync(cfg, CONFIG.replace('scheduler: wlc', 'scheduler: no-such-scheduler'));
    const from = await cursor();
    try {
      const s = await systemctl('start', 'vigil');
      expect(s.code).not.toBe(0);
      const p = await show('ActiveState', 'Result', 'ExecMainStatus', 'NRestarts');
      expect(p).toMatchObject({ ActiveState: 'failed', Result: 'exit-code', ExecMainStatus: '78', NRestarts: '0' });
      await sleep(6_000); // three RestartSec=2s periods
      expect(await show('ActiveState', 'NRestarts')).toMatchObject({ ActiveState: 'failed', NRestarts: '0' });
      const errs = (await journal([`--after-cursor=${from}`, '-p', 'err'])).filter((e) => e.SYSLOG_IDENTIFIER === 'vigil').map((e) => e.MESSAGE);
      expect(errs.some((m) => m.startsWith('/etc/vigil/vigil.yaml: services[0].scheduler'))).toBe(true);
    } finally {
      writeFileSync(cfg, CONFIG);
      await systemctl('reset-failed', 'vigil');
    }
  }, 300_000);

  it('a crash loop (the API port taken) stops at the start limit; the unit stays failed', async () => {
    // something else holds the API's address in the container's network namespace
    const squatter = spawn('nsenter', ['-t', String(leader), '-n', '--', 'perl', '-MIO::Socket::INET', '-e', '$| = 1; my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1:9694", Listen => 5, ReuseAddr => 1) or die "listen: $!"; print "ok\\n"; sleep 900'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let said = '';
      squatter.stdout!.on('data', (b: Buffer) => (said += b.toString()));
      expect(await until(async () => said.includes('ok'), 30_000, 100)).toBe(true);
      const burst = Number((await show('StartLimitBurst')).StartLimitBurst);
      expect(burst).toBeGreaterThan(1);
      const from = await cursor();
      const s = await systemctl('start', 'vigil');
      expect(s.code).not.toBe(0);
      // each cycle is a Node start that fails, RestartSec=2s and ExecStopPost's Node start
      // (10-13 s at a load of 30 on 2 cores); restarts end: "failed" (between restarts the unit is "activating", auto-restart)
      const stopped = await until(async () => (await show('ActiveState')).ActiveState === 'failed', 560_000, 2_000);
      const after = await journal([`--after-cursor=${from}`]);
      const failures = after.filter((e) => e.MESSAGE.includes('"msg":"vigil failed to start"'));
      const at = failures.map((e) => Number((e as { __REALTIME_TIMESTAMP?: string }).__REALTIME_TIMESTAMP) / 1e6);
      console.log(`systemd-unit: ${failures.length} failed starts, ${at.slice(1).map((t, i) => `${(t - (at[i] as number)).toFixed(1)} s`).join(', ')} apart`);
      expect(stopped, `${failures.length} failed starts, ${JSON.stringify(await show('ActiveState', 'SubState', 'Result', 'NRestarts'))}`).toBe(true);
      // exactly StartLimitBurst starts, each refused by the daemon (exit 1, not a config error)
      expect(failures.length).toBe(burst);
      expect(after.some((e) => e.MESSAGE.includes('Start request repeated too quickly'))).toBe(true);
      const p = await show('ActiveState', 'Result', 'NRestarts', 'ExecMainStatus');
      expect(p).toMatchObject({ ActiveState: 'failed', ExecMainStatus: '1' });
      await sleep(6_000); // three RestartSec periods: no further start
      expect(await show('ActiveState', 'Result', 'NRestarts', 'ExecMainStatus')).toEqual(p);
      expect((await journal([`--after-cursor=${from}`])).filter((e) => e.MESSAGE.includes('"msg":"vigil failed to start"')).length).toBe(burst);
    } finally {
      squatter.kill('SIGKILL');
      await systemctl('reset-failed', 'vigil');
    }
  }, 660_000);
});
