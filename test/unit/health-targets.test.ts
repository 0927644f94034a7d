/** Which probes a config asks for, and how an exec probe is called (args styles, env). */
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { execArgs, execEnv, probeLabel, realServerKey, resolveCommand, targetsFromConfig } from '../../src/health/targets.js';

const cfg = (services: object[]) =>
  configSchema.parse({
    node: 'a',
    cluster: { nodes: [{ name: 'a', links: [{ name: 'l', address: '127.0.0.1' }] }] },
    vips: [{ address: '10.0.0.1', interface: 'lo' }],
    services,
  });

describe('targetsFromConfig', () => {
  const config = cfg([
    {
      name: 'web',
      vip: '10.0.0.1',
      port: 80,
      check: { type: 'http', path: '/health', interval_ms: 1000, timeout_ms: 500 },
      real_servers: [
        { address: '10.1.0.1' },
        { address: '10.1.0.2', check: { type: 'exec', command: 'tcp.monitor', args: ['-p', '80'], args_style: 'mon', interval_ms: 5000, timeout_ms: 3000 } },
      ],
    },
    { name: 'dns', vip: '10.0.0.1', port: 53, protocol: 'udp', forward: 'nat', real_servers: [{ address: '10.2.0.1', port: 5353, check: { type: 'exec', command: '/opt/dns-check', args: ['--name', 'x'], port: 53 } }] },
    { name: 'plain', vip: '10.0.0.1', port: 25, real_servers: [{ address: '10.3.0.1' }] },
  ]);
  const targets = targetsFromConfig(config);

  it('gives each real server its own check, else its service check; none without a check', () => {
    expect(targets.map((t) => [t.service, t.address, t.port, t.checkPort, t.probe])).toEqual([
      ['web', '10.1.0.1', 80, 80, 'http'],
      ['web', '10.1.0.2', 80, 80, 'exec:tcp.monitor'],
      ['dns', '10.2.0.1', 5353, 53, 'exec:dns-check'],
    ]);
  });

  it.each([
    // target index, args style, argv
    [1, 'mon', ['-p', '80', '10.1.0.2']],
    [2, 'vigil', ['--name', 'x', '10.2.0.1', '53']],
  ] as const)('target %i (%s style) gets %j', (i, _style, argv) => {
    expect(execArgs(targets[i] as (typeof targets)[number])).toEqual(argv);
  });

  it('passes none-style args unchanged and the VIGIL_* environment', () => {
    const t = targets[2] as (typeof targets)[number];
    if (t.check.type !== 'exec') throw new Error('exec expected');
    expect(execArgs({ ...t, check: { ...t.check, args_style: 'none' } })).toEqual(['--name', 'x']);
    expect(execEnv(t)).toEqual({
      VIGIL_SERVICE: 'dns',
      VIGIL_VIP: '10.0.0.1',
      VIGIL_PORT: '53',
      VIGIL_REAL_SERVER: '10.2.0.1',
      VIGIL_REAL_PORT: '53',
      VIGIL_TIMEOUT_MS: '1000',
    });
  });

  it('resolves names in checks_dir and keeps absolute paths', () => {
    expect(resolveCommand('http', '/usr/lib/vigil/checks')).toBe('/usr/lib/vigil/checks/http');
    expect(resolveCommand('/opt/x', '/usr/lib/vigil/checks')).toBe('/opt/x');
  });

  it('keys real servers the same whatever the IPv6 spelling, and labels probes', () => {
    expect(realServerKey('web', '2001:DB8:0:0::1', 80)).toBe(realServerKey('web', '2001:db8::1', 80));
    expect(realServerKey('web', '10.0.0.5', 80)).toBe('web 10.0.0.5:80');
    expect(probeLabel({ type: 'tcp', interval_ms: 1, timeout_ms: 1, rise: 1, fall: 1, initial: 'down' })).toBe('tcp');
  });

  it('changes a target id when its check definition changes (a reload starts it afresh)', () => {
    const again = targetsFromConfig(config).map((t) => t.id);
    expect(again).toEqual(targets.map((t) => t.id));
    const changed = cfg([{ name: 'web', vip: '10.0.0.1', port: 80, check: { type: 'http', path: '/other', interval_ms: 1000, timeout_ms: 500 }, real_servers: [{ address: '10.1.0.1' }] }]);
    expect(targetsFromConfig(changed)[0]?.id).not.toBe(targets[0]?.id);
  });
});
