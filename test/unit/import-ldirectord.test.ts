import { describe, expect, it } from 'vitest';
import { parseLdFallback, parseLdirectord, parseLdReal } from '../../src/import/ldirectord.js';
import { Ledger } from '../../src/import/ledger.js';

describe('parseLdirectord', () => {
  it('reads globals and indented virtual blocks', () => {
    const ledger = new Ledger();
    const ld = parseLdirectord(
      [
        '# Global Directives',
        'checktimeout=3',
        'checkinterval=1',
        'quiescent=no',
        '',
        'virtual=192.168.6.240:80',
        '\treal=192.168.6.2:80 gate',
        '    real=192.168.6.3:80 gate 5  # weight 5',
        '\t#persistent=600',
        '\tscheduler=rr',
        '\tscheduler=wlc',
        '\treceive="Test Page"',
        'virtual6=[2001:db8::5]:119',
        '\treal6=[2001:db8:0:1::4]:119 masq',
        'virtual = 1',
        '\tprotocol=fwm',
        'fallback=127.0.0.1:80',
      ].join('\n'),
      'ldirectord.cf',
      ledger,
    );
    expect([...ld.globals.keys()]).toEqual(['checktimeout', 'checkinterval', 'quiescent', 'fallback']);
    expect(ld.virtuals.map((v) => [v.target, v.ipv6, v.reals.length])).toEqual([
      ['192.168.6.240:80', false, 2],
      ['[2001:db8::5]:119', true, 1],
      ['1', false, 0],
    ]);
    expect(ld.virtuals[0]?.settings.get('scheduler')?.value).toBe('wlc');
    expect(ld.virtuals[0]?.settings.get('receive')?.value).toBe('"Test Page"');
    // the first scheduler= is overridden, and reported
    expect(ledger.entries.map((e) => [e.line, e.kind])).toEqual([[10, 'untranslated']]);
  });
});

describe('real= and fallback=', () => {
  it.each([
    ['192.168.6.2:80 gate', { first: '192.168.6.2', port: '80', forward: 'dr', weight: 1 }],
    ['192.168.6.2 ipip 3', { first: '192.168.6.2', forward: 'tun', weight: 3 }],
    ['192.168.16.3:443 masq', { first: '192.168.16.3', port: '443', forward: 'nat' }],
    ['192.168.6.2->192.168.6.7:80 gate', { first: '192.168.6.2', last: '192.168.6.7', port: '80' }],
    ['sql01->sql03:3306 gate 10', { first: 'sql01', last: 'sql03', port: '3306', weight: 10 }],
    ['192.168.6.2::5060 gate', { first: '192.168.6.2', port: '5060' }],
    ['[2001:db8:0:1::4]:119 masq', { first: '2001:db8:0:1::4', port: '119', forward: 'nat' }],
    ['10.0.0.2:80 gate 2 "/check.html", "OK"', { weight: 2, request: '/check.html', receive: 'OK' }],
    ['10.0.0.2:http gate', { port: 'http' }],
  ])('%s', (v, want) => {
    expect(parseLdReal(v)).toMatchObject(want);
  });
  it.each(['192.168.6.2:80', '192.168.6.2:80 bridge', ''])('refuses %j', (v) => {
    expect(typeof parseLdReal(v)).toBe('string');
  });
  it.each([
    ['127.0.0.1:80 gate', { host: '127.0.0.1', port: '80', forward: 'gate' }],
    ['127.0.0.1:443', { host: '127.0.0.1', port: '443' }],
    ['127.0.0.1', { host: '127.0.0.1' }],
    ['[::1]:80', { host: '::1', port: '80' }],
  ])('fallback %s', (v, want) => {
    expect(parseLdFallback(v)).toEqual(want);
  });
});
