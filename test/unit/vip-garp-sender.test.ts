/**
 * GarpSender (src/vip/garp-sender.ts) with the real perl: bad requests are refused before
 * they reach the helper, an interface it cannot find is an error naming it, answers are
 * told apart in order, a helper that cannot start or stops answering fails what waits.
 * Opening a packet socket needs CAP_NET_RAW: without root the helper says so and is not
 * usable (that is tested too); frames on the wire are tested in test/e2e/vip-netns.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { GarpSender } from '../../src/vip/garp-sender.js';

const root = process.getuid?.() === 0;
if (!root) console.log('vip-garp-sender: the cases that send run as root only (a packet socket needs CAP_NET_RAW)');

const open: GarpSender[] = [];
const sender = (perl = 'perl', pre: string[] = [], timeoutMs = 2000): { s: GarpSender; states: boolean[] } => {
  const states: boolean[] = [];
  const s = new GarpSender(perl, pre, timeoutMs, (u) => states.push(u));
  open.push(s);
  s.start();
  return { s, states };
};
afterEach(() => {
  for (const s of open.splice(0)) s.close();
});
const until = async (pred: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('GarpSender: one long-lived helper holding a packet socket', () => {
  it.skipIf(!root)('becomes usable, refuses bad names and addresses, names an interface it cannot find', async () => {
    const { s, states } = sender();
    await until(() => s.usable);
    expect(states).toEqual([true]);
    await expect(s.send('U', 'lo/../x', '10.0.0.1')).rejects.toThrow(/bad interface name/);
    await expect(s.send('U', 'a b', '10.0.0.1')).rejects.toThrow(/bad interface name/);
    await expect(s.send('U', 'lo', '10.0.0.256')).rejects.toThrow(/not an IPv4 address/);
    await expect(s.send('U', 'lo', 'fd00::1')).rejects.toThrow(/not an IPv4 address/);
    const rs = await Promise.allSettled([s.send('U', 'vigilnosuch0', '10.0.0.1'), s.send('A', 'vigilnosuch1', '10.0.0.2')]);
    expect(rs.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : 'ok'))).toEqual(['no interface vigilnosuch0', 'no interface vigilnosuch1']);
    // lo has an all-zero MAC but is an Ethernet-like device: the frame goes out
    await s.send('U', 'lo', '127.0.0.1');
    expect(s.usable, 'still running after errors').toBe(true);
  });

  it('a perl that does not exist: never usable, says why', async () => {
    const { s, states } = sender('/nonexistent/perl');
    await until(() => s.lastError !== undefined);
    expect(s.usable).toBe(false);
    expect(s.lastError).toMatch(/cannot run \/nonexistent\/perl: ENOENT/);
    await expect(s.send('U', 'lo', '127.0.0.1')).rejects.toThrow(/not running/);
    expect(states).toEqual([]);
  });

  it('a helper that says ready and then never answers: the request fails after the timeout, the helper is killed and comes back', async () => {
    // `sh -c 'echo ready; exec sleep 30'` stands in for a stuck helper (perl's arguments become its $0 and $@)
    const { s, states } = sender('perl', ['sh', '-c', 'echo ready; exec sleep 30'], 300);
    await until(() => s.usable);
    const t0 = Date.now();
    await expect(s.send('U', 'lo', '127.0.0.1')).rejects.toThrow(/no answer within 300 ms/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    await until(() => !s.usable);
    expect(states[0]).toBe(true);
    await until(() => states.length >= 2);
    expect(states[1]).toBe(false);
    // started again after a second
    await until(() => s.usable, 5000);
    expect(states.slice(0, 3)).toEqual([true, false, true]);
  });
});
