/**
 * Wire version 3: the table extension (flag 16: 8-byte table digest + announced-VIP
 * count) and the older versions beside it. Pure codec; the exchange between real
 * cluster processes is in test/integration/cluster-table.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  FLAG_TABLE,
  MAC_SIZE,
  NOT_ECMP,
  TABLE_EXT_SIZE,
  VERSION,
  decodeFrame,
  digestPrefix,
  encodeFrame,
  type DecodeContext,
  type Frame,
} from '../../src/cluster/wire.js';

const key = Buffer.from('0123456789abcdef0123456789abcdef');
const frame = (over: Partial<Frame> = {}): Frame => ({
  cluster: 'ecmp',
  node: 'd2',
  link: 'lan',
  role: 'standby',
  priority: 100,
  releasing: false,
  leaving: false,
  takeover: false,
  yielding: false,
  incarnation: 1_700_000_000_000_000n,
  seq: 9,
  sentUs: 1000,
  echoSeq: 3,
  echoSentUs: 2000,
  echoHoldUs: 40,
  echoIncarnation: 1_699_000_000_000_000n,
  version: 3,
  table: { digest: '0123456789abcdef', announced: 2 },
  ...over,
});
const ctx = (over: Partial<DecodeContext> = {}): DecodeContext => ({ key, cluster: 'ecmp', self: 'd1', peers: new Set(['d2', 'd3']), link: 'lan', ...over });
const names = 'ecmp'.length + 'd2'.length + 'lan'.length;

describe('heartbeat wire version 3: the table extension', () => {
  it('is the version written by default', () => {
    expect(VERSION).toBe(3);
    expect(encodeFrame(frame({ version: undefined }), key)[4]).toBe(3);
  });

  it('round-trips the digest and the announced count after the names, under the HMAC', () => {
    const f = frame();
    const b = encodeFrame(f, key);
    expect(b[5]! & FLAG_TABLE).toBe(FLAG_TABLE);
    expect(b.length).toBe(48 + names + TABLE_EXT_SIZE + MAC_SIZE);
    expect(b.toString('hex', 48 + names, 48 + names + 8)).toBe('0123456789abcdef');
    expect(b[48 + names + 8]).toBe(2);
    expect(decodeFrame(b, ctx())).toEqual({ ok: true, frame: f });
    // the extension is authenticated: changing the digest or the count breaks the HMAC
    for (const at of [48 + names, 48 + names + 8]) {
      const c = Buffer.from(b);
      c[at] = c[at]! ^ 1;
      expect(decodeFrame(c, ctx())).toEqual({ ok: false, reason: 'bad_hmac' });
    }
  });

  it.each([0, 1, 254, NOT_ECMP])('carries announced = %i', (announced) => {
    const r = decodeFrame(encodeFrame(frame({ table: { digest: 'ffffffffffffffff', announced } }), key), ctx());
    expect(r.ok && r.frame.table).toEqual({ digest: 'ffffffffffffffff', announced });
  });

  it('a version 3 frame without a table (none known yet) is laid out as version 2 and decodes without one', () => {
    const f = frame({ table: undefined });
    const b = encodeFrame(f, key);
    expect(b[5]! & FLAG_TABLE).toBe(0);
    expect(b.length).toBe(encodeFrame(frame({ version: 2, table: undefined }), key).length);
    const r = decodeFrame(b, ctx());
    expect(r).toEqual({ ok: true, frame: f });
    expect(r.ok && 'table' in r.frame).toBe(false);
  });

  it('writes versions 1 and 2 for a peer that speaks them, without the table', () => {
    for (const version of [1, 2] as const) {
      const b = encodeFrame(frame({ version, echoIncarnation: version === 1 ? undefined : 5n }), key);
      expect(b[4]).toBe(version);
      expect(b[5]! & FLAG_TABLE).toBe(0);
      const r = decodeFrame(b, ctx());
      expect(r.ok, `version ${version}`).toBe(true);
      if (r.ok) {
        expect(r.frame.version).toBe(version);
        expect(r.frame.table).toBeUndefined();
      }
    }
  });

  it('refuses flag 16 in a version 1 or 2 frame as malformed (signed, so not a bit flip)', () => {
    for (const version of [1, 2] as const) {
      const b = encodeFrame(frame({ version, table: undefined }), key);
      b[5] = b[5]! | FLAG_TABLE;
      expect(decodeFrame(b, ctx())).toEqual({ ok: false, reason: 'malformed' });
    }
  });

  it('refuses unknown flag bits in version 3', () => {
    for (const bit of [32, 64, 128]) {
      const b = encodeFrame(frame(), key);
      b[5] = b[5]! | bit;
      expect(decodeFrame(b, ctx())).toEqual({ ok: false, reason: 'malformed' });
    }
  });

  it('a frame whose flag promises the extension but lacks its bytes is rejected', () => {
    const b = encodeFrame(frame({ table: undefined }), key);
    b[5] = b[5]! | FLAG_TABLE; // 9 bytes short: the MAC is read from the wrong place
    const r = decodeFrame(b, ctx());
    expect(r.ok).toBe(false);
    if (!r.ok) expect(['truncated', 'bad_hmac']).toContain(r.reason);
  });

  it('an extension without its flag is extra bytes: malformed', () => {
    const withTable = encodeFrame(frame(), key);
    withTable[5] = withTable[5]! & ~FLAG_TABLE;
    expect(decodeFrame(withTable, ctx())).toEqual({ ok: false, reason: 'malformed' });
  });

  it('drops every truncation of a version 3 frame with a reason, never throwing', () => {
    const b = encodeFrame(frame(), key);
    for (let n = 0; n < b.length; n++) {
      const r = decodeFrame(b.subarray(0, n), ctx());
      expect(r.ok, `length ${n}`).toBe(false);
      if (!r.ok) expect(['truncated', 'malformed', 'bad_hmac']).toContain(r.reason);
    }
  });

  it('drops every single bit flip of a version 3 frame, never throwing', () => {
    const b = encodeFrame(frame(), key);
    for (let i = 0; i < b.length * 8; i++) {
      const c = Buffer.from(b);
      c[i >> 3] = c[i >> 3]! ^ (1 << (i & 7));
      let r: ReturnType<typeof decodeFrame> | undefined;
      expect(() => (r = decodeFrame(c, ctx()))).not.toThrow();
      expect(r?.ok, `bit ${i}`).toBe(false);
    }
  });

  it('never throws on hostile version 3 datagrams and accepts none', () => {
    for (let i = 0; i < 3000; i++) {
      const b = randomBytes(48 + Math.floor(Math.random() * 300));
      b.writeUInt32BE(0x56474842, 0);
      b[4] = 3;
      b[5] = i % 2 === 0 ? FLAG_TABLE : b[5]!;
      b[6] = b[6]! & 3;
      b[44] = 1 + (b[44]! % 63);
      b[45] = 1 + (b[45]! % 63);
      b[46] = 1 + (b[46]! % 63);
      b[47] = 0;
      let r: ReturnType<typeof decodeFrame> | undefined;
      expect(() => (r = decodeFrame(b, ctx()))).not.toThrow();
      expect(r?.ok).toBe(false);
    }
  });

  it('the longest frame fits MAX_FRAME', () => {
    const long = 'x'.repeat(63);
    const b = encodeFrame(frame({ cluster: long, node: long, link: long }), key);
    expect(b.length).toBe(48 + 3 * 63 + TABLE_EXT_SIZE + MAC_SIZE);
    expect(decodeFrame(b, ctx({ cluster: long, peers: new Set([long]), link: long })).ok).toBe(true);
  });

  it('refuses to encode a table it cannot carry', () => {
    expect(() => encodeFrame(frame({ table: { digest: 'xyz', announced: 1 } }), key)).toThrow(/16 hex digits/);
    expect(() => encodeFrame(frame({ table: { digest: '0123456789abcdef', announced: 256 } }), key)).toThrow(/announced 0-255/);
    expect(() => encodeFrame(frame({ table: { digest: '0123456789abcdef', announced: -1 } }), key)).toThrow(/announced 0-255/);
  });

  it('digestPrefix takes the first 8 bytes of a sha256: digest and refuses anything else', () => {
    expect(digestPrefix(`sha256:${'ab'.repeat(32)}`)).toBe('abababababababab');
    expect(digestPrefix('0123456789ABCDEF00')).toBe('0123456789abcdef');
    expect(() => digestPrefix('sha256:1234')).toThrow(/not sha256:<hex>/);
    expect(() => digestPrefix('')).toThrow(/not sha256:<hex>/);
  });
});
