import { describe, expect, it } from 'vitest';
import { dottedToPrefix, parseHaresources, parseIpaddrArgs } from '../../src/import/haresources.js';
import { Ledger } from '../../src/import/ledger.js';

describe('IPaddr arguments', () => {
  it.each([
    [['172.16.81.141'], { address: '172.16.81.141' }],
    [['172.16.81.141/24'], { address: '172.16.81.141', prefix: 24 }],
    [['172.16.81.141/24/eth1'], { address: '172.16.81.141', prefix: 24, iface: 'eth1' }],
    [['135.9.8.7/24/135.9.8.210'], { address: '135.9.8.7', prefix: 24, broadcast: '135.9.8.210' }],
    [['135.9.216.3/28/eth0/135.9.216.12'], { address: '135.9.216.3', prefix: 28, iface: 'eth0', broadcast: '135.9.216.12' }],
    [['10.0.0.1/255.255.255.0/eth0'], { address: '10.0.0.1', prefix: 24, iface: 'eth0' }],
    [['10.0.0.1/24/eth0:1'], { address: '10.0.0.1', prefix: 24, iface: 'eth0', label: 'eth0:1' }],
    [['ip=10.0.0.1', 'cidr_netmask=24', 'nic=eth0', 'broadcast=10.0.0.255'], { address: '10.0.0.1', prefix: 24, iface: 'eth0', broadcast: '10.0.0.255' }],
    [['2001:db8::10/64/eth0'], { address: '2001:db8::10', prefix: 64, iface: 'eth0' }],
  ])('%j', (args, want) => {
    expect(parseIpaddrArgs(args)).toEqual(want);
  });
  it.each([[['nope']], [['10.0.0.1/33']], [['10.0.0.1/24/eth0/not-an-ip']], [[]], [['ip=10.0.0.1', 'color=red']]])('refuses %j', (args) => {
    expect(typeof parseIpaddrArgs(args)).toBe('string');
  });
  it.each([
    ['255.255.255.0', 24],
    ['255.255.255.255', 32],
    ['255.255.240.0', 20],
    ['0.0.0.0', 0],
    ['255.0.255.0', undefined],
  ])('netmask %s → /%s', (m, p) => {
    expect(dottedToPrefix(m)).toBe(p);
  });
});

describe('parseHaresources', () => {
  it('reads groups, bare addresses, IPaddr2, scripts with arguments and continuations', () => {
    const ledger = new Ledger();
    const groups = parseHaresources(
      [
        '# comment',
        'lvs1 IPaddr::172.16.81.141/24/eth1 LvsScript',
        'lvs1 135.9.216.110 IPaddr2::10.1.1.1/24/eth0 \\',
        '     Filesystem::/dev/sda1::/data1::ext2 httpd',
        'node1 IPv6addr::2001:db8::5/64/eth0',
      ].join('\n'),
      'haresources',
      ledger,
    );
    expect(groups.map((g) => [g.node, g.src.line, g.src.lines])).toEqual([
      ['lvs1', 2, [2]],
      ['lvs1', 3, [3, 4]],
      ['node1', 5, [5]],
    ]);
    expect(groups[0]?.resources).toEqual([
      { kind: 'address', agent: 'IPaddr', raw: 'IPaddr::172.16.81.141/24/eth1', address: '172.16.81.141', prefix: 24, iface: 'eth1' },
      { kind: 'script', name: 'LvsScript', args: [], raw: 'LvsScript' },
    ]);
    expect(groups[1]?.resources.map((r) => (r.kind === 'address' ? `${r.agent} ${r.address}` : `${r.name}(${r.args.join(',')})`))).toEqual([
      'IPaddr 135.9.216.110',
      'IPaddr2 10.1.1.1',
      'Filesystem(/dev/sda1,/data1,ext2)',
      'httpd()',
    ]);
    expect(groups[2]?.resources[0]).toMatchObject({ address: '2001:db8::5', prefix: 64, iface: 'eth0' });
  });

  it.each([
    ['lvs1', /node name and at least one resource/],
    ['lvs1 IPaddr::300.1.1.1/24', /not an IP address/],
  ])('reports %j', (line, why) => {
    const ledger = new Ledger();
    expect(parseHaresources(line, 'haresources', ledger)).toEqual([]);
    const report = ledger.finish();
    expect(report).toHaveLength(1);
    expect(report[0]?.reason).toMatch(why);
  });
});
