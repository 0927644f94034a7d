/**
 * IpvsDataplane's process handling with real child processes (stand-in `ipvsadm` shell
 * scripts): what it sends, how it classifies exits, stderr, timeouts and a missing binary,
 * and the idempotent sync-daemon commands. The kernel behaviour itself is tested in the
 * IPVS VM (test/e2e/ipvs-*.test.ts).
 */
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/metrics.js';
import { IpvsDataplane, runIpvsadm } from '../../src/reconcile/ipvs.js';

const dir = mkdtempSync(join(tmpdir(), 'vigil-ipvsadm-'));
function script(name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}
const logger = pino({ level: 'silent' });

describe('runIpvsadm', () => {
  it('feeds stdin, collects stdout and stderr, reports the exit code', async () => {
    const bin = script('echoer', 'cat; echo "oops" >&2; exit 3');
    expect(await runIpvsadm(bin, [], '-A -t 10.0.0.1:80 -s rr\n', 5000)).toMatchObject({ code: 3, timedOut: false, stdout: '-A -t 10.0.0.1:80 -s rr\n', stderr: 'oops\n' });
  });

  it('kills a run that outlives its timeout', async () => {
    const r = await runIpvsadm(script('sleeper', 'exec sleep 10'), [], undefined, 200);
    expect(r).toMatchObject({ timedOut: true, code: null, signal: 'SIGKILL' });
  });

  it('reports a binary that cannot be run', async () => {
    const r = await runIpvsadm(join(dir, 'missing'), ['-S', '-n'], undefined, 1000);
    expect(r.error?.message).toMatch(/ENOENT/);
  });
});

describe('IpvsDataplane (stand-in ipvsadm)', () => {
  it('reads with -S -n and applies one -R batch with every line on stdin', async () => {
    const log = join(dir, 'calls.log');
    const bin = script(
      'ipvsadm-ok',
      `echo "$@" >> ${log}
case "$1" in
  -S) printf '%s\\n' '-A -t 10.0.0.1:80 -s wlc' '-a -t 10.0.0.1:80 -r 10.0.1.2:80 -g -w 2' ;;
  -R) cat > ${join(dir, 'batch.txt')} ;;
esac`,
    );
    const dp = new IpvsDataplane({ ipvsadm: bin, logger });
    await dp.start();
    expect(await dp.read()).toEqual([
      { key: 'tcp 10.0.0.1:80', protocol: 'tcp', vip: '10.0.0.1', port: 80, scheduler: 'wlc', realServers: [{ address: '10.0.1.2', port: 80, forward: 'dr', weight: 2 }] },
    ]);
    await dp.apply([
      { kind: 'edit_real_server', serviceKey: 'tcp 10.0.0.1:80', realServer: { address: '10.0.1.2', port: 80, forward: 'dr', weight: 0 } },
      { kind: 'add_real_server', serviceKey: 'tcp 10.0.0.1:80', realServer: { address: '10.0.1.3', port: 80, forward: 'dr', weight: 1 } },
    ]);
    expect(readFileSync(join(dir, 'batch.txt'), 'utf8')).toBe('-e -t 10.0.0.1:80 -r 10.0.1.2:80 -g -w 0\n-a -t 10.0.0.1:80 -r 10.0.1.3:80 -g -w 1\n');
    await dp.apply([]); // nothing to do: no process
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual(['-S -n', '-S -n', '-R']);
  });

  it('an exit 0 restore with error lines is not trusted but not thrown (the read-back decides)', async () => {
    const dp = new IpvsDataplane({ ipvsadm: script('ipvsadm-mid', 'if grep -q 10.0.0.9 ; then echo "Memory allocation problem" >&2; elif true; then echo "Service already exists" >&2; fi; exit 0'), logger });
    await dp.apply([{ kind: 'delete_service', key: 'tcp 10.0.0.1:80' }]);
    expect(dp.lastApplyStderr).toBe('Service already exists');
    // each run's stderr alone: the file kept open is emptied before the next run
    await dp.apply([{ kind: 'delete_service', key: 'tcp 10.0.0.9:80' }]);
    expect(dp.lastApplyStderr).toBe('Memory allocation problem');
    await dp.close();
  });

  it('a clean restore after a noisy one reports no stderr', async () => {
    const flag = join(dir, 'noisy');
    writeFileSync(flag, '');
    const dp = new IpvsDataplane({ ipvsadm: script('ipvsadm-once', `cat >/dev/null; if [ -e ${flag} ]; then rm ${flag}; echo "Service already exists" >&2; fi; exit 0`), logger });
    await dp.apply([{ kind: 'delete_service', key: 'tcp 10.0.0.1:80' }]);
    expect(dp.lastApplyStderr).toBe('Service already exists');
    await dp.apply([{ kind: 'delete_service', key: 'tcp 10.0.0.1:80' }]);
    expect(dp.lastApplyStderr).toBe('');
    await dp.close();
  });

  it('a failing restore or read throws a coded error naming the command and its message', async () => {
    const dp = new IpvsDataplane({ ipvsadm: script('ipvsadm-bad', 'cat >/dev/null 2>&1; echo "Can\'t initialize ipvs: Protocol not available" >&2; exit 2'), logger });
    await expect(dp.apply([{ kind: 'delete_service', key: 'fwmark 3' }])).rejects.toMatchObject({ code: 'VIGIL_IPVSADM_FAILED', message: expect.stringContaining("-R failed (exit 2): Can't initialize ipvs") });
    await expect(dp.start()).rejects.toMatchObject({ code: 'VIGIL_IPVSADM_FAILED', message: expect.stringContaining('-S -n failed (exit 2)') });
    await expect(new IpvsDataplane({ ipvsadm: join(dir, 'nope'), logger }).read()).rejects.toThrow(/cannot run: spawn .*nope ENOENT/);
  });

  it('the sync daemon follows the role; "already running"/"not running" count as done', async () => {
    const log = join(dir, 'sync.log');
    const bin = script(
      'ipvsadm-sync',
      `echo "$@" >> ${log}
case "$1" in
  --start-daemon) echo "Daemon has already run" >&2; exit 255 ;;
  --stop-daemon) echo "No daemon is running" >&2; exit 255 ;;
esac`,
    );
    const metrics = createMetrics({ defaults: false });
    const dp = new IpvsDataplane({ ipvsadm: bin, logger, metrics, syncDaemon: { interface: 'eth1', syncId: 7 } });
    await dp.start();
    await dp.setRole('standby');
    await dp.setRole('active');
    await dp.setRole('active');
    expect(dp.syncDaemonState()).toBe('master');
    const m = (await metrics.ipvsSyncDaemon.get()).values.filter((v) => v.value === 1).map((v) => v.labels.state);
    expect(m).toEqual(['master']);
    await dp.close();
    expect(dp.syncDaemonState()).toBe('none');
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual([
      '-S -n',
      '--start-daemon backup --mcast-interface eth1 --syncid 7',
      '--stop-daemon backup',
      '--start-daemon master --mcast-interface eth1 --syncid 7',
      '--stop-daemon master',
    ]);
  });

  it('without a sync daemon configured, the role changes nothing', async () => {
    const log = join(dir, 'nosync.log');
    const dp = new IpvsDataplane({ ipvsadm: script('ipvsadm-nosync', `echo "$@" >> ${log}`), logger });
    await dp.setRole('active');
    expect(dp.syncDaemonState()).toBe('none');
    expect(() => readFileSync(log)).toThrow(/ENOENT/);
  });
});
