/**
 * mon watches → checks on real servers: a watched host that is a real server gets the
 * monitor as its check (built-in probe where vigil has one, else the same script as an
 * exec check); an lvs.alert line binds it to exactly one service and real server.
 * mon's own alerts are reported; vigil runs one check per real server, the best kept.
 */
import { posix } from 'node:path';
import { splitHostPort } from './ipvsadm.js';
import type { Ledger, SourceLine } from './ledger.js';
import { isLvsAlert, parseLvsAlertArgs, type MonCf, type MonService } from './moncf.js';
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


const MON_SERVICE_OPTIONS: Record<string, string> = {
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
    const hosts = group ? group.hosts : [w.group];
    let anyTranslated = false;
    for (const svc of w.services) {
      const done = await monService(mon, svc, hosts, states, byKey, resolver, ledger, settle);
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
      if (usedGroups.has(name)) ledger.ok(src);
      else ledger.skip(src, `hostgroup ${name} is not watched by a translated service`);
    }
  }
}

async function monService(
  mon: MonCf,
  svc: MonService,
  hosts: string[],
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
  const lvsAlerts = svc.periods.flatMap((p) => p.alerts.filter((a) => isLvsAlert(a.command)).map((a) => ({ a, args: parseLvsAlertArgs(a.args) })));
  // real servers to check: named by lvs.alert, or every real server at a watched address
  const targets: { st: ServiceState; i: number; bound: boolean }[] = [];
  const resolvedHosts = new Set<string>();
  if (states.length > 0 || lvsAlerts.length > 0) {
    for (const h of hosts) {
      const a = await resolver.host(h);
      if (a !== undefined) resolvedHosts.add(a);
    }
  }
  for (const { a, args } of lvsAlerts) {
    if (args.virtual === undefined || args.real === undefined) continue;
    const proto = args.protocol ?? 'tcp';
    const resolved = await resolveService(proto, args.virtual, resolver, args.virtual.startsWith('['));
    if (typeof resolved === 'string') {
      ledger.skip(a.src, `lvs.alert -V: ${resolved}`);
      continue;
    }
    const hp = splitHostPort(args.real);
    const rsAddr = await resolver.host(hp.host);
    if (rsAddr === undefined) {
      ledger.skip(a.src, `lvs.alert -R: cannot resolve "${hp.host}"`);
      continue;
    }
    const rsPort = hp.port !== undefined ? resolver.service(hp.port, proto === 'udp' ? 'udp' : 'tcp') : undefined;
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
    if (!targets.some((t) => t.st === st && t.i === i)) targets.push({ st, i, bound: true });
  }
  if (targets.length === 0) {
    for (const st of states) {
      st.svc.real_servers.forEach((r, i) => {
        if (resolvedHosts.has(r.address) || hosts.includes(r.address)) targets.push({ st, i, bound: false });
      });
    }
  }
  if (targets.length === 0) {
    return skipAll(`hosts ${hosts.join(', ') || '(none)'} are not real servers of any imported virtual service (vigil checks real servers only)`);
  }
  const alertafter = svc.periods.find((p) => p.alertafter !== undefined && p.alerts.some((a) => isLvsAlert(a.command)))?.alertafter;
  const made = monitorToCheck(svc.monitor.command, svc.monitor.args, svc.monitor.appendHosts, svc.interval?.ms, mon.mondir ?? DEFAULT_MONDIR, alertafter?.count ?? 1);
  // the monitor and interval lines are judged once it is known whether this check won
  // on any real server (vigil runs one check per real server)
  const used = { won: false };
  const monitor = svc.monitor;
  settle.push(() => {
    if (!used.won) {
      for (const l of [monitor.src, ...(svc.interval ? [svc.interval.src] : [])]) ledger.skip(l, `not used: every real server of this service is checked by another mon service (see line ${svc.src.line})`);
      return;
    }
    if (made.note !== undefined) ledger.adjust(monitor.src, made.note);
    else ledger.ok(monitor.src);
    if (svc.interval) {
      if (made.intervalNote !== undefined) ledger.adjust(svc.interval.src, made.intervalNote);
      else ledger.ok(svc.interval.src);
    } else if (made.intervalNote !== undefined) ledger.adjust(svc.src, made.intervalNote);
    ledger.ok(svc.src);
  });
  ledger.ok(svc.description?.src);
  const label = `mon service ${svc.name} (${svc.src.file}:${svc.src.line})`;
  for (const t of targets) {
    const c: Check = { ...made.check };
    const rs = t.st.svc.real_servers[t.i] as RealServer;
    const rsPort = rs.port ?? t.st.svc.port;
    if (typeof c.port === 'number' && c.port === rsPort) delete c.port;
    const rank = (t.bound ? 100 : 0) + (c.type === 'http' ? 3 : c.type === 'tcp' ? 2 : 1);
    const list = t.st.candidates.get(t.i) ?? [];
    list.push({ check: c, rank, src: svc.src, label, used });
    t.st.candidates.set(t.i, list);
  }
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
 * A mon monitor as a vigil check: tcp.monitor and http.monitor with options vigil
 * understands become built-in probes; anything else runs the same script as an exec
 * probe with mon's argument convention.
 */
export function monitorToCheck(
  command: string,
  args: string[],
  appendHosts: boolean,
  intervalMs: number | undefined,
  mondir: string,
  fall: number,
): { check: Check; note?: string; intervalNote?: string } {
  const base = posix.basename(command);
  const interval = intervalMs ?? 10_000;
  const intervalNote = intervalMs === undefined ? 'no interval: 10 s is used' : undefined;
  const opts = getopts(args, base === 'http.monitor' ? ['p', 't', 'u'] : base === 'tcp.monitor' ? ['p', 't'] : []);
  let check: Check;
  let timeoutMs: number | undefined;
  if ((base === 'tcp.monitor' || base === 'http.monitor') && opts !== undefined && appendHosts) {
    check = { type: base === 'tcp.monitor' ? 'tcp' : 'http' };
    const p = opts.get('p');
    if (p !== undefined && /^\d+$/.test(p)) check.port = Number(p);
    else if (base === 'tcp.monitor') {
      /* tcp.monitor without -p connects to the real server's own port in vigil */
    } else if (base === 'http.monitor') {
      check.port = 80;
    }
    const u = opts.get('u');
    if (u !== undefined) check.path = u.startsWith('/') ? u : `/${u}`;
    const t = opts.get('t');
    if (t !== undefined && /^\d+$/.test(t)) timeoutMs = Number(t) * 1000;
  } else {
    check = {
      type: 'exec',
      command: command.startsWith('/') ? command : posix.join(mondir, command),
      args,
      args_style: appendHosts ? 'mon' : 'none',
    };
    const t = args.indexOf('-t');
    if (t >= 0 && /^\d+$/.test(args[t + 1] ?? '')) timeoutMs = Number(args[t + 1]) * 1000;
    else timeoutMs = Math.min(10_000, Math.floor(interval / 2));
  }
  let note: string | undefined;
  if (check.type === 'exec') note = `runs ${String(check.command)} unchanged as an exec check (${appendHosts ? 'the real server address appended, as mon appends the hosts' : 'no hosts appended, as with ;;'}), once per real server`;
  if (timeoutMs !== undefined && timeoutMs >= interval) {
    note = `${note !== undefined ? `${note}; ` : ''}timeout ${timeoutMs} ms is not below the interval ${interval} ms; timeout_ms ${interval - 1} is used`;
    timeoutMs = interval - 1;
  }
  check.interval_ms = interval;
  if (timeoutMs !== undefined) check.timeout_ms = timeoutMs;
  else if (interval <= 1000) check.timeout_ms = interval - 1;
  check.rise = 1;
  check.fall = fall;
  check.initial = 'up';
  return intervalNote !== undefined ? (note !== undefined ? { check, note, intervalNote } : { check, intervalNote }) : note !== undefined ? { check, note } : { check };
}

/** Single-letter options with values; undefined when an option is not in `known`. */
function getopts(args: string[], known: string[]): Map<string, string> | undefined {
  const out = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const m = /^-([A-Za-z])(.*)$/.exec(args[i] as string);
    if (!m || !known.includes(m[1] as string)) return undefined;
    const v = m[2] !== '' ? m[2] : args[++i];
    if (v === undefined) return undefined;
    out.set(m[1] as string, v as string);
  }
  return out;
}

// ---------------------------------------------------------------- helpers

