/**
 * IpBatch (src/vip/ip-batch.ts) against the real iproute2: each command's answer is told
 * apart by the sentinel that follows it, in order, under concurrency; a dead co-process
 * fails what waits and comes back by itself. Read-only `ip link show` commands: no root needed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { IpBatch } from '../../src/vip/ip-batch.js';

const open: IpBatch[] = [];
const batch = (): IpBatch => {
  const b = new IpBatch('ip', [], 5000);
  open.push(b);
  b.start();
  return b;
};
afterEach(() => {
  for (const b of open.splice(0)) b.close();
});
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('IpBatch: one long-lived ip -force -batch -', () => {
  it('answers success with code 0 and a failure with code 1 and its own error line', async () => {
    const b = batch();
    expect(b.usable).toBe(true);
    expect(await b.run(['link', 'show', 'dev', 'lo'])).toEqual({ code: 0, stderr: '' });
    expect(await b.run(['link', 'show', 'dev', 'vigilnosuch0'])).toEqual({ code: 1, stderr: 'Device "vigilnosuch0" does not exist.' });
    expect(await b.run(['link', 'show', 'dev', 'lo'])).toEqual({ code: 0, stderr: '' });
  });

  it('keeps 60 commands in flight apart, in order', async () => {
    const b = batch();
    const rs = await Promise.all(Array.from({ length: 60 }, (_, i) => b.run(['link', 'show', 'dev', i % 3 === 0 ? 'lo' : `vigilno${i}`])));
    rs.forEach((r, i) => {
      if (i % 3 === 0) expect(r, `command ${i}`).toEqual({ code: 0, stderr: '' });
      else expect(r, `command ${i}`).toEqual({ code: 1, stderr: `Device "vigilno${i}" does not exist.` });
    });
  });

  it('refuses an argument it could not pass on one line', async () => {
    const b = batch();
    await expect(b.run(['link', 'show', 'dev', 'a b'])).rejects.toThrow(/cannot pass/);
    await expect(b.run(['link', 'show', 'dev', ''])).rejects.toThrow(/cannot pass/);
    expect(await b.run(['link', 'show', 'dev', 'lo'])).toEqual({ code: 0, stderr: '' });
  });

  it('a co-process killed from outside fails what waits, then comes back by itself', async () => {
    const b = batch();
    const pid = b.pid!;
    expect(pid).toBeGreaterThan(0);
    process.kill(pid, 'SIGSTOP'); // nothing is answered while it is stopped
    const waiting = b.run(['link', 'show', 'dev', 'lo']);
    process.kill(pid, 'SIGKILL');
    await expect(waiting).rejects.toThrow(/ip -batch co-process exited \(SIGKILL\)/);
    expect(b.usable).toBe(false);
    await expect(b.run(['link', 'show', 'dev', 'lo'])).rejects.toThrow(/not running/);
    const deadline = Date.now() + 10_000;
    while (!b.usable && Date.now() < deadline) await sleep(50);
    expect(b.usable, 'restarted about a second later').toBe(true);
    expect(b.pid).not.toBe(pid);
    expect(await b.run(['link', 'show', 'dev', 'lo'])).toEqual({ code: 0, stderr: '' });
  });

  it('a missing ip binary: not usable, run rejects at once', async () => {
    const b = new IpBatch('/nonexistent/ip', [], 5000);
    open.push(b);
    b.start();
    await sleep(200);
    expect(b.usable).toBe(false);
    await expect(b.run(['link', 'show'])).rejects.toThrow(/not running/);
  });

  it('close ends it; later commands reject and it does not come back', async () => {
    const b = batch();
    const pid = b.pid!;
    b.close();
    await expect(b.run(['link', 'show', 'dev', 'lo'])).rejects.toThrow(/not running/);
    await sleep(1500);
    expect(b.usable).toBe(false);
    let alive = true;
    for (let i = 0; i < 50 && alive; i++) {
      try {
        process.kill(pid, 0);
        await sleep(20);
      } catch {
        alive = false;
      }
    }
    expect(alive, 'the co-process exits when its stdin closes').toBe(false);
  });
});
