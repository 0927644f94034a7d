import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MAX_FRAME, ReplayGuard, decodeFrame, encodeFrame, monoUs, usDiff, type DecodeContext, type Frame } from '../../src/cluster/wire.js';

const key = Buffer.from('0123456789abcdef0123456789abcdef');
const frame = (over: Partial<Frame> = {}): Frame => ({
  cluster: 'lvs-dr',
  node: 'lvs2',
  link: 'heartbeat',
  role: 'active',
  priority: 150,
  releasing: false,
  leaving: false,
  takeover: false,
  yielding: true,
  incarnation: 1_700_000_000_000_000n,
  seq: 42,
  sentUs: 123456,
  echoSeq: 7,
  echoSentUs: 4_294_967_000,
  echoHoldUs: 5000,
  echoIncarnation: 1_699_999_000_000_000n,
  version: 2,
  ...over,
});
const ctx = (over: Partial<DecodeContext> = {}): DecodeContext => ({ key, cluster: 'lvs-dr', self: 'lvs1', peers: new Set(['lvs2', 'lvs3']), link: 'heartbeat', ...over });

describe('heartbeat frame codec', () => {
  it('round-trips every field', () => {
    const f = frame({ releasing: true, leaving: true, takeover: true, role: 'maintenance', priority: 0 });
    const r = decodeFrame(encodeFrame(f, key), ctx());
    expect(r).toEqual({ ok: true, frame: f });
  });

  it.each([
    ['wrong key', () => decodeFrame(encodeFrame(frame(), Buffer.from('another key')), ctx()), 'bad_hmac'],
    ['wrong cluster', () => decodeFrame(encodeFrame(frame({ cluster: 'other' }), key), ctx()), 'wrong_cluster'],
    ['own name', () => decodeFrame(encodeFrame(frame({ node: 'lvs1' }), key), ctx()), 'self'],
    ['unknown node', () => decodeFrame(encodeFrame(frame({ node: 'intruder' }), key), ctx()), 'unknown_node'],
    ['sent on another link', () => decodeFrame(encodeFrame(frame({ link: 'lan' }), key), ctx()), 'wrong_link'],
    ['oversized', () => decodeFrame(Buffer.alloc(MAX_FRAME + 1), ctx()), 'oversized'],
    ['empty', () => decodeFrame(Buffer.alloc(0), ctx()), 'truncated'],
    ['bad magic', () => decodeFrame(Buffer.from('GET / HTTP/1.1\r\n\r\n'.padEnd(100)), ctx()), 'bad_magic'],
  ])('drops a frame with %s', (_what, run, reason) => {
    expect(run()).toEqual({ ok: false, reason });
  });

  it('drops a frame of another version', () => {
    for (const v of [0, 4, 255]) {
      const b = encodeFrame(frame(), key);
      b[4] = v;
      expect(decodeFrame(b, ctx())).toEqual({ ok: false, reason: 'bad_version' });
    }
  });

  it('reads and writes version 1 frames (no echoed incarnation) for a peer not yet upgraded', () => {
    const f = frame({ version: 1, echoIncarnation: undefined });
    const b = encodeFrame(f, key);
    expect(b[4]).toBe(1);
    expect(b.length).toBe(encodeFrame(frame(), key).length - 8);
    expect(decodeFrame(b, ctx())).toEqual({ ok: true, frame: f });
    // a version 2 frame re-labelled as version 1 fails its HMAC or its layout, never decodes
    const v2 = encodeFrame(frame(), key);
    v2[4] = 1;
    const r = decodeFrame(v2, ctx());
    expect(r.ok).toBe(false);
  });

  it('carries the echoed incarnation of the addressee (version 2)', () => {
    const b = encodeFrame(frame({ echoIncarnation: 0x0102030405060708n }), key);
    expect(b.readBigUInt64BE(36)).toBe(0x0102030405060708n);
    const r = decodeFrame(b, ctx());
    expect(r.ok && r.frame.echoIncarnation).toBe(0x0102030405060708n);
  });

  it('drops every truncation of a valid frame', () => {
    const b = encodeFrame(frame(), key);
    for (let n = 0; n < b.length; n++) {
      const r = decodeFrame(b.subarray(0, n), ctx());
      expect(r.ok, `length ${n}`).toBe(false);
      if (!r.ok) expect(['truncated', 'malformed', 'bad_hmac']).toContain(r.reason);
    }
  });

  it('drops a frame with extra bytes appended', () => {
    const b = Buffer.concat([encodeFrame(frame(), key), Buffer.from([0])]);
    expect(decodeFrame(b, ctx())).toEqual({ ok: false, reason: 'malformed' });
  });

  it('drops every single bit flip of a valid frame, never throwing', () => {
    const b = encodeFrame(frame(), key);
    const reasons = new Set<string>();
    for (let i = 0; i < b.length * 8; i++) {
      const c = Buffer.from(b);
      c[i >> 3] = c[i >> 3]! ^ (1 << (i & 7));
      const r = decodeFrame(c, ctx());
      expect(r.ok, `bit ${i}`).toBe(false);
      if (!r.ok) reasons.add(r.reason);
    }
    expect(reasons).toContain('bad_hmac');
    expect(reasons).toContain('bad_magic');
    expect(reasons).toContain('malformed');
  });

  it('never throws on random datagrams and accepts none', () => {
    for (let i = 0; i < 5000; i++) {
      const len = Math.floor(Math.random() * (MAX_FRAME + 64));
      const b = randomBytes(len);
      if (i % 3 === 0 && len >= 5) {
        b.writeUInt32BE(0x56474842, 0); // right magic and version, random rest
        b[4] = 1;
      }
      expect(() => decodeFrame(b, ctx())).not.toThrow();
      expect(decodeFrame(b, ctx()).ok).toBe(false);
    }
  });

  it('computes time differences across the 32-bit wrap', () => {
    expect(usDiff(monoUs(4_295_000), monoUs(4_294_000))).toBe(1_000_000); // 4 295 000 ms wraps 2^32 µs
    expect(usDiff(5, 0xffff_fffb)).toBe(10);
  });
});

describe('replay guard', () => {
  it('refuses a sequence not above the last on the same link, per link', () => {
    const g = new ReplayGuard();
    const f = { node: 'lvs2', link: 'heartbeat', incarnation: 10n, seq: 5 };
    expect(g.check(f)).toBe('ok');
    g.accept(f);
    expect(g.check(f)).toBe('replayed');
    expect(g.check({ ...f, seq: 4 })).toBe('replayed');
    expect(g.check({ ...f, seq: 6 })).toBe('ok');
    // the other link has its own sequence: reordering between links is not a replay
    expect(g.check({ ...f, link: 'lan', seq: 3 })).toBe('ok');
  });

  it('accepts a newer incarnation (restart) and refuses an older one', () => {
    const g = new ReplayGuard();
    g.accept({ node: 'lvs2', link: 'lan', incarnation: 10n, seq: 900 });
    expect(g.check({ node: 'lvs2', link: 'lan', incarnation: 11n, seq: 1 })).toBe('ok');
    g.accept({ node: 'lvs2', link: 'lan', incarnation: 11n, seq: 1 });
    expect(g.check({ node: 'lvs2', link: 'lan', incarnation: 10n, seq: 901 })).toBe('stale_incarnation');
  });
});
