import { describe, expect, it } from 'vitest';
import { formatReport, Ledger, splitLines } from '../../src/import/ledger.js';
import { inSubnet, parseServices, servicePort } from '../../src/import/resolve.js';

describe('splitLines', () => {
  it('drops comments and blanks, joins continuations, keeps indentation', () => {
    const text = 'a 1  # c\n\n  # only a comment\n\tb 2 \\\n   c 3\nd "x  y"\r\n';
    expect(splitLines(text, 'f', { comment: 'anywhere', continuation: true })).toEqual([
      { file: 'f', line: 1, lines: [1], text: 'a 1', indent: 0 },
      { file: 'f', line: 4, lines: [4, 5], text: 'b 2 c 3', indent: 4 },
      { file: 'f', line: 6, lines: [6], text: 'd "x  y"', indent: 0 },
    ]);
  });
  it('leading comments only, when # may be data', () => {
    expect(splitLines('# c\nauth 1\n1 sha1 key#with#hashes', 'f', { comment: 'leading' }).map((l) => l.text)).toEqual(['auth 1', '1 sha1 key#with#hashes']);
  });
});

describe('Ledger', () => {
  it('reports every registered line nobody marked, and formats in file order', () => {
    const ledger = new Ledger();
    const lines = splitLines('one\ntwo\nthree\nfour', 'b.cf');
    ledger.register(lines);
    ledger.ok(lines[0]);
    ledger.adjust(lines[1] as (typeof lines)[number], 'changed');
    ledger.skip(lines[3] as (typeof lines)[number], 'no counterpart');
    ledger.note('a.cf', 'a whole-file remark');
    const report = ledger.finish();
    expect(report.map((e) => [e.line, e.kind])).toEqual([
      [2, 'adjusted'],
      [4, 'untranslated'],
      [0, 'note'],
      [3, 'untranslated'],
    ]);
    expect(formatReport(report)).toEqual([
      'a.cf: note: a whole-file remark',
      'b.cf:2: adjusted: two — changed',
      'b.cf:3: untranslated: three — not used by any part of the translation',
      'b.cf:4: untranslated: four — no counterpart',
    ]);
  });
});

describe('/etc/services and subnets', () => {
  const services = parseServices('# comment\nhttp\t\t80/tcp\t\twww # WorldWideWeb\nhttp 80/udp\ndomain 53/udp\nsyslog 514/udp\n');
  it.each([
    ['http', 'tcp', 80],
    ['www', 'tcp', 80],
    ['domain', 'udp', 53],
    ['domain', 'tcp', 53],
    ['8080', 'tcp', 8080],
    ['gopher', 'tcp', undefined],
    ['70000', 'tcp', undefined],
  ] as const)('%s/%s → %s', (name, proto, port) => {
    expect(servicePort(services, name, proto)).toBe(port);
  });
  it.each([
    ['172.16.81.141', '172.16.81.10', 24, true],
    ['172.16.82.141', '172.16.81.10', 24, false],
    ['10.1.2.3', '10.0.0.1', 8, true],
    ['10.1.2.3', '10.0.0.1', 0, true],
    ['2001:db8::1', '2001:db8::1', 64, true],
  ] as const)('%s in %s/%i: %s', (a, n, p, want) => {
    expect(inSubnet(a, n, p)).toBe(want);
  });
});
