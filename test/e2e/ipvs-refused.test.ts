/**
 * One bad entry never keeps the others out of the kernel (issue 14): a batch with an
 * entry ipvsadm stops at and one the kernel refuses, among valid ones, against the real
 * IPVS (Debian's kernel under qemu; test/e2e/guest/ipvs-refused.scenario.ts).
 */
import { describe, expect, it } from 'vitest';
import { compileGuest, runInVm, vmUnavailable, type VmRun } from './ipvs-vm.js';

const why = vmUnavailable();
if (why) console.log(`skipping the IPVS VM refused-entry scenario: ${why}`);

describe.skipIf(why !== undefined)('a refused entry among valid ones (kernel IPVS in the VM)', () => {
  let run: VmRun;
  let batch: Record<string, unknown>;

  it('boots the VM once and runs the scenario', async () => {
    const file = compileGuest('test/e2e/guest/ipvs-refused.scenario.ts');
    run = await runInVm(`node ${file}`, 300);
    console.log(`IPVS refused-entry scenario: ${Math.round(run.wallMs / 1000)} s in the VM\n${run.records.map((r) => JSON.stringify(r)).join('\n')}`);
    expect(run.records.find((r) => r.step === 'crash')).toBeUndefined();
    expect(run.records.at(-1)).toEqual({ done: true });
    expect(run.code).toBe(0);
    batch = run.records.find((r) => r.step === 'batch') as Record<string, unknown>;
    expect(batch).toBeDefined();
  }, 360_000);

  it('installs every valid service and real server, including those after the line ipvsadm stopped at', () => {
    expect(batch.installed).toEqual([
      ['tcp 10.10.0.1:80', ['10.20.0.2:80']],
      ['tcp 10.10.0.1:443', ['10.20.0.2:443', '10.20.0.3:443']],
      ['udp 10.10.0.1:53', ['10.20.0.2:53']],
    ]);
  });

  it('names exactly the refused entries: the IPv6 service (and so its real server) and the multicast real server', () => {
    const refused = batch.refused as { service: string; realServer?: string; line: string; error: string }[];
    // each with ipvsadm's own message (the batch's exit status named none of them)
    expect(refused.map((e) => [e.service, e.realServer ?? null, e.error])).toEqual([
      ['v6bad', null, 'illegal ipv6 netmask specified'],
      ['v6bad', '[fd00::20]:80', 'Service not defined'],
      ['web', '224.1.1.1:443', expect.stringContaining('address not unicast')],
    ]);
    expect(batch.entryFailing).toEqual(
      expect.arrayContaining([
        'vigil_reconcile_entry_failing{service="v6bad"} 1',
        'vigil_reconcile_entry_failing{service="web",real_server="224.1.1.1:443"} 1',
        'vigil_reconcile_entry_failing{service="v6bad",real_server="[fd00::20]:80"} 1',
      ]),
    );
    // one error line per refused entry in the daemon's log, naming it
    const logs = run.records.filter((r) => typeof r.msg === 'string' && r.msg.startsWith('the dataplane refused'));
    expect(logs.map((l) => [l.service, l.realServer ?? null])).toEqual([
      ['v6bad', null],
      ['v6bad', '[fd00::20]:80'],
      ['web', '224.1.1.1:443'],
    ]);
    expect(logs[2]?.msg).toBe('the dataplane refused real server 224.1.1.1:443 of web; every other entry is installed');
  });

  it('the run is a failure (counted) but the director is ready: all the kernel accepts is in', () => {
    expect(batch.ok).toBe(false);
    expect(batch.failures).toEqual(['vigil_reconcile_failures_total{dataplane="ipvs"} 1']);
    expect(batch.ready).toBe(true);
    expect(batch.error).toContain('the dataplane refused 3 entries');
  });
});
