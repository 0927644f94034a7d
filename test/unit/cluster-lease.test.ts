import { describe, expect, it } from 'vitest';
import { leaseVerdict, parseSchedstat, STARVED_CAP } from '../../src/cluster/lease.js';

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
  });

  it('a daemon burning CPU without renewing is blocked in its own work, even on a loaded machine', () => {
    const v = leaseVerdict(1500, 400, at, after(400, 1000));
    expect(v.kind).toBe('lapsed');
    expect(v.kind === 'lapsed' && v.why).toMatch(/ran 400 ms of CPU without renewing/);
  });

  it('a busy loop on a quiet machine (runs, hardly waits) is lapsed', () => {
    const v = leaseVerdict(450, 400, at, after(390, 20));
    expect(v.kind).toBe('lapsed');
    expect(v.kind === 'lapsed' && v.why).toMatch(/blocked, stopped or hung \(it ran 390 ms and waited 20 ms/);
  });

  it('a stopped (SIGSTOP) or hung daemon neither runs nor waits: lapsed', () => {
    expect(leaseVerdict(401, 400, at, after(0, 0)).kind).toBe('lapsed');
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
