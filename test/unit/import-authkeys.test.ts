import { describe, expect, it } from 'vitest';
import { parseAuthkeys } from '../../src/import/authkeys.js';
import { Ledger } from '../../src/import/ledger.js';

const parse = (text: string) => {
  const ledger = new Ledger();
  const a = parseAuthkeys(text, 'authkeys', ledger);
  return { a, report: ledger.finish() };
};

describe('parseAuthkeys', () => {
  it.each([
    ['auth 1\n1 sha1 averylongsharedsecret123', 'sha1', 'averylongsharedsecret123'],
    ['auth 3\n# other methods for a transition\n2 sha1 old\n3 md5 Hello there, cluster!', 'md5', 'Hello there, cluster!'],
  ])('takes the selected key (%#)', (text, method, key) => {
    const { a, report } = parse(text);
    expect(a.key).toMatchObject({ method, key });
    // the key itself never appears in the report
    expect(report.every((e) => !e.text.includes(key))).toBe(true);
    expect(report.some((e) => e.kind === 'adjusted' && /0600/.test(e.reason))).toBe(true);
  });

  it('reports unused methods', () => {
    const { report } = parse('auth 3\n2 sha1 old\n3 md5 Hello there, cluster!');
    expect(report.find((e) => e.line === 2)).toMatchObject({ kind: 'untranslated', text: '2 sha1 <key>' });
  });

  it('warns about a short key', () => {
    const { report } = parse('auth 2\n2 sha1 HI!');
    expect(report.find((e) => e.line === 2)?.reason).toMatch(/only 3 characters/);
  });

  it('refuses crc with an explanation', () => {
    const { a, report } = parse('auth 1\n1 crc');
    expect(a.key).toBeUndefined();
    expect(a.refused).toMatch(/crc/);
    expect(report.find((e) => e.line === 2)?.reason).toMatch(/authenticates nothing.*HMAC-SHA256.*key_file/);
  });

  it.each([
    ['1 sha1 key-without-auth-line', /no "auth <n>"/],
    ['auth 2\n1 sha1 x', /no method 2/],
    ['auth 1\n1 rot13 x', /unknown method/],
    ['auth 1\n1 sha1', /needs a key/],
    ['garbage', /expected/],
  ])('%j', (text, why) => {
    const { a, report } = parse(text);
    expect(a.key).toBeUndefined();
    expect(report.some((e) => why.test(e.reason))).toBe(true);
  });
});
