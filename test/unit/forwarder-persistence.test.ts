import { describe, expect, it } from 'vitest';
import { foldAddress, persistenceMasker, unmapV4 } from '../../src/forwarder/address.js';
import { PersistenceTable } from '../../src/forwarder/persistence.js';
import { RateEstimator } from '../../src/forwarder/stats.js';

describe('persistence templates (fake clock)', () => {
  it('keeps a client on its real server until the timeout after its last connection', () => {
    const p = new PersistenceTable<string>(300_000);
    const t = p.bind('10.0.0.1', 'A', 0);
    p.release(t, 1000);
    expect(p.lookup('10.0.0.1', 300_999)?.dest).toBe('A');
    expect(p.lookup('10.0.0.1', 301_000)).toBeUndefined();
    expect(p.size).toBe(0);
  });
  it('never expires while a connection it scheduled is open', () => {
    const p = new PersistenceTable<string>(1000);
    const t = p.bind('c', 'A', 0);
    expect(p.lookup('c', 10_000)?.dest).toBe('A');
    expect(p.sweep(10_000)).toBe(0);
    p.release(t, 10_000);
    expect(p.lookup('c', 10_999)?.dest).toBe('A');
    expect(p.sweep(11_000)).toBe(1);
  });
  it('a new connection refreshes the timeout; drop forgets the client', () => {
    const p = new PersistenceTable<string>(1000);
    p.release(p.bind('c', 'A', 0), 0);
    p.release(p.bind('c', 'A', 900), 900);
    expect(p.lookup('c', 1800)?.dest).toBe('A');
    p.drop('c');
    expect(p.lookup('c', 1800)).toBeUndefined();
  });
  it('adopts a template from another worker only when it has none', () => {
    const p = new PersistenceTable<string>(1000);
    p.adopt('c', 'B', 0);
    p.adopt('c', 'C', 10);
    expect(p.lookup('c', 20)?.dest).toBe('B');
  });
});

describe('netmask granularity (ipvsadm -M)', () => {
  it.each([
    [undefined, '10.1.2.3', '10.1.2.3'],
    ['255.255.255.0', '10.1.2.3', '10.1.2.0'],
    ['255.255.0.0', '10.1.2.3', '10.1.0.0'],
    ['255.255.255.0', '::ffff:10.1.2.3', '10.1.2.0'],
    ['64', '2001:db8:1:2:3:4:5:6', '2001:db8:1:2:0:0:0:0'],
    ['48', '2001:db8:1:2::9', '2001:db8:1:0:0:0:0:0'],
  ])('mask %s: %s → %s', (mask, addr, key) => {
    expect(persistenceMasker(mask)(addr)).toBe(key);
  });
  it('clients in one masked network share a template', () => {
    const m = persistenceMasker('255.255.255.0');
    const p = new PersistenceTable<string>(1000);
    p.bind(m('192.168.1.10'), 'A', 0);
    expect(p.lookup(m('192.168.1.200'), 1)?.dest).toBe('A');
    expect(p.lookup(m('192.168.2.10'), 1)).toBeUndefined();
  });
});

describe('address folding', () => {
  it('folds IPv4 to its value and IPv6 to the XOR of its words', () => {
    expect(foldAddress('10.0.0.1')).toBe(0x0a000001);
    expect(foldAddress('::ffff:10.0.0.1')).toBe(0x0a000001);
    expect(foldAddress('2001:db8::1')).toBe((0x20010db8 ^ 0 ^ 0 ^ 1) >>> 0);
    expect(unmapV4('::1')).toBe('::1');
  });
});

describe('rate estimator (fake clock)', () => {
  it('reports per-second rates over the window', () => {
    const r = new RateEstimator(2000);
    r.observe(0, { connections: 0, bytesIn: 0, bytesOut: 0 });
    r.observe(1000, { connections: 10, bytesIn: 1000, bytesOut: 5000 });
    r.observe(2000, { connections: 20, bytesIn: 2000, bytesOut: 10000 });
    expect(r.rates()).toEqual({ cps: 10, bpsIn: 1000, bpsOut: 5000 });
    r.observe(3000, { connections: 20, bytesIn: 2000, bytesOut: 10000 });
    r.observe(4000, { connections: 20, bytesIn: 2000, bytesOut: 10000 });
    expect(r.rates()).toEqual({ cps: 0, bpsIn: 0, bpsOut: 0 });
  });
});
