/**
 * Real TCP connections through the kernel's IPVS in NAT mode, with vigil driving the
 * table: a client namespace → director → real-server namespaces, all inside the IPVS VM
 * (one boot; the scenario is test/e2e/guest/ipvs-datapath.scenario.ts).
 */
import { describe, expect, it } from 'vitest';
import { compileGuest, runInVm, vmUnavailable, type VmRun } from './ipvs-vm.js';

const why = vmUnavailable();
if (why) console.log(`skipping the IPVS VM data path test: ${why}`);

describe.skipIf(why !== undefined)('NAT data path through the kernel IPVS driven by vigil (VM)', () => {
  let run: VmRun;
  const step = (name: string): Record<string, unknown> => {
    const r = run.records.find((x) => x.step === name);
    if (!r) throw new Error(`step ${name} missing; VM output:\n${run.output.slice(-4000)}`);
    return r;
  };

  it('boots the VM once and runs the data path scenario', async () => {
    const file = compileGuest('test/e2e/guest/ipvs-datapath.scenario.ts');
    run = await runInVm(`node ${file}`, 420);
    console.log(`IPVS data path scenario: ${Math.round(run.wallMs / 1000)} s in the VM\n${run.records.map((r) => JSON.stringify(r)).join('\n')}`);
    expect(run.records.find((r) => r.step === 'crash')).toBeUndefined();
    expect(run.records.at(-1)).toEqual({ done: true });
    expect(run.code).toBe(0);
  }, 480_000);

  it('vigil loads the NAT service and round-robin spreads connections over both real servers', () => {
    expect(step('table')).toMatchObject({ ok: true });
    const answers = step('before').answers as string[];
    expect(answers).toHaveLength(6);
    expect(answers.filter((a) => a.startsWith('hello from rs1'))).toHaveLength(3);
    expect(answers.filter((a) => a.startsWith('hello from rs2'))).toHaveLength(3);
  });

  it("the dataplane's counters see the connections per real server", () => {
    expect(step('before')).toMatchObject({ rs1Connections: 3, rs2Connections: 3 });
  });

  it('a failed real server is removed by health + reconcile and every new connection reaches the other', () => {
    expect(step('rs1-removed')).toMatchObject({ ok: true, healthy: false });
    expect(step('after').answers).toEqual(Array(6).fill('hello from rs2'));
  });

  it('when it recovers, traffic returns to it', () => {
    expect(step('rs1-back')).toMatchObject({ ok: true });
    expect((step('rs1-back').answers as string[]).filter((a) => a === 'hello from rs1').length).toBeGreaterThan(0);
  });
});
