import { describe, expect, it } from 'vitest';
import { ConfigError, formatPath, parseConfig } from '../../src/config/load.js';

/** A valid ecmp config; each case below breaks one thing in it. */
const BASE = `
node: a
cluster:
  mode: ecmp
  key_file: /etc/vigil/authkey
  nodes:
    - { name: a, links: [{ name: hb, address: 10.0.0.1 }] }
    - { name: b, links: [{ name: hb, address: 10.0.0.2 }] }
vips:
  - { address: 192.168.1.100, prefix: 32, interface: lo }
services:
  - name: web
    vip: 192.168.1.100
    port: 80
    scheduler: mh
    scheduler_flags: [mh-port, mh-fallback]
    real_servers: [{ address: 192.168.1.10 }, { address: 192.168.1.11, weight: 2 }]
  - name: dns
    protocol: udp
    vip: 192.168.1.100
    port: 53
    scheduler: mh
    scheduler_flags: [mh-port]
    real_servers: [{ address: 192.168.1.10 }]
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
const edit = (from: string, to: string, text = BASE): string => {
  expect(text).toContain(from);
  return text.replace(from, to);
};

describe('config: cluster.mode and scheduler flags', () => {
  it('an ecmp config with mh + mh-port on every service is valid', () => {
    const { config } = parseConfig(BASE, 'x.yaml', {});
    expect(config.cluster.mode).toBe('ecmp');
    expect(config.services[0]?.scheduler_flags).toEqual(['mh-port', 'mh-fallback']);
  });

  it('the mode defaults to pair, where any scheduler goes, and flags default to none', () => {
    const text = edit('  mode: ecmp\n', '', BASE).replace('scheduler: mh\n    scheduler_flags: [mh-port]', 'scheduler: wlc');
    const { config } = parseConfig(text, 'x.yaml', {});
    expect(config.cluster.mode).toBe('pair');
    expect(config.services[1]?.scheduler).toBe('wlc');
    expect(config.services[1]?.scheduler_flags).toEqual([]);
  });

  it.each([
    [
      'ecmp refuses another scheduler',
      edit('scheduler: mh\n    scheduler_flags: [mh-port]', 'scheduler: wlc'),
      'services[1].scheduler: cluster.mode ecmp needs scheduler: mh with scheduler_flags: [mh-port] on every service (dns has scheduler wlc), so every director picks the same real server for a flow',
    ],
    [
      'ecmp refuses the default scheduler',
      edit('    scheduler: mh\n    scheduler_flags: [mh-port]\n', ''),
      'services[1].scheduler: cluster.mode ecmp needs scheduler: mh with scheduler_flags: [mh-port] on every service (dns has scheduler wlc), so every director picks the same real server for a flow',
    ],
    [
      'ecmp refuses mh without mh-port',
      edit('scheduler_flags: [mh-port, mh-fallback]', 'scheduler_flags: [mh-fallback]'),
      'services[0].scheduler_flags: cluster.mode ecmp needs scheduler: mh with scheduler_flags: [mh-port] on every service (web has scheduler mh with mh-fallback), so every director picks the same real server for a flow',
    ],
    ['flags need mh', edit('mode: ecmp', 'mode: pair').replace('scheduler: mh\n    scheduler_flags: [mh-port]', 'scheduler: sh\n    scheduler_flags: [mh-port]'), 'services[1].scheduler_flags: mh-port need scheduler mh (this service uses sh)'],
    ['unknown flag', edit('[mh-port, mh-fallback]', '[mh-port, sh-port]'), 'services[0].scheduler_flags[1]: must be one of mh-port, mh-fallback'],
    ['unknown mode', edit('mode: ecmp', 'mode: anycast'), 'cluster.mode: must be one of pair, ecmp'],
  ])('%s', (_name, text, expected) => {
    expect(problems(text)).toContain(expected);
  });
});
