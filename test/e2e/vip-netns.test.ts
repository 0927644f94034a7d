/**
 * The real VipPort (iproute2 + iputils-arping) in network namespaces: a director and a
 * client joined by a veth pair. The VIP is added (twice: idempotent), announced by
 * gratuitous ARP (the client's stale neighbour entry for the VIP now points at the
 * director's MAC), and removed (twice). Also the VipManager on top of it: acquire,
 * stale cleanup, release. Needs root.
 */
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vipSchema } from '../../src/config/schema.js';
import { createMetrics } from '../../src/metrics.js';
import { VipManager } from '../../src/vip/manager.js';
import { IpVipPort, VipError } from '../../src/vip/port.js';

const root = process.getuid?.() === 0;
const ROOT = resolve(import.meta.dirname, '../..');
if (!root) console.log('vip-netns: skipped, needs root (network namespaces, ip addr)');

const id = `v${process.pid.toString(36)}${Math.floor(Math.random() * 1e4).toString(36)}`;
const D = `${id}-dir`;
const C = `${id}-cli`;
const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' });
const VIP = '10.231.0.100';
const spec = { address: VIP, prefix: 24, interface: 'vd0', label: 'vd0:vigil' };

function neighbourMac(ns: string, addr: string): string | undefined {
  const out = JSON.parse(ip('-n', ns, '-j', 'neigh', 'show', addr)) as { lladdr?: string }[];
  return out[0]?.lladdr;
}

/** The neighbour entry's MAC once it is `want`, or whatever it is after a second (an advertisement is handled asynchronously). */
async function neighbourMacSoon(ns: string, addr: string, want: string): Promise<string | undefined> {
  let mac = neighbourMac(ns, addr);
  for (let i = 0; i < 50 && mac !== want; i++) {
    await new Promise((r) => setTimeout(r, 20));
    mac = neighbourMac(ns, addr);
  }
  return mac;
}

describe.skipIf(!root)('IpVipPort in network namespaces', () => {
  let dirMac = '';
  beforeAll(() => {
    ip('netns', 'add', D);
    ip('netns', 'add', C);
    ip('link', 'add', 'vd0', 'netns', D, 'type', 'veth', 'peer', 'name', 'vc0', 'netns', C);
    ip('-n', D, 'addr', 'add', '10.231.0.1/24', 'dev', 'vd0');
    ip('-n', C, 'addr', 'add', '10.231.0.2/24', 'dev', 'vc0');
    for (const [ns, dev] of [[D, 'vd0'], [C, 'vc0'], [D, 'lo'], [C, 'lo']] as const) ip('-n', ns, 'link', 'set', dev, 'up');
    dirMac = (JSON.parse(ip('-n', D, '-j', 'link', 'show', 'vd0')) as { address: string }[])[0]!.address;
  });
  afterAll(() => {
    for (const ns of [D, C]) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // already gone
      }
    }
  });

  it('adds the VIP idempotently with its label, announces it by GARP, removes it idempotently', async () => {
    const port = new IpVipPort({ netns: D });
    expect(await port.has(spec)).toBe(false);
    expect(await port.add(spec)).toBe('added');
    expect(await port.add(spec)).toBe('present');
    expect(await port.has(spec)).toBe(true);
    expect(ip('-n', D, '-o', 'addr', 'show', 'dev', 'vd0')).toMatch(new RegExp(`inet ${VIP.replace(/\./g, '\\.')}/24 .*vd0:vigil`));

    // the client has a stale entry for the VIP pointing elsewhere (the old active director)
    ip('-n', C, 'neigh', 'replace', VIP, 'lladdr', '02:00:00:00:00:99', 'dev', 'vc0', 'nud', 'stale');
    expect(neighbourMac(C, VIP)).toBe('02:00:00:00:00:99');
    expect(await port.garp(spec, 'U')).toBe(true);
    expect(await port.garp(spec, 'A')).toBe(true);
    expect(neighbourMac(C, VIP)).toBe(dirMac);

    expect(await port.del(spec)).toBe('removed');
    expect(await port.del(spec)).toBe('absent');
    expect(await port.has(spec)).toBe(false);
  });

  const waitFor = async (what: string, pred: () => boolean, ms = 5000): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  it('prepared takeover: adds and removals through one long-lived ip -batch, GARPs from the helper holding a packet socket', async () => {
    const port = new IpVipPort({ netns: D });
    try {
      expect(port.ready(), 'nothing prepared, nothing to wait for').toBe(true);
      port.prepare([spec]);
      expect(port.batchRunning).toBe(true);
      // the helper is still starting: an arping forked ahead covers the first GARP meanwhile
      expect(port.armedCount).toBe(1);
      expect(port.ready()).toBe(true);
      await waitFor('the GARP helper runs', () => port.garpHelperRunning);
      expect(port.ready(), 'a takeover now starts no process').toBe(true);
      expect(port.armedCount, 'no arping armed while the helper runs').toBe(0);
      ip('-n', C, 'neigh', 'replace', VIP, 'lladdr', '02:00:00:00:00:96', 'dev', 'vc0', 'nud', 'stale');
      const t0 = performance.now();
      expect(await port.add(spec)).toBe('added');
      const addMs = performance.now() - t0;
      expect(ip('-n', D, '-o', 'addr', 'show', 'dev', 'vd0')).toMatch(new RegExp(`inet ${VIP.replace(/\./g, '\\.')}/24 .*vd0:vigil`));
      expect(await port.add(spec)).toBe('present');
      const t1 = performance.now();
      expect(await port.garp(spec, 'U')).toBe(true);
      const garpMs = performance.now() - t1;
      // the client's stale entry now points at this director: the frame is a GARP the kernel believes
      expect(await neighbourMacSoon(C, VIP, dirMac)).toBe(dirMac);
      ip('-n', C, 'neigh', 'replace', VIP, 'lladdr', '02:00:00:00:00:95', 'dev', 'vc0', 'nud', 'stale');
      expect(await port.garp(spec, 'A')).toBe(true);
      expect(await neighbourMacSoon(C, VIP, dirMac), 'the ARP reply form moves it too').toBe(dirMac);
      // an interface the helper cannot find: it says so, and arping (the fallback) says why
      await expect(port.garp({ ...spec, interface: 'vnosuch0' }, 'U')).rejects.toThrow(/arping -U -I vnosuch0 10\.231\.0\.100/);
      expect(port.garpHelperRunning, 'the helper survives a bad request').toBe(true);
      await expect(port.add({ ...spec, interface: 'vnosuch0' })).rejects.toThrow(/ip addr add 10\.231\.0\.100\/24 dev vnosuch0: Cannot find device "vnosuch0"/);
      const t2 = performance.now();
      expect(await port.del(spec)).toBe('removed');
      const delMs = performance.now() - t2;
      expect(await port.del(spec)).toBe('absent');
      expect(port.batchRunning, 'still the same co-process after errors').toBe(true);
      const spawned = new IpVipPort({ netns: D });
      const t3 = performance.now();
      expect(await spawned.add(spec)).toBe('added');
      const spawnMs = performance.now() - t3;
      expect(await spawned.del(spec)).toBe('removed');
      console.log(`ip -batch addr add ${addMs.toFixed(1)} ms, del ${delMs.toFixed(1)} ms; a spawned ip addr add ${spawnMs.toFixed(1)} ms; GARP from the helper ${garpMs.toFixed(1)} ms`);
    } finally {
      port.close();
      await new IpVipPort({ netns: D }).del(spec);
    }
    expect(port.armedCount).toBe(0);
    expect(port.batchRunning).toBe(false);
    expect(port.garpHelperRunning).toBe(false);
  });

  it('the GARP helper killed, or no perl at all: the first GARP comes from an arping forked ahead', async () => {
    const port = new IpVipPort({ netns: D });
    const noPerl = new IpVipPort({ netns: D, perl: '/nonexistent/perl' });
    try {
      port.prepare([spec]);
      await waitFor('the GARP helper runs', () => port.garpHelperRunning);
      const helper = (port as unknown as { garps: { pid: number } }).garps.pid;
      process.kill(helper, 'SIGKILL');
      await waitFor('arping armed once the helper died', () => port.armedCount === 1);
      expect(port.garpHelperRunning).toBe(false);
      expect(port.ready(), 'the armed arping covers the first GARP').toBe(true);
      expect(await port.add(spec)).toBe('added');
      ip('-n', C, 'neigh', 'replace', VIP, 'lladdr', '02:00:00:00:00:94', 'dev', 'vc0', 'nud', 'stale');
      const garp = port.garp(spec, 'U'); // arping -c 1 then waits about a second
      expect(port.armedCount, 'the GARP used its armed run').toBe(0);
      expect(await garp).toBe(true);
      expect(await neighbourMacSoon(C, VIP, dirMac)).toBe(dirMac);
      // the helper is started again a second later, and the armed arping goes
      await waitFor('the GARP helper runs again', () => port.garpHelperRunning);
      await waitFor('arping disarmed', () => port.armedCount === 0);
      expect(await port.del(spec)).toBe('removed');

      noPerl.prepare([spec]);
      expect(noPerl.armedCount).toBe(1);
      await new Promise((r) => setTimeout(r, 300));
      expect(noPerl.garpHelperRunning).toBe(false);
      expect(await noPerl.add(spec)).toBe('added');
      ip('-n', C, 'neigh', 'replace', VIP, 'lladdr', '02:00:00:00:00:93', 'dev', 'vc0', 'nud', 'stale');
      expect(await noPerl.garp(spec, 'U')).toBe(true);
      expect(await neighbourMacSoon(C, VIP, dirMac)).toBe(dirMac);
      expect(await noPerl.del(spec)).toBe('removed');
    } finally {
      port.close();
      noPerl.close();
      await new IpVipPort({ netns: D }).del(spec);
    }
  });

  it('IPv6: the VIP is usable at once and the kernel advertises it, moving the client\'s neighbour entry', async () => {
    const spec6 = { address: 'fd00:231::100', prefix: 64, interface: 'vd0' };
    const port = new IpVipPort({ netns: D });
    // the client's entry for the VIP points at the old active director's MAC
    ip('-n', C, '-6', 'neigh', 'replace', spec6.address, 'lladdr', '02:00:00:00:00:98', 'dev', 'vc0', 'nud', 'stale');
    expect(neighbourMac(C, spec6.address)).toBe('02:00:00:00:00:98');
    expect(await port.add(spec6)).toBe('added');
    // not tentative: duplicate address detection would keep it unusable for about a second
    expect(ip('-n', D, '-6', '-o', 'addr', 'show', 'dev', 'vd0')).toMatch(/inet6 fd00:231::100\/64 scope global/);
    expect(ip('-n', D, '-6', '-o', 'addr', 'show', 'dev', 'vd0')).not.toMatch(/fd00:231::100\/64.*tentative/);
    expect(await neighbourMacSoon(C, spec6.address, dirMac)).toBe(dirMac);
    expect(await port.garp(spec6, 'U')).toBe(false); // no ARP for IPv6: the advertisement came with the add
    expect(await port.del(spec6)).toBe('removed');
  });

  it('IPv6, as the daemon does it in its own namespace: the interface settings written to /proc/sys directly', async () => {
    const spec6 = { address: 'fd00:231::101', prefix: 64, interface: 'vd0' };
    ip('-n', D, 'link', 'set', 'vd0', 'down'); // a fresh start for the settings: the daemon's port sets them itself
    ip('netns', 'exec', D, 'sysctl', '-q', '-w', 'net.ipv6.conf.vd0.accept_dad=1', 'net.ipv6.conf.vd0.ndisc_notify=0');
    ip('-n', D, 'link', 'set', 'vd0', 'up');
    ip('-n', C, '-6', 'neigh', 'replace', spec6.address, 'lladdr', '02:00:00:00:00:97', 'dev', 'vc0', 'nud', 'stale');
    const port = pathToFileURL(join(ROOT, 'dist', 'vip', 'port.js')).href;
    const out = execFileSync('ip', ['netns', 'exec', D, process.execPath, '--input-type=module', '-e', `const { IpVipPort } = await import(${JSON.stringify(port)}); console.log(await new IpVipPort().add(${JSON.stringify(spec6)}));`], { encoding: 'utf8' });
    expect(out.trim()).toBe('added');
    expect(execFileSync('ip', ['netns', 'exec', D, 'cat', '/proc/sys/net/ipv6/conf/vd0/accept_dad', '/proc/sys/net/ipv6/conf/vd0/ndisc_notify'], { encoding: 'utf8' }).split('\n').slice(0, 2)).toEqual(['0', '1']);
    expect(ip('-n', D, '-6', '-o', 'addr', 'show', 'dev', 'vd0')).not.toMatch(/fd00:231::101\/64.*tentative/);
    expect(await neighbourMacSoon(C, spec6.address, dirMac)).toBe(dirMac);
    ip('-n', D, '-6', 'addr', 'del', `${spec6.address}/64`, 'dev', 'vd0');
  });

  it('reports a missing interface as a clear error', async () => {
    const port = new IpVipPort({ netns: D });
    await expect(port.add({ ...spec, interface: 'nosuch0' })).rejects.toThrow(VipError);
    await expect(port.add({ ...spec, interface: 'nosuch0' })).rejects.toThrow(/ip addr add 10\.231\.0\.100\/24 dev nosuch0: .*nosuch0/);
    expect(await port.has({ ...spec, interface: 'nosuch0' })).toBe(false);
  });

  it('VipManager: a stale VIP is removed at start; acquire adds and announces; release removes', async () => {
    const metrics = createMetrics({ defaults: false });
    const vips = [vipSchema.parse({ address: VIP, prefix: 24, interface: 'vd0', garp: { count: 2, interval_ms: 10, repeat_after_ms: 0 } })];
    const m = new VipManager({ port: new IpVipPort({ netns: D }), vips, logger: pino({ level: 'silent' }), metrics });
    ip('-n', D, 'addr', 'add', `${VIP}/24`, 'dev', 'vd0');
    expect(await m.removeStale()).toEqual([VIP]);
    expect(ip('-n', D, '-o', 'addr', 'show', 'dev', 'vd0')).not.toContain(VIP);

    ip('-n', C, 'neigh', 'replace', VIP, 'lladdr', '02:00:00:00:00:98', 'dev', 'vc0', 'nud', 'stale');
    await m.acquire();
    expect(ip('-n', D, '-o', 'addr', 'show', 'dev', 'vd0')).toContain(`${VIP}/24`);
    const deadline = Date.now() + 3000;
    while (neighbourMac(C, VIP) !== dirMac && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(neighbourMac(C, VIP)).toBe(dirMac);
    // each arping waits a second for replies after sending: the count lands when it exits
    const sent = async () => (await metrics.garpSent.get()).values[0]?.value ?? 0;
    while ((await sent()) < 2 && Date.now() < deadline + 3000) await new Promise((r) => setTimeout(r, 20));
    expect(await sent()).toBe(2);
    await m.release();
    await m.close();
    expect(ip('-n', D, '-o', 'addr', 'show', 'dev', 'vd0')).not.toContain(VIP);
  });
});
