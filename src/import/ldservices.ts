/**
 * ldirectord.cf virtual services → vigil services: ldirectord's defaults (scheduler wrr,
 * checktype negotiate, checkinterval 10 s, negotiate timeout 30 s), its checks mapped to
 * built-in probes where vigil has one, and every setting vigil lacks reported.
 */
import { isIP } from 'node:net';
import { SCHEDULERS } from '../config/schema.js';
import { splitHostPort } from './ipvsadm.js';
import { parseLdFallback, parseLdReal, unquote, type LdirectordCf, type LdSetting, type LdVirtual } from './ldirectord.js';
import type { Ledger, SourceLine } from './ledger.js';
import { addReal, keyOf, resolveService, sanitizeName, type Check, type Obj, type RealServer, type Service, type ServiceState } from './model.js';
import type { Resolver } from './resolve.js';
import type { ForwardMethod } from '../config/schema.js';
import { sorryForward } from '../reconcile/desired.js';

const SECRET_KEYS = new Set(['passwd', 'secret']);
/** ldirectord's forwarding methods as vigil's. */
const LD_FORWARD: Record<string, ForwardMethod> = { gate: 'dr', masq: 'nat', ipip: 'tun' };
const FLAG: Record<ForwardMethod, string> = { dr: '-g', nat: '-m', tun: '-i' };

/** ldirectord.cf directives vigil does not carry over, and why. */
export const LD_UNSUPPORTED: Record<string, string> = {
  login: 'vigil’s built-in checks do not log in; use an exec check for authenticated protocols',
  passwd: 'vigil’s built-in checks do not log in; use an exec check for authenticated protocols',
  database: 'vigil’s built-in checks do not query databases; use an exec check',
  secret: 'vigil’s built-in checks do not speak RADIUS; use an exec check',
  load: 'vigil has no load-based weights',
  emailalert: 'vigil sends no mail; alert on vigil_real_server_healthy with Prometheus rules (deploy/)',
  emailalertfreq: 'vigil sends no mail; alert with Prometheus rules (deploy/)',
  emailalertstatus: 'vigil sends no mail; alert with Prometheus rules (deploy/)',
  emailalertfrom: 'vigil sends no mail; alert with Prometheus rules (deploy/)',
  smtp: 'vigil sends no mail',
  monitorfile: 'vigil logs every check transition on stdout',
  cleanstop: 'vigil removes only what it declared when it releases',
  fallbackcommand: 'vigil has no fallback command; use sorry_server',
  schedflags: 'scheduler flags are not supported by vigil',
  ops: 'one-packet scheduling is not supported by vigil',
  autoreload: 'vigil reloads its config on SIGHUP or `vigil reload`, not by watching the file',
  callback: 'vigil reloads its config on SIGHUP or `vigil reload`',
  logfile: 'vigil logs on stdout',
  supervised: 'vigil runs in the foreground under the service manager',
  fork: 'vigil runs its checks concurrently (built-in ones in the daemon, exec checks each in its own process)',
  maintenancedir: 'use `vigil drain` / `vigil enable` instead of maintenance files',
  readdquiescent: 'vigil re-adds a quiescent real server by setting its weight back',
  checkcount: 'use failurecount (vigil: fall)',
  connecttimeout: 'use checktimeout',
  execute: 'vigil runs one config; start another vigil for another ldirectord configuration',
};

/**
 * What each ldirectord.cf directive it translates becomes (the ones it refuses are in
 * LD_UNSUPPORTED); docs/import-ldirectord.md is generated from these two tables.
 */
export const LD_DIRECTIVES: Record<string, string> = {
  virtual: '`services[]`: `vip`, `port` (names resolved; :53 is UDP as in ldirectord) or `fwmark`; unresolvable: error',
  virtual6: 'as `virtual`, IPv6',
  real: '`real_servers[]` with `weight` (default 1) and the service’s `forward` (gate dr, ipip tun, masq nat; a mix in one service: error); `a->b` is every address from a’s to b’s, as ldirectord resolves it; `"request", "receive"` overrides the HTTP check; unresolvable or malformed: error; `l:N`/`u:N` thresholds: error',
  real6: 'as `real`, IPv6',
  fallback: '`sorry_server`; ldirectord adds it with the method on the line, else -g (ipvsadm’s default); vigil forwards it like the service’s real servers, with -m when its port differs, with -g on the loopback on the service port: a difference is reported',
  fallback6: 'as `fallback`, IPv6',
  scheduler: '`scheduler` (default wrr, ldirectord’s)',
  persistent: '`persistence.timeout_s`',
  netmask: '`persistence.netmask` (without `persistent`: no effect, reported)',
  protocol: '`protocol: tcp|udp`; `fwm` for a firewall-mark virtual',
  quiescent: '`quiescent` (ldirectord’s default is no); with a fallback, reported: when every real server is down vigil programs the sorry server alone, where ldirectord keeps the real servers at weight 0 beside the fallback',
  servicename: '`name`',
  comment: 'a YAML comment above the service',
  checktype: 'negotiate (default): by `service`; connect: `{type: tcp}` (UDP: exec ping, as ldirectord); ping: exec `ping -c 1 -W 1`; external: exec `checkcommand` with args `VIP VPORT` (vigil appends RIP RPORT); on: no check; off: refused; `N` (combined): negotiate every time, reported',
  service: 'the negotiate check (default: ldirectord’s service for the virtual port): http/https/http_proxy → `{type: http|https}`; dns → exec `dns --name REQUEST --type A --expect RECEIVE`; none → no check; others (ftp, smtp, pop, imap, ldap, nntp, sip, radius, mysql, pgsql, oracle, simpletcp, …) have no vigil probe: error (a TCP connect check, or ping for UDP, with --partial)',
  checkcommand: 'the exec check’s command (absolute path)',
  checkinterval: '`interval_ms` (default 10 s)',
  checktimeout: '`timeout_ms` (default 5 s); when not below checkinterval, `interval_ms` becomes checkinterval + timeout (ldirectord pauses checkinterval between rounds of checks that may each take the timeout)',
  negotiatetimeout: '`timeout_ms` of negotiate checks (default: checktimeout, else 30 s), as checktimeout',
  failurecount: '`fall` (`rise` is 1)',
  checkport: 'the check’s `port`',
  request: 'HTTP `path` (a leading / added); DNS: the name queried',
  receive: 'HTTP `body_regex`; DNS: the address expected (one IPv4 address, else error)',
  virtualhost: 'HTTP `host`',
  httpmethod: 'HTTP `method`',
};

export async function ldirectordServices(
  ld: LdirectordCf,
  states: ServiceState[],
  byKey: Map<string, ServiceState>,
  resolver: Resolver,
  ledger: Ledger,
): Promise<void> {
  const g = ld.globals;
  const used = new Set<LdSetting>();
  const global = (k: string): LdSetting | undefined => g.get(k);
  for (const v of ld.virtuals) {
    const s = (k: string): LdSetting | undefined => v.settings.get(k);
    const setting = (k: string): LdSetting | undefined => s(k) ?? global(k);
    const take = (st: LdSetting | undefined): string | undefined => {
      if (st) {
        used.add(st);
        ledger.ok(st.src);
      }
      return st?.value;
    };
    const isFwmark = /^\d+$/.test(v.target);
    let proto: 'tcp' | 'udp' = /:(53|domain)$/.test(v.target) ? 'udp' : 'tcp';
    const protoSet = s('protocol');
    if (protoSet) {
      const p = protoSet.value.toLowerCase();
      if (p === 'tcp' || p === 'udp') proto = p;
      else if (p !== 'fwm') ledger.skip(protoSet.src, `protocol "${protoSet.value}" is not tcp, udp or fwm`);
      ledger.ok(protoSet.src);
    }
    const resolved = await resolveService(isFwmark ? 'fwmark' : proto, v.target, resolver, v.ipv6);
    const blockLines = [v.src, ...v.reals.map((r) => r.src), ...[...v.settings.values()].map((x) => x.src)];
    if (typeof resolved === 'string') {
      ledger.error(v.src, `${resolved} (ldirectord refuses to start on this line)`);
      for (const l of blockLines) if (!ledger.isDone(l)) ledger.skip(l, `virtual service ${v.target} is not translated: ${resolved}`);
      continue;
    }
    const key = keyOf(proto, resolved.vip, resolved.port, resolved.fwmark);
    if (byKey.has(key)) {
      ledger.error(v.src, `the same virtual service is defined in ${byKey.get(key)?.origin ?? ''}; vigil cannot merge the two`);
      for (const l of blockLines) if (!ledger.isDone(l)) ledger.skip(l, `duplicate virtual service ${v.target}`);
      continue;
    }
    const svc: Service = { name: '', scheduler: 'wrr', forward: 'dr', real_servers: [] };
    const nameSet = s('servicename');
    if (nameSet) {
      const n = sanitizeName(nameSet.value);
      if (n !== '') svc.name = n;
      take(nameSet);
    }
    if (isFwmark) svc.fwmark = resolved.fwmark;
    else {
      svc.protocol = proto;
      svc.vip = resolved.vip;
      svc.port = resolved.port;
    }
    const sched = s('scheduler');
    if (sched) {
      if ((SCHEDULERS as readonly string[]).includes(sched.value)) take(sched);
      else ledger.adjust(sched.src, `scheduler "${sched.value}" is not one vigil knows; wrr (ldirectord's default) is used`);
      if ((SCHEDULERS as readonly string[]).includes(sched.value)) svc.scheduler = sched.value;
    }
    const persistent = s('persistent');
    const netmask = s('netmask');
    if (persistent && /^\d+$/.test(persistent.value)) {
      const p: Obj = { timeout_s: Number(persistent.value) };
      take(persistent);
      if (netmask) {
        p.netmask = netmask.value;
        take(netmask);
      }
      svc.persistence = p;
    } else if (netmask) ledger.skip(netmask.src, 'netmask without persistent has no effect');
    const quiescent = setting('quiescent');
    if (quiescent) {
      svc.quiescent = quiescent.value === 'yes';
      take(quiescent);
    }
    const fb = s(v.ipv6 ? 'fallback6' : 'fallback') ?? s('fallback') ?? global(v.ipv6 ? 'fallback6' : 'fallback');
    let sorryMethod: { src: SourceLine; given: string | undefined; address: string; port: number } | undefined;
    if (fb) {
      const f = parseLdFallback(fb.value);
      const addr = typeof f === 'string' ? undefined : await resolver.host(f.host, v.ipv6 ? 6 : undefined);
      const port = typeof f === 'string' || f.port === undefined ? undefined : resolver.service(f.port, proto);
      if (typeof f === 'string') ledger.skip(fb.src, f);
      else if (addr === undefined) ledger.skip(fb.src, `cannot resolve "${f.host}"`);
      else {
        const sorry: Obj = { address: addr };
        if (port !== undefined && port > 0) sorry.port = port;
        svc.sorry_server = sorry;
        used.add(fb);
        sorryMethod = { src: fb.src, given: f.forward, address: addr, port: port !== undefined && port > 0 ? port : resolved.port ?? 0 };
      }
    }
    if (svc.quiescent === true && svc.sorry_server !== undefined && quiescent && fb) {
      // ldirectord deletes only the fallback (never quiescent) and sets a failed real server's
      // weight to 0; with every real server down it adds the fallback beside them
      const line = v.settings.get('quiescent') === quiescent ? quiescent.src : v.settings.get(fb.key) === fb ? fb.src : v.src;
      ledger.adjust(
        line,
        `quiescent=yes with a fallback (${v.target}): when every real server is down, ldirectord keeps them in the table at weight 0 beside the fallback (weight 1); vigil programs its sorry_server alone and removes them (new connections go to the fallback in both; connections still open to a real server that went down are not kept). While any real server is up both keep a failed one at weight 0`,
      );
    }
    const st: ServiceState = { svc, src: v.src, candidates: new Map(), origin: `${v.src.file}:${v.src.line}`, ipv6: v.ipv6 };
    ledger.ok(v.src);
    const comment = s('comment');
    if (comment) {
      st.comment = comment.value;
      take(comment);
    }
    // check
    const check = ldCheck(v, proto, resolved.port, setting, take, ledger);
    for (const r of v.reals) {
      const parsed = parseLdReal(r.value);
      if (typeof parsed === 'string') {
        ledger.error(r.src, parsed);
        continue;
      }
      // ldirectord resolves both ends of a range and adds every address between them
      const first = await resolver.host(parsed.first, v.ipv6 ? 6 : undefined);
      const last = parsed.last !== undefined ? await resolver.host(parsed.last, v.ipv6 ? 6 : undefined) : undefined;
      if (first === undefined || (parsed.last !== undefined && last === undefined)) {
        ledger.error(r.src, `cannot resolve "${first === undefined ? parsed.first : parsed.last ?? ''}" (ldirectord refuses to start on this line; add it to /etc/hosts or write the address)`);
        continue;
      }
      const addrs = last !== undefined ? ipv4Range(first, last) : [first];
      if (typeof addrs === 'string') {
        ledger.error(r.src, `${addrs} (ldirectord refuses to start on this line)`);
        continue;
      }
      const port = parsed.port !== undefined ? resolver.service(parsed.port, proto) : undefined;
      if (parsed.port !== undefined && port === undefined) {
        ledger.error(r.src, `unknown port "${parsed.port}" (ldirectord refuses to start on this line)`);
        continue;
      }
      if (parsed.last !== undefined && (first !== parsed.first || last !== parsed.last)) {
        ledger.adjust(r.src, `${parsed.first}->${parsed.last} is the address range ${first}-${last} (${addrs.length} real servers of weight ${parsed.weight}): ldirectord resolves both ends and adds every address between them, not the names between them`);
      }
      if (parsed.lower !== undefined) ledger.error(r.src, `l:${parsed.lower}: lower connection thresholds are not supported by vigil`);
      if (parsed.upper !== undefined) ledger.error(r.src, `u:${parsed.upper}: upper connection thresholds are not supported by vigil: the real server would take connections past it`);
      for (const a of addrs) {
        const i = addReal(st, { address: a, port, forward: parsed.forward, weight: parsed.weight }, r.src, ledger);
        if (i !== undefined && check && (parsed.request !== undefined || parsed.receive !== undefined) && (check.type === 'http' || check.type === 'https')) {
          const c: Check = { ...check };
          if (parsed.request !== undefined) c.path = parsed.request;
          if (parsed.receive !== undefined) c.body_regex = parsed.receive;
          svc.real_servers[i] = { ...(svc.real_servers[i] as RealServer), check: c };
        }
      }
    }
    if (sorryMethod) {
      // ldirectord adds the fallback with the method on its line, else ipvsadm's default
      // (gate, -g); vigil's sorry server follows the rule of src/reconcile/desired.ts
      const m = sorryMethod;
      const ldForward = LD_FORWARD[m.given ?? 'gate'] ?? 'dr';
      const vigilForward = sorryForward({ fwmark: svc.fwmark, port: svc.port, forward: svc.forward as ForwardMethod }, m.address, m.port);
      if (ldForward === vigilForward) ledger.ok(m.src);
      else {
        const why = m.given === undefined ? `${FLAG[ldForward]}, ipvsadm's default: the line names no method` : `${FLAG[ldForward]}, the "${m.given}" method on this line`;
        const rule = vigilForward === 'nat' && m.port !== (svc.port ?? 0) ? 'a port-mapped sorry server is NATed' : `like the service's real servers`;
        ledger.adjust(m.src, `ldirectord adds the fallback with ${why}; vigil forwards its sorry_server with ${FLAG[vigilForward]} (${rule})`);
      }
    }
    if (check) {
      svc.check = check;
      // a real server with its own request/receive keeps its own check
    }
    states.push(st);
    byKey.set(key, st);
    for (const [k, set] of v.settings) {
      if (ledger.isDone(set.src)) continue;
      if (k === 'comment' || k === 'servicename') ledger.ok(set.src);
      else {
        const why =
          LD_UNSUPPORTED[k] ??
          (LD_DIRECTIVES[k] !== undefined ? `not used by this virtual service's check (checktype=${setting('checktype')?.value ?? 'negotiate'})` : `"${k}" is not an ldirectord setting vigil translates`);
        ledger.skip(SECRET_KEYS.has(k) ? { ...set.src, text: `${k}=<not shown>` } : set.src, why);
      }
    }
  }
  for (const [k, set] of g) {
    if (ledger.isDone(set.src)) continue;
    if (used.has(set)) continue;
    if (['checktimeout', 'negotiatetimeout', 'checkinterval', 'failurecount', 'quiescent', 'fallback', 'fallback6'].includes(k)) {
      ledger.skip(set.src, ld.virtuals.length === 0 ? 'no virtual service to apply it to' : 'every virtual service sets its own value, or none uses it');
    } else ledger.skip(set.src, LD_UNSUPPORTED[k] ?? `"${k}" is not an ldirectord setting vigil translates`);
  }
}

function ldCheck(
  v: LdVirtual,
  proto: 'tcp' | 'udp',
  vport: number | undefined,
  setting: (k: string) => LdSetting | undefined,
  take: (s: LdSetting | undefined) => string | undefined,
  ledger: Ledger,
): Check | undefined {
  const ct = setting('checktype');
  const type = (ct?.value ?? 'negotiate').toLowerCase();
  const service = setting('service');
  const serviceName = (service?.value ?? '').toLowerCase();
  const port = /:(\d+|\w+)$/.exec(v.target)?.[1];
  const intervalSet = setting('checkinterval');
  const interval = Number(intervalSet?.value ?? 10) * 1000;
  const negotiate = type === 'negotiate' || /^\d+$/.test(type);
  const timeoutSet = negotiate ? setting('negotiatetimeout') ?? setting('checktimeout') : setting('checktimeout');
  let timeout = Number(timeoutSet?.value ?? (negotiate ? 30 : 5)) * 1000;
  const failSet = setting('failurecount');
  const fall = failSet && /^\d+$/.test(failSet.value) ? Number(failSet.value) : 1;
  const common = (c: Check): Check => {
    c.interval_ms = interval;
    if (timeout >= interval) {
      // ldirectord sleeps checkinterval between rounds of checks, each of which may take
      // the whole timeout; vigil's period must exceed its timeout. Keeping the timeout
      // keeps what counts as a failure; the period is ldirectord's with a timed-out check.
      const s = timeoutSet ?? intervalSet;
      const msg = `ldirectord waits checkinterval (${interval} ms) between rounds of checks that may each take the timeout (${timeout} ms); vigil checks at a fixed period above its timeout: interval_ms ${interval + timeout} (checkinterval + timeout), timeout_ms ${timeout} kept`;
      if (s) ledger.adjust(s.src, msg);
      else ledger.note(v.src.file, `${v.target}: ${msg}`, 'adjusted');
      c.interval_ms = interval + timeout;
    } else take(timeoutSet);
    c.timeout_ms = timeout;
    c.rise = 1;
    c.fall = fall;
    take(intervalSet);
    take(failSet);
    const cp = setting('checkport');
    if (cp && /^\d+$/.test(cp.value)) {
      if (cp.value !== port) c.port = Number(cp.value);
      take(cp);
    }
    return c;
  };
  if (type === 'on') {
    take(ct);
    for (const k of ['checkinterval', 'checktimeout', 'negotiatetimeout', 'failurecount', 'checkport', 'request', 'receive', 'virtualhost', 'httpmethod', 'service']) {
      const s = v.settings.get(k);
      if (s && !ledger.isDone(s.src)) ledger.skip(s.src, 'checktype=on: real servers are not checked');
    }
    return undefined;
  }
  if (type === 'off') {
    if (ct) ledger.error(ct.src, 'checktype=off (real servers never added) has no vigil counterpart: set their weights to 0 or remove the service');
    return undefined;
  }
  const ping = (): Check => common({ type: 'exec', command: '/usr/bin/ping', args: ['-c', '1', '-W', '1'], args_style: 'mon' });
  if (type === 'connect') {
    take(ct);
    take(service);
    // ldirectord: "checktype=connect and protocol=udp will also effect ping checks"
    return proto === 'udp' && !isFwmark(v) ? ping() : common({ type: 'tcp' });
  }
  if (type === 'ping') {
    take(ct);
    return ping();
  }
  if (type === 'external' || type === 'external-perl') {
    const cmdSet = setting('checkcommand');
    const cmd = unquote(cmdSet?.value ?? '/bin/true');
    if (!cmd.startsWith('/')) {
      if (cmdSet) ledger.skip(cmdSet.src, 'checkcommand must be an absolute path for vigil');
      return undefined;
    }
    take(ct);
    take(cmdSet);
    const vh = splitHostPort(v.target);
    const c = common({ type: 'exec', command: cmd, args: [vh.host, vh.port ?? '0'], args_style: 'vigil' });
    if (type === 'external-perl' && ct) ledger.adjust(ct.src, 'the Perl check runs as a program: make it executable with a #! line');
    return c;
  }
  // negotiate (and the combined "N" form): the service given, else ldirectord's by port
  const svcName = serviceName !== '' ? serviceName : isFwmark(v) ? 'none' : (LD_PORT_SERVICE[vport ?? 0] ?? 'none');
  if (/^\d+$/.test(type) && ct) ledger.adjust(ct.src, `checktype=${type} (negotiate every ${type}th check, connect otherwise): vigil negotiates on every check`);
  else take(ct);
  const unusedRequest = (why: string): void => {
    for (const k of ['request', 'receive', 'virtualhost', 'httpmethod']) {
      const s = v.settings.get(k);
      if (s && !ledger.isDone(s.src)) ledger.skip(s.src, why);
    }
  };
  if (svcName === 'http' || svcName === 'https' || svcName === 'http_proxy') {
    take(service);
    const c: Check = { type: svcName === 'https' ? 'https' : 'http' };
    const req = setting('request');
    if (req) {
      const r = unquote(req.value);
      c.path = r.startsWith('/') ? r : `/${r}`;
      take(req);
    }
    const rec = setting('receive');
    if (rec) {
      const r = unquote(rec.value);
      try {
        new RegExp(r);
        c.body_regex = r;
        take(rec);
      } catch {
        c.body_regex = r.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        ledger.adjust(rec.src, 'not a valid JavaScript regular expression: matched literally');
      }
    }
    const vh = setting('virtualhost');
    if (vh) {
      c.host = unquote(vh.value);
      take(vh);
    }
    const hm = setting('httpmethod');
    if (hm) {
      c.method = hm.value.toUpperCase() === 'HEAD' ? 'HEAD' : 'GET';
      take(hm);
    }
    return common(c);
  }
  const where: { src: SourceLine } = service ?? ct ?? v;
  if (svcName === 'none') {
    take(service);
    const msg = `negotiate for service "none": ldirectord marks every real server up without checking it, so vigil runs no check`;
    if (where === v) ledger.note(v.src.file, `${v.target}: ${msg}`);
    else ledger.adjust(where.src, msg);
    unusedRequest('only used by a negotiate check, and service "none" runs none');
    for (const k of ['checkinterval', 'checktimeout', 'negotiatetimeout', 'failurecount', 'checkport']) {
      const s = v.settings.get(k);
      if (s && !ledger.isDone(s.src)) ledger.skip(s.src, 'service "none" runs no check');
    }
    return undefined;
  }
  if (svcName === 'dns') return dnsCheck(v, proto, setting, take, common, where, ledger);
  // negotiate for a protocol vigil has no built-in probe for: an error, and connect (ping
  // for UDP, as ldirectord's own UDP connect check) for --partial
  const udp = proto === 'udp' && !isFwmark(v);
  const c = udp ? ping() : common({ type: 'tcp' });
  const msg = `ldirectord's negotiate check for "${svcName}" talks the protocol; vigil has no probe for it, and ${udp ? 'the ping check used instead only proves the host answers ICMP' : 'the TCP connect check used instead only proves the port accepts connections'} (write an exec check for a protocol-level test)`;
  ledger.error(where.src, msg);
  if (service) ledger.ok(service.src);
  unusedRequest(`only used by the negotiate check for "${svcName}", which vigil cannot run`);
  return c;
}

/** ldirectord's ld_port_to_service: the negotiate check a virtual port gets without service=. */
export const LD_PORT_SERVICE: Record<number, string> = {
  21: 'ftp', 25: 'smtp', 53: 'dns', 80: 'http', 110: 'pop', 119: 'nntp', 143: 'imap', 389: 'ldap', 443: 'https', 587: 'submission',
  636: 'ldaps', 995: 'pops', 993: 'imaps', 1521: 'oracle', 1812: 'radius', 3128: 'http_proxy', 3306: 'mysql', 5060: 'sip', 5432: 'pgsql',
};

/**
 * ldirectord's check_dns: queries `request` (an A record's name; a leading "/" dropped)
 * at the real server, up when one A record's address matches the `receive` regex. The
 * checks/dns exec check does the same with --expect when `receive` is one address; a
 * pattern, a PTR lookup or an empty receive has no faithful counterpart: error.
 */
function dnsCheck(
  v: LdVirtual,
  proto: 'tcp' | 'udp',
  setting: (k: string) => LdSetting | undefined,
  take: (s: LdSetting | undefined) => string | undefined,
  common: (c: Check) => Check,
  where: { src: SourceLine },
  ledger: Ledger,
): Check | undefined {
  const req = setting('request');
  const rec = setting('receive');
  const name = unquote(req?.value ?? '').replace(/^\//, '');
  const expect = unquote(rec?.value ?? '');
  const problems: string[] = [];
  if (proto === 'tcp') problems.push('ldirectord queries over TCP for protocol=tcp, checks/dns over UDP');
  if (name === '') problems.push('no request= (the name to look up)');
  else if (isIP(name) !== 0) problems.push(`request=${name} is a PTR lookup, which checks/dns cannot match`);
  if (expect === '') problems.push('no receive= (ldirectord then never counts the server up)');
  else if (isIP(expect) !== 4) problems.push(`receive=${expect} is a pattern, not one IPv4 address (checks/dns --expect compares addresses exactly)`);
  if (problems.length > 0) {
    ledger.error(where.src, `ldirectord's DNS negotiate check cannot be carried over: ${problems.join('; ')}`);
    take(req);
    take(rec);
    return undefined;
  }
  take(setting('service'));
  take(req);
  const c = common({ type: 'exec', command: 'dns', args: ['--name', name, '--type', 'A', '--expect', expect], args_style: 'vigil' });
  ledger.adjust((rec as LdSetting).src, `ldirectord's DNS check (query ${name} over UDP, up when an A record matches ${expect}) becomes the checks/dns exec check "dns --name ${name} --type A --expect ${expect} <address> <port>"; the address is compared exactly, where ldirectord matched it as a regular expression`);
  for (const k of ['virtualhost', 'httpmethod']) {
    const s = v.settings.get(k);
    if (s && !ledger.isDone(s.src)) ledger.skip(s.src, 'not used by a DNS check');
  }
  return c;
}

const isFwmark = (v: LdVirtual): boolean => /^\d+$/.test(v.target);

function ipv4Range(first: string, last: string): string[] | string {
  if (isIP(first) !== 4 || isIP(last) !== 4) return 'address ranges are IPv4 only';
  const n = (s: string): number => s.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  const a = n(first);
  const b = n(last);
  if (b < a) return `range ${first}->${last} is empty`;
  if (b - a > 1023) return `range ${first}->${last} has more than 1024 addresses`;
  const out: string[] = [];
  for (let x = a; x <= b; x++) out.push([x >>> 24, (x >>> 16) & 255, (x >>> 8) & 255, x & 255].join('.'));
  return out;
}

// ---------------------------------------------------------------- mon

