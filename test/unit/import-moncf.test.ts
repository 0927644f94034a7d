import { describe, expect, it } from 'vitest';
import { monitorToCheck } from '../../src/import/monchecks.js';
import { Ledger } from '../../src/import/ledger.js';
import { isLvsAlert, monMs, parseLvsAlertArgs, parseMonCf } from '../../src/import/moncf.js';

describe('mon durations', () => {
  it.each([
    ['10', 10_000],
    ['10s', 10_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    ['1.5m', 90_000],
  ])('%s → %i ms', (s, ms) => {
    expect(monMs(s)).toBe(ms);
  });
  it.each(['', 'soon', '5 weeks'])('%j is not a duration', (s) => {
    expect(monMs(s)).toBeUndefined();
  });
});

describe('parseMonCf', () => {
  const text = [
    '# global options',
    'mondir = /opt/mon/mon.d:/usr/lib/mon/mon-local.d',
    'maxprocs = 20',
    '',
    'hostgroup web 10.0.0.2 10.0.0.3',
    '    10.0.0.4',
    '',
    'hostgroup db db1 \\',
    '   db2',
    '',
    'watch web',
    '    service http',
    '        description web servers',
    '        interval 5s',
    '        monitor http.monitor -p 8080 -u /health',
    '        depend web:ping',
    '        period wd {Sun-Sat}',
    '            alert lvs.alert -P -t -V 10.0.0.1:80 -R 10.0.0.2 -W 5 -F nat',
    '            upalert lvs.alert -P -t -V 10.0.0.1:80 -R 10.0.0.2 -W 5 -F nat',
    '            alertafter 3',
    '            alertevery 1h',
    '        period LOG: wd {Mon-Fri} hr {7am-10pm}',
    '            alert file.alert -d /var/log log',
    '    service freespace',
    '        interval 15m',
    '        monitor freespace.monitor /a:5000 ;;',
    'watch 10.0.0.9',
    '    service ping',
    '        monitor fping.monitor',
  ].join('\n');

  it('reads globals, hostgroups (continued), watches, services, periods and alerts', () => {
    const ledger = new Ledger();
    const mon = parseMonCf(text, 'mon.cf', ledger);
    expect(mon.mondir).toBe('/opt/mon/mon.d');
    expect(mon.maxprocs?.value).toBe(20);
    expect(mon.hostgroups.get('web')?.hosts).toEqual(['10.0.0.2', '10.0.0.3', '10.0.0.4']);
    expect(mon.hostgroups.get('db')?.hosts).toEqual(['db1', 'db2']);
    expect(mon.watches.map((w) => [w.group, w.services.map((s) => s.name)])).toEqual([
      ['web', ['http', 'freespace']],
      ['10.0.0.9', ['ping']],
    ]);
    const http = mon.watches[0]?.services[0];
    expect(http?.interval?.ms).toBe(5000);
    expect(http?.description?.text).toBe('web servers');
    expect(http?.monitor).toMatchObject({ command: 'http.monitor', args: ['-p', '8080', '-u', '/health'], appendHosts: true });
    expect(http?.options.map((o) => o.text)).toEqual(['depend web:ping']);
    expect(http?.periods.map((p) => p.spec)).toEqual(['wd {Sun-Sat}', 'LOG: wd {Mon-Fri} hr {7am-10pm}']);
    expect(http?.periods[0]?.alerts.map((a) => a.kind)).toEqual(['alert', 'upalert']);
    expect(http?.periods[0]?.alertafter?.count).toBe(3);
    expect(http?.periods[0]?.options.map((o) => o.text)).toEqual(['alertevery 1h']);
    const free = mon.watches[0]?.services[1];
    expect(free?.monitor).toMatchObject({ command: 'freespace.monitor', args: ['/a:5000'], appendHosts: false });
  });

  it('reports lines outside any block', () => {
    const ledger = new Ledger();
    parseMonCf('    service orphan\n    interval 5m', 'mon.cf', ledger);
    const report = ledger.finish();
    expect(report.map((e) => e.line)).toEqual([1, 2]);
  });
});

describe('lvs.alert', () => {
  it.each(['lvs.alert', '/usr/lib/mon/alert.d/lvs.alert', 'ipvs.alert', 'lvs_alert'])('%s is an lvs alert', (c) => {
    expect(isLvsAlert(c)).toBe(true);
  });
  it.each(['mail.alert', 'file.alert', 'qpage.alert'])('%s is not', (c) => {
    expect(isLvsAlert(c)).toBe(false);
  });
  it.each([
    [['-P', '-t', '-V', '10.0.0.1:80', '-R', '10.0.0.2', '-W', '5', '-F', 'nat'], { protocol: 'tcp', virtual: '10.0.0.1:80', real: '10.0.0.2', weight: 5, forward: 'nat' }],
    [['-P', '-u', '-V', '10.0.0.1:53', '-R', '10.0.0.2:53', '-F', 'tun'], { protocol: 'udp', virtual: '10.0.0.1:53', real: '10.0.0.2:53', forward: 'tun' }],
    [['-V', '10.0.0.1:80', '-R', '10.0.0.2', '-F', 'dr'], { virtual: '10.0.0.1:80', real: '10.0.0.2', forward: 'dr' }],
    [['-F', 'masq'], { forward: 'nat' }],
    [['-F', 'ipip'], { forward: 'tun' }],
  ])('%j', (args, want) => {
    expect(parseLvsAlertArgs(args)).toEqual(want);
  });
});

describe('monitorToCheck', () => {
  it.each([
    ['tcp.monitor', ['-p', '443'], true, 10_000, { type: 'tcp', port: 443, interval_ms: 10_000 }],
    ['tcp.monitor', ['-p', '80', '-t', '3'], true, 5000, { type: 'tcp', port: 80, timeout_ms: 3000 }],
    ['http.monitor', [], true, 5000, { type: 'http', port: 80 }],
    ['http.monitor', ['-p', '8080', '-u', 'health', '-t', '2'], true, 5000, { type: 'http', port: 8080, path: '/health', timeout_ms: 2000 }],
    ['http.monitor', ['-o'], true, 5000, { type: 'exec', command: '/usr/lib/mon/mon.d/http.monitor', args: ['-o'], args_style: 'mon' }],
    ['fping.monitor', [], true, 300_000, { type: 'exec', command: '/usr/lib/mon/mon.d/fping.monitor', args_style: 'mon', timeout_ms: 10_000 }],
    ['smtp.monitor', ['-t', '60'], true, 600_000, { type: 'exec', timeout_ms: 60_000 }],
    ['/opt/x.monitor', ['-a'], false, 60_000, { type: 'exec', command: '/opt/x.monitor', args: ['-a'], args_style: 'none' }],
  ])('%s %j', (cmd, args, append, interval, want) => {
    const { check } = monitorToCheck(cmd, args, append, interval, '/usr/lib/mon/mon.d', 2);
    expect(check).toMatchObject({ ...want, rise: 1, fall: 2, initial: 'up' });
  });

  it('keeps the timeout below the interval and says so', () => {
    const r = monitorToCheck('tcp.monitor', ['-t', '10'], true, 5000, '/usr/lib/mon/mon.d', 1);
    expect(r.check.timeout_ms).toBe(4999);
    expect(r.note).toMatch(/not below the interval/);
  });

  it('uses 10 s without an interval and says so', () => {
    const r = monitorToCheck('tcp.monitor', [], true, undefined, '/usr/lib/mon/mon.d', 1);
    expect(r.check.interval_ms).toBe(10_000);
    expect(r.intervalNote).toMatch(/no interval/);
  });
});
