/**
 * cluster.mode ecmp on the kernel's IPVS (Debian's kernel under qemu, one boot; the
 * scenario is test/e2e/guest/ecmp-ipvs.scenario.ts, the ECMP lab with dataplane ipvs):
 * long-lived TCP connections carried by a director survive its crash. The router's BFD
 * withdraws the dead director, ECMP moves its flows to the two others, whose IPVS picks
 * them up mid-stream (sloppy_tcp) and sends them to the same real server (`mh` with
 * mh-port: the same table on every director).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { haveBird } from '../lab/ecmp.js';
import { compileGuestTree, removeGuestTree, runInVm, vmUnavailable, type GuestTree, type VmRun } from './ipvs-vm.js';

/** The whole VM run (boot, lab, three daemons, a crash); ECMP_IPVS_VM_TIMEOUT_S overrides it. */
const VM_TIMEOUT_S = Number(process.env.ECMP_IPVS_VM_TIMEOUT_S ?? 1500);
if (!(VM_TIMEOUT_S >= 60)) throw new Error(`ECMP_IPVS_VM_TIMEOUT_S=${process.env.ECMP_IPVS_VM_TIMEOUT_S}: a number of seconds ≥ 60 expected`);
const why = vmUnavailable() ?? (haveBird() ? undefined : 'bird2 (bird, birdc) is not installed');
if (why) console.log(`skipping the ECMP IPVS VM scenario: ${why}`);

describe.skipIf(why !== undefined)('ecmp mode on the kernel IPVS (VM): a director dies, its long-lived TCP connections live on', () => {
  let run: VmRun;
  let tree: GuestTree | undefined;
  const step = (name: string): Record<string, unknown> => {
    const r = run.records.find((x) => x.step === name);
    if (!r) throw new Error(`step ${name} missing; VM output:\n${run.output.slice(-4000)}`);
    return r;
  };

  afterAll(() => removeGuestTree(tree));

  it('boots the VM once and runs the lab: three IPVS directors, a crash', async () => {
    tree = compileGuestTree(['test/e2e/guest/ecmp-ipvs.scenario.ts', 'test/lab/ecmp-server.ts', 'test/lab/ecmp-client.ts']);
    // qemu TCG: each vigil daemon and its cluster process cost about a minute of emulated
    // CPU to load on a quiet machine, several on one at load 30+ (they start one after the
    // other); the crash run itself takes about a minute
    run = await runInVm(`ECMP_VM_RUNS=1 ECMP_VM_SCENARIOS=crash node ${tree.entry}`, VM_TIMEOUT_S);
    console.log(`ECMP IPVS scenario: ${Math.round(run.wallMs / 1000)} s in the VM\n${run.records.map((r) => JSON.stringify(r)).join('\n')}`);
    expect(run.records.find((r) => r.step === 'crash'), run.output.slice(-4000)).toBeUndefined();
    expect(run.records.at(-1)).toMatchObject({ done: true });
    expect(run.code).toBe(0);
  }, (VM_TIMEOUT_S + 60) * 1000);

  it('every director runs IPVS DR with mh + mh-port, sloppy_tcp set by vigil; BFD is up to all three', () => {
    const s = step('setup');
    expect(s.sloppyTcp).toEqual(['1', '1', '1']);
    expect(s.save).toMatch(/^-A -t \S+:7080 -s mh -b mh-port$/m);
    expect(s.save).toMatch(/^-a -t \S+:7080 -r \S+:7080 -g -w 1$/m);
    expect((s.bfd as string).match(/\sUp\s/g)).toHaveLength(3);
  });

  it('the crashed director carried long-lived connections; they moved to the others and none broke or was reset', () => {
    const r = step('run');
    const on = r.longOnDirector as number;
    console.log(
      `crash of ${String(r.director)}: it carried ${on} of ${String(r.longTotal)} long-lived connections (${JSON.stringify(r.longBefore)}), ` +
        `router converged in ${String(r.convergedMs)} ms; moved to ${JSON.stringify(r.movedTo)}; broken ${String(r.longBroken)} ${JSON.stringify(r.longErrors)}; ` +
        `UDP flows disturbed ${(r.outages as number[]).length}/${String(r.flows)} (gaps ${JSON.stringify(r.outages)} ms); ` +
        `new connections failed ${String(r.streamFailed)}/${String(r.streamTotal)}, disturbed ${String(r.streamDisturbed)}, outage ${String(r.streamOutageMs)} ms`,
    );
    expect(r.kind).toBe('crash');
    expect(r.longUnknown, 'every long-lived connection is in exactly one director table').toBe(0);
    // the test proves something only when the dead director carried some
    expect(on).toBeGreaterThanOrEqual(1);
    expect(r.longBroken, JSON.stringify(r.longErrors)).toBe(0);
    expect(r.longErrors).toEqual({});
    // each of the dead director's connections is now in the IPVS table of a surviving
    // director (sloppy_tcp took it mid-stream); some may be in both (the router rehashed)
    expect(r.longMoved).toBe(on);
    // BFD (6 × 400 ms in the VM) withdraws the dead director: the router converges before BGP's 9 s hold time would
    expect(r.convergedMs as number).toBeLessThan(9000);
  });

  it('new connections: none fails for good; those hashed to the dead director wait a SYN retransmission at most', () => {
    const r = step('run');
    expect(r.streamTotal as number).toBeGreaterThan(20);
    expect(r.streamFailed).toBe(0);
    // the router converges within BFD's 2.4 s or so; a SYN lost before that is retransmitted after 1 s, 3 s, 7 s
    // a connection may now wait its full 10 s connect timeout (SYN retransmissions under
    // emulation stalls): the last slow one ends within convergence + 10 s + a stall (19.6 s seen)
    expect(r.streamOutageMs as number).toBeLessThan(30_000);
  });
});
