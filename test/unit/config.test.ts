import { describe, expect, it } from 'vitest';
import { ConfigError, formatPath, parseConfig } from '../../src/config/load.js';
import { isNetmask } from '../../src/config/schema.js';

/** A valid two-node config; each case below breaks one thing in it. */
const BASE = `
node: a
cluster:
  key_file: /etc/vigil/authkey
  nodes:
    - name: a
      priority: 150
      links: [{ name: hb, address: 10.0.0.1 }, { name: lan, address: 192.168.1.1 }]
    - name: b
      links: [{ name: hb, address: 10.0.0.2 }, { name: lan, address: 192.168.1.2 }]
vips:
  - { address: 192.168.1.100, prefix: 24, interface: eth0 }
services:
  - name: web
    vip: 192.168.1.100
    port: 80
    scheduler: wrr
    check: { type: tcp, interval_ms: 1000, timeout_ms: 500 }
    real_servers:
      - { address: 192.168.1.10, weight: 1 }
      - { address: 192.168.1.11, weight: 2 }
`;

function problems(text: string): string[] {
  try {
    parseConfig(text, 'test.yaml', {});
    return [];
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.problems.map((p) => `${formatPath(p.path)}: ${p.message}`);
  }
}

const edit = (from: string, to: string): string => {
  expect(BASE).toContain(from);
  return BASE.replace(from, to);
};

describe('config: a valid file', () => {
  it('parses and fills defaults', () => {
    const { config } = parseConfig(BASE, '/etc/vigil/vigil.yaml', {});
    expect(config.cluster).toMatchObject({ id: 'vigil', port: 694, interval_ms: 50, deadtime_ms: 250, warntime_ms: 150, initdead_ms: 2000, preempt: false });
    expect(config.cluster.nodes[1]?.priority).toBe(100);
    expect(config.services[0]).toMatchObject({ protocol: 'tcp', forward: 'dr', quiescent: false });
    expect(config.services[0]?.check).toMatchObject({ rise: 2, fall: 2, initial: 'down' });
    expect(config.vips[0]?.garp).toEqual({ count: 3, interval_ms: 100, repeat_after_ms: 2000, refresh_ms: 0 });
    expect(config.dataplane.mode).toBe('auto');
    expect(config.api.listen).toBe('127.0.0.1:9694');
    expect(config.logging.level).toBe('info');
  });

  it('accepts the short form dataplane: forwarder', () => {
    const { config } = parseConfig(`${BASE}dataplane: forwarder\n`, 'x.yaml', {});
    expect(config.dataplane.mode).toBe('forwarder');
    expect(config.dataplane.forwarder.connect_retries).toBe(2);
    expect(config.dataplane.forwarder.max_accept).toBe(8);
  });

  it('resolves relative paths against the config file', () => {
    const { config } = parseConfig(edit('/etc/vigil/authkey', 'keys/authkey'), '/srv/vigil/vigil.yaml', {});
    expect(config.cluster.key_file).toBe('/srv/vigil/keys/authkey');
  });

  it('lets $VIGIL_NODE choose the node', () => {
    expect(parseConfig(BASE, 'x.yaml', { VIGIL_NODE: 'b' }).config.node).toBe('b');
  });
});

describe('config: every rule names the path and the problem', () => {
  it.each([
    ['unknown key, with a suggestion', edit('scheduler: wrr', 'shedular: wrr'), 'services[0].shedular: unknown key "shedular" (did you mean "scheduler"?)'],
    ['unknown top-level key', `${BASE}logg: {}\n`, 'logg: unknown key "logg"'],
    ['scheduler outside IPVS set', edit('scheduler: wrr', 'scheduler: fair'), 'services[0].scheduler: must be one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, mh, fo, ovf'],
    ['protocol', edit('port: 80\n', 'port: 80\n    protocol: sctp\n'), 'services[0].protocol: must be one of tcp, udp'],
    ['forward method', edit('port: 80\n', 'port: 80\n    forward: gre\n'), 'services[0].forward: must be one of dr, tun, nat'],
    ['port range', edit('{ address: 192.168.1.11, weight: 2 }', '{ address: 192.168.1.11, port: 70000 }'), 'services[0].real_servers[1].port: must be between 1 and 65535'],
    ['port type', edit('port: 80', 'port: http'), 'services[0].port: expected number, received string'],
    ['invalid address', edit('192.168.1.10, weight', '192.168.1.300, weight'), 'services[0].real_servers[0].address: is not a valid IPv4 or IPv6 address'],
    ['IPv4 prefix > 32', edit('prefix: 24', 'prefix: 33'), 'vips[0].prefix: 33 is not an IPv4 prefix (0-32)'],
    ['check timeout < interval', edit('timeout_ms: 500', 'timeout_ms: 1000'), 'services[0].check.timeout_ms: timeout_ms (1000) must be less than interval_ms (1000) so a probe never overlaps itself'],
    ['check type', edit('type: tcp', 'type: icmp'), 'services[0].check.type: type must be one of tcp, http, https, exec'],
    ['deadtime ≥ 2 × interval', edit('key_file', 'interval_ms: 100\n  deadtime_ms: 150\n  warntime_ms: 120\n  key_file'), 'cluster.deadtime_ms: deadtime_ms (150) must be at least 2 × interval_ms (200)'],
    ['warntime between interval and deadtime', edit('key_file', 'warntime_ms: 700\n  key_file'), 'cluster.warntime_ms: warntime_ms (700) must be between interval_ms (50) and deadtime_ms (250)'],
    ['warntime below interval', edit('key_file', 'warntime_ms: 40\n  key_file'), 'cluster.warntime_ms: warntime_ms (40) must be between interval_ms (50) and deadtime_ms (250)'],
    ['local node listed', edit('node: a', 'node: c'), 'node: "c" is not one of cluster.nodes (a, b)'],
    ['unique node names', edit('- name: b', '- name: a'), 'cluster.nodes[1].name: duplicate node name "a" (also cluster.nodes[0])'],
    ['unique link addresses', edit('address: 10.0.0.2', 'address: 10.0.0.1'), 'cluster.nodes[1].links[0].address: address 10.0.0.1 is already used by cluster.nodes[0].links[0]'],
    ['key file for a pair', edit('  key_file: /etc/vigil/authkey\n', ''), 'cluster.key_file: is required when the cluster has more than one node (heartbeats are authenticated)'],
    ['unique VIPs', edit('vips:\n', 'vips:\n  - { address: 192.168.1.100, interface: eth1 }\n'), 'vips[1].address: duplicate VIP 192.168.1.100 (also vips[0])'],
    ['service VIP declared', edit('vip: 192.168.1.100', 'vip: 192.168.1.101'), 'services[0].vip: 192.168.1.101 is not declared under vips'],
    ['unique service names', `${BASE}  - { name: web, vip: 192.168.1.100, port: 443 }\n`, 'services[1].name: duplicate service name "web" (also services[0])'],
    ['unique service keys', `${BASE}  - { name: web2, vip: 192.168.1.100, port: 80 }\n`, 'services[1]: duplicate virtual service tcp 192.168.1.100:80 (also services[0])'],
    ['fwmark services are one per mark, whatever the protocol', `${edit('    port: 80\n', '    fwmark: 7\n')}  - { name: web-udp, protocol: udp, fwmark: 7 }\n`, 'services[1]: duplicate virtual service fwmark 7 (also services[0])'],
    [
      'IPv6 service keys compare in canonical form',
      `${edit('vips:\n', 'vips:\n  - { address: "2001:db8::1", prefix: 64, interface: eth0 }\n')}  - { name: v6a, vip: "2001:db8::1", port: 80 }\n  - { name: v6b, vip: "2001:db8:0::1", port: 80 }\n`,
      'services[2]: duplicate virtual service tcp [2001:db8::1]:80 (also services[1])',
    ],
    ['unique real servers', edit('192.168.1.11, weight: 2', '192.168.1.10, weight: 2'), 'services[0].real_servers[1]: duplicate real server 192.168.1.10:80 (also real_servers[0])'],
    ['vip+port or fwmark', edit('    port: 80\n', ''), 'services[0].port: a service needs vip and port, or fwmark'],
    ['fwmark excludes port', edit('port: 80\n', 'port: 80\n    fwmark: 5\n'), 'services[0].fwmark: fwmark and port are exclusive (an fwmark service matches by mark, not by port)'],
    ['port mapping only with nat', edit('{ address: 192.168.1.11, weight: 2 }', '{ address: 192.168.1.11, port: 8080 }'), 'services[0].real_servers[1].port: port 8080 differs from the service port 80; only forward: nat can map ports'],
    ['persistence netmask', edit('port: 80\n', 'port: 80\n    persistence: { netmask: 255.0.255.0 }\n'), 'services[0].persistence.netmask: "255.0.255.0" is not a netmask (dotted like 255.255.255.0, or an IPv6 prefix length 1-128)'],
    ['IPv4 persistence netmask written as a prefix length', edit('port: 80\n', 'port: 80\n    persistence: { netmask: "24" }\n'), 'services[0].persistence.netmask: "24" is an IPv6 prefix length but the service is IPv4: write a dotted mask (255.255.255.0 for /24)'],
    ['IPv4 fwmark persistence netmask as a prefix length', edit('port: 80\n', 'fwmark: 5\n    persistence: { netmask: "20" }\n'), 'services[0].persistence.netmask: "20" is an IPv6 prefix length but the service is IPv4: write a dotted mask (255.255.240.0 for /20)'],
    [
      'IPv6 persistence netmask written dotted',
      `${edit('vips:\n', 'vips:\n  - { address: "2001:db8::1", prefix: 64, interface: eth0 }\n')}  - { name: v6, vip: "2001:db8::1", port: 80, persistence: { netmask: 255.255.255.0 } }\n`,
      'services[1].persistence.netmask: "255.255.255.0" is a dotted IPv4 mask but the service is IPv6: write a prefix length 1-128 (e.g. 64)',
    ],
    ['fwmark with the forwarder', `${edit('port: 80\n', 'fwmark: 5\n')}dataplane: forwarder\n`, 'services[0].fwmark: fwmark services need IPVS; the built-in forwarder matches VIP:port only'],
    ['dataplane mode', `${BASE}dataplane: dpdk\n`, 'dataplane.mode: must be one of auto, ipvs, forwarder'],
    ['max_accept range', `${BASE}dataplane: { forwarder: { max_accept: 0 } }\n`, 'dataplane.forwarder.max_accept: Too small: expected number to be >=1'],
    ['max_accept integer', `${BASE}dataplane: { forwarder: { max_accept: 2.5 } }\n`, 'dataplane.forwarder.max_accept: expected int, received number'],
    ['api listen', `${BASE}api: { listen: "localhost" }\n`, 'api.listen: "localhost" is not a valid listen address (expected host:port, [ipv6]:port or port)'],
    ['log level', `${BASE}logging: { level: loud }\n`, 'logging.level: must be one of fatal, error, warn, info, debug, trace, silent'],
    ['required field', edit('interface: eth0', 'label: x'), 'vips[0].interface: is required'],
    ['priority range', edit('priority: 150', 'priority: 0'), 'cluster.nodes[0].priority: Too small: expected number to be >=1'],
  ])('%s', (_name, text, expected) => {
    expect(problems(text)).toContain(expected);
  });

  it('reports every problem at once, each with file, path and line', () => {
    const text = edit('scheduler: wrr', 'scheduler: fair').replace('timeout_ms: 500', 'timeout_ms: 5000').replace('node: a', 'node: z');
    let err: ConfigError | undefined;
    try {
      parseConfig(text, '/etc/vigil/vigil.yaml', {});
    } catch (e) {
      err = e as ConfigError;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect(err?.problems).toHaveLength(3);
    const lines = err?.message.split('\n').slice(1) ?? [];
    expect(lines).toEqual([
      '/etc/vigil/vigil.yaml: node: "z" is not one of cluster.nodes (a, b) (line 2)',
      '/etc/vigil/vigil.yaml: services[0].scheduler: must be one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, mh, fo, ovf (line 17)',
      '/etc/vigil/vigil.yaml: services[0].check.timeout_ms: timeout_ms (5000) must be less than interval_ms (1000) so a probe never overlaps itself (line 18)',
    ]);
  });

  it('reports YAML syntax errors with their line', () => {
    expect(() => parseConfig('node: a\ncluster: [\n', 'bad.yaml', {})).toThrow(/bad\.yaml: \(top level\): YAML: .*\(line \d\)/);
  });

  it('rejects a key given twice instead of silently taking the last', () => {
    expect(() => parseConfig(`${BASE}node: b\n`, 'dup.yaml', {})).toThrow(/YAML: .*[Uu]nique/);
  });

  it('rejects a file that is not a mapping', () => {
    expect(() => parseConfig('- a\n- b\n', 'list.yaml', {})).toThrow(/must hold a mapping/);
  });
});

describe('netmask of the right family', () => {
  it('accepts a dotted mask for IPv4 and a prefix length for IPv6', () => {
    const v6 = `${edit('vips:\n', 'vips:\n  - { address: "2001:db8::1", prefix: 64, interface: eth0 }\n')}  - { name: v6, vip: "2001:db8::1", port: 80, persistence: { netmask: "64" } }\n`;
    expect(problems(edit('port: 80\n', 'port: 80\n    persistence: { netmask: 255.255.255.0 }\n'))).toEqual([]);
    expect(problems(v6)).toEqual([]);
  });
});

describe('netmask', () => {
  it.each([
    ['255.255.255.255', true],
    ['255.255.255.0', true],
    ['255.255.0.0', true],
    ['0.0.0.0', true],
    ['255.0.255.0', false],
    ['64', true],
    ['129', false],
    ['x', false],
  ])('%s → %s', (mask, ok) => {
    expect(isNetmask(mask)).toBe(ok);
  });
});
