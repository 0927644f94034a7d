import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { ConnectQueue, type RawConn } from '../../src/forwarder/tcp-raw.js';

// Only the fields the queue reads; state 1 (established) keeps a deadline that passes
// from being acted on, so no connection machinery is needed.
const conn = (): RawConn => ({ queued: false, attempt: 0, deadline: 0, queueSlot: 0, state: 1, closed: false }) as unknown as RawConn;

describe('ConnectQueue', () => {
  it('lets go of a connection as soon as its connect finishes, not at its deadline', () => {
    const q = new ConnectQueue();
    const cs = [conn(), conn(), conn()];
    for (const c of cs) q.add(c, performance.now(), 60_000);
    expect(q.waiting).toBe(3);
    q.remove(cs[1] as RawConn);
    expect(q.waiting).toBe(2);
    expect(cs[1]?.queued).toBe(false);
    q.remove(cs[1] as RawConn); // twice is harmless
    q.remove(cs[0] as RawConn);
    q.remove(cs[2] as RawConn);
    expect(q.waiting).toBe(0);
    q.close();
  });

  it('keeps slots right across compaction and reset, and after a retry queued the same connection again', async () => {
    const q = new ConnectQueue();
    const old = Array.from({ length: 3000 }, conn);
    for (const c of old) q.add(c, performance.now(), 1);
    await sleep(30); // the deadlines pass: the queue walks past them, compacts and empties
    expect(q.waiting).toBe(0);
    const fresh = Array.from({ length: 5 }, conn);
    for (const c of fresh) q.add(c, performance.now(), 60_000);
    // a connect that failed is removed, then queued again for the retry, in a new slot
    const retried = fresh[2] as RawConn;
    q.remove(retried);
    q.add(retried, performance.now(), 60_000);
    expect(q.waiting).toBe(5);
    q.remove(retried);
    expect(q.waiting).toBe(4);
    for (const c of fresh) q.remove(c);
    expect(q.waiting).toBe(0);
    q.close();
  });
});
