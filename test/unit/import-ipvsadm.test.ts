import { describe, expect, it } from 'vitest';
import { parseIpvsadmSave, splitHostPort } from '../../src/import/ipvsadm.js';
import { Ledger } from '../../src/import/ledger.js';

const parse = (text: string) => {
  const ledger = new Ledger();
  const rules = parseIpvsadmSave(text, 'rules', ledger);
  return { rules, report: ledger.finish() };
};

describe('parseIpvsadmSave', () => {
  it.each([
    ['-A -t 172.16.81.141:80 -s wlc', { proto: 'tcp', target: '172.16.81.141:80', scheduler: 'wlc', ipv6: false }],
    ['-A -u 10.0.0.1:53 -s rr', { proto: 'udp', target: '10.0.0.1:53', scheduler: 'rr' }],
    ['-A -f 7 -s sh', { proto: 'fwmark', target: '7', scheduler: 'sh' }],
    ['-A -f 7 -s sh -6', { proto: 'fwmark', target: '7', ipv6: true }],
    ['-A -t 10.0.0.1:443 -s wlc -p 300 -M 255.255.255.0', { persistent: 300, netmask: '255.255.255.0' }],
    ['-A -t 10.0.0.1:443 -s wlc -p', { persistent: 300 }],
    ['-A -t 10.0.0.1:443 -p -s wlc', { persistent: 300, scheduler: 'wlc' }],
    ['-A -t www.example.com:http -s wlc', { target: 'www.example.com:http' }],
    ['-A -t [2001:db8::1]:80 -s rr', { target: '[2001:db8::1]:80', ipv6: true }],
    ['--add-service --tcp-service 10.0.0.1:80 --scheduler=wrr --persistent 60', { proto: 'tcp', scheduler: 'wrr', persistent: 60 }],
  ])('%s', (line, want) => {
    const { rules, report } = parse(line);
    expect(rules.services[0]).toMatchObject(want);
    expect(report).toEqual([]);
  });

  it.each([
    ['-a -t 172.16.81.141:80 -r 172.19.81.139:80 -i -w 1', { target: '172.19.81.139:80', forward: 'tun', weight: 1 }],
    ['-a -t 10.0.0.1:80 -r 10.0.0.2:80 -g -w 5', { forward: 'dr', weight: 5 }],
    ['-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -m -w 0', { forward: 'nat', weight: 0 }],
    ['-a -t 10.0.0.1:80 -r 10.0.0.2:80', { forward: 'dr', weight: 1 }],
    ['-a -f 7 -r 10.0.0.2:0 -g -w 1', { service: { proto: 'fwmark', target: '7' } }],
    ['-a -t lvs.example.com:http -r rs1.example.com:http -g -w 1', { target: 'rs1.example.com:http', service: { target: 'lvs.example.com:http' } }],
    ['--add-server --tcp-service 10.0.0.1:80 --real-server 10.0.0.2:80 --masquerading --weight 3', { forward: 'nat', weight: 3 }],
  ])('%s', (line, want) => {
    const { rules, report } = parse(line);
    expect(rules.reals[0]).toMatchObject(want);
    expect(report).toEqual([]);
  });

  it.each([
    ['-C', /never clears/],
    ['-A -s wlc', /no -t, -u or -f/],
    ['-a -t 10.0.0.1:80 -g', /needs -r/],
    ['-a -t 10.0.0.1:80 -r 10.0.0.2:80 -w heavy', /weight/],
    ['-A -f mark -s rr', /not a number/],
    ['--start-daemon master', /not an -A/],
  ])('skips %j', (line, why) => {
    const { report } = parse(line);
    expect(report).toHaveLength(1);
    expect(report[0]).toMatchObject({ kind: 'untranslated', line: 1 });
    expect(report[0]?.reason).toMatch(why);
  });

  it.each([
    ['-a -t 10.0.0.1:80 -r 10.0.0.2:80 -g -w 1 -x 100 -y 10', /threshold/],
    ['-A -t 10.0.0.1:80 -s wlc -b sh-port', /scheduler flags/],
  ])('translates the rest of %j and reports the option', (line, why) => {
    const { rules, report } = parse(line);
    expect(rules.services.length + rules.reals.length).toBe(1);
    expect(report[0]).toMatchObject({ kind: 'adjusted' });
    expect(report[0]?.reason).toMatch(why);
  });
});

describe('splitHostPort', () => {
  it.each([
    ['10.0.0.1:80', { host: '10.0.0.1', port: '80' }],
    ['www:http', { host: 'www', port: 'http' }],
    ['[2001:db8::1]:443', { host: '2001:db8::1', port: '443' }],
    ['10.0.0.1', { host: '10.0.0.1' }],
    ['2001:db8::1', { host: '2001:db8::1' }],
  ])('%s', (s, want) => {
    expect(splitHostPort(s)).toEqual(want);
  });
});
