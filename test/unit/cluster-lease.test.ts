import { describe, expect, it } from 'vitest';
import { judgeFrozenMs, daemonDying, leaseVerdict, parseSchedstat, STARVED_CAP } from '../../src/cluster/lease.js';

const at = { cpuMs: 1000, waitMs: 500 };
const after = (ran: number, waited: number) => ({ cpuMs: at.cpuMs + ran, waitMs: at.waitMs + waited });

describe('lease verdict: blocked, stopped or hung versus starved of CPU', () => {
  it('a renewal within lease_ms is fresh, whatever the counters say', () => {
    expect(leaseVerdict(400, 400, at, after(400, 0)).kind).toBe('fresh');
    expect(leaseVerdict(10, 400, undefined, undefined).kind).toBe('fresh');
  });

  it('a daemon that waited on the run queue most of the time is starved, not lapsed', () => {
    const v = leaseVerdict(900, 400, at, after(120, 700));
    expect(v).toEqual({ kind: 'starved', waitedMs: 700, ranMs: 120, lateMs: 900 });
    // a third is enough; less is not
    expect(leaseVerdict(900, 400, at, after(120, 300)).kind).toBe('starved');
    expect(leaseVerdict(900, 400, at, after(120, 299)).kind).toBe('lapsed');
  });

  it('a daemon burning CPU without renewing is blocked in its own work, even on a loaded machine', () => {
    const v = leaseVerdict(1500, 400, at, after(400, 1000));
    expect(v.kind).toBe('lapsed');
    expect(v.kind === 'lapsed' && v.why).toMatch(/ran 400 ms of CPU without renewing/);
  });

  it('a busy loop on a quiet machine (runs, hardly waits) is lapsed', () => {
    const v = leaseVerdict(450, 400, at, after(390, 20));
    expect(v.kind).toBe('lapsed');
    expect(v.kind === 'lapsed' && v.why).toMatch(/blocked, stopped or hung \(it ran 390 ms and its threads waited 20 ms in all/);
  });

  it('a stopped (SIGSTOP) or hung daemon neither runs nor waits: lapsed', () => {
    expect(leaseVerdict(401, 400, at, after(0, 0)).kind).toBe('lapsed');
  });

  it('a main thread asleep on a starved helper thread (a GC waiting for V8 workers) is starved, not lapsed', () => {
    const atT = { ...at, threads: new Map([[100, 500], [101, 20], [102, 0]]) };
    // the main thread (100) neither ran nor waited: it slept on a futex; helper 101 waited 900 ms for a CPU
    const nowT = { cpuMs: at.cpuMs + 5, waitMs: at.waitMs + 10, threads: new Map([[100, 510], [101, 920], [102, 3]]) };
    expect(leaseVerdict(1150, 1000, atT, nowT)).toEqual({ kind: 'starved', waitedMs: 913, ranMs: 5, lateMs: 1150 });
    // several helpers each queued a while add up (the main thread waited on one, then another)
    const several = { ...nowT, threads: new Map([[100, 510], [101, 220], [102, 200]]) };
    expect(leaseVerdict(1150, 1000, atT, several)).toMatchObject({ kind: 'starved', waitedMs: 410 });
    // a thread born after the renewal counts its whole wait
    const born = { ...nowT, threads: new Map([[100, 510], [103, 700]]) };
    expect(leaseVerdict(1150, 1000, atT, born).kind).toBe('starved');
    // threads that neither ran nor waited: stopped or hung, lapsed
    const still = { cpuMs: at.cpuMs, waitMs: at.waitMs, threads: new Map([[100, 500], [101, 20], [102, 0]]) };
    const v = leaseVerdict(1150, 1000, atT, still);
    expect(v.kind === 'lapsed' && v.why).toMatch(/its threads waited 0 ms in all/);
  });

  it('starvation holds the lease for at most STARVED_CAP lease periods', () => {
    expect(leaseVerdict(STARVED_CAP * 400, 400, at, after(10, STARVED_CAP * 400)).kind).toBe('starved');
    const v = leaseVerdict(STARVED_CAP * 400 + 1, 400, at, after(10, STARVED_CAP * 400));
    expect(v.kind === 'lapsed' && v.why).toMatch(/starved of CPU for over 10 lease periods/);
  });

  it('without schedstat (kernel without CONFIG_SCHED_INFO) a late lease is lapsed, as before', () => {
    expect(leaseVerdict(401, 400, undefined, undefined)).toEqual({ kind: 'lapsed', why: 'no lease from the daemon for 401 ms (blocked or hung)' });
    expect(leaseVerdict(401, 400, at, undefined).kind).toBe('lapsed');
  });
});

describe('parseSchedstat', () => {
  it('reads ns counters as ms', () => {
    expect(parseSchedstat('3966535 2312921 2\n')).toEqual({ cpuMs: 3.966535, waitMs: 2.312921 });
  });
  it('refuses anything else', () => {
    for (const t of ['', 'x y z', '1 2', '1 2 3 4', '-1 2 3']) expect(parseSchedstat(t)).toBeUndefined();
  });
  it('reads this process’s real file', async () => {
    const { readFileSync } = await import('node:fs');
    const s = parseSchedstat(readFileSync('/proc/self/schedstat', 'utf8'));
    expect(s?.cpuMs).toBeGreaterThan(0);
  });
});

describe('daemonDying: killed but not yet torn down', () => {
  const status = (state: string, sigPnd = '0000000000000000', shdPnd = '0000000000000000') =>
    `Name:\tnode\nState:\t${state}\nTgid:\t42\nSigPnd:\t${sigPnd}\nShdPnd:\t${shdPnd}\nSigBlk:\t0000000000000000\n`;
  it('a running, sleeping or stopped daemon is alive', () => {
    for (const s of ['R (running)', 'S (sleeping)', 'T (stopped)', 'D (disk sleep)']) expect(daemonDying(status(s))).toBe(false);
    // SIGTERM (bit 14) or SIGUSR2 pending is not death
    expect(daemonDying(status('S (sleeping)', '0000000000004000', '0000000000000800'))).toBe(false);
  });
  it('a pending SIGKILL (bit 8) in the thread or the shared set, a zombie or a dead task is dying', () => {
    expect(daemonDying(status('R (running)', '0000000000000100'))).toBe(true);
    expect(daemonDying(status('D (disk sleep)', '0000000000000000', '0000000000004100'))).toBe(true);
    expect(daemonDying(status('Z (zombie)'))).toBe(true);
    expect(daemonDying(status('X (dead)'))).toBe(true);
  });
  it('reads a real zombie from /proc', async () => {
    const { spawn } = await import('node:child_process');
    const { readFileSync } = await import('node:fs');
    // sh forks `true` and execs sleep, which never reaps it: a zombie for as long as sleep runs
    const parent = spawn('sh', ['-c', 'true & exec sleep 5'], { stdio: 'ignore' });
    try {
      let zombie: number | undefined;
      for (let i = 0; i < 100 && zombie === undefined; i++) {
        await new Promise((r) => setTimeout(r, 20));
        const kids = readFileSync(`/proc/${parent.pid}/task/${parent.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
        zombie = kids.find((k) => /^State:\s+Z/m.test(readFileSync(`/proc/${k}/status`, 'utf8')));
      }
      expect(zombie, 'no zombie child appeared').toBeDefined();
      expect(daemonDying(readFileSync(`/proc/${zombie}/status`, 'utf8'))).toBe(true);
      expect(daemonDying(readFileSync(`/proc/${parent.pid}/status`, 'utf8'))).toBe(false);
    } finally {
      parent.kill('SIGKILL');
    }
  });
});

describe('judgeFrozenMs: the judge\'s own freeze does not count against the daemon', () => {
  it('ticks on time or a little late: nothing', () => {
    expect(judgeFrozenMs(50, 50)).toBe(0);
    expect(judgeFrozenMs(99, 50)).toBe(0);
    expect(judgeFrozenMs(190, 100)).toBe(0);
  });
  it('frozen with the director: the gap less one tick', () => {
    expect(judgeFrozenMs(100, 50)).toBe(50);
    expect(judgeFrozenMs(950, 50)).toBe(900);
    expect(judgeFrozenMs(1000, 10)).toBe(990);
    expect(judgeFrozenMs(250, 100)).toBe(150);
  });
});
