import { describe, expect, it } from 'vitest';
import { heartbeatBool, heartbeatMs, parseHaCf } from '../../src/import/hacf.js';
import { Ledger } from '../../src/import/ledger.js';

const parse = (text: string) => {
  const ledger = new Ledger();
  const ha = parseHaCf(text, 'ha.cf', ledger);
  return { ha, report: ledger.finish() };
};

describe('ha.cf times and booleans', () => {
  it.each([
    ['2', 2000],
    ['10', 10_000],
    ['500ms', 500],
    ['1500ms', 1500],
    ['1.5', 1500],
    ['250000us', 250],
    ['3s', 3000],
    ['2 ms', 2],
  ])('%s → %i ms', (s, ms) => {
    expect(heartbeatMs(s)).toBe(ms);
  });
  it.each(['', 'fast', '1m', '-2'])('%j is not a time', (s) => {
    expect(heartbeatMs(s)).toBeUndefined();
  });
  it.each([
    ['on', true], ['YES', true], ['y', true], ['1', true], ['true', true],
    ['off', false], ['No', false], ['n', false], ['0', false], ['false', false],
  ])('%s → %s', (s, b) => {
    expect(heartbeatBool(s)).toBe(b);
  });
});

describe('parseHaCf', () => {
  it('reads every directive form of the reference deployment', () => {
    const { ha, report } = parse(
      [
        '# comment line',
        '   # indented comment',
        'logfacility local0',
        'keepalive 500ms   # trailing comment',
        'deadtime 10',
        'warntime 5',
        'initdead 60',
        'udpport 695',
        'ucast eth1 10.10.10.2',
        'bcast eth2 eth3',
        'udp eth4',
        'mcast eth0 225.0.0.1 694 1 0',
        'auto_failback off',
        'node lvs1 lvs2',
        'node lvs3,lvs4',
        'ping 10.0.0.254 10.0.0.253',
        'ping_group gw 10.0.1.1 10.0.1.2',
        'deadping 20',
        'respawn hacluster /usr/lib/heartbeat/ipfail',
      ].join('\n'),
    );
    expect(ha.nodes.map((n) => n.name)).toEqual(['lvs1', 'lvs2', 'lvs3', 'lvs4']);
    expect(ha.keepalive?.ms).toBe(500);
    expect(ha.deadtime?.ms).toBe(10_000);
    expect(ha.warntime?.ms).toBe(5000);
    expect(ha.initdead?.ms).toBe(60_000);
    expect(ha.deadping?.ms).toBe(20_000);
    expect(ha.udpport?.port).toBe(695);
    expect(ha.autoFailback?.value).toBe('off');
    expect(ha.media.map((m) => [m.kind, m.iface, m.address ?? null])).toEqual([
      ['ucast', 'eth1', '10.10.10.2'],
      ['bcast', 'eth2', null],
      ['bcast', 'eth3', null],
      ['bcast', 'eth4', null],
      ['mcast', 'eth0', '225.0.0.1'],
    ]);
    expect(ha.media[4]?.port).toBe(694);
    expect(ha.pings.map((p) => p.target)).toEqual(['10.0.0.254', '10.0.0.253']);
    expect(ha.pingGroups).toMatchObject([{ name: 'gw', targets: ['10.0.1.1', '10.0.1.2'] }]);
    expect(ha.ipfail?.line).toBe(19);
    // only logfacility is left unaccounted for by the parser
    expect(report.map((e) => [e.line, e.kind])).toEqual([[3, 'untranslated']]);
    expect(report[0]?.reason).toMatch(/stdout/);
  });

  it.each([
    ['auto_failback on', 'on'],
    ['auto_failback legacy', 'legacy'],
    ['auto_failback No', 'off'],
  ])('%s', (line, value) => {
    expect(parse(line).ha.autoFailback?.value).toBe(value);
  });

  it.each([
    ['serial /dev/ttyS0', /serial/],
    ['baud 19200', /serial/],
    ['stonith baytech /etc/ha.d/conf/stonith.baytech', /fence/],
    ['stonith_host * baytech 10.0.0.3 mylogin mysecretpassword', /fence/],
    ['watchdog /dev/watchdog', /watchdog/],
    ['respawn hacluster /usr/lib/heartbeat/cl_status', /systemd/],
    ['apiauth ipfail gid=haclient uid=hacluster', /token/],
    ['crm yes', /CIB|resource managers/],
    ['frobnicate 3', /not a Heartbeat directive/],
    ['keepalive soon', /not a time/],
    ['udpport 70000', /not a UDP port/],
    ['auto_failback maybe', /on, off or legacy/],
    ['ucast eth1', /ucast <interface> <peer-address>/],
    ['mcast eth0 not-a-group 694 1 0', /mcast/],
    ['ping_group lonely', /ping_group/],
    ['node', /needs a value/],
  ])('reports %j', (line, why) => {
    const { report } = parse(line);
    expect(report).toHaveLength(1);
    expect(report[0]).toMatchObject({ file: 'ha.cf', line: 1, kind: 'untranslated' });
    // stonith lines hold device passwords: the report shows the directive only
    expect(report[0]?.text).toBe(line.startsWith('stonith') ? `${line.split(' ')[0] ?? ''} <parameters not shown>` : line);
    expect(report[0]?.reason).toMatch(why);
  });
});
