/**
 * deploy/realserver-dr and deploy/realserver-tun, run for real in network namespaces.
 *
 * DR: two namespaces on a veth. The "director" routes the VIP to the real server's
 * address, which is exactly what LVS-DR does (the frame goes to the real server's MAC
 * with the VIP as destination). Before the script runs the real server drops those
 * packets; after `start` it accepts them (VIP on lo) yet never answers ARP for the VIP
 * (arp_ignore=1), which arping from the director shows.
 *
 * TUN: this machine's kernel has no ipip module, so here the test only checks that the
 * script says so clearly. In the IPVS VM (Debian's kernel, ipip loaded with insmod) the
 * director encapsulates packets for the VIP in IPIP like IPVS -i does, and the real
 * server answers them once `realserver-tun start` has run (tunl0, rp_filter=0); setting
 * rp_filter back to strict breaks it again. The same VM run applies
 * deploy/sysctl-director.conf with ip_vs loaded, so every net.ipv4.vs.* key is checked.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tmpDir, writeFile } from '../helpers/daemon.js';
import { vmUnavailable } from './ipvs-vm.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const DR = join(ROOT, 'deploy', 'realserver-dr');
const TUN = join(ROOT, 'deploy', 'realserver-tun');
const root = process.getuid?.() === 0;
const tools = ['ip', 'arping', 'socat'].every((b) => ['/usr/bin', '/usr/sbin', '/bin', '/sbin'].some((d) => existsSync(join(d, b))));
if (!root) console.log('deploy-realserver: not root, network-namespace tests skip');
else if (!tools) console.log('deploy-realserver: ip, arping or socat missing (.ci/run installs them): tests skip');

const VM_RUN = resolve(ROOT, '..', 'shared', 'ipvs-vm', 'run-in-vm.sh');
const VM_DIR = process.env.IPVS_VM_DIR ?? '/tmp/ipvs-vm';
const vmKernelNet = (): string | undefined => {
  const mods = join(VM_DIR, 'kroot', 'lib', 'modules');
  if (!existsSync(mods)) return undefined;
  const kv = readdirSync(mods)[0];
  const dir = kv && join(mods, kv, 'kernel', 'net', 'ipv4');
  return dir && existsSync(join(dir, 'ipip.ko')) ? dir : undefined;
};
/**
 * Why the VM test cannot run, or undefined. On a fresh machine the VM is not built yet:
 * build it now (run-in-vm.sh would, but the skip is decided before anything runs it).
 */
function vmMissing(): string | undefined {
  const why = vmUnavailable();
  if (why) return why;
  if (vmKernelNet() !== undefined) return undefined;
  console.log(`deploy-realserver: building the IPVS VM in ${VM_DIR} (first run on this machine)...`);
  try {
    execFileSync(join(dirname(VM_RUN), 'build.sh'), [], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 600_000 });
  } catch (e) {
    return `${join(dirname(VM_RUN), 'build.sh')} failed: ${String((e as { stderr?: Buffer }).stderr ?? e).trim().split('\n').slice(-3).join(' / ')}`;
  }
  return vmKernelNet() === undefined ? `the VM built in ${VM_DIR} has no ipip.ko` : undefined;
}
const vmWhy = root && tools ? vmMissing() : 'no root or tools';
const vm = vmWhy === undefined;
if (root && tools && !vm) console.log(`deploy-realserver: the IPVS VM cannot run (${vmWhy}): the TUN data path test skips`);

const exec = promisify(execFile);
async function sh(cmd: string, args: string[], timeout = 15_000): Promise<{ code: number; out: string; err: string }> {
  try {
    const r = await exec(cmd, args, { timeout });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const x = e as { code: number | string; stdout: string; stderr: string };
    return { code: typeof x.code === 'number' ? x.code : -1, out: x.stdout ?? '', err: x.stderr ?? String(e) };
  }
}
const inNs = (ns: string, ...args: string[]) => sh('ip', ['netns', 'exec', ns, ...args]);

describe.skipIf(!root || !tools)('realserver-dr in network namespaces', () => {
  const id = randomBytes(3).toString('hex');
  const dir = `vgdd${id}`; // director
  const rs = `vgdr${id}`; // real server
  const VIP = '10.79.9.9';
  let listener: ChildProcess | undefined;

  beforeAll(async () => {
    for (const cmd of [
      ['netns', 'add', dir],
      ['netns', 'add', rs],
      ['link', 'add', `d${id}`, 'netns', dir, 'type', 'veth', 'peer', 'name', `r${id}`, 'netns', rs],
      ['-n', dir, 'addr', 'add', '10.79.0.1/24', 'dev', `d${id}`],
      ['-n', rs, 'addr', 'add', '10.79.0.2/24', 'dev', `r${id}`],
      ['-n', dir, 'link', 'set', `d${id}`, 'up'],
      ['-n', rs, 'link', 'set', `r${id}`, 'up'],
      ['-n', dir, 'link', 'set', 'lo', 'up'],
      ['-n', rs, 'link', 'set', 'lo', 'up'],
      // what IPVS-DR does: packets for the VIP go to the real server's MAC unchanged
      ['-n', dir, 'route', 'add', `${VIP}/32`, 'via', '10.79.0.2'],
    ]) {
      const r = await sh('ip', cmd);
      if (r.code !== 0) throw new Error(`ip ${cmd.join(' ')}: ${r.err}`);
    }
    listener = spawn('ip', ['netns', 'exec', rs, 'socat', 'TCP-LISTEN:8080,reuseaddr,fork', 'SYSTEM:echo hello-from-real-server'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300));
  });
  afterAll(async () => {
    listener?.kill('SIGKILL');
    await sh('ip', ['netns', 'del', dir]);
    await sh('ip', ['netns', 'del', rs]);
  });

  const connect = () => inNs(dir, 'socat', '-T2', '-', `TCP:${VIP}:8080,connect-timeout=2`);
  const arpingVip = () => inNs(dir, 'arping', '-c', '2', '-w', '2', '-I', `d${id}`, VIP);
  const sysctl = async (key: string) => (await inNs(rs, 'cat', `/proc/sys/net/ipv4/conf/${key}`)).out.trim();

  it('before start: status exits 3 and the real server drops packets for the VIP', async () => {
    const s = await inNs(rs, DR, 'status', VIP);
    expect(s.code).toBe(3);
    expect(s.out).toContain(`VIP ${VIP}: MISSING on lo`);
    expect((await connect()).code).not.toBe(0);
  });

  it('start: VIP on lo as /32, arp_ignore=1 and arp_announce=2; the real server answers DR traffic', async () => {
    const s = await inNs(rs, DR, 'start', VIP);
    expect(s.err).toBe('');
    expect(s.code).toBe(0);
    expect((await inNs(rs, 'ip', '-o', 'addr', 'show', 'dev', 'lo')).out).toMatch(new RegExp(`inet ${VIP.replaceAll('.', '\\.')}/32 .*lo:vigil0`));
    expect([await sysctl('all/arp_ignore'), await sysctl('all/arp_announce'), await sysctl('lo/arp_ignore'), await sysctl('lo/arp_announce')]).toEqual(['1', '2', '1', '2']);
    const st = await inNs(rs, DR, 'status', VIP);
    expect(st.code).toBe(0);
    const c = await connect();
    expect(c.code).toBe(0);
    expect(c.out.trim()).toBe('hello-from-real-server');
    // idempotent
    expect((await inNs(rs, DR, 'start', VIP)).out).toContain('already on lo');
  });

  it('the real server never answers ARP for the VIP (only the director may)', async () => {
    expect((await inNs(dir, 'arping', '-c', '1', '-w', '2', '-I', `d${id}`, '10.79.0.2')).code).toBe(0);
    expect((await arpingVip()).code).not.toBe(0);
    // the same host with arp_ignore=0 would answer: what the script prevents
    await inNs(rs, 'sh', '-c', 'echo 0 > /proc/sys/net/ipv4/conf/all/arp_ignore; echo 0 > /proc/sys/net/ipv4/conf/lo/arp_ignore');
    expect((await arpingVip()).code).toBe(0);
    await inNs(rs, DR, 'start', VIP);
    expect((await arpingVip()).code).not.toBe(0);
  });

  it('stop removes the VIP and restores the ARP defaults; status exits 3 again', async () => {
    const s = await inNs(rs, DR, 'stop', VIP);
    expect(s.code).toBe(0);
    expect((await inNs(rs, 'ip', '-o', 'addr', 'show', 'dev', 'lo')).out).not.toContain(VIP);
    expect([await sysctl('all/arp_ignore'), await sysctl('all/arp_announce')]).toEqual(['0', '0']);
    expect((await inNs(rs, DR, 'status', VIP)).code).toBe(3);
    expect((await connect()).code).not.toBe(0);
  });

  it('reads VIPs from $VIGIL_REALSERVER_CONF and refuses garbage', async () => {
    const conf = writeFile(tmpDir('vigil-rs-'), 'realserver.conf', `VIPS="${VIP} 10.79.9.10"\n`);
    const r = await inNs(rs, 'env', `VIGIL_REALSERVER_CONF=${conf}`, DR, 'start');
    expect(r.code).toBe(0);
    expect(r.out).toContain('VIP 10.79.9.10 added on lo');
    expect((await inNs(rs, 'env', `VIGIL_REALSERVER_CONF=${conf}`, DR, 'stop')).code).toBe(0);
    const bad = await inNs(rs, DR, 'start', 'not-an-ip');
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('"not-an-ip" is not an IP address');
    expect((await inNs(rs, DR, 'restart', VIP)).code).toBe(2);
  });
});

describe.skipIf(!root || !tools)('realserver-tun on this kernel', () => {
  it('says clearly when the kernel has no IPIP support, or sets tunl0 up when it has', async () => {
    const ns = `vgdt${randomBytes(3).toString('hex')}`;
    await sh('ip', ['netns', 'add', ns]);
    try {
      const r = await inNs(ns, TUN, 'start', '10.79.8.8');
      const hasIpip = (await inNs(ns, 'ip', 'link', 'show', 'tunl0')).code === 0;
      if (hasIpip) {
        expect(r.code).toBe(0);
        expect((await inNs(ns, TUN, 'status', '10.79.8.8')).code).toBe(0);
      } else {
        console.log('deploy-realserver: no ipip module in this kernel; the TUN data path is tested in the IPVS VM');
        expect(r.code).toBe(1);
        expect(r.err.trim()).toBe('realserver-tun: no tunl0: this kernel has no IPIP tunnel support (modprobe ipip failed)');
        expect((await inNs(ns, TUN, 'status', '10.79.8.8')).code).toBe(3);
      }
    } finally {
      await sh('ip', ['netns', 'del', ns]);
    }
  });
});

describe.skipIf(!root || !tools || !vm)('realserver-tun and sysctl-director.conf in the IPVS VM', () => {
  it('an IPIP-encapsulated connection to the VIP is answered once the script ran; the sysctl file applies', async () => {
    const k = vmKernelNet() as string;
    const script = writeFile(
      tmpDir('vigil-tun-'),
      'tun.sh',
      `#!/bin/bash
set -u
for m in tunnel4 ip_tunnel ipip; do insmod ${k}/$m.ko || echo "insmod $m failed"; done
ip netns add d; ip netns add r
ip link add vd netns d type veth peer name vr netns r
ip -n d addr add 10.78.0.1/24 dev vd; ip -n d link set vd up; ip -n d link set lo up
ip -n r addr add 10.78.0.2/24 dev vr; ip -n r link set vr up; ip -n r link set lo up
# the director side of LVS-TUN: packets for the VIP leave IPIP-encapsulated to the real server
ip -n d link add tund type ipip local 10.78.0.1 remote 10.78.0.2; ip -n d link set tund up
ip -n d route add 10.78.9.9/32 dev tund
ip netns exec r socat TCP-LISTEN:8080,reuseaddr,fork SYSTEM:'echo hello-through-ipip' &
sleep 1
try() { ip netns exec d socat -T3 - TCP:10.78.9.9:8080,connect-timeout=3 </dev/null 2>/dev/null; echo "$1=$?"; }
ip netns exec r ${TUN} status 10.78.9.9 >/dev/null; echo "status-before=$?"
try connect-before
ip netns exec r ${TUN} start 10.78.9.9; echo "start=$?"
ip netns exec r ${TUN} status 10.78.9.9; echo "status-after=$?"
try connect-after
ip netns exec r sh -c 'echo 1 > /proc/sys/net/ipv4/conf/all/rp_filter; echo 1 > /proc/sys/net/ipv4/conf/tunl0/rp_filter'
try connect-strict-rp
ip netns exec r ${TUN} start 10.78.9.9 >/dev/null; echo "restart=$?"
try connect-again
ip netns exec r ${TUN} stop 10.78.9.9; echo "stop=$?"
ip netns exec r ${TUN} status 10.78.9.9 >/dev/null; echo "status-stopped=$?"
sysctl -p ${join(ROOT, 'deploy', 'sysctl-director.conf')}; echo "sysctl=$?"
`,
      0o755,
    );
    const r = await sh(VM_RUN, [`bash ${script}`], 240_000);
    const out = r.out + r.err;
    const val = (k2: string) => new RegExp(`^${k2}=(\\d+)$`, 'm').exec(out)?.[1];
    expect(out).not.toContain('insmod');
    expect(val('status-before')).toBe('3');
    expect(val('connect-before')).not.toBe('0');
    expect(val('start')).toBe('0');
    expect(val('status-after')).toBe('0');
    expect(out).toContain('hello-through-ipip');
    expect(val('connect-after')).toBe('0');
    // strict reverse-path filtering drops decapsulated packets: why the script sets 0
    expect(val('connect-strict-rp')).not.toBe('0');
    expect(val('restart')).toBe('0');
    expect(val('connect-again')).toBe('0');
    expect(val('stop')).toBe('0');
    expect(val('status-stopped')).toBe('3');
    expect(out).toContain('net.ipv4.vs.expire_nodest_conn = 1');
    expect(out).toContain('net.ipv4.vs.expire_quiescent_template = 1');
    expect(val('sysctl')).toBe('0');
  }, 300_000);
});
