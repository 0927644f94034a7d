/**
 * The translation as a whole, with a fake resolver: each scenario's output goes
 * through the real config loader, as `vigil import` does.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { buildConfig, type ImportInputs, type ImportOptions } from '../../src/import/build.js';
import type { ReportEntry } from '../../src/import/ledger.js';
import { parseServices, servicePort, type Resolver } from '../../src/import/resolve.js';
import { renderYaml } from '../../src/import/yaml.js';

const SERVICES = parseServices('http 80/tcp www\nhttp 80/udp\nhttps 443/tcp\ndomain 53/udp\nmysql 3306/tcp\n');
const HOSTS: Record<string, string> = {
  'www.example.com': '10.0.0.1',
  'rs1.example.com': '10.0.1.1',
  'rs2.example.com': '10.0.1.2',
  localhost: '127.0.0.1',
  sql01: '10.0.2.1',
  sql03: '10.0.2.3',
};
const resolver: Resolver = {
  service: (name, proto) => servicePort(SERVICES, name, proto),
  host: async (name) => (/^[\d.]+$|:/.test(name) ? name : HOSTS[name]),
};

const HA = 'keepalive 2\ndeadtime 10\nwarntime 5\ninitdead 60\nudpport 694\nucast eth1 10.10.10.2\nauto_failback off\nnode lvs1\nnode lvs2\n';
const KEYS = 'auth 2\n2 sha1 0123456789abcdef0123\n';

async function convert(inputs: Record<string, string>, opts: Partial<ImportOptions> = {}) {
  const files: ImportInputs = {};
  for (const [k, text] of Object.entries(inputs)) (files as Record<string, unknown>)[k] = { file: k, text };
  const result = await buildConfig(files, { resolver, hostname: 'builder', ...opts });
  const yaml = renderYaml(result.config, result.comments, ['test'], result.report);
  let problems: string[] = [];
  try {
    parseConfig(yaml, '/etc/vigil/vigil.yaml', {});
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    problems = e.problems.map((p) => `${p.path.join('.')}: ${p.message}`);
  }
  const at = (file: string, line: number): ReportEntry[] => result.report.filter((e) => e.file === file && e.line === line);
  return { result, config: result.config as Record<string, any>, yaml, problems, at };
}

describe('cluster from ha.cf', () => {
  it('the reference pair: peer from ucast, own address from --address', async () => {
    const { config, problems, result } = await convert(
      { haCf: HA, authkeys: KEYS, haresources: 'lvs1 IPaddr::172.16.81.141/24/eth1 LvsScript\n' },
      { node: 'lvs1', addresses: [{ iface: 'eth1', address: '10.10.10.1' }] },
    );
    expect(problems).toEqual([]);
    expect(config.node).toBe('lvs1');
    expect(config.cluster).toMatchObject({
      port: 694,
      interval_ms: 2000,
      deadtime_ms: 10_000,
      warntime_ms: 5000,
      initdead_ms: 60_000,
      preempt: false,
      key_file: 'vigil.key',
      state_file: '/var/lib/vigil/incarnation',
      nodes: [
        { name: 'lvs1', priority: 150, links: [{ name: 'eth1', address: '10.10.10.1' }] },
        { name: 'lvs2', priority: 100, links: [{ name: 'eth1', address: '10.10.10.2' }] },
      ],
      resources: [{ path: '/etc/ha.d/resource.d/LvsScript' }],
    });
    expect(config.vips).toEqual([{ address: '172.16.81.141', prefix: 24, interface: 'eth1' }]);
    expect(result.key).toBe('0123456789abcdef0123');
  });

  it('without this node’s address the output does not validate and the ucast line says why', async () => {
    const { problems, at } = await convert({ haCf: HA, authkeys: KEYS }, { node: 'lvs1' });
    expect(problems).toContain('cluster.nodes.0.links: a node needs at least one link');
    expect(at('haCf', 6)[0]?.reason).toMatch(/lvs1's own address on eth1 is not in ha\.cf.*--address eth1=/);
  });

  it('identical configs listing both addresses: ambiguous until one is given', async () => {
    const both = HA.replace('ucast eth1 10.10.10.2', 'ucast eth1 10.10.10.1\nucast eth1 10.10.10.2');
    const bad = await convert({ haCf: both, authkeys: KEYS }, { node: 'lvs1' });
    expect(bad.problems.length).toBeGreaterThan(0);
    expect(bad.at('haCf', 6)[0]?.reason).toMatch(/cannot tell which of 10\.10\.10\.1 and 10\.10\.10\.2 is lvs1's/);
    const good = await convert({ haCf: both, authkeys: KEYS }, { node: 'lvs2', addresses: [{ iface: 'eth1', address: '10.10.10.2' }] });
    expect(good.problems).toEqual([]);
    expect(good.config.cluster.nodes.map((n: any) => n.links[0].address)).toEqual(['10.10.10.1', '10.10.10.2']);
  });

  it('on the node itself its own addresses come from its interfaces', async () => {
    const both = HA.replace('ucast eth1 10.10.10.2', 'ucast eth1 10.10.10.1\nucast eth1 10.10.10.2');
    const { problems, config } = await convert(
      { haCf: both, authkeys: KEYS },
      { hostname: 'lvs1', local: { interfaces: [{ name: 'eth1', address: '10.10.10.1', prefix: 24 }] } },
    );
    expect(problems).toEqual([]);
    expect(config.node).toBe('lvs1');
    expect(config.cluster.nodes[1].links).toEqual([{ name: 'eth1', address: '10.10.10.2' }]);
  });

  it('another host’s interfaces are never used', async () => {
    const { problems } = await convert(
      { haCf: HA, authkeys: KEYS },
      { node: 'lvs1', hostname: 'laptop', local: { interfaces: [{ name: 'eth1', address: '10.10.10.1', prefix: 24 }] } },
    );
    expect(problems.length).toBeGreaterThan(0);
  });

  it('bcast and mcast become unicast links with a warning', async () => {
    const ha = 'bcast eth0 eth2\nmcast eth3 225.0.0.1 695 1 0\nnode a b\n';
    const { problems, config, at } = await convert(
      { haCf: ha, authkeys: KEYS },
      {
        node: 'a',
        addresses: [
          { iface: 'eth0', address: '10.0.0.1' },
          { node: 'b', iface: 'eth0', address: '10.0.0.2' },
          { iface: 'eth3', address: '10.3.0.1' },
          { node: 'b', iface: 'eth3', address: '10.3.0.2' },
        ],
      },
    );
    expect(problems).toEqual([]);
    expect(config.cluster.nodes[0].links.map((l: any) => l.name)).toEqual(['eth0', 'eth3']);
    expect(at('haCf', 1).map((e) => e.reason).join(' | ')).toMatch(/bcast is mapped to unicast.*eth0.*\| .*bcast is mapped to unicast.*eth2.*\| .*a's own address on eth2.*\| .*b's address on eth2/);
    expect(at('haCf', 2).map((e) => e.reason).join(' | ')).toMatch(/group 225\.0\.0\.1.*port 695 differs from udpport/);
  });

  it.each([
    ['keepalive 2\ndeadtime 3', { interval_ms: 2000, deadtime_ms: 4000 }, 2, /deadtime_ms 4000/],
    ['keepalive 500ms\ndeadtime 5\nwarntime 100ms', { interval_ms: 500, warntime_ms: 500 }, 3, /warntime_ms 500/],
    ['keepalive 1\ndeadtime 5\nwarntime 9', { warntime_ms: 5000 }, 3, /warntime_ms 5000/],
    ['keepalive 1ms', { interval_ms: 5 }, 1, /minimum/],
  ])('timers %j are adjusted minimally', async (timers, want, line, why) => {
    const { config, problems, at } = await convert({ haCf: `${timers}\nucast eth1 10.0.0.2\nnode a b\n`, authkeys: KEYS }, { node: 'a', addresses: [{ iface: 'eth1', address: '10.0.0.1' }] });
    expect(problems).toEqual([]);
    expect(config.cluster).toMatchObject(want);
    expect(at('haCf', line)[0]).toMatchObject({ kind: 'adjusted' });
    expect(at('haCf', line)[0]?.reason).toMatch(why);
  });

  it('Heartbeat’s defaults when ha.cf sets no timer', async () => {
    const { config, result } = await convert({ haCf: 'ucast eth1 10.0.0.2\nnode a b\n', authkeys: KEYS }, { node: 'a', addresses: [{ iface: 'eth1', address: '10.0.0.1' }] });
    expect(config.cluster).toMatchObject({ interval_ms: 1000, deadtime_ms: 30_000, warntime_ms: 15_000, initdead_ms: 30_000, preempt: true });
    expect(result.report.filter((e) => e.kind === 'note').map((e) => e.reason).join('\n')).toMatch(/keepalive not set[\s\S]*legacy/);
  });

  it('ping and ping_group become tracks; deadping their fall', async () => {
    const ha = `${HA}ping 10.0.0.254\nping_group gw 10.0.1.1 10.0.1.2\ndeadping 20\nrespawn hacluster /usr/lib/heartbeat/ipfail\n`;
    const { config, problems, at } = await convert({ haCf: ha, authkeys: KEYS }, { node: 'lvs1', addresses: [{ iface: 'eth1', address: '10.10.10.1' }] });
    expect(problems).toEqual([]);
    expect(config.cluster.tracks).toEqual([
      { type: 'ping', target: '10.0.0.254', weight: 50, fall: 20 },
      { type: 'ping', target: '10.0.1.1', weight: 25, fall: 20 },
      { type: 'ping', target: '10.0.1.2', weight: 25, fall: 20 },
    ]);
    expect(at('haCf', 10)).toEqual([]); // ping with ipfail: translated as is
    expect(at('haCf', 11)[0]?.reason).toMatch(/any member answered/);
  });

  it('crc is refused: no key, a two-node cluster does not validate', async () => {
    const { problems, result } = await convert({ haCf: HA, authkeys: 'auth 1\n1 crc\n' }, { node: 'lvs1', addresses: [{ iface: 'eth1', address: '10.10.10.1' }] });
    expect(result.key).toBeUndefined();
    expect(problems).toEqual(['cluster.key_file: is required when the cluster has more than one node (heartbeats are authenticated)']);
    expect(result.report.find((e) => e.file === 'authkeys' && e.line === 2)?.reason).toMatch(/authenticates nothing/);
  });
});

describe('haresources', () => {
  const base = { haCf: HA, authkeys: KEYS };
  const opts = { node: 'lvs1', addresses: [{ iface: 'eth1', address: '10.10.10.1' }] };

  it('a VIP without an interface needs --vip-interface', async () => {
    const bad = await convert({ ...base, haresources: 'lvs1 135.9.216.110 httpd\n' }, opts);
    expect(bad.problems.some((p) => p.startsWith('vips.0.interface:'))).toBe(true);
    expect(bad.at('haresources', 1).map((e) => e.reason).join(' ')).toMatch(/--vip-interface/);
    const good = await convert({ ...base, haresources: 'lvs1 135.9.216.110 httpd\n' }, { ...opts, vipInterface: 'eth0' });
    expect(good.problems).toEqual([]);
    expect(good.config.vips).toEqual([{ address: '135.9.216.110', interface: 'eth0' }]);
    expect(good.at('haresources', 1)[0]?.reason).toMatch(/\/32 is used/);
  });

  it('the local interface on the VIP’s subnet, on the node itself', async () => {
    const { config } = await convert(
      { ...base, haresources: 'lvs1 172.16.81.141\n' },
      { hostname: 'lvs1', addresses: [{ iface: 'eth1', address: '10.10.10.1' }], local: { interfaces: [{ name: 'eth0', address: '172.16.81.10', prefix: 24 }] } },
    );
    expect(config.vips).toEqual([{ address: '172.16.81.141', prefix: 24, interface: 'eth0' }]);
  });

  it('resources with arguments get a wrapper script; order is kept', async () => {
    const { config, result, problems } = await convert({ ...base, haresources: 'lvs1 10.0.0.170/24/eth0 Filesystem::/dev/sda1::/data1::ext2 httpd\n' }, { ...opts, exists: (p) => p === '/etc/init.d/httpd' });
    expect(problems).toEqual([]);
    expect(config.cluster.resources).toEqual([{ path: 'resources/Filesystem-1.sh' }, { path: '/etc/init.d/httpd' }]);
    expect(result.wrappers[0]?.content).toContain("exec /etc/ha.d/resource.d/Filesystem '/dev/sda1' '/data1' 'ext2' \"$@\"");
  });

  it.each([
    ['ldirectord', /--ldirectord/],
    ['LVSSyncDaemonSwap::master', /sync_daemon/],
    ['SendArp::10.0.0.1/eth0', /gratuitous ARP/],
    ['MailTo::root', /notify/],
  ])('%s is reported', async (res, why) => {
    const { at } = await convert({ ...base, haresources: `lvs1 10.0.0.170/24/eth0 ${res}\n` }, opts);
    expect(at('haresources', 1)[0]?.reason).toMatch(why);
  });

  it('node names match without regard to case, as in Heartbeat', async () => {
    const { config, problems } = await convert({ ...base, haresources: 'LVS2 10.0.0.1/24/eth0\n' }, opts);
    expect(problems).toEqual([]);
    expect(config.cluster.nodes.map((n: any) => [n.name, n.priority])).toEqual([['lvs1', 100], ['lvs2', 150]]);
  });

  it('a group for another node (active/active in Heartbeat) is an error: vigil would run it on the active node', async () => {
    const { at, config } = await convert({ ...base, haresources: 'lvs1 10.0.0.1/24/eth0\nlvs2 10.0.0.2/24/eth0\nghost 10.0.0.3/24/eth0\n' }, opts);
    expect(config.vips.map((v: any) => v.address)).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(at('haresources', 2)[0]).toMatchObject({ kind: 'error', reason: expect.stringMatching(/not honoured/) });
    expect(at('haresources', 3)[0]).toMatchObject({ kind: 'error' });
  });

  it('a group naming a node that is not in ha.cf (the manual’s S_hostname) is an error, not an unmanaged VIP', async () => {
    const { at, config, result } = await convert(
      { ...base, haresources: 'S_hostname IPaddr::172.16.81.141/24/eth1 LvsScript\n', ipvsadm: '-A -t 172.16.81.141:80 -s wlc\n-a -t 172.16.81.141:80 -r 172.19.81.139:80 -i -w 1\n' },
      opts,
    );
    expect(at('haresources', 1)[0]).toMatchObject({ kind: 'error', reason: expect.stringMatching(/node "S_hostname" is not one of the nodes in ha\.cf \(lvs1, lvs2\): nothing in this group \(IPaddr::172\.16\.81\.141\/24\/eth1 LvsScript\) is translated/) });
    expect(config.cluster.resources).toBeUndefined();
    expect(result.report.filter((e) => e.kind === 'error')).toHaveLength(1);
  });
});

describe('services from ipvsadm -S and mon', () => {
  const SEED_MON = [
    'hostgroup rs1 172.19.81.139',
    '',
    'watch rs1',
    '    service http',
    '        interval 5s',
    '        monitor http.monitor',
    '        period wd {Sun-Sat}',
    '            alert lvs.alert -P -t -V 172.16.81.141:80 -R 172.19.81.139 -W 1 -F tun',
  ].join('\n');

  it('the seed rules with mon checks bound by lvs.alert', async () => {
    const rules = '-A -t 172.16.81.141:80 -s wlc\n-a -t 172.16.81.141:80 -r 172.19.81.139:80 -i -w 1\n-a -t 172.16.81.141:80 -r 172.19.80.50:80 -i -w 1\n';
    const { config, problems } = await convert({ ipvsadm: rules, monCf: SEED_MON });
    expect(problems).toEqual([]);
    expect(config.services).toEqual([
      {
        name: 'tcp-172.16.81.141-80',
        protocol: 'tcp',
        vip: '172.16.81.141',
        port: 80,
        scheduler: 'wlc',
        forward: 'tun',
        real_servers: [
          // http.monitor's own verdict; its 30 s default timeout kept below the 5 s interval
          { address: '172.19.81.139', weight: 1, check: { type: 'http', expect_status: [200, 301, 302, 401], interval_ms: 5000, timeout_ms: 4999, rise: 1, fall: 1, initial: 'up' } },
          { address: '172.19.80.50', weight: 1 },
        ],
      },
    ]);
    expect(config.vips).toEqual([{ address: '172.16.81.141', interface: 'lo', managed: false }]);
  });

  it('lvs.alert alone creates the virtual service', async () => {
    const { config, problems, at } = await convert({ monCf: SEED_MON });
    expect(problems).toEqual([]);
    expect(config.services[0]).toMatchObject({ vip: '172.16.81.141', port: 80, forward: 'tun', real_servers: [{ address: '172.19.81.139', weight: 1 }] });
    expect(at('monCf', 8)[0]?.reason).toMatch(/created from the lvs\.alert arguments/);
  });

  it('names resolve through /etc/services and the resolver; failures are reported', async () => {
    const rules = [
      '-A -t www.example.com:http -s wrr -p 600 -M 255.255.255.0',
      '-a -t www.example.com:http -r rs1.example.com:http -g -w 2',
      '-a -t www.example.com:http -r nowhere.example.com:http -g -w 2',
      '-A -u 10.0.0.1:domain -s rr',
      '-a -u 10.0.0.1:domain -r 10.0.1.5:domain -m -w 1',
      '-A -f 3 -s sh',
      '-a -f 3 -r 10.0.1.9:0 -g -w 1',
      '-A -t 10.0.0.1:gopher -s wlc',
      '-A -t 10.0.0.1:81 -s fo',
    ].join('\n');
    const { config, problems, at } = await convert({ ipvsadm: rules });
    expect(problems).toEqual([]);
    expect(config.services.map((s: any) => [s.name, s.scheduler, s.forward])).toEqual([
      ['tcp-10.0.0.1-80', 'wrr', 'dr'],
      ['udp-10.0.0.1-53', 'rr', 'nat'],
      ['fwmark-3', 'sh', 'dr'],
      ['tcp-10.0.0.1-81', 'fo', 'dr'],
    ]);
    expect(config.services[0]).toMatchObject({ persistence: { timeout_s: 600, netmask: '255.255.255.0' }, real_servers: [{ address: '10.0.1.1', weight: 2 }] });
    expect(config.services[2].real_servers).toEqual([{ address: '10.0.1.9', weight: 1 }]);
    expect(at('ipvsadm', 3)[0]).toMatchObject({ kind: 'error', reason: expect.stringMatching(/cannot resolve "nowhere\.example\.com"/) });
    expect(at('ipvsadm', 8)[0]).toMatchObject({ kind: 'error', reason: expect.stringMatching(/unknown port "gopher"/) });
    expect(at('ipvsadm', 9)).toEqual([]);
  });

  it('mon hosts match real servers by address and port; one check per real server, the best kept', async () => {
    const rules = '-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 127.0.0.1:8080 -m -w 1\n';
    const mon = [
      'hostgroup local localhost',
      'hostgroup elsewhere 192.0.2.9',
      '',
      'watch local',
      '    service ping',
      '        interval 1m',
      '        monitor fping.monitor',
      '    service web',
      '        interval 10s',
      '        monitor tcp.monitor -p 8080',
      '        period wd {Mon-Fri}',
      '            alert mail.alert root',
      '            alertevery 1h',
      '    service web2',
      '        interval 10s',
      '        monitor tcp.monitor -p 8080 -t 2',
      'watch elsewhere',
      '    service ping',
      '        interval 1m',
      '        monitor fping.monitor',
    ].join('\n');
    const { config, problems, at } = await convert({ ipvsadm: rules, monCf: mon });
    expect(problems).toEqual([]);
    // tcp.monitor's own 10 s timeout, kept below the 10 s interval
    expect(config.services[0].check).toEqual({ type: 'tcp', interval_ms: 10_000, timeout_ms: 9999, rise: 1, fall: 1, initial: 'up' });
    expect(at('monCf', 5)[0]?.reason).toMatch(/fping\.monitor probes the host \(ICMP\), not a service/);
    expect(at('monCf', 10)[0]?.reason).toMatch(/timeout 10 s \(its default\) is not below the interval 10 s/);
    expect(at('monCf', 11)[0]?.reason).toMatch(/only mon alerts/);
    expect(at('monCf', 12)[0]?.reason).toMatch(/no alert scripts/);
    expect(at('monCf', 14)[0]?.reason).toMatch(/already checked by mon service web/);
    expect(at('monCf', 2)[0]?.reason).toMatch(/not watched by a translated service/);
    expect(at('monCf', 19)[0]?.reason).toMatch(/not real servers of any imported virtual service/);
  });

  // the case: one host group, several watches, each on its own port
  const SEVERAL = [
    '-A -t 10.0.0.100:80 -s wlc',
    '-a -t 10.0.0.100:80 -r 10.0.1.1:80 -g -w 1',
    '-a -t 10.0.0.100:80 -r 10.0.1.2:80 -g -w 1',
    '-A -t 10.0.0.100:21 -s wlc',
    '-a -t 10.0.0.100:21 -r 10.0.1.1:21 -g -w 1',
    '-a -t 10.0.0.100:21 -r 10.0.1.2:21 -g -w 1',
    '-A -u 10.0.0.100:53 -s rr',
    '-a -u 10.0.0.100:53 -r 10.0.1.1:53 -g -w 1',
    '-a -u 10.0.0.100:53 -r 10.0.1.2:53 -g -w 1',
    '-A -t 10.0.0.100:9000 -s rr',
    '-a -t 10.0.0.100:9000 -r 10.0.1.1:9000 -g -w 1',
    '-a -t 10.0.0.100:9000 -r 10.0.1.2:9000 -g -w 1',
  ].join('\n');
  const severalMon = (extra: string[] = []) =>
    [
      'hostgroup rs 10.0.1.1 10.0.1.2',
      '',
      'watch rs',
      '    service web',
      '        interval 5s',
      '        monitor http.monitor -t 3',
      '        period',
      '            alert lvs.alert -P -t -V 10.0.0.100:80 -R 10.0.1.1',
      '    service ftp',
      '        interval 10s',
      '        monitor ftp.monitor',
      '        period',
      '            alert mail.alert root',
      '    service dns',
      '        interval 10s',
      '        monitor dns.monitor -caching_only -query www.example.com',
      '        period',
      '            alert mail.alert root',
      '    service app',
      '        interval 10s',
      '        monitor tcp.monitor -p 9000',
      '        period',
      '            alert mail.alert root',
      ...extra,
    ].join('\n');

  it('several watches on the same hosts: each monitor goes to the service it probes', async () => {
    const { config, problems, result } = await convert({ ipvsadm: SEVERAL, monCf: severalMon() });
    expect(problems).toEqual([]);
    expect(result.report.filter((e) => e.kind === 'error')).toEqual([]);
    const byPort = new Map<number, any>(config.services.map((s: any) => [s.port, s]));
    // lvs.alert binds http.monitor to 10.0.1.1 of :80 only; mon ran it on both hosts of
    // the group and called lvs.alert when either failed, so vigil runs it the same way
    expect(byPort.get(80).real_servers[0].check).toMatchObject({ type: 'exec', command: '/usr/lib/mon/mon.d/http.monitor', args: ['-t', '3', '10.0.1.1', '10.0.1.2'], args_style: 'none', timeout_ms: 4000 });
    expect(byPort.get(80).real_servers[1].check).toBeUndefined();
    expect(byPort.get(21).check).toMatchObject({ type: 'exec', command: '/usr/lib/mon/mon.d/ftp.monitor', args: [], args_style: 'mon', timeout_ms: 9999 });
    expect(byPort.get(53)).toMatchObject({ protocol: 'udp', check: { type: 'exec', command: '/usr/lib/mon/mon.d/dns.monitor', args: ['-caching_only', '-query', 'www.example.com'] } });
    expect(byPort.get(9000).check).toMatchObject({ type: 'tcp', timeout_ms: 9999 });
    expect(byPort.get(9000).check.port).toBeUndefined();
  });

  it('a watch probing a port no service has is reported, not attached elsewhere', async () => {
    const extra = ['    service other', '        interval 10s', '        monitor tcp.monitor -p 7777'];
    const { config, at } = await convert({ ipvsadm: SEVERAL, monCf: severalMon(extra) });
    expect(at('monCf', 26)[0]).toMatchObject({ kind: 'untranslated', reason: expect.stringMatching(/probes tcp port 7777 on 10\.0\.1\.1, 10\.0\.1\.2, where no imported virtual service has a real server/) });
    expect(config.services.find((s: any) => s.port === 9000).check).toMatchObject({ type: 'tcp' });
  });

  it('a monitor whose target cannot be told is an error unless lvs.alert binds it', async () => {
    const extra = ['    service custom', '        interval 10s', '        monitor my-app.monitor --deep'];
    const { config, at } = await convert({ ipvsadm: SEVERAL, monCf: severalMon(extra) });
    expect(at('monCf', 26)[0]).toMatchObject({ kind: 'error', reason: expect.stringMatching(/cannot tell which service this monitor probes .*lvs\.alert/) });
    for (const s of config.services) for (const r of s.real_servers) expect(JSON.stringify(r.check ?? s.check ?? {})).not.toContain('my-app');
    const bound = ['    service custom', '        interval 10s', '        monitor my-app.monitor --deep', '        period', '            alert lvs.alert -P -t -V 10.0.0.100:9000 -R 10.0.1.2'];
    const b = await convert({ ipvsadm: SEVERAL, monCf: severalMon(bound) });
    expect(b.result.report.filter((e) => e.kind === 'error')).toEqual([]);
    expect(b.config.services.find((s: any) => s.port === 9000).real_servers[1].check).toMatchObject({ type: 'exec', command: '/usr/lib/mon/mon.d/my-app.monitor', args: ['--deep', '10.0.1.1', '10.0.1.2'], args_style: 'none' });
  });

  it('two lvs.alert-bound monitors with different checks on one real server are an error', async () => {
    const extra = ['    service web-tcp', '        interval 5s', '        monitor tcp.monitor -p 80 -t 2', '        period', '            alert lvs.alert -P -t -V 10.0.0.100:80 -R 10.0.1.1'];
    const { result } = await convert({ ipvsadm: SEVERAL, monCf: severalMon(extra) });
    expect(result.report.filter((e) => e.kind === 'error').map((e) => e.line)).toEqual([24]);
  });

  it('unresolvable hosts and lvs.alert targets are errors', async () => {
    const mon = 'hostgroup rs 10.0.1.1 nowhere.example.com\n\nwatch rs\n  service web\n    interval 5s\n    monitor http.monitor -t 2\n    period\n      alert lvs.alert -P -t -V 10.0.0.100:80 -R gone.example.com\n';
    const { at } = await convert({ ipvsadm: SEVERAL, monCf: mon });
    expect(at('monCf', 1)[0]).toMatchObject({ kind: 'error', reason: expect.stringMatching(/cannot resolve host "nowhere\.example\.com"/) });
    expect(at('monCf', 8)[0]).toMatchObject({ kind: 'error', reason: expect.stringMatching(/lvs\.alert -R: cannot resolve "gone\.example\.com"/) });
  });

  it('every option not carried over gets its own report line', async () => {
    const { at } = await convert({ ipvsadm: SEVERAL, monCf: 'hostgroup rs 10.0.1.1\n\nwatch rs\n  service web\n    interval 5s\n    monitor http.monitor -o\n' });
    expect(at('monCf', 6).map((e) => [e.kind, e.reason])).toEqual([
      ['adjusted', '-o is not carried over: only shortens the monitor’s output; no effect on the verdict'],
      ['adjusted', expect.stringMatching(/timeout 30 s \(its default\) is not below the interval 5 s: timeout_ms 4999/)],
    ]);
  });

  it('a service without an interval never runs its monitor in mon, so it is not translated', async () => {
    const { at } = await convert({ ipvsadm: SEVERAL, monCf: 'hostgroup rs 10.0.1.1\n\nwatch rs\n  service web\n    monitor http.monitor\n' });
    expect(at('monCf', 5)[0]?.reason).toMatch(/no interval: mon never runs its monitor/);
  });
});

describe('services from ldirectord.cf', () => {
  it('every check type and setting', async () => {
    const ld = [
      'checktimeout=3',
      'checkinterval=5',
      'quiescent=yes',
      'autoreload=yes',
      'virtual=10.0.0.1:80',
      '\treal=10.0.1.1->10.0.1.3:80 gate',
      '\treal=10.0.1.9:80 gate 2 "/alt.html", "ALT"',
      '\tfallback=127.0.0.1:80 gate',
      '\tservice=http',
      '\tscheduler=wlc',
      '\tpersistent=600',
      '\tnetmask=255.255.255.0',
      '\tchecktype=negotiate',
      '\tnegotiatetimeout=2',
      '\trequest="index.html"',
      '\treceive="Test Page"',
      '\tvirtualhost=www.x.y.z',
      '\tfailurecount=3',
      'virtual=10.0.0.1:443',
      '\treal=10.0.1.1:443 masq',
      '\tservice=https',
      '\tchecktype=connect',
      'virtual=10.0.0.1:53',
      '\treal=10.0.1.1:53 gate',
      '\tchecktype=ping',
      'virtual=10.0.0.1:25',
      '\treal=10.0.1.1:25 ipip',
      '\tservice=smtp',
      '\tlogin="x"',
      '\tpasswd="s3cret"',
      'virtual=5',
      '\treal=10.0.1.1 gate',
      '\tprotocol=fwm',
      '\tchecktype=on',
      'virtual=10.0.0.1:3306',
      '\treal=sql01->sql03:3306 gate 10',
      '\tchecktype=external',
      '\tcheckcommand="/usr/local/bin/check_mysql"',
    ].join('\n');
    const { config, problems, at, result } = await convert({ ldirectord: ld });
    expect(problems).toEqual([]);
    const [web, tls, dns, smtp, mark, sql] = config.services;
    expect(web).toMatchObject({
      protocol: 'tcp',
      port: 80,
      scheduler: 'wlc',
      persistence: { timeout_s: 600, netmask: '255.255.255.0' },
      quiescent: true,
      sorry_server: { address: '127.0.0.1', port: 80 },
      check: { type: 'http', path: '/index.html', body_regex: 'Test Page', host: 'www.x.y.z', interval_ms: 5000, timeout_ms: 2000, rise: 1, fall: 3 },
    });
    expect(web.real_servers.map((r: any) => r.address)).toEqual(['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.9']);
    expect(web.real_servers[3]).toMatchObject({ weight: 2, check: { path: '/alt.html', body_regex: 'ALT' } });
    expect(tls).toMatchObject({ forward: 'nat', scheduler: 'wrr', check: { type: 'tcp', timeout_ms: 3000 } });
    expect(dns).toMatchObject({ protocol: 'udp', check: { type: 'exec', command: '/usr/bin/ping', args_style: 'mon' } });
    expect(smtp).toMatchObject({ forward: 'tun', check: { type: 'tcp' } });
    expect(mark).toMatchObject({ fwmark: 5, real_servers: [{ address: '10.0.1.1', weight: 1 }] });
    expect(mark.check).toBeUndefined();
    expect(sql).toMatchObject({ check: { type: 'exec', command: '/usr/local/bin/check_mysql', args: ['10.0.0.1', '3306'], args_style: 'vigil' } });
    expect(sql.real_servers.map((r: any) => r.address)).toEqual(['10.0.2.1', '10.0.2.2', '10.0.2.3']);
    expect(at('ldirectord', 4)[0]?.reason).toMatch(/SIGHUP/);
    expect(at('ldirectord', 28)[0]).toMatchObject({ kind: 'error', reason: expect.stringMatching(/negotiate check for "smtp" talks the protocol/) });
    expect(sql.real_servers.map((r: any) => r.weight)).toEqual([10, 10, 10]);
    expect(at('ldirectord', 36)[0]?.reason).toMatch(/sql01->sql03 is the address range 10\.0\.2\.1-10\.0\.2\.3 \(3 real servers of weight 10\)/);
    expect(at('ldirectord', 29)[0]?.reason).toMatch(/do not log in/);
    expect(at('ldirectord', 30)[0]?.text).toBe('passwd=<not shown>');
    expect(result.report.some((e) => e.text.includes('s3cret'))).toBe(false);
  });
});

describe('ldirectord quiescent=yes with a fallback', () => {
  const adjusted = /^quiescent=yes with a fallback \(10\.0\.0\.1:80\): when every real server is down, ldirectord keeps them in the table at weight 0 beside the fallback \(weight 1\); vigil programs its sorry_server alone and removes them/;
  it('is reported on the quiescent line of the block, saying what vigil does instead', async () => {
    const ld = ['virtual=10.0.0.1:80', '\treal=10.0.1.1:80 gate', '\tfallback=127.0.0.1:80 gate', '\tquiescent=yes', '\tchecktype=connect'].join('\n');
    const { config, at } = await convert({ ldirectord: ld });
    expect(config.services[0]).toMatchObject({ quiescent: true, sorry_server: { address: '127.0.0.1', port: 80 } });
    expect(at('ldirectord', 4).map((e) => e.kind)).toEqual(['adjusted']);
    expect(at('ldirectord', 4)[0]?.reason).toMatch(adjusted);
  });

  it('a global quiescent=yes is reported on the block’s fallback line; quiescent=no or no fallback is not reported', async () => {
    const ld = ['quiescent=yes', 'virtual=10.0.0.1:80', '\treal=10.0.1.1:80 gate', '\tfallback=127.0.0.1:80 gate', '\tchecktype=connect', 'virtual=10.0.0.1:81', '\treal=10.0.1.1:81 gate', '\tchecktype=connect'].join('\n');
    const { at, result } = await convert({ ldirectord: ld });
    expect(at('ldirectord', 4).map((e) => e.reason)).toEqual([expect.stringMatching(adjusted)]);
    expect(result.report.filter((e) => /^quiescent=yes with a fallback/.test(e.reason))).toHaveLength(1);
    const off = await convert({ ldirectord: ld.replace('quiescent=yes', 'quiescent=no') });
    expect(off.result.report.filter((e) => /with a fallback/.test(e.reason))).toEqual([]);
  });
});

describe('ldirectord fallback forwarding method', () => {
  const ld = (fallback: string, method = 'masq') => ['virtual=10.0.0.1:443', `\treal=10.0.1.1:443 ${method}`, `\tfallback=${fallback}`, '\tchecktype=connect'].join('\n');
  it.each([
    ['127.0.0.1:443', 'masq', undefined],
    ['127.0.0.1:443 gate', 'masq', undefined],
    ['10.0.9.9:443 masq', 'masq', undefined],
    ['10.0.9.9:443', 'gate', undefined],
    ['10.0.9.9:443', 'masq', 'ldirectord adds the fallback with -g, ipvsadm\'s default: the line names no method; vigil forwards its sorry_server with -m (like the service\'s real servers)'],
    ['127.0.0.1:443 masq', 'masq', 'ldirectord adds the fallback with -m, the "masq" method on this line; vigil forwards its sorry_server with -g (like the service\'s real servers)'],
    ['10.0.9.9:8443 gate', 'gate', 'ldirectord adds the fallback with -g, the "gate" method on this line; vigil forwards its sorry_server with -m (a port-mapped sorry server is NATed)'],
  ])('fallback=%s in a %s service', async (fallback, method, reason) => {
    const { at, config } = await convert({ ldirectord: ld(fallback, method) });
    expect(config.services[0].sorry_server).toBeDefined();
    expect(at('ldirectord', 3).map((e) => e.reason)).toEqual(reason === undefined ? [] : [reason]);
  });
});

describe('ldirectord: what it refuses or vigil cannot say is an error', () => {
  const block = (lines: string[]) => ['virtual=10.0.0.1:3306', '\tchecktype=connect', ...lines.map((l) => `\t${l}`)].join('\n');
  it.each([
    [['real=sql01->sql02:3306 gate 10'], 3, /cannot resolve "sql02".*refuses to start/],
    [['real=nowhere:3306 gate 10'], 3, /cannot resolve "nowhere"/],
    [['real=10.0.1.5->10.0.1.1:3306 gate'], 3, /range 10\.0\.1\.5->10\.0\.1\.1 is empty/],
    [['real=10.0.1.1:3306 gate 2 l:10'], 3, /^l:10: lower connection thresholds/],
    [['real=10.0.1.1:3306 gate 2 "/", "x" u:100'], 3, /^u:100: upper connection thresholds/],
    [['real=10.0.1.1:3306 gate', 'real=10.0.1.2:3306 masq'], 4, /one forwarding method per service/],
    [['real=10.0.1.1:3306 gate fast'], 3, /expected "real=/],
  ])('%j', async (lines, line, why) => {
    const { at, result } = await convert({ ldirectord: block(lines) });
    expect(at('ldirectord', line).find((e) => e.kind === 'error')?.reason).toMatch(why);
    expect(result.report.some((e) => e.kind === 'error')).toBe(true);
  });

  it('an unresolvable virtual service is an error, not a silently empty service', async () => {
    const { at, config } = await convert({ ldirectord: 'virtual=nowhere:80\n\treal=10.0.1.1:80 gate\n' });
    expect(at('ldirectord', 1)[0]).toMatchObject({ kind: 'error', reason: expect.stringMatching(/cannot resolve "nowhere"/) });
    expect(config.services).toBeUndefined();
  });

  it('negotiate without a service takes ldirectord’s service for the port; "none" (e.g. 8080) checks nothing', async () => {
    const { config, result } = await convert({ ldirectord: 'virtual=10.0.0.1:8080\n\treal=10.0.1.1:8080 gate\n' });
    expect(config.services[0].check).toBeUndefined();
    expect(result.report.map((e) => e.reason).join('\n')).toMatch(/service "none": ldirectord marks every real server up without checking/);
  });
});

describe('ldirectord DNS checks', () => {
  it('the UDP DNS negotiate check becomes the checks/dns exec check, and the report says so', async () => {
    const ld = 'virtual=10.0.0.1:53\n\treal=10.0.1.1:53 gate\n\tchecktimeout=2\n\trequest="www.example.com"\n\treceive="192.0.2.7"\n';
    const { config, problems, at, result } = await convert({ ldirectord: ld });
    expect(problems).toEqual([]);
    expect(config.services[0]).toMatchObject({
      protocol: 'udp',
      check: { type: 'exec', command: 'dns', args: ['--name', 'www.example.com', '--type', 'A', '--expect', '192.0.2.7'], args_style: 'vigil', timeout_ms: 2000 },
    });
    expect(at('ldirectord', 5)[0]?.reason).toMatch(/becomes the checks\/dns exec check "dns --name www\.example\.com --type A --expect 192\.0\.2\.7 <address> <port>"/);
    expect(result.report.some((e) => /TCP connect/.test(e.reason))).toBe(false);
    expect(result.report.filter((e) => e.kind === 'error')).toEqual([]);
  });

  it.each([
    ['\treceive="192.0.2.7"\n', /no request=/],
    ['\trequest="www.example.com"\n\treceive="192\\.0\\.2\\.[0-9]+"\n', /is a pattern/],
    ['\trequest="192.0.2.7"\n\treceive="www"\n', /PTR lookup/],
    ['\trequest="www.example.com"\n', /no receive=/],
    ['\tprotocol=tcp\n\trequest="www.example.com"\n\treceive="192.0.2.7"\n', /over TCP for protocol=tcp/],
  ])('a DNS check checks/dns cannot match exactly is an error: %j', async (lines, why) => {
    const { result } = await convert({ ldirectord: `virtual=10.0.0.1:53\n\treal=10.0.1.1:53 gate\n${lines}` });
    expect(result.report.find((e) => e.kind === 'error')?.reason).toMatch(why);
  });
});

describe('ldirectord UDP services', () => {
  it.each([
    ['checktype=connect', /./],
    ['checktype=negotiate\n\tservice=radius', /ping check/],
  ])('%j on UDP is a ping check, as ldirectord does', async (lines, why) => {
    const ld = `checkinterval=5\nvirtual=10.0.0.1:1812\n\treal=10.0.1.1:1812 gate\n\tprotocol=udp\n\t${lines}\n`;
    const { config, problems, result } = await convert({ ldirectord: ld });
    expect(problems).toEqual([]);
    expect(config.services[0]).toMatchObject({ protocol: 'udp', check: { type: 'exec', command: '/usr/bin/ping', args_style: 'mon' } });
    expect(result.report.map((e) => e.reason).join('\n')).toMatch(why);
  });

  it('a global setting adjusted for many services is reported once', async () => {
    const ld = 'checktimeout=3\ncheckinterval=1\nvirtual=10.0.0.1:80\n\treal=10.0.1.1:80 gate\n\tchecktype=connect\nvirtual=10.0.0.1:81\n\treal=10.0.1.1:81 gate\n\tchecktype=connect\n';
    const { result, config } = await convert({ ldirectord: ld });
    // ldirectord's timeout is kept; the period is checkinterval + timeout
    expect(config.services.map((s: any) => [s.check.interval_ms, s.check.timeout_ms])).toEqual([[4000, 3000], [4000, 3000]]);
    expect(result.report.filter((e) => e.line === 1)).toHaveLength(1);
  });
});

describe('no input line is dropped silently', () => {
  it('every line of a mixed input is translated or reported', async () => {
    const inputs = {
      haCf: `${HA}serial /dev/ttyS0\nfoo bar\n`,
      haresources: 'lvs1 IPaddr::172.16.81.141/24/eth1 LvsScript\nnobody 1.2.3.4\n',
      authkeys: KEYS,
      ipvsadm: '-A -t 172.16.81.141:80 -s wlc\n-a -t 172.16.81.141:80 -r 172.19.81.139:80 -i -w 1\n-a -t 1.1.1.1:80 -r 2.2.2.2:80\n',
      monCf: 'hostgroup x 172.19.81.139\n\nwatch x\n  service s\n    interval 5s\n    monitor tcp.monitor -p 80 -t 2\n    bogus line\n',
    };
    const { result } = await convert(inputs, { node: 'lvs1', addresses: [{ iface: 'eth1', address: '10.10.10.1' }] });
    const reported = new Set(result.report.map((e) => `${e.file}:${e.line}`));
    for (const want of ['haCf:10', 'haCf:11', 'haresources:2', 'ipvsadm:3', 'monCf:7']) expect(reported).toContain(want);
  });
});
