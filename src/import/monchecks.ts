/**
 * mon watches → checks on real servers. A monitor's check is attached only to the
 * service it probes: the real servers at the watched hosts whose protocol and port are
 * the ones the monitor connects to (monitors.ts says which, from each monitor's source),
 * or exactly the service and real server an lvs.alert line names. A watch that probes a
 * port no service has is reported; a monitor whose target cannot be told (a custom
 * script, `;;`) is an error unless lvs.alert binds it. The check keeps the monitor's
 * verdict: a built-in probe only where it judges exactly as the monitor does, else the
 * monitor itself as an exec check. mon's own alerts are reported; vigil runs one check
 * per real server, the best kept.
 */
import { isIP } from 'node:net';
import { posix } from 'node:path';
import { splitHostPort } from './ipvsadm.js';
import type { Ledger, SourceLine } from './ledger.js';
import { isLvsAlert, parseLvsAlertArgs, type MonCf, type MonService } from './moncf.js';
import { monitorSpec, monitorTimeoutS, parseMonitorArgs, type MonitorProbe } from './monitors.js';
import { addReal, keyOf, resolveService, type Check, type RealServer, type Service, type ServiceState } from './model.js';
import type { Resolver } from './resolve.js';

const DEFAULT_MONDIR = '/usr/lib/mon/mon.d';

export const MON_GLOBALS: Record<string, string> = {
  alertdir: 'vigil runs no mon alerts (real-server state reaches IPVS through the reconciler; alert on vigil_real_server_healthy)',
  logdir: 'vigil logs on stdout',
  statedir: 'vigil keeps no state files',
  historicfile: 'vigil logs every health transition; metrics keep the history',
  histlength: 'vigil logs every health transition; metrics keep the history',
  authfile: 'vigil’s control API uses a bearer token (api.token_file)',
  authtype: 'vigil’s control API uses a bearer token (api.token_file)',
  randstart: 'vigil spreads every probe over its interval by itself',
  dtlogging: 'vigil logs every health transition',
  dtlogfile: 'vigil logs every health transition',
  serverbind: 'vigil’s API address is api.listen',
  serverport: 'vigil’s API address is api.listen',
  trapbind: 'vigil does not receive mon traps',
  trapport: 'vigil does not receive mon traps',
  clientallow: 'vigil’s API address is api.listen, with a bearer token',
  cfbasedir: 'vigil finds checks in health.checks_dir; imported monitors keep their absolute path',
  pidfile: 'the service manager tracks vigil',
  snmp: 'vigil exports Prometheus metrics instead of SNMP',
  dep_recur_limit: 'vigil checks have no dependencies',
  dep_behavior: 'vigil checks have no dependencies',
  syslog_facility: 'vigil logs on stdout',
  startupalerts_on_reset: 'vigil runs no mon alerts',
  monerrfile: 'vigil logs on stdout',
};

export const MON_SERVICE_OPTIONS: Record<string, string> = {
  depend: 'vigil checks have no dependencies: each real server is judged on its own check',
  dep: 'vigil checks have no dependencies: each real server is judged on its own check',
  hostdepend: 'vigil checks have no dependencies',
  dep_behavior: 'vigil checks have no dependencies',
  dep_memory: 'vigil checks have no dependencies',
  allow_empty_group: 'not needed: vigil checks real servers, not host groups',
  traptimeout: 'vigil does not receive mon traps',
  trapduration: 'vigil does not receive mon traps',
  randskew: 'vigil spreads every probe over its interval by itself',
  exclude_hosts: 'vigil has no per-host check exclusions; set the real server weight to 0 or drain it',
  exclude_period: 'vigil checks at all times',
  failure_interval: 'vigil checks at one interval; use fall to debounce',
  redistribute: 'vigil runs no mon alerts',
  unack_summary: 'vigil runs no mon alerts',
  monitor_timeout: 'give the monitor its own timeout option; vigil’s timeout_ms is below the interval',
};


export async function monChecks(
  mon: MonCf,
  states: ServiceState[],
  byKey: Map<string, ServiceState>,
  resolver: Resolver,
  ledger: Ledger,
  settle: (() => void)[],
): Promise<void> {
  const usedGroups = new Set<string>();
  for (const w of mon.watches) {
    const group = mon.hostgroups.get(w.group);
    const names = group ? group.hosts : [w.group];
    // the watched hosts as mon names them (what it appends to the monitor) and their addresses
    const hosts: WatchedHost[] = [];
    const anyLvs = w.services.some((s) => s.periods.some((p) => p.alerts.some((a) => isLvsAlert(a.command))));
    if (states.length > 0 || anyLvs) {
      for (const name of names) {
        const address = await resolver.host(name);
        if (address !== undefined) {
          hosts.push({ name, address });
          continue;
        }
        const line = group?.src.find((l) => l.text.split(/\s+/).includes(name)) ?? w.src;
        ledger.error(line, `cannot resolve host "${name}": mon’s monitors would report it failing; vigil cannot tell which real server it is`);
      }
    }
    let anyTranslated = false;
    for (const svc of w.services) {
      const done = await monService(mon, svc, names, hosts, states, byKey, resolver, ledger, settle);
      anyTranslated ||= done;
    }
    if (anyTranslated) {
      ledger.ok(w.src);
      usedGroups.add(w.group);
    } else {
      ledger.skip(w.src, w.services.length === 0 ? 'a watch without services' : `no service of this watch is translated (see below)`);
    }
  }
  for (const [name, g] of mon.hostgroups) {
    for (const src of g.src) {
      if (ledger.isDone(src)) continue;
      if (usedGroups.has(name)) ledger.ok(src);
      else ledger.skip(src, `hostgroup ${name} is not watched by a translated service`);
    }
  }
}

interface WatchedHost {
  /** As written in mon.cf: mon appends this to the monitor's arguments. */
  name: string;
  address: string;
}

/** What a monitor line probes: a port, the host, or a reason it cannot be told. */
export function monitorProbe(command: string, args: string[], appendHosts: boolean): MonitorProbe | string {
  const base = posix.basename(command);
  if (!appendHosts) return `${base} is given no hosts (;;), so its target is in its own arguments`;
  const spec = monitorSpec(base);
  if (!spec) return `${base} is not a monitor whose target import knows`;
  const parsed = parseMonitorArgs(spec, args);
  if (typeof parsed === 'string') return parsed;
  return spec.probe(parsed);
}

const describeProbe = (p: MonitorProbe): string => (p.kind === 'host' ? 'the host (ICMP)' : `${p.protocol} port ${p.port}`);

async function monService(
  mon: MonCf,
  svc: MonService,
  names: string[],
  hosts: WatchedHost[],
  states: ServiceState[],
  byKey: Map<string, ServiceState>,
  resolver: Resolver,
  ledger: Ledger,
  settle: (() => void)[],
): Promise<boolean> {
  const allLines = (): SourceLine[] => [
    svc.src,
    ...(svc.interval ? [svc.interval.src] : []),
    ...(svc.monitor ? [svc.monitor.src] : []),
    ...(svc.description ? [svc.description.src] : []),
    ...svc.options,
    ...svc.periods.flatMap((p) => [p.src, ...p.alerts.map((a) => a.src), ...p.options, ...(p.alertafter ? [p.alertafter.src] : [])]),
  ];
  const skipAll = (why: string): false => {
    for (const l of allLines()) if (!ledger.isDone(l)) ledger.skip(l, why);
    return false;
  };
  if (!svc.monitor) return skipAll(`service ${svc.name} runs no monitor (traps or alerts only); vigil has nothing to check`);
  if (!svc.interval) return skipAll(`service ${svc.name} has no interval: mon never runs its monitor (it only takes traps)`);
  const monitor = svc.monitor;
  const interval = svc.interval;
  const lvsAlerts = svc.periods.flatMap((p) => p.alerts.filter((a) => isLvsAlert(a.command)).map((a) => ({ a, args: parseLvsAlertArgs(a.args) })));
  const probe = monitorProbe(monitor.command, monitor.args, monitor.appendHosts);
  // real servers to check: named by lvs.alert, or the real servers at a watched host
  // whose protocol and port are the ones the monitor probes
  const targets: { st: ServiceState; i: number; bound: boolean; hosts: string[] }[] = [];
  for (const { a, args } of lvsAlerts) {
    if (args.virtual === undefined || args.real === undefined) {
      ledger.error(a.src, `lvs.alert needs -V and -R to name the virtual service and real server it edits`);
      continue;
    }
    const proto = args.protocol ?? 'tcp';
    const resolved = await resolveService(proto, args.virtual, resolver, args.virtual.startsWith('['));
    if (typeof resolved === 'string') {
      ledger.error(a.src, `lvs.alert -V: ${resolved}`);
      continue;
    }
    const hp = splitHostPort(args.real);
    const rsAddr = await resolver.host(hp.host);
    if (rsAddr === undefined) {
      ledger.error(a.src, `lvs.alert -R: cannot resolve "${hp.host}"`);
      continue;
    }
    const rsPort = hp.port !== undefined ? resolver.service(hp.port, proto === 'udp' ? 'udp' : 'tcp') : undefined;
    if (hp.port !== undefined && rsPort === undefined) {
      ledger.error(a.src, `lvs.alert -R: unknown port "${hp.port}" (not a number, not in /etc/services)`);
      continue;
    }
    const key = keyOf(proto === 'fwmark' ? 'tcp' : proto, resolved.vip, resolved.port, resolved.fwmark);
    let st = byKey.get(key);
    if (!st) {
      const s: Service = { name: '', scheduler: 'wlc', forward: args.forward ?? 'dr', real_servers: [] };
      if (resolved.fwmark !== undefined) s.fwmark = resolved.fwmark;
      else {
        s.protocol = proto === 'udp' ? 'udp' : 'tcp';
        s.vip = resolved.vip;
        s.port = resolved.port;
      }
      st = { svc: s, src: a.src, candidates: new Map(), origin: `${a.src.file}:${a.src.line} (lvs.alert)`, ipv6: false };
      states.push(st);
      byKey.set(key, st);
      ledger.adjust(a.src, 'no saved ipvsadm rules name this virtual service: it is created from the lvs.alert arguments, scheduler wlc (ipvsadm’s default)');
    }
    let i = st.svc.real_servers.findIndex((r) => r.address === rsAddr && (rsPort === undefined || (r.port ?? st?.svc.port) === rsPort));
    if (i < 0) {
      const added = addReal(st, { address: rsAddr, port: rsPort, forward: args.forward ?? st.svc.forward, weight: args.weight ?? 1 }, a.src, ledger);
      if (added === undefined) continue;
      i = added;
    } else if (args.weight !== undefined && st.svc.real_servers[i]?.weight !== args.weight) {
      ledger.adjust(a.src, `lvs.alert weight ${args.weight} differs from the table's ${st.svc.real_servers[i]?.weight ?? 1}; the table's is kept`);
    }
    // mon ran the monitor on every host of the group and called lvs.alert when any failed
    if (!targets.some((t) => t.st === st && t.i === i)) targets.push({ st, i, bound: true, hosts: names });
  }
  if (lvsAlerts.length === 0) {
    const atHosts: { st: ServiceState; i: number; host: WatchedHost }[] = [];
    for (const st of states) {
      st.svc.real_servers.forEach((r, i) => {
        const host = hosts.find((h) => h.address === r.address);
        if (host) atHosts.push({ st, i, host });
      });
    }
    if (atHosts.length === 0) {
      return skipAll(`hosts ${names.join(', ') || '(none)'} are not real servers of any imported virtual service (vigil checks real servers only)`);
    }
    const portOf = (t: { st: ServiceState; i: number }): string =>
      t.st.svc.fwmark !== undefined ? `fwmark ${t.st.svc.fwmark}` : `${t.st.svc.protocol ?? 'tcp'} port ${t.st.svc.real_servers[t.i]?.port ?? t.st.svc.port ?? 0}`;
    const there = [...new Set(atHosts.map(portOf))].join(', ');
    if (typeof probe === 'string') {
      ledger.error(monitor.src, `cannot tell which service this monitor probes (${probe}); these hosts are real servers on ${there}: bind it with lvs.alert -V VIP:PORT -R HOST, or rerun with --partial to leave it out`);
      return skipAll(`the monitor is not attached (see line ${monitor.src.line})`);
    }
    if (probe.kind === 'host') {
      return skipAll(`${posix.basename(monitor.command)} probes the host (ICMP), not a service: vigil attaches a check only to the service it probes (these hosts are real servers on ${there}); bind it with lvs.alert to keep mon’s behaviour`);
    }
    for (const t of atHosts) {
      const r = t.st.svc.real_servers[t.i] as RealServer;
      if (t.st.svc.fwmark === undefined && (t.st.svc.protocol ?? 'tcp') === probe.protocol && (r.port ?? t.st.svc.port) === probe.port) {
        targets.push({ st: t.st, i: t.i, bound: false, hosts: [t.host.name] });
      }
    }
    if (targets.length === 0) {
      return skipAll(`the monitor probes ${describeProbe(probe)} on ${names.join(', ')}, where no imported virtual service has a real server (they are real servers on ${there}); not attached elsewhere`);
    }
  } else if (targets.length === 0) {
    return skipAll(`no lvs.alert line of this service could be used (see above)`);
  }
  const alertafter = svc.periods.find((p) => p.alertafter !== undefined && p.alerts.some((a) => isLvsAlert(a.command)))?.alertafter;
  const mondir = mon.mondir ?? DEFAULT_MONDIR;
  const notes = new Set<string>();
  const made = targets.map((t) => {
    const m = monitorToCheck(monitor, t.hosts, interval.ms, mondir, alertafter?.count ?? 1);
    for (const n of m.notes) notes.add(n);
    return m.check;
  });
  if (typeof probe !== 'string' && probe.kind === 'port') {
    for (const t of targets) {
      const s = t.st.svc;
      const rsPort = s.real_servers[t.i]?.port ?? s.port;
      if (t.bound && (s.fwmark !== undefined || (s.protocol ?? 'tcp') !== probe.protocol || rsPort !== probe.port)) {
        notes.add(`the monitor probes ${describeProbe(probe)} but lvs.alert binds it to ${s.fwmark !== undefined ? `fwmark ${s.fwmark}` : `${s.protocol ?? 'tcp'} port ${rsPort ?? 0}`}; kept, as lvs.alert acted on that service`);
      }
    }
  }
  // the monitor and interval lines are judged once it is known whether this check won
  // on any real server (vigil runs one check per real server)
  const used = { won: false };
  settle.push(() => {
    if (!used.won) {
      for (const l of [monitor.src, interval.src]) ledger.skip(l, `not used: every real server of this service is checked by another mon service (see line ${svc.src.line})`);
      return;
    }
    // one report line per thing not carried over
    if (notes.size > 0) for (const n of notes) ledger.adjust(monitor.src, n);
    else ledger.ok(monitor.src);
    ledger.ok(interval.src);
    ledger.ok(svc.src);
  });
  ledger.ok(svc.description?.src);
  const label = `mon service ${svc.name} (${svc.src.file}:${svc.src.line})`;
  targets.forEach((t, n) => {
    const c: Check = { ...(made[n] as Check) };
    const rs = t.st.svc.real_servers[t.i] as RealServer;
    const rsPort = rs.port ?? t.st.svc.port;
    if (typeof c.port === 'number' && c.port === rsPort) delete c.port;
    const rank = (t.bound ? 100 : 0) + (c.type === 'http' ? 3 : c.type === 'tcp' ? 2 : 1);
    const list = t.st.candidates.get(t.i) ?? [];
    list.push({ check: c, rank, src: svc.src, label, used });
    t.st.candidates.set(t.i, list);
  });
  for (const o of svc.options) {
    const k = (o.text.split(/\s+/)[0] ?? '').toLowerCase();
    ledger.skip(o, MON_SERVICE_OPTIONS[k] ?? 'no vigil counterpart');
  }
  for (const p of svc.periods) {
    const lvs = p.alerts.filter((a) => isLvsAlert(a.command));
    const always = /^(?:\w+:\s*)?(?:wd \{(?:sun-sat|mon-sun)\})?$/i.test(p.spec.trim());
    if (lvs.length === 0) ledger.skip(p.src, 'this period runs only mon alerts, which vigil does not run');
    else if (always) ledger.ok(p.src);
    else ledger.adjust(p.src, 'lvs.alert only acted in this period; vigil keeps the table in step with the checks at all times');
    for (const a of p.alerts) {
      if (isLvsAlert(a.command)) {
        if (!ledger.isDone(a.src)) ledger.adjust(a.src, `replaced by the reconciler: a failed real server leaves the table${a.kind === 'upalert' ? ' and a recovered one returns' : ''} by itself`);
      } else {
        ledger.skip(a.src, `vigil runs no ${a.kind} scripts for real servers; their state is in /status and the metric vigil_real_server_healthy (alert with Prometheus rules, deploy/)`);
      }
    }
    if (p.alertafter) {
      if (lvs.length > 0) ledger.adjust(p.alertafter.src, `fall: ${p.alertafter.count} (the real server leaves the table after ${p.alertafter.count} failed checks)${p.alertafter.src.text.split(/\s+/).length > 2 ? '; the time window is not used' : ''}`);
      else ledger.skip(p.alertafter.src, 'only paces mon alerts, which vigil does not run');
    }
    for (const o of p.options) {
      ledger.skip(o, lvs.length > 0 ? 'paces lvs.alert, which the reconciler replaces (it acts once per change)' : 'only paces mon alerts, which vigil does not run');
    }
  }
  return true;
}

/**
 * A mon monitor as a vigil check for one real server, run on `hosts` (the names mon
 * appends). A built-in probe where it judges exactly as the monitor does (monitors.ts),
 * else the monitor itself, unchanged, as an exec check. The timeout is the monitor's own
 * (its option, else its default), kept below the interval. `notes`: everything not
 * carried over, one reason each.
 */
export function monitorToCheck(
  monitor: { command: string; args: string[]; appendHosts: boolean },
  hosts: string[],
  intervalMs: number,
  mondir: string,
  fall: number,
): { check: Check; notes: string[] } {
  const base = posix.basename(monitor.command);
  const spec = monitorSpec(base);
  const parsed = spec ? parseMonitorArgs(spec, monitor.args) : undefined;
  const own = spec && typeof parsed === 'object' ? monitorTimeoutS(spec, parsed) : undefined;
  const ownMs = typeof own === 'number' ? own * 1000 : undefined;
  const ownWhy = spec?.timeoutOption !== undefined && typeof parsed === 'object' && parsed.values.has(spec.timeoutOption) ? `-${spec.timeoutOption}` : 'its default';
  const notes: string[] = [];
  let check: Check | undefined;
  if (spec?.builtin && typeof parsed === 'object' && parsed.rest.length === 0 && monitor.appendHosts && hosts.length === 1 && ownMs !== undefined) {
    const probe = spec.probe(parsed);
    if (typeof probe === 'object' && probe.kind === 'port') {
      const host = hosts[0] as string;
      const b = spec.builtin(parsed, probe.port, isIP(host) === 0 ? host : undefined);
      if ('check' in b) {
        check = { ...b.check, port: probe.port };
        for (const d of b.dropped) notes.push(`${d.option} is not carried over: ${d.why}`);
      } else notes.push(`no built-in probe judges as ${base} does (${b.refused})`);
    }
  }
  let timeoutMs: number | undefined;
  if (check) timeoutMs = ownMs;
  else {
    const command = monitor.command.startsWith('/') ? monitor.command : posix.join(mondir, monitor.command);
    // mon appends the hosts as it names them; an address is what vigil appends itself
    const single = hosts.length === 1 && isIP(hosts[0] as string) !== 0;
    check = monitor.appendHosts
      ? single
        ? { type: 'exec', command, args: monitor.args, args_style: 'mon' }
        : { type: 'exec', command, args: [...monitor.args, ...hosts], args_style: 'none' }
      : { type: 'exec', command, args: monitor.args, args_style: 'none' };
    notes.push(`runs ${command} unchanged as an exec check (${!monitor.appendHosts ? 'no hosts appended, as with ;;' : single ? 'the real server address appended, as mon appends the host' : `with ${hosts.join(' ')} appended, as mon ran it`})`);
    if (spec?.debianHostnameBug === true) {
      notes.push(`warning: on Debian 12 ${base} dies in Sys::Hostname before it probes anything, so mon reported it failing and so will this check (a Debian bug; fix the monitor, or watch the port with tcp.monitor)`);
    }
    // a margin over the monitor's own timeout, so the monitor reports its own failure
    timeoutMs = ownMs === undefined ? undefined : ownMs + 1000;
  }
  const cap = intervalMs - 1;
  if (timeoutMs === undefined || timeoutMs > cap) {
    if (ownMs === undefined) notes.push(`${base} has no timeout of its own: vigil stops it after ${cap} ms, below the interval (mon let it run on)`);
    else if (ownMs > cap) notes.push(`the monitor's timeout ${own as number} s (${ownWhy}) is not below the interval ${intervalMs / 1000} s: timeout_ms ${cap} (mon let a slow run go on and skipped the runs it overlapped)`);
    timeoutMs = cap;
  }
  check.interval_ms = intervalMs;
  check.timeout_ms = timeoutMs;
  check.rise = 1;
  check.fall = fall;
  check.initial = 'up';
  return { check, notes };
}
