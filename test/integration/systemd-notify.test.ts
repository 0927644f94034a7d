/**
 * What systemd sees of `vigil run` (no systemd as PID 1 here, so its two channels are
 * played by real receivers): the notify socket is a unix datagram socket bound by socat,
 * and the journal stream is a file whose device:inode is put in $JOURNAL_STREAM, as
 * systemd does for StandardOutput=journal.
 *
 *   - READY=1 arrives once the API answers; STOPPING=1 when SIGTERM starts the stop;
 *     the sender is still alive when the datagram is read (systemd needs its cgroup)
 *   - log lines carry <N> syslog priorities only when $JOURNAL_STREAM names stdout
 *   - an invalid config or an unusable key file exits 78 (the unit's RestartPreventExitStatus),
 *     priority err
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, existsSync, fstatSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SYSLOG_PRIORITY, withPriority } from '../../src/log.js';
import { CLI, freePort, standaloneConfig, tmpDir, until, writeFile } from '../helpers/daemon.js';

const haveSocat = existsSync('/usr/bin/socat');
if (!haveSocat) console.log('systemd-notify: socat missing (apt-get install socat; .ci/run does): the READY=1 test skips');

const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** `vigil run` with stdout and stderr into files; resolves the exit code. */
function runToFile(config: string, env: NodeJS.ProcessEnv, out: string, err: string): { child: ChildProcess; exited: Promise<number | null> } {
  const o = openSync(out, 'w');
  const e = openSync(err, 'w');
  const child = spawn(process.execPath, [CLI, 'run', '--config', config], { env: { ...process.env, NOTIFY_SOCKET: '', JOURNAL_STREAM: '', ...env }, stdio: ['ignore', o, e] });
  closeSync(o);
  closeSync(e);
  children.push(child);
  return { child, exited: new Promise((r) => child.once('exit', (code) => r(code))) };
}

const devIno = (file: string): string => {
  const fd = openSync(file, 'r');
  try {
    const st = fstatSync(fd);
    return `${st.dev}:${st.ino}`;
  } finally {
    closeSync(fd);
  }
};

describe('syslog priorities for the journal', () => {
  it.each([
    ['{"level":"fatal","msg":"x"}', '<2>'],
    ['{"level":"error","msg":"x"}', '<3>'],
    ['{"level":"warn","msg":"x"}', '<4>'],
    ['{"level":"info","msg":"x"}', '<6>'],
    ['{"level":"debug","msg":"x"}', '<7>'],
  ])('%s → %s', (line, prefix) => {
    expect(withPriority(line)).toBe(`${prefix}${line}`);
  });

  it('maps every pino level', () => {
    expect(Object.keys(SYSLOG_PRIORITY).sort()).toEqual(['debug', 'error', 'fatal', 'info', 'trace', 'warn']);
  });

  it('prefixes each line when $JOURNAL_STREAM names stdout, not when it names something else', async () => {
    const dir = tmpDir('vigil-journal-');
    const config = writeFile(dir, 'vigil.yaml', standaloneConfig({ apiPort: await freePort(), clusterPort: await freePort(), tokenFile: join(dir, 'missing-token') }));
    const lines = async (journal: (out: string) => string): Promise<string[]> => {
      const out = join(dir, `out-${Math.random()}`);
      writeFile(dir, out.slice(dir.length + 1), '');
      const d = runToFile(config, { JOURNAL_STREAM: journal(out) }, out, join(dir, 'err'));
      await until(() => readFileSync(out, 'utf8').includes('vigil started'), 60_000); // slow Node starts on a loaded machine
      d.child.kill('SIGTERM');
      await d.exited;
      return readFileSync(out, 'utf8').split('\n').filter(Boolean);
    };
    const journal = await lines(devIno);
    expect(journal.length).toBeGreaterThan(3);
    for (const l of journal) expect(l).toMatch(/^<[2-7]>\{"level":"/);
    expect(journal.find((l) => l.includes('cannot read api.token_file'))).toMatch(/^<3>\{"level":"error"/);
    expect(journal.find((l) => l.includes('"msg":"vigil started"'))).toMatch(/^<6>/);
    expect(journal.filter((l) => l.startsWith('<7>')).length).toBeGreaterThan(0); // debug lines from child loggers too

    const elsewhere = await lines(() => '1:1'); // inherited from a parent whose stdout was the journal
    for (const l of elsewhere) expect(l).toMatch(/^\{"level":"/);
  }, 180_000);

  it('an invalid config exits 78 (not restarted by the unit), its lines at priority err in the journal', async () => {
    const dir = tmpDir('vigil-journal-');
    const config = writeFile(dir, 'bad.yaml', 'node: x\ncluster:\n  nodes: []\n');
    const err = join(dir, 'err');
    writeFile(dir, 'err', '');
    const d = runToFile(config, { JOURNAL_STREAM: devIno(err) }, join(dir, 'out'), err);
    expect(await d.exited).toBe(78);
    expect(readFileSync(err, 'utf8')).toContain(`<3>${config}: cluster.nodes: list at least this node`);
  }, 90_000);

  it('a key file run cannot use (mode 0644) is a config error too: exit 78, priority err, named', async () => {
    const dir = tmpDir('vigil-journal-');
    const key = writeFile(dir, 'cluster.key', 'a-key-long-enough-for-hmac-sha256\n');
    chmodSync(key, 0o644);
    const config = writeFile(dir, 'vigil.yaml', standaloneConfig({ apiPort: await freePort(), clusterPort: await freePort() }).replace('cluster:\n', `cluster:\n  key_file: ${key}\n`));
    const err = join(dir, 'err');
    writeFile(dir, 'err', '');
    const d = runToFile(config, { JOURNAL_STREAM: devIno(err) }, join(dir, 'out'), err);
    expect(await d.exited).toBe(78);
    expect(readFileSync(err, 'utf8')).toContain(`<3>${config}: cluster.key_file: ${key} has mode 0644; it must be 0600`);
  }, 90_000);
});

describe.skipIf(!haveSocat)('Type=notify: READY=1 and STOPPING=1 on $NOTIFY_SOCKET', () => {
  it('READY=1 once the API answers, STOPPING=1 on SIGTERM; the sender outlives the datagram', async () => {
    const dir = tmpDir('vigil-notify-');
    const sock = join(dir, 'notify');
    // socat prints each datagram and, as PID 1 would, who sent it is checked right then
    const recv = spawn('socat', ['-u', `UNIX-RECV:${sock}`, '-'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(recv);
    let got = '';
    const senders: boolean[] = [];
    recv.stdout!.on('data', (b: Buffer) => {
      got += b.toString();
      // any perl sender still alive at the moment of reading (its cgroup is resolvable)
      senders.push(findSender());
    });
    await until(() => existsSync(sock), 5000);
    const apiPort = await freePort();
    const config = writeFile(dir, 'vigil.yaml', standaloneConfig({ apiPort, clusterPort: await freePort() }));
    const d = runToFile(config, { NOTIFY_SOCKET: sock }, join(dir, 'out'), join(dir, 'err'));

    await until(() => got.includes('READY=1'), 60_000);
    const health = await fetch(`http://127.0.0.1:${apiPort}/healthz`);
    expect(health.status).toBe(200);
    expect(got).toMatch(/READY=1\nSTATUS=started; API on 127\.0\.0\.1:\d+/);
    expect(got).not.toContain('STOPPING=1');
    expect(senders[0]).toBe(true);

    d.child.kill('SIGTERM');
    await until(() => got.includes('STOPPING=1'), 10_000);
    expect(await d.exited).toBe(0);
    expect(readFileSync(join(dir, 'out'), 'utf8')).not.toContain('cannot notify systemd');
    recv.kill();
  }, 150_000);
});

/** Is a perl sd_notify sender running now? (/proc: its cmdline holds the sender script.) */
function findSender(): boolean {
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmd.startsWith('perl\0-e\0') && cmd.includes('sd_notify')) return true;
    } catch {
      // gone
    }
  }
  return false;
}
