/**
 * The reconciler against the real kernel IPVS (Debian's kernel under qemu, one boot for
 * the whole scenario in test/e2e/guest/ipvs-reconcile.scenario.ts).
 */
import { describe, expect, it } from 'vitest';
import { compileGuest, runInVm, vmUnavailable, type VmRun } from './ipvs-vm.js';

const why = vmUnavailable();
if (why) console.log(`skipping the IPVS VM reconcile scenario: ${why}`);

describe.skipIf(why !== undefined)('reconciler against the kernel IPVS (VM)', () => {
  let run: VmRun;
  const step = (name: string): Record<string, unknown> => {
    const r = run.records.find((x) => x.step === name);
    if (!r) throw new Error(`step ${name} missing; VM output:\n${run.output.slice(-4000)}`);
    return r;
  };

  it('boots the VM once and runs the whole scenario', async () => {
    const file = compileGuest('test/e2e/guest/ipvs-reconcile.scenario.ts');
    run = await runInVm(`node ${file}`, 420);
    console.log(`IPVS reconcile scenario: ${Math.round(run.wallMs / 1000)} s in the VM\n${run.records.map((r) => JSON.stringify(r)).join('\n')}`);
    expect(run.records.find((r) => r.step === 'crash')).toBeUndefined();
    expect(run.records.at(-1)).toEqual({ done: true });
    expect(run.code).toBe(0);
  }, 480_000);

  it.each(['initial', 'role', 'real-server-down', 'real-server-up', 'quiescent', 'sorry-server', 'sorry-server-gone', 'drain', 'enable', 'config-reload', 'drift-delete', 'drift-clear'])(
    'after %s, ipvsadm -S -n equals the desired table',
    (name) => {
      expect(step(name)).toMatchObject({ ok: true });
    },
  );

  it('the hand-made foreign service survives every reconcile until the hand-made -C', () => {
    for (const name of ['initial', 'real-server-down', 'real-server-up', 'quiescent', 'sorry-server', 'drain', 'enable', 'config-reload', 'drift-delete']) {
      expect(step(name), name).toMatchObject({ foreignIntact: true });
    }
  });

  it('the IPVS sync daemon follows the role (backup, master, backup) and the table stays loaded', () => {
    const r = step('role');
    expect(r.atInit).toMatch(/^backup sync daemon \(mcast=lo, syncid=5/);
    expect(r.atActive).toMatch(/^master sync daemon \(mcast=lo, syncid=5/);
    expect(r.atActive).not.toMatch(/backup/);
    expect(r.atStandby).toMatch(/^backup sync daemon \(mcast=lo, syncid=5/);
    expect(r.atStandby).not.toMatch(/master/);
    expect(r).toMatchObject({ ok: true, syncMetric: ['backup'], tableKeptAcrossRoles: true });
  });

  it('one health change is exactly one ipvsadm -R batch', () => {
    expect(step('real-server-down')).toMatchObject({ batches: 1, ops: 1 });
    expect(step('real-server-up')).toMatchObject({ batches: 1 });
  });

  it('quiescent keeps weight 0; the sorry server takes over alone; drain is weight 0 and enable restores', () => {
    expect(step('quiescent').weight).toBe('0');
    expect(step('sorry-server').app).toEqual(['-A -t 10.10.0.1:8000 -s rr', '-a -t 10.10.0.1:8000 -r 10.20.0.9:8000 -i -w 1']);
    expect(step('drain')).toMatchObject({ outcome: 'started', drained: true, line: '-a -t 10.10.0.1:80 -r 10.20.0.2:8080 -m -w 0' });
    expect(step('enable')).toMatchObject({ line: '-a -t 10.10.0.1:80 -r 10.20.0.2:8080 -m -w 3' });
  });

  it('a reload edits and removes services; hand-made drift is repaired within one period and counted', () => {
    expect(step('config-reload')).toMatchObject({ ok: true, reloadOk: true, fwmarkGone: true });
    // within one period: the first run after the hand-made change (the periodic one) repairs
    // it. Wall time is only reported: under emulation on a shared host it says little.
    expect(step('drift-delete')).toMatchObject({ ok: true, repairedByRun: 1 });
    expect(step('drift-clear')).toMatchObject({ ok: true, repairedByRun: 1 });
    const idle = step('idle');
    expect(idle).toMatchObject({ ok: true, operations: 0, failures: 0 });
    // health changes and reloads are not drift; each hand-made change is one repair
    expect(idle).toMatchObject({ driftRepairsBefore: 0, driftRepairsAfterDelete: 1, driftRepairsAfterClear: 2 });
  });
});
