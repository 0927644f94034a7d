/**
 * The differential proof for `vigil import --mon-cf`: Debian's real mon daemon and the
 * real vigil daemon (on the YAML vigil import wrote from the same mon.cf) watch the same
 * real servers, in network namespaces; a scripted schedule takes services down and up,
 * and after each step both must hold the same verdict for every host and service.
 *
 * Topology: a director namespace (mon, vigil, the import) with a veth to each of two
 * real-server namespaces (10.13.1.2 and 10.13.2.2, also named rs1.test and rs2.test in
 * the director's /etc/netns hosts file). Each real server runs
 * test/e2e/guest/mon-realserver.mjs: HTTP :80 (/ answers 200, 302 or 500 on command;
 * /redirect always 302), TCP :9000, an FTP-like banner :21, an SMTP-like banner :25, DNS
 * over UDP :53.
 *
 * mon's verdicts come from its alert scripts (the test's own lvs.alert and mail.alert in
 * the case's alertdir) that append `time group service failure|up -R summary` to a file:
 * an lvs.alert verdict is about its -R real server (what it took out of the table); a
 * mail.alert verdict is about the hosts in the summary line (the monitor's list of
 * failing hosts), the group's other hosts being up; an up alert puts all back up. vigil's
 * verdicts are its "real server up/down" log lines. Which vigil service and real server
 * a mon service should be compared with comes from the test's own table (protocol and
 * port each monitor really probes), never from the import: a check attached to the
 * wrong service shows up as a mismatch.
 *
 * Needs root and the Debian package mon; skips with the reason otherwise.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';

const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'dist', 'cli.js');
/** The importer under test (another build's dist/cli.js, to show what an older import got wrong). */
const IMPORT_CLI = process.env.VIGIL_DIFF_IMPORT_CLI ?? CLI;
const SERVER = join(ROOT, 'test/e2e/guest/mon-realserver.mjs');
const MON = '/usr/sbin/mon';
const MOND = '/usr/lib/mon/mon.d';

const isRoot = process.getuid?.() === 0;
const netDns = spawnSync('perl', ['-MNet::DNS', '-e', '1']).status === 0;
const missing = !isRoot
  ? 'needs root (network namespaces)'
  : !existsSync(MON) || !existsSync(`${MOND}/http.monitor`)
    ? 'needs the Debian package mon'
    : !netDns
      ? 'needs libnet-dns-perl (dns.monitor)'
      : !existsSync(CLI)
        ? 'needs npm run build (dist/cli.js)'
        : undefined;
if (missing) console.log(`import-mon-diff: skipped, ${missing}`);

const run = `${process.pid.toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
const D = `v13a${run}d`;
const R1 = `v13a${run}r1`;
const R2 = `v13a${run}r2`;
const RS1 = '10.13.1.2';
const RS2 = '10.13.2.2';
const ip = (...args: string[]): string => {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};

/** What a mon service really probes (from the monitor's source), for the comparison. */
interface Probe {
  group: string;
  service: string;
  hosts: string[];
  protocol: 'tcp' | 'udp';
  port: number;
  /** The slowest vigil's verdict may take after a change: fall × interval, plus the probe's own run. */
  boundMs: number;
  /**
   * Extra time mon may take: mon runs one monitor for the whole group, the hosts one after
   * another, and skips a run while the last one still runs (dns.monitor waits out its
   * retries on a closed port: up to ~9 s measured on a loaded machine).
   */
  monExtraMs?: number;
}

interface Case {
  name: string;
  vip: string;
  monCf: string;
  rules?: string;
  probes: Probe[];
  /** Lines of the import report that must be there (the watches it must not attach). */
  reported?: RegExp[];
}

const mail = ['        period', '            alert mail.alert root', '            upalert mail.alert root'];
const lvs = (proto: 't' | 'u', vip: string, port: number, rs: string, extra: string[] = []) => [
  '        period',
  `            alert lvs.alert -P -${proto} -V ${vip}:${port} -R ${rs} -W 1 -F dr`,
  `            upalert lvs.alert -P -${proto} -V ${vip}:${port} -R ${rs} -W 1 -F dr`,
  ...extra,
];
const rules = (vip: string, services: [string, number][]): string =>
  services.flatMap(([p, port]) => [`-A ${p} ${vip}:${port} -s wlc`, `-a ${p} ${vip}:${port} -r ${RS1}:${port} -g -w 1`, `-a ${p} ${vip}:${port} -r ${RS2}:${port} -g -w 1`]).join('\n');
/**
 * dns.monitor has no timeout of its own, so vigil stops it just below the interval (the
 * import reports that); 5 s leaves a Perl + Net::DNS start room on a busy machine.
 */
const DNS = 'dns.monitor -caching_only -query www.example.com -retry 1 -retransmit 1';

const CASES: Case[] = [
  {
    // the issue's case: one host group, several watches, each on its own port; the web
    // service per real server with lvs.alert, the others with mail alerts only
    name: 'several-watches',
    vip: '10.13.0.11',
    rules: rules('10.13.0.11', [['-t', 80], ['-t', 21], ['-u', 53], ['-t', 9000]]),
    monCf: [
      `hostgroup rs1 ${RS1}`,
      '',
      `hostgroup rs2 ${RS2}`,
      '',
      `hostgroup rs ${RS1} ${RS2}`,
      '',
      'watch rs1',
      '    service web',
      '        interval 2s',
      '        monitor http.monitor -t 1',
      ...lvs('t', '10.13.0.11', 80, RS1),
      '',
      'watch rs2',
      '    service web',
      '        interval 2s',
      '        monitor http.monitor -t 1',
      ...lvs('t', '10.13.0.11', 80, RS2),
      '',
      'watch rs',
      '    service ftp',
      '        interval 3s',
      '        monitor ftp.monitor',
      ...mail,
      '    service dns',
      '        interval 5s',
      `        monitor ${DNS}`,
      ...mail,
      '    service app',
      '        interval 2s',
      '        monitor tcp.monitor -p 9000 -t 1',
      ...mail,
    ].join('\n'),
    probes: [
      { group: 'rs1', service: 'web', hosts: [RS1], protocol: 'tcp', port: 80, boundMs: 2000 },
      { group: 'rs2', service: 'web', hosts: [RS2], protocol: 'tcp', port: 80, boundMs: 2000 },
      { group: 'rs', service: 'ftp', hosts: [RS1, RS2], protocol: 'tcp', port: 21, boundMs: 3000 },
      { group: 'rs', service: 'dns', hosts: [RS1, RS2], protocol: 'udp', port: 53, boundMs: 5000 + 3000, monExtraMs: 6000 },
      { group: 'rs', service: 'app', hosts: [RS1, RS2], protocol: 'tcp', port: 9000, boundMs: 2000 },
    ],
  },
  {
    // lvs.alert alone creates the services; alertafter 2 is fall 2; a redirect is up
    name: 'lvs-alert-only',
    vip: '10.13.0.12',
    monCf: [
      `hostgroup web1 ${RS1}`,
      '',
      `hostgroup web2 ${RS2}`,
      '',
      'watch web1',
      '    service http',
      '        interval 2s',
      '        monitor http.monitor -t 1',
      ...lvs('t', '10.13.0.12', 80, RS1, ['            alertafter 2']),
      '    service app',
      '        interval 3s',
      '        monitor tcp.monitor -p 9000',
      ...lvs('t', '10.13.0.12', 9000, RS1),
      '',
      'watch web2',
      '    service http',
      '        interval 3s',
      '        monitor http.monitor -u /redirect -t 2',
      ...lvs('t', '10.13.0.12', 80, RS2),
      '    service app',
      '        interval 2s',
      '        monitor tcp.monitor -p 9000 -t 1',
      ...lvs('t', '10.13.0.12', 9000, RS2),
    ].join('\n'),
    probes: [
      { group: 'web1', service: 'http', hosts: [RS1], protocol: 'tcp', port: 80, boundMs: 2 * 2000 },
      { group: 'web1', service: 'app', hosts: [RS1], protocol: 'tcp', port: 9000, boundMs: 3000 },
      { group: 'web2', service: 'http', hosts: [RS2], protocol: 'tcp', port: 80, boundMs: 3000 },
      { group: 'web2', service: 'app', hosts: [RS2], protocol: 'tcp', port: 9000, boundMs: 2000 },
    ],
  },
  {
    // host names (http.monitor sends Host: the name), smtp.monitor unchanged (it dies in
    // Sys::Hostname on Debian 12: both sides hold it down), http.monitor without -t
    name: 'names-and-smtp',
    vip: '10.13.0.13',
    rules: rules('10.13.0.13', [['-t', 25], ['-t', 80]]),
    monCf: [
      'hostgroup mail rs1.test rs2.test',
      '',
      'watch mail',
      '    service smtp',
      '        interval 2s',
      '        monitor smtp.monitor -t 1',
      ...mail,
      '    service web',
      '        interval 2s',
      '        monitor http.monitor',
      ...mail,
    ].join('\n'),
    probes: [
      { group: 'mail', service: 'smtp', hosts: ['rs1.test', 'rs2.test'], protocol: 'tcp', port: 25, boundMs: 2000 },
      { group: 'mail', service: 'web', hosts: ['rs1.test', 'rs2.test'], protocol: 'tcp', port: 80, boundMs: 2000 },
    ],
    reported: [/monitor smtp\.monitor -t 1 — .*warning: on Debian 12 smtp\.monitor dies in Sys::Hostname/],
  },
  {
    // banner services with lvs.alert; tcp.monitor without -p probes port 23, which no
    // service has: reported, not attached
    name: 'banners',
    vip: '10.13.0.14',
    rules: rules('10.13.0.14', [['-t', 25], ['-t', 21]]),
    monCf: [
      `hostgroup rs1 ${RS1}`,
      '',
      `hostgroup rs2 ${RS2}`,
      '',
      'watch rs1',
      '    service mailport',
      '        interval 2s',
      '        monitor tcp.monitor -p 25 -t 1',
      ...lvs('t', '10.13.0.14', 25, RS1),
      '    service ftp',
      '        interval 4s',
      '        monitor ftp.monitor -t 2',
      ...lvs('t', '10.13.0.14', 21, RS1, ['            alertafter 2']),
      '    service telnet',
      '        interval 4s',
      '        monitor tcp.monitor',
      ...mail,
      '',
      'watch rs2',
      '    service ftp',
      '        interval 2s',
      '        monitor ftp.monitor -t 1',
      ...lvs('t', '10.13.0.14', 21, RS2),
    ].join('\n'),
    probes: [
      { group: 'rs1', service: 'mailport', hosts: [RS1], protocol: 'tcp', port: 25, boundMs: 2000 },
      { group: 'rs1', service: 'ftp', hosts: [RS1], protocol: 'tcp', port: 21, boundMs: 2 * 4000 },
      { group: 'rs2', service: 'ftp', hosts: [RS2], protocol: 'tcp', port: 21, boundMs: 2000 },
    ],
    reported: [/monitor tcp\.monitor — the monitor probes tcp port 23 on 10\.13\.1\.2, where no imported virtual service has a real server/],
  },
  {
    // DNS over UDP bound by lvs.alert -P -u, and a web watch on the same host
    name: 'udp-dns',
    vip: '10.13.0.15',
    monCf: [
      `hostgroup dns1 ${RS1}`,
      '',
      `hostgroup dns2 ${RS2}`,
      '',
      'watch dns1',
      '    service dns',
      '        interval 5s',
      `        monitor ${DNS}`,
      ...lvs('u', '10.13.0.15', 53, RS1),
      '    service web',
      '        interval 4s',
      '        monitor http.monitor -t 2',
      ...lvs('t', '10.13.0.15', 80, RS1),
      '',
      'watch dns2',
      '    service dns',
      '        interval 5s',
      `        monitor ${DNS}`,
      ...lvs('u', '10.13.0.15', 53, RS2),
    ].join('\n'),
    probes: [
      { group: 'dns1', service: 'dns', hosts: [RS1], protocol: 'udp', port: 53, boundMs: 5000 + 3000, monExtraMs: 4000 },
      { group: 'dns1', service: 'web', hosts: [RS1], protocol: 'tcp', port: 80, boundMs: 4000 },
      { group: 'dns2', service: 'dns', hosts: [RS2], protocol: 'udp', port: 53, boundMs: 5000 + 3000, monExtraMs: 4000 },
    ],
  },
];

/** The schedule: commands to each real server, then a comparison once both sides settle. */
const SCHEDULE: { label: string; rs1?: string[]; rs2?: string[] }[] = [
  { label: 'all up' },
  { label: 'rs1 / redirects (302), rs2 :9000 down', rs1: ['http 302'], rs2: ['tcp down'] },
  { label: 'rs1 / answers 500, rs2 :9000 up, rs2 ftp down', rs1: ['http 500'], rs2: ['tcp up', 'ftp down'] },
  { label: 'rs1 http closed, rs2 dns down, rs2 ftp up', rs1: ['http down'], rs2: ['dns down', 'ftp up'] },
  { label: 'rs1 http 200 again, rs1 smtp and :9000 down, rs2 dns up', rs1: ['http up', 'http 200', 'smtp down', 'tcp down'], rs2: ['dns up'] },
  { label: 'rs1 dns and ftp down, rs2 http closed', rs1: ['smtp up', 'tcp up', 'dns down', 'ftp down'], rs2: ['http down'] },
  { label: 'all up again', rs1: ['dns up', 'ftp up'], rs2: ['http up'] },
];
/** mon's 1 s scheduler tick, a Perl monitor's start on a loaded machine, the alert's fork. */
const MARGIN_MS = 5000;
/** More time for a disagreement to resolve before it counts (mon's monitors are Perl processes on a busy machine). */
const LATE_MS = 10_000;

type State = 'up' | 'down';
interface Side {
  /** `case|group|service|host` → state and when it last changed. */
  state: Map<string, { state: State; at: number }>;
}

describe.skipIf(missing !== undefined)('vigil import --mon-cf: real mon and vigil agree on every verdict', () => {
  const work = mkdtempSync(join(tmpdir(), 'v13a-mondiff-'));
  const children: ChildProcess[] = [];
  const servers = new Map<string, ChildProcess>();
  const vigilLogs = new Map<string, string>();
  const imported = new Map<string, { yaml: Record<string, any>; report: string }>();

  beforeAll(async () => {
    const setupStarted = Date.now();
    ip('netns', 'add', D);
    ip('netns', 'add', R1);
    ip('netns', 'add', R2);
    for (const [ns, n, sub] of [[R1, 1, '10.13.1'], [R2, 2, '10.13.2']] as const) {
      ip('link', 'add', `v13a${run}a${n}`.slice(0, 15), 'netns', D, 'type', 'veth', 'peer', 'name', `v13a${run}b${n}`.slice(0, 15), 'netns', ns);
      ip('-n', D, 'addr', 'add', `${sub}.1/24`, 'dev', `v13a${run}a${n}`.slice(0, 15));
      ip('-n', ns, 'addr', 'add', `${sub}.2/24`, 'dev', `v13a${run}b${n}`.slice(0, 15));
      ip('-n', D, 'link', 'set', `v13a${run}a${n}`.slice(0, 15), 'up');
      ip('-n', ns, 'link', 'set', `v13a${run}b${n}`.slice(0, 15), 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    ip('-n', D, 'link', 'set', 'lo', 'up');
    for (const c of CASES) ip('-n', D, 'addr', 'add', `${c.vip}/32`, 'dev', 'lo');
    // host names for the director only (ip netns exec bind-mounts /etc/netns/NS/hosts)
    mkdirSync(`/etc/netns/${D}`, { recursive: true });
    writeFileSync(`/etc/netns/${D}/hosts`, `127.0.0.1 localhost\n${RS1} rs1.test\n${RS2} rs2.test\n`);

    for (const [name, ns] of [['rs1', R1], ['rs2', R2]] as const) {
      const child = spawn('ip', ['netns', 'exec', ns, process.execPath, SERVER], { stdio: ['pipe', 'pipe', 'inherit'] });
      children.push(child);
      servers.set(name, child);
      await new Promise<void>((res, rej) => {
        const t = setTimeout(() => rej(new Error(`${name}: the real server did not start`)), 60_000);
        child.stdout?.on('data', (b: Buffer) => {
          if (b.toString().includes('ready')) {
            clearTimeout(t);
            res();
          }
        });
      });
    }

    let port = 30_000 + Math.floor(Math.random() * 5000) * 4;
    for (const c of CASES) {
      const dir = join(work, c.name);
      mkdirSync(join(dir, 'alert.d'), { recursive: true });
      mkdirSync(join(dir, 'state'), { recursive: true });
      const verdicts = join(dir, 'verdicts');
      const alert = `#!/bin/sh\n# mon alert for the test: append "time group service failure|up -R summary"\nr=-\nwhile [ $# -gt 0 ]; do [ "$1" = -R ] && r="$2"; shift; done\nread -r summary\necho "$(date +%s.%N) $MON_GROUP $MON_SERVICE $MON_ALERTTYPE $r $summary" >> ${verdicts}\n`;
      for (const a of ['mail.alert', 'lvs.alert']) writeFileSync(join(dir, 'alert.d', a), alert, { mode: 0o755 });
      const globals = [
        `alertdir = ${join(dir, 'alert.d')}`,
        `mondir = ${MOND}`,
        `statedir = ${join(dir, 'state')}`,
        `logdir = ${join(dir, 'state')}`,
        `pidfile = ${join(dir, 'mon.pid')}`,
        'serverbind = 127.0.0.1',
        `serverport = ${port}`,
        'trapbind = 127.0.0.1',
        `trapport = ${port + 1}`,
        '',
      ];
      const cfText = `${globals.join('\n')}${c.monCf}\n`;
      writeFileSync(join(dir, 'mon.cf'), cfText);
      const args = ['import', '--mon-cf', join(dir, 'mon.cf'), '-o', join(dir, 'vigil.yaml'), '--report', join(dir, 'report')];
      if (c.rules !== undefined) {
        writeFileSync(join(dir, 'rules'), `${c.rules}\n`);
        args.push('--ipvsadm-save', join(dir, 'rules'));
      }
      const r = spawnSync('ip', ['netns', 'exec', D, process.execPath, IMPORT_CLI, ...args], { encoding: 'utf8' });
      const report = existsSync(join(dir, 'report')) ? readFileSync(join(dir, 'report'), 'utf8') : r.stderr;
      if (r.status !== 0) throw new Error(`${c.name}: vigil import exited ${r.status}:\n${report}${r.stderr}`);
      const yaml = parseYaml(readFileSync(join(dir, 'vigil.yaml'), 'utf8')) as Record<string, any>;
      imported.set(c.name, { yaml: structuredClone(yaml), report });
      // deployment settings that are not in mon.cf: ports of their own per case, the forwarder
      yaml.cluster.port = port + 2;
      yaml.api = { listen: `127.0.0.1:${port + 3}` };
      yaml.dataplane = { mode: 'forwarder', forwarder: { workers: 1 } };
      writeFileSync(join(dir, 'run.yaml'), stringifyYaml(yaml));
      port += 4;

      const mon = spawn('ip', ['netns', 'exec', D, MON, '-c', join(dir, 'mon.cf')], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
      children.push(mon);
      const vigil = spawn('ip', ['netns', 'exec', D, process.execPath, CLI, 'run', '--config', join(dir, 'run.yaml')], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      children.push(vigil);
      vigilLogs.set(c.name, '');
      const onData = (b: Buffer): void => void vigilLogs.set(c.name, `${vigilLogs.get(c.name) ?? ''}${b.toString()}`);
      vigil.stdout?.on('data', onData);
      vigil.stderr?.on('data', onData);
    }
    console.log(`import-mon-diff: namespaces, real servers, imports, mon and vigil started in ${((Date.now() - setupStarted) / 1000).toFixed(1)} s`);
    const t0 = Date.now();
    while (!CASES.every((c) => /vigil started/.test(vigilLogs.get(c.name) ?? ''))) {
      if (Date.now() - t0 > 90_000) throw new Error(`vigil did not start:\n${[...vigilLogs].map(([k, v]) => `${k}: ${v.slice(-2000)}`).join('\n')}`);
      await sleep(200);
    }
  }, 300_000);

  afterAll(async () => {
    for (const c of children) {
      try {
        if (c.pid !== undefined && c.exitCode === null) process.kill(-c.pid, 'SIGTERM');
      } catch {
        try {
          c.kill('SIGTERM');
        } catch {
          // gone
        }
      }
    }
    await sleep(500);
    for (const c of children) {
      try {
        if (c.pid !== undefined && c.exitCode === null) process.kill(-c.pid, 'SIGKILL');
      } catch {
        c.kill('SIGKILL');
      }
    }
    for (const ns of [D, R1, R2]) {
      // anything left in the namespace (a monitor mon forked) goes with it
      const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
      for (const p of pids) {
        try {
          process.kill(Number(p), 'SIGKILL');
        } catch {
          // gone
        }
      }
      spawnSync('ip', ['netns', 'del', ns]);
    }
    rmSync(`/etc/netns/${D}`, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  /** mon's verdicts so far, per case|group|service|host. */
  function monSide(): Side {
    const state = new Map<string, { state: State; at: number }>();
    const set = (k: string, s: State, at: number): void => {
      if (state.get(k)?.state !== s) state.set(k, { state: s, at });
    };
    for (const c of CASES) {
      const f = join(work, c.name, 'verdicts');
      if (!existsSync(f)) continue;
      for (const line of readFileSync(f, 'utf8').split('\n').filter(Boolean)) {
        const [t, group, service, type, r, ...summary] = line.split(' ');
        const at = Number(t) * 1000;
        const p = c.probes.find((x) => x.group === group && x.service === service);
        if (!p) continue;
        const s: State = type === 'up' ? 'up' : 'down';
        if (r !== '-') {
          set(`${c.name}|${group}|${service}|${r}`, s, at);
          continue;
        }
        for (const h of p.hosts) {
          const failing = summary.some((w) => w === h || w.endsWith(`@${h}`));
          set(`${c.name}|${group}|${service}|${h}`, s === 'up' ? 'up' : failing ? 'down' : 'up', at);
        }
      }
    }
    return { state };
  }

  /** vigil's verdicts so far, mapped to the mon service that probes that service and real server. */
  function vigilSide(): Side {
    const state = new Map<string, { state: State; at: number }>();
    for (const c of CASES) {
      const cfg = imported.get(c.name)?.yaml;
      for (const line of (vigilLogs.get(c.name) ?? '').split('\n')) {
        if (!line.includes('"real server ')) continue;
        const ev = JSON.parse(line) as { msg: string; service: string; realServer: string; time: string };
        const svc = (cfg?.services ?? []).find((s: any) => s.name === ev.service);
        if (!svc) continue;
        const addr = ev.realServer.replace(/:\d+$/, '');
        for (const p of c.probes) {
          if ((svc.protocol ?? 'tcp') !== p.protocol || svc.port !== p.port) continue;
          for (const h of p.hosts) {
            if (hostAddress(h) !== addr) continue;
            state.set(`${c.name}|${p.group}|${p.service}|${h}`, { state: ev.msg === 'real server up' ? 'up' : 'down', at: Date.parse(ev.time) });
          }
        }
      }
    }
    return { state };
  }

  it('after each step of the schedule, mon and vigil hold the same verdict for every host and service', async () => {
    // the import attached every compared mon service to the service it probes, and
    // reported what the case says it must (asserted after the schedule, which runs anyway
    // so a wrong import shows as verdict mismatches too)
    const importProblems: string[] = [];
    for (const c of CASES) {
      const { yaml, report } = imported.get(c.name) as { yaml: Record<string, any>; report: string };
      if (/: error: /.test(report)) importProblems.push(`${c.name}: error lines in the report`);
      for (const p of c.probes) {
        const svc = (yaml.services ?? []).find((s: any) => (s.protocol ?? 'tcp') === p.protocol && s.port === p.port);
        if (!svc) importProblems.push(`${c.name}: no ${p.protocol} :${p.port} service`);
        for (const h of p.hosts) {
          const rs = svc?.real_servers.find((r: any) => r.address === hostAddress(h));
          if ((rs?.check ?? svc?.check) === undefined) importProblems.push(`${c.name} ${p.group}/${p.service} ${h}: no check`);
        }
      }
      for (const re of c.reported ?? []) if (!re.test(report)) importProblems.push(`${c.name}: the report lacks ${re.source}`);
    }

    const keys = CASES.flatMap((c) => c.probes.flatMap((p) => p.hosts.map((h) => `${c.name}|${p.group}|${p.service}|${h}`)));
    const settleMs = Math.max(...CASES.flatMap((c) => c.probes.map((p) => p.boundMs + (p.monExtraMs ?? 0)))) + MARGIN_MS;
    const mismatches: string[] = [];
    const late: string[] = [];
    const boundOf = new Map<string, number>(CASES.flatMap((c) => c.probes.flatMap((p) => p.hosts.map((h) => [`${c.name}|${p.group}|${p.service}|${h}`, p.boundMs] as const))));
    const rows: string[] = [];
    let changes = 0;
    let previous = new Map<string, State>(keys.map((k) => [k, 'up']));
    for (const step of SCHEDULE) {
      const started = Date.now();
      await command('rs1', step.rs1 ?? []);
      await command('rs2', step.rs2 ?? []);
      // compare once both sides had their time; on a loaded machine give mon's Perl
      // monitors up to LATE_MS more before a disagreement counts
      await sleep(settleMs - (Date.now() - started));
      let mon = monSide();
      let vig = vigilSide();
      const agree = (): boolean => keys.every((k) => (mon.state.get(k)?.state ?? 'up') === (vig.state.get(k)?.state ?? 'up'));
      while (!agree() && Date.now() - started < settleMs + LATE_MS) {
        await sleep(500);
        mon = monSide();
        vig = vigilSide();
      }
      rows.push(`-- ${step.label}: compared after ${((Date.now() - started) / 1000).toFixed(1)} s`);
      for (const k of keys) {
        const m = mon.state.get(k) ?? { state: 'up' as State, at: 0 };
        const v = vig.state.get(k) ?? { state: 'up' as State, at: 0 };
        if (m.state !== previous.get(k)) changes++;
        const lag = (x: { at: number }): string => (x.at >= started ? `${((x.at - started) / 1000).toFixed(1)}s` : '-');
        rows.push(`${step.label.padEnd(58)} ${k.padEnd(44)} mon ${m.state.padEnd(4)} (${lag(m)})  vigil ${v.state.padEnd(4)} (${lag(v)})${m.state === v.state ? '' : '  MISMATCH'}`);
        if (m.state !== v.state) mismatches.push(`${step.label}: ${k}: mon ${m.state}, vigil ${v.state}`);
        // vigil's verdict came within fall × interval (+ margin) of the change
        const bound = (boundOf.get(k) ?? 0) + MARGIN_MS;
        if (v.at >= started && v.at - started > bound) late.push(`${step.label}: ${k}: vigil took ${v.at - started} ms (bound ${bound} ms)`);
      }
      previous = new Map(keys.map((k) => [k, mon.state.get(k)?.state ?? 'up']));
    }
    console.log(`import-mon-diff: ${CASES.length} mon.cf files, ${keys.length} host×service verdicts, ${SCHEDULE.length} steps, settle ${settleMs} ms\n${rows.join('\n')}\nmon verdict changes: ${changes}; mismatches: ${mismatches.length}; late vigil verdicts: ${late.length}`);
    // the schedule really moved mon's verdicts (a comparison of two frozen sides proves nothing)
    expect(importProblems).toEqual([]);
    expect(changes).toBeGreaterThanOrEqual(12);
    expect(mismatches).toEqual([]);
    expect(late).toEqual([]);
  }, 400_000);

  async function command(name: string, cmds: string[]): Promise<void> {
    const child = servers.get(name) as ChildProcess;
    for (const c of cmds) {
      await new Promise<void>((res, rej) => {
        const t = setTimeout(() => rej(new Error(`${name}: no answer to ${c}`)), 5000);
        const on = (b: Buffer): void => {
          if (b.toString().includes(`ok ${c}`)) {
            clearTimeout(t);
            child.stdout?.off('data', on);
            res();
          }
        };
        child.stdout?.on('data', on);
        child.stdin?.write(`${c}\n`);
      });
    }
  }
});

function hostAddress(h: string): string {
  return h === 'rs1.test' ? RS1 : h === 'rs2.test' ? RS2 : h;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
