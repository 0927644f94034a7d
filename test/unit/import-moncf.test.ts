import { describe, expect, it } from 'vitest';
import { monitorProbe, monitorToCheck } from '../../src/import/monchecks.js';
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

describe('monitorToCheck: the monitor’s own verdict, port and timeout (read from /usr/lib/mon/mon.d)', () => {
  const D = '/usr/lib/mon/mon.d';
  const mon = (command: string, args: string[], appendHosts = true) => ({ command, args, appendHosts });
  it.each([
    // tcp.monitor: connect only, port 23 and 10 s unless -p/-t
    ['tcp.monitor', ['-p', '443'], ['10.0.0.2'], 60_000, { type: 'tcp', port: 443, timeout_ms: 10_000 }],
    ['tcp.monitor', [], ['10.0.0.2'], 60_000, { type: 'tcp', port: 23, timeout_ms: 10_000 }],
    ['tcp.monitor', ['-p', '80', '-t', '3'], ['10.0.0.2'], 5000, { type: 'tcp', port: 80, timeout_ms: 3000 }],
    // http.monitor: GET, 200/301/302/401 are up, port 80, 30 s, Host: the name mon gives
    ['http.monitor', [], ['10.0.0.2'], 60_000, { type: 'http', port: 80, expect_status: [200, 301, 302, 401], timeout_ms: 30_000 }],
    ['http.monitor', ['-p', '8080', '-u', '/health', '-t', '2'], ['www1'], 5000, { type: 'http', port: 8080, path: '/health', host: 'www1', timeout_ms: 2000 }],
    ['http.monitor', ['-o'], ['10.0.0.2'], 60_000, { type: 'http', port: 80 }],
    // what the built-in probe cannot judge the same way runs unchanged
    ['http.monitor', ['-m', 'OK'], ['10.0.0.2'], 60_000, { type: 'exec', command: `${D}/http.monitor`, args: ['-m', 'OK'], args_style: 'mon', timeout_ms: 31_000 }],
    ['http.monitor', ['-a', 'probe'], ['web1'], 60_000, { type: 'exec', args: ['-a', 'probe', 'web1'], args_style: 'none' }],
    ['http.monitor', ['-u', 'x'], ['10.0.0.2'], 60_000, { type: 'exec', args: ['-u', 'x'] }],
    ['ftp.monitor', ['-t', '5'], ['10.0.0.2'], 60_000, { type: 'exec', command: `${D}/ftp.monitor`, args: ['-t', '5'], args_style: 'mon', timeout_ms: 6000 }],
    ['fping.monitor', [], ['10.0.0.2'], 300_000, { type: 'exec', command: `${D}/fping.monitor`, args_style: 'mon', timeout_ms: 299_999 }],
    ['smtp.monitor', ['-t', '60'], ['10.0.0.2'], 600_000, { type: 'exec', timeout_ms: 61_000 }],
    // several hosts (lvs.alert binding a group): the monitor runs on all of them, as mon ran it
    ['tcp.monitor', ['-p', '80'], ['10.0.0.2', '10.0.0.3'], 5000, { type: 'exec', args: ['-p', '80', '10.0.0.2', '10.0.0.3'], args_style: 'none' }],
  ])('%s %j on %j', (cmd, args, hosts, interval, want) => {
    const { check } = monitorToCheck(mon(cmd, args), hosts, interval, D, 2);
    expect(check).toMatchObject({ ...want, interval_ms: interval, rise: 1, fall: 2, initial: 'up' });
  });

  it(';; appends no hosts', () => {
    const { check } = monitorToCheck(mon('/opt/x.monitor', ['-a'], false), ['10.0.0.2'], 60_000, D, 1);
    expect(check).toMatchObject({ type: 'exec', command: '/opt/x.monitor', args: ['-a'], args_style: 'none' });
  });

  it('a monitor timeout at or above the interval is capped below it, and said', () => {
    const r = monitorToCheck(mon('http.monitor', []), ['10.0.0.2'], 5000, D, 1);
    expect(r.check.timeout_ms).toBe(4999);
    expect(r.notes.join('\n')).toMatch(/timeout 30 s \(its default\) is not below the interval 5 s/);
    const t = monitorToCheck(mon('tcp.monitor', ['-t', '10']), ['10.0.0.2'], 5000, D, 1);
    expect(t.notes.join('\n')).toMatch(/timeout 10 s \(-t\)/);
  });

  it('warns that smtp/pop3/imap.monitor die in Sys::Hostname on Debian 12', () => {
    for (const m of ['smtp.monitor', 'pop3.monitor', 'imap.monitor']) {
      expect(monitorToCheck(mon(m, []), ['10.0.0.2'], 60_000, D, 1).notes.join('\n')).toMatch(/Sys::Hostname/);
    }
    expect(monitorToCheck(mon('ftp.monitor', []), ['10.0.0.2'], 60_000, D, 1).notes.join('\n')).not.toMatch(/Sys::Hostname/);
  });

  it('-o is dropped with its own reason', () => {
    expect(monitorToCheck(mon('http.monitor', ['-o', '-t', '5']), ['10.0.0.2'], 10_000, D, 1).notes).toEqual([
      '-o is not carried over: only shortens the monitor’s output; no effect on the verdict',
    ]);
  });
});

describe('monitorProbe: what each monitor line probes', () => {
  it.each([
    ['tcp.monitor', ['-p', '9000'], true, { kind: 'port', protocol: 'tcp', port: 9000 }],
    ['tcp.monitor', [], true, { kind: 'port', protocol: 'tcp', port: 23 }],
    ['http.monitor', ['-t', '3'], true, { kind: 'port', protocol: 'tcp', port: 80 }],
    ['ftp.monitor', [], true, { kind: 'port', protocol: 'tcp', port: 21 }],
    ['smtp.monitor', ['-p', '2525'], true, { kind: 'port', protocol: 'tcp', port: 2525 }],
    ['dns.monitor', ['-caching_only', '-query', 'www.example.com'], true, { kind: 'port', protocol: 'udp', port: 53 }],
    ['dns.monitor', ['-tcp', '-caching_only', '-query', 'x'], true, { kind: 'port', protocol: 'tcp', port: 53 }],
    ['dns-query.monitor', ['-n', 'www'], true, { kind: 'port', protocol: 'udp', port: 53 }],
    ['/usr/lib/mon/mon.d/fping.monitor', [], true, { kind: 'host' }],
  ])('%s %j', (cmd, args, append, want) => {
    expect(monitorProbe(cmd, args, append)).toEqual(want);
  });
  it.each([
    ['my.monitor', [], true, /not a monitor whose target import knows/],
    ['tcp.monitor', ['-p', '80'], false, /given no hosts/],
    ['tcp.monitor', ['-x'], true, /-x is not an option of tcp.monitor/],
    ['tcp.monitor', ['-p', 'http'], true, /not a port number/],
  ])('%s %j cannot be told', (cmd, args, append, why) => {
    expect(monitorProbe(cmd, args, append)).toMatch(why);
  });
});

describe('mon’s record boundaries (a blank line ends a hostgroup or watch)', () => {
  it('lines after a blank line inside a watch are ignored by mon, so they are reported', () => {
    const ledger = new Ledger();
    const cf = parseMonCf('hostgroup g 10.0.0.1\n\nwatch g\n  service a\n    interval 5s\n    monitor tcp.monitor -p 80\n\n  service b\n    interval 5s\n', 'mon.cf', ledger);
    expect(cf.watches[0]?.services.map((s) => s.name)).toEqual(['a']);
    expect(ledger.entries.filter((e) => e.line === 8 || e.line === 9).map((e) => e.reason)).toEqual([
      expect.stringMatching(/mon ignores this line: a blank line ended/),
      expect.stringMatching(/mon ignores this line/),
    ]);
  });

  it('a watch with no blank line after its hostgroup is read by mon as hosts: an error', () => {
    const ledger = new Ledger();
    const cf = parseMonCf('hostgroup g 10.0.0.1\n# comments do not end a record\nwatch g\n  service a\n    interval 5s\n', 'mon.cf', ledger);
    expect(cf.watches).toEqual([]);
    expect(cf.hostgroups.size).toBe(0);
    expect(ledger.entries.find((e) => e.line === 3)).toMatchObject({ kind: 'error', reason: expect.stringMatching(/more hosts of hostgroup g/) });
    expect(ledger.entries.find((e) => e.line === 4)?.reason).toMatch(/more hosts of hostgroup g/);
  });
});
