/** cluster.mode ecmp in the config: defaults, and the rules that keep VIPs where ecmp needs them. */
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { clusterView, modeChangeProblem } from '../../src/ecmp/mode.js';

const BASE = (cluster: string, vips: string) => `
node: a
cluster:
  key_file: /etc/vigil/authkey
${cluster}
  nodes:
    - { name: a, links: [{ name: lan, address: 10.0.0.1 }] }
    - { name: b, links: [{ name: lan, address: 10.0.0.2 }] }
vips:
${vips}
`;

function problems(text: string): string[] {
  try {
    parseConfig(text, 'x.yaml', {});
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.path.join('.')}: ${p.message}`);
    throw err;
  }
}

describe('cluster.mode', () => {
  it('defaults to pair with ecmp defaults filled in', () => {
    const { config } = parseConfig(BASE('', '  - { address: 10.0.0.100, prefix: 24, interface: eth0 }'), 'x.yaml', {});
    expect(config.cluster.mode).toBe('pair');
    expect(config.cluster.ecmp).toEqual({
      bird_socket: '/run/bird/bird.ctl',
      birdc: 'birdc',
      include_file: '/var/lib/vigil/bird-vips.conf',
      protocol: 'vigil_vips',
      vip_interface: 'lo',
      withdraw_wait_ms: 1000,
      poll_interval_ms: 2000,
      birdc_timeout_ms: 5000,
    });
    expect(clusterView(config)).toBe(config);
  });

  it('accepts ecmp with VIPs on the VIP interface; the cluster runner sees no VIPs', () => {
    const { config } = parseConfig(BASE('  mode: ecmp\n  ecmp: { vip_interface: vip0, withdraw_wait_ms: 300 }', '  - { address: 10.9.0.100, interface: vip0 }'), 'x.yaml', {});
    expect(config.cluster.ecmp.vip_interface).toBe('vip0');
    expect(clusterView(config).vips).toEqual([]);
    expect(config.vips).toHaveLength(1);
  });

  it.each([
    ['mode: anycast', '  - { address: 10.9.0.100, interface: lo }', /cluster\.mode: must be one of pair, ecmp/],
    ['mode: ecmp', '  - { address: 10.9.0.100, interface: eth0 }', /vips\.0\.interface: is "eth0", but in cluster\.mode ecmp every VIP sits on cluster\.ecmp\.vip_interface \("lo"/],
    ['mode: ecmp', '  - { address: 10.9.0.100, prefix: 24, interface: lo }', /vips\.0\.prefix: is 24, but in cluster\.mode ecmp a VIP is announced as a host route: use 32/],
    ['mode: ecmp', '  - { address: "2001:db8::1", prefix: 64, interface: lo }', /vips\.0\.prefix: is 64, .* use 128/],
    ['mode: ecmp\n  ecmp: { include_file: vips.conf }', '  - { address: 10.9.0.100, interface: lo }', /cluster\.ecmp\.include_file: "vips\.conf" must be an absolute path/],
    ['mode: ecmp\n  ecmp: { withdraw_wait_ms: -1 }', '  - { address: 10.9.0.100, interface: lo }', /cluster\.ecmp\.withdraw_wait_ms: must be at least 0 ms/],
  ])('refuses %s with %s', (cluster, vips, re) => {
    expect(problems(BASE(`  ${cluster}`, vips)).join('\n')).toMatch(re);
  });

  it('a reload may not switch the mode', () => {
    const a = parseConfig(BASE('', '  - { address: 10.9.0.100, interface: lo }'), 'x.yaml', {}).config;
    const b = parseConfig(BASE('  mode: ecmp', '  - { address: 10.9.0.100, interface: lo }'), 'x.yaml', {}).config;
    expect(modeChangeProblem(a, a)).toBeUndefined();
    expect(modeChangeProblem(a, b)).toBe('reload cannot change cluster.mode (pair → ecmp); restart instead');
  });
});
