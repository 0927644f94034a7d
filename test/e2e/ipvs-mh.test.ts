/**
 * The mh scheduler and cluster.mode ecmp against the real kernel IPVS (Debian's kernel
 * under qemu, one boot for the scenario in test/e2e/guest/ipvs-mh.scenario.ts).
 */
import { describe, expect, it } from 'vitest';
import { compileGuest, runInVm, vmUnavailable, type VmRun } from './ipvs-vm.js';

const why = vmUnavailable();
if (why) console.log(`skipping the IPVS VM mh scenario: ${why}`);

describe.skipIf(why !== undefined)('mh and ecmp mode against the kernel IPVS (VM)', () => {
  let run: VmRun;
  const step = (name: string): Record<string, unknown> => {
    const r = run.records.find((x) => x.step === name);
    if (!r) throw new Error(`step ${name} missing; VM output:\n${run.output.slice(-4000)}`);
    return r;
  };

  it('boots the VM once and runs the whole scenario', async () => {
    const file = compileGuest('test/e2e/guest/ipvs-mh.scenario.ts');
    run = await runInVm(`node ${file}`, 600);
    console.log(`IPVS mh scenario: ${Math.round(run.wallMs / 1000)} s in the VM\n${run.records.map((r) => JSON.stringify(r)).join('\n')}`);
    expect(run.records.find((r) => r.step === 'crash')).toBeUndefined();
    expect(run.records.at(-1)).toEqual({ done: true });
    expect(run.code).toBe(0);
  }, 660_000);

  it('ecmp mode: the flags reach the kernel (-b in ipvsadm -S -n) and sloppy_tcp/sloppy_sctp become 1', () => {
    expect(step('sysctl-before')).toMatchObject({ sloppyTcp: '0', sloppySctp: '0' });
    const s = step('ecmp-start');
    expect(s).toMatchObject({ ok: true, sloppyTcp: '1', sloppySctp: '1' });
    expect(s.save).toContain('-A -t 10.77.0.1:90 -s mh -b mh-fallback,mh-port\n');
    expect(s.save).toContain('-A -u 10.77.0.1:53 -s mh -b mh-port\n');
    expect(s.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('a reload that changes the flags edits the service; one that drops them clears them', () => {
    const e = step('flags-edit');
    expect(e).toMatchObject({ ok: true, operations: 1 });
    expect(e.save).toMatch(/^-A -t 10\.77\.0\.1:90 -s mh -b mh-port\n/);
    expect(e.digest).not.toBe(step('ecmp-start').digest);
    const c = step('flags-cleared');
    expect(c).toMatchObject({ ok: true, operations: 1 });
    expect(c.save).toMatch(/^-A -t 10\.77\.0\.1:90 -s mh\n/);
  });

  it('the Maglev model picks the real server the kernel picks for every flow (list order: newest first)', () => {
    expect(step('flows-sent')).toMatchObject({ flows: 1200 });
    for (const port of [80, 81, 82, 83, 84]) {
      const d = step(`differential-${port}`);
      expect(d.seen, `port ${port}`).toBe(240);
      expect(d.matchNewestFirst, `port ${port}`).toBe(240);
    }
    // all six real servers get flows with mh-port; without it one client address = one real server
    expect(Object.keys(step('differential-80').byDest as object)).toHaveLength(6);
    expect(step('differential-82').perClient).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    // the quiesced real server (weight 0, mh-fallback) gets none: its flows walked on
    expect((step('differential-83').byDest as Record<string, number>)['10.78.0.3']).toBeUndefined();
  });

  it('vigil adds mh real servers in canonical order, a down one at its configured weight then 0 (the kernel keeps its slots)', () => {
    const v = step('vigil-84');
    expect(v.ok).toBe(true);
    // ipvsadm -S lists in add order: canonical, whatever the config's order
    expect((v.save as string).split('\n').filter((l) => l.startsWith('-a')).map((l) => l.split(' ')[4])).toEqual(['10.78.0.1:84', '10.78.0.2:84', '10.78.0.3:84', '10.78.0.4:84', '10.78.0.5:84', '10.78.0.6:84']);
    expect(v.save).toContain('-a -t 10.77.0.1:84 -r 10.78.0.3:84 -g -w 0\n');
    // and the kernel's picks are those of the model with the configured weight (differential-84 above)
    expect((step('differential-84').byDest as Record<string, number>)['10.78.0.3']).toBeUndefined();
  });

  it('ecmp mode keeps the kernel list in canonical add order (ipvsadm -L -n --nosort): a real server back from a failure is put back in place', () => {
    const r = step('reorder');
    const newestFirst = ['10.78.0.6:85', '10.78.0.5:85', '10.78.0.4:85', '10.78.0.3:85', '10.78.0.2:85', '10.78.0.1:85'];
    expect(r.initial).toEqual(newestFirst);
    expect(r.whileDown).toEqual(newestFirst.filter((x) => x !== '10.78.0.2:85'));
    // back up: 10.78.0.2 and everything after it in canonical order deleted and re-added (1 + 4 + 4 lines)
    expect(r).toMatchObject({ ok: true, upOk: true, downOps: 1, upOps: 9 });
    expect(r.afterUp).toEqual(newestFirst);
  });

  it('the population order matters: the same real servers added in another order pick differently for some flows', () => {
    const o = step('order-dependence');
    expect(o.flows).toBe(240);
    expect(o.differ as number).toBeGreaterThan(0);
    console.log(`order dependence: ${String(o.differ)} of ${String(o.flows)} flows change real server`);
  });
});
