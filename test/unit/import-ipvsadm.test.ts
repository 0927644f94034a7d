import { describe, expect, it } from 'vitest';
import { IPVSADM_DEFAULT_PERSISTENCE, parseIpvsadm, splitHostPort } from '../../src/import/ipvsadm.js';
import { ipvsadmServices } from '../../src/import/ipvsservices.js';
import { Ledger } from '../../src/import/ledger.js';
import type { ServiceState } from '../../src/import/model.js';
import { parseServices, servicePort, type Resolver } from '../../src/import/resolve.js';

const parse = (text: string) => {
  const ledger = new Ledger();
  const cmds = parseIpvsadm(text, 'rules', ledger);
  // what the parser itself reports (the builder marks the commands it applies)
  return { cmds, report: ledger.entries };
};

const SERVICES = parseServices('http 80/tcp www\ndomain 53/udp\n');
const resolver: Resolver = {
  service: (name, proto) => servicePort(SERVICES, name, proto),
  host: async (name) => (/^[\d.]+$|:/.test(name) ? name : name === 'www.example.com' ? '10.0.0.1' : undefined),
};

/** Applies a command sequence; the resulting services and the report. */
async function apply(text: string) {
  const ledger = new Ledger();
  const cmds = parseIpvsadm(text, 'rules', ledger);
  const states: ServiceState[] = [];
  await ipvsadmServices(cmds, states, new Map(), resolver, ledger);
  const report = ledger.finish();
  const at = (line: number) => report.filter((e) => e.line === line);
  return { services: states.map((s) => s.svc), report, at, errors: report.filter((e) => e.kind === 'error') };
}

describe('parseIpvsadm', () => {
  it.each([
    ['-A -t 172.16.81.141:80 -s wlc', { op: 'A', service: { proto: 'tcp', target: '172.16.81.141:80' }, scheduler: 'wlc', ipv6: false }],
    ['-A -u 10.0.0.1:53 -s rr', { service: { proto: 'udp', target: '10.0.0.1:53' }, scheduler: 'rr' }],
    ['-A -f 7 -s sh', { service: { proto: 'fwmark', target: '7' }, scheduler: 'sh' }],
    ['-A -f 7 -s sh -6', { service: { proto: 'fwmark', target: '7' }, ipv6: true }],
    ['-A -t 10.0.0.1:443 -s wlc -p 300 -M 255.255.255.0', { persistent: 300, netmask: '255.255.255.0' }],
    ['-A -t 10.0.0.1:443 -s wlc -p', { persistent: IPVSADM_DEFAULT_PERSISTENCE }],
    ['-A -t 10.0.0.1:443 -p -s wlc', { persistent: 360, scheduler: 'wlc' }],
    ['-A -t www.example.com:http -s wlc', { service: { target: 'www.example.com:http' } }],
    ['-A -t [2001:db8::1]:80 -s rr', { service: { target: '[2001:db8::1]:80' }, ipv6: true }],
    ['--add-service --tcp-service 10.0.0.1:80 --scheduler=wrr --persistent 60', { op: 'A', scheduler: 'wrr', persistent: 60 }],
    ['ipvsadm -E -t 10.0.0.1:80 -s wrr', { op: 'E', scheduler: 'wrr' }],
    ['/sbin/ipvsadm -D -t 10.0.0.1:80', { op: 'D' }],
    ['ipvsadm -C', { op: 'C' }],
    ['-a -t 172.16.81.141:80 -r 172.19.81.139:80 -i -w 1', { op: 'a', real: '172.19.81.139:80', forward: 'tun', weight: 1 }],
    ['-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -m -w 0', { forward: 'nat', weight: 0 }],
    ['-a -t 10.0.0.1:80 -r 10.0.0.2:80', { forward: 'dr', weight: 1 }],
    ['-a -t 10.0.0.1:80 -r 10.0.0.2:80 -i -w 1 --tun-type ipip', { forward: 'tun', refused: [] }],
    ['-a -t 10.0.0.1:80 -r 10.0.0.2:80 -x 0 -y 0', { refused: [] }],
    ['ipvsadm -e -t 10.0.0.1:80 -r 10.0.0.2 -w 3', { op: 'e', weight: 3, forward: 'dr' }],
    ['ipvsadm -d -t 10.0.0.1:80 -r 10.0.0.2', { op: 'd' }],
    ['--add-server --tcp-service 10.0.0.1:80 --real-server 10.0.0.2:80 --masquerading --weight 3', { op: 'a', forward: 'nat', weight: 3 }],
  ])('%s', (line, want) => {
    const { cmds, report } = parse(line);
    expect(cmds[0]).toMatchObject(want);
    expect(report).toEqual([]);
  });

  it.each([
    ['-A -s wlc', /no -t, -u or -f/],
    ['-a -t 10.0.0.1:80 -g', /needs -r/],
    ['-a -t 10.0.0.1:80 -r 10.0.0.2:80 -w heavy', /weight/],
    ['-A -f mark -s rr', /not a number/],
    ['-A -t 10.0.0.1:80 -D', /more than one command/],
    ['-t 10.0.0.1:80', /no command/],
    ['-A -t 10.0.0.1:80 --frobnicate', /unknown option/],
  ])('%j is an error', (line, why) => {
    const { report } = parse(line);
    expect(report).toHaveLength(1);
    expect(report[0]).toMatchObject({ kind: 'error', line: 1 });
    expect(report[0]?.reason).toMatch(why);
  });

  it.each([
    ['--start-daemon master --mcast-interface eth0', /sync_daemon/],
    ['ipvsadm -L -n', /listing/],
    ['ipvsadm --set 900 120 300', /timeouts/],
  ])('%j is not a table edit', (line, why) => {
    const { report } = parse(line);
    expect(report[0]).toMatchObject({ kind: 'untranslated' });
    expect(report[0]?.reason).toMatch(why);
  });
});

describe('command sequences, applied as the kernel would', () => {
  it('the manual’s -E/-e edits give wrr 3/1, not rr 1/1', async () => {
    const { services, errors } = await apply(
      [
        'ipvsadm -A -t 10.0.0.1:80 -s rr',
        'ipvsadm -a -t 10.0.0.1:80 -r 10.0.1.1:80 -g',
        'ipvsadm -a -t 10.0.0.1:80 -r 10.0.1.2:80 -g',
        'ipvsadm -E -t 10.0.0.1:80 -s wrr',
        'ipvsadm -e -t 10.0.0.1:80 -r 10.0.1.1:80 -g -w 3',
      ].join('\n'),
    );
    expect(errors).toEqual([]);
    expect(services).toEqual([
      { name: '', protocol: 'tcp', vip: '10.0.0.1', port: 80, scheduler: 'wrr', forward: 'dr', real_servers: [{ address: '10.0.1.1', weight: 3 }, { address: '10.0.1.2', weight: 1 }] },
    ]);
  });

  it('-E without -s or -p goes back to wlc without persistence; -e without -w to weight 1', async () => {
    const { services } = await apply('-A -t 10.0.0.1:80 -s rr -p 60 -M 255.255.255.0\n-a -t 10.0.0.1:80 -r 10.0.1.1 -m -w 5\n-E -t 10.0.0.1:80\n-e -t 10.0.0.1:80 -r 10.0.1.1 -m\n');
    expect(services[0]).toMatchObject({ scheduler: 'wlc', forward: 'nat', real_servers: [{ address: '10.0.1.1', weight: 1 }] });
    expect(services[0]?.persistence).toBeUndefined();
  });

  it('-D, -d and -C remove what they name', async () => {
    const { services, errors } = await apply(
      ['-A -t 10.0.0.1:80', '-A -t 10.0.0.1:81', '-a -t 10.0.0.1:81 -r 10.0.1.1:8080 -m', '-a -t 10.0.0.1:81 -r 10.0.1.2:8080 -m', '-d -t 10.0.0.1:81 -r 10.0.1.1:8080', '-D -t 10.0.0.1:80', '-C', '-A -u 10.0.0.1:53 -s sh', '-a -u 10.0.0.1:53 -r 10.0.1.3 -w 2'].join('\n'),
    );
    expect(errors).toEqual([]);
    expect(services).toEqual([{ name: '', protocol: 'udp', vip: '10.0.0.1', port: 53, scheduler: 'sh', forward: 'dr', real_servers: [{ address: '10.0.1.3', weight: 2 }] }]);
  });

  it('ports as the kernel stores them: -g/-i take the service port, fwmark keeps them, -p alone is 360', async () => {
    const { services, at } = await apply('-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.1.1:8080 -g\n-A -f 5 -s sh -p\n-a -f 5 -r 10.0.1.1:0\n-a -f 5 -r 10.0.1.2:80 -w 4\n-A -t 10.0.0.1:81 -s ovf -M 255.255.0.0\n');
    expect(services[0]?.real_servers).toEqual([{ address: '10.0.1.1', weight: 1 }]);
    expect(at(2)[0]?.reason).toMatch(/port 8080 becomes the service port 80/);
    expect(services[1]).toMatchObject({ fwmark: 5, scheduler: 'sh', persistence: { timeout_s: 360 }, real_servers: [{ address: '10.0.1.1', weight: 1 }, { address: '10.0.1.2', port: 80, weight: 4 }] });
    expect(services[2]).toMatchObject({ scheduler: 'ovf' });
    expect(services[2]?.persistence).toBeUndefined();
    expect(at(6)[0]).toMatchObject({ kind: 'adjusted' });
  });

  it.each([
    ['-A -t 10.0.0.1:80\n-A -t 10.0.0.1:80 -s rr', 2, /already defined on rules:1/],
    ['-E -t 10.0.0.1:80 -s rr', 1, /No such service/],
    ['-D -t 10.0.0.1:80', 1, /No such service/],
    ['-a -t 10.0.0.1:80 -r 10.0.1.1', 1, /Service not defined/],
    ['-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.1.1\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -w 2', 3, /Destination already exists/],
    ['-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.1.1:8080 -m\n-e -t 10.0.0.1:80 -r 10.0.1.1:8080 -w 4', 3, /No such destination/],
    ['-A -t 10.0.0.1:80\n-d -t 10.0.0.1:80 -r 10.0.1.1', 2, /No such destination/],
    ['-A -t 10.0.0.1:80 -s twos', 1, /scheduler "twos" does not exist/],
    ['-A -t nowhere:80', 1, /cannot resolve "nowhere"/],
    ['--add-service --sctp-service 10.0.0.1:80', 1, /SCTP/],
    ['-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.1.1 -w 70000', 2, /above vigil's 65535/],
    ['-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.1.1 -g\n-a -t 10.0.0.1:80 -r 10.0.1.2 -m', 3, /one forwarding method per service/],
  ])('what the kernel refuses or vigil cannot say is an error: %j', async (text, line, why) => {
    const { at } = await apply(text);
    const e = at(line).find((x) => x.kind === 'error');
    expect(e?.reason).toMatch(why);
  });

  it('each option not carried over gets its own error line: -x and -y separately', async () => {
    const { at, services } = await apply('-A -t 10.0.0.1:80 -s sh -b sh-port\n-a -t 10.0.0.1:80 -r 10.0.1.1 -w 2 -x 100 -y 50\n-A -u 10.0.0.1:5060 -p 30 --pe sip\n');
    expect(at(1).map((e) => [e.kind, e.reason.split(':')[0]])).toEqual([['error', '-b sh-port']]);
    expect(at(2).map((e) => [e.kind, e.reason.split(':')[0]])).toEqual([
      ['error', '-x 100'],
      ['error', '-y 50'],
    ]);
    expect(at(3).map((e) => e.reason)).toEqual([expect.stringMatching(/^--pe sip: persistence engines/)]);
    // the rest of each line is translated
    expect(services[0]).toMatchObject({ scheduler: 'sh', real_servers: [{ address: '10.0.1.1', weight: 2 }] });
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
