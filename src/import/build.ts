/**
 * The translation: parsed Heartbeat, mon, ipvsadm and ldirectord files → a vigil config
 * (plain data in the YAML's own names) plus the report. Pure apart from the injected
 * resolver and file-existence check, so every rule is unit-tested with fakes.
 *
 * Rules worth knowing (docs/ARCHITECTURE.md, "Import", has the full tables):
 * - Links are named after the interface of the Heartbeat medium (`ucast eth1 ...` →
 *   link `eth1`). A node's own address never appears in its ha.cf (Heartbeat ignores a
 *   ucast line naming itself), so it comes from `--address`, from this machine's
 *   interfaces when import runs on that node, or from the other node's ucast line when
 *   the file lists both; when none says, it is reported and the output does not
 *   validate — a guessed address would be silently wrong.
 * - Timers keep Heartbeat's values (its defaults when absent), adjusted minimally to
 *   vigil's rules, each adjustment reported.
 * - mon watches become checks on the real servers whose address is one of the watched
 *   hosts (or exactly the one an lvs.alert line names); mon's own alerts are reported.
 */
import { isIP } from 'node:net';
import { posix } from 'node:path';
import { SCHEDULERS } from '../config/schema.js';
import { parseAuthkeys } from './authkeys.js';
import { parseHaCf, type HaCf } from './hacf.js';
import { parseHaresources } from './haresources.js';
import { parseIpvsadmSave, splitHostPort, type IpvsProto } from './ipvsadm.js';
import { parseLdFallback, parseLdirectord, parseLdReal, unquote, type LdSetting, type LdVirtual } from './ldirectord.js';
import { Ledger, type ReportEntry, type SourceLine } from './ledger.js';
import { isLvsAlert, parseLvsAlertArgs, parseMonCf, type MonCf, type MonService } from './moncf.js';
import { inSubnet, type LocalHost, type Resolver } from './resolve.js';

export interface InputFile {
  /** The name shown in the report and in the YAML's comments. */
  file: string;
  text: string;
}

export interface ImportInputs {
  haCf?: InputFile;
  haresources?: InputFile;
  authkeys?: InputFile;
  monCf?: InputFile;
  ipvsadm?: InputFile;
  ldirectord?: InputFile;
}

export interface ImportOptions {
  /** This node's name (`--node`); else this host's name when listed, else the preferred node. */
  node?: string;
  /** This host's name (os.hostname()). */
  hostname?: string;
  /** `--address [NODE:]IFACE=IP`; NODE defaults to this node. */
  addresses?: { node?: string; iface: string; address: string }[];
  /** Interface for VIPs haresources gives none (`--vip-interface`). */
  vipInterface?: string;
  /** This machine's interfaces, given only when import runs on the node itself. */
  local?: LocalHost;
  resolver: Resolver;
  /** Whether a path exists here (Heartbeat's resource script search). */
  exists?: (path: string) => boolean;
  /** key_file as written in the YAML. */
  keyFile?: string;
  /** Where wrapper scripts for resources with arguments go (as written in the YAML). */
  wrapperDir?: string;
}

export interface WrapperScript {
  /** Path as written in the YAML (relative to the config file, or absolute). */
  path: string;
  content: string;
}

export interface ImportResult {
  config: Record<string, unknown>;
  /** YAML comments: `services.0` → text placed before that node. */
  comments: Map<string, string>;
  /** The key to write to key_file (mode 0600), when authkeys gave one. */
  key?: string;
  wrappers: WrapperScript[];
  report: ReportEntry[];
  /** The files read, for the YAML header. */
  sources: string[];
}

type Obj = Record<string, unknown>;
interface Check extends Obj {
  type: string;
}
interface RealServer extends Obj {
  address: string;
  port?: number;
  weight: number;
  check?: Check;
}
interface Service extends Obj {
  name: string;
  protocol?: 'tcp' | 'udp';
  vip?: string;
  port?: number;
  fwmark?: number;
  scheduler: string;
  forward: 'dr' | 'tun' | 'nat';
  real_servers: RealServer[];
}

interface ServiceState {
  svc: Service;
  src: SourceLine;
  /** Check candidates per real server, best chosen at the end. */
  candidates: Map<number, { check: Check; rank: number; src: SourceLine; label: string; used: { won: boolean } }[]>;
  origin: string;
  ipv6: boolean;
  /** ldirectord's comment=, carried as a YAML comment. */
  comment?: string;
}

const DEFAULT_MONDIR = '/usr/lib/mon/mon.d';
const HB_RESOURCE_DIR = '/etc/ha.d/resource.d';
const INIT_DIR = '/etc/init.d';

export async function buildConfig(inputs: ImportInputs, opts: ImportOptions): Promise<ImportResult> {
  const ledger = new Ledger();
  const comments = new Map<string, string>();
  const exists = opts.exists ?? (() => false);
  const resolver = opts.resolver;
  const sources = Object.values(inputs)
    .filter((f): f is InputFile => f !== undefined)
    .map((f) => f.file);

  const ha = inputs.haCf ? parseHaCf(inputs.haCf.text, inputs.haCf.file, ledger) : undefined;
  const groups = inputs.haresources ? parseHaresources(inputs.haresources.text, inputs.haresources.file, ledger) : [];
  const auth = inputs.authkeys ? parseAuthkeys(inputs.authkeys.text, inputs.authkeys.file, ledger) : undefined;
  const mon = inputs.monCf ? parseMonCf(inputs.monCf.text, inputs.monCf.file, ledger) : undefined;
  const ipvs = inputs.ipvsadm ? parseIpvsadmSave(inputs.ipvsadm.text, inputs.ipvsadm.file, ledger) : undefined;
  const ld = inputs.ldirectord ? parseLdirectord(inputs.ldirectord.text, inputs.ldirectord.file, ledger) : undefined;

  // ------------------------------------------------------------ nodes
  const cluster: Obj = {};
  const nodeNames: string[] = [];
  const nodeSrc = new Map<string, SourceLine>();
  for (const n of ha?.nodes ?? []) {
    if (nodeNames.includes(n.name)) continue;
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(n.name)) {
      ledger.skip(n.src, `node name "${n.name}" is not a valid vigil name (letters, digits, "_", "." and "-", at most 63)`);
      continue;
    }
    nodeNames.push(n.name);
    nodeSrc.set(n.name, n.src);
  }
  const preferred = groups.find((g) => nodeNames.includes(g.node))?.node;
  let me = opts.node;
  if (me === undefined) {
    if (opts.hostname !== undefined && nodeNames.includes(opts.hostname)) me = opts.hostname;
    else if (opts.hostname !== undefined && nodeNames.includes(opts.hostname.split('.')[0] as string)) me = opts.hostname.split('.')[0];
    else me = preferred ?? nodeNames[0];
    if (me !== undefined && nodeNames.length > 1) {
      ledger.note(inputs.haCf?.file ?? '(import)', `this host is not one of the nodes; node: is set to ${me} (give --node, or set $VIGIL_NODE on each director)`, 'adjusted');
    }
  }
  if (ha && nodeNames.length === 0) {
    ledger.note(inputs.haCf?.file ?? '(import)', 'ha.cf lists no node (Heartbeat refuses to start without one)', 'untranslated');
  }
  if (me === undefined && !ha) {
    const short = opts.hostname?.split('.')[0];
    me = groups.find((g) => g.node === opts.hostname || g.node === short)?.node ?? groups[0]?.node;
  }
  if (me === undefined) me = sanitizeName(opts.hostname ?? 'director');
  if (!nodeNames.includes(me)) {
    if (ha && nodeNames.length > 0) {
      ledger.note(inputs.haCf?.file ?? '(import)', `--node ${me} is not one of the nodes in ha.cf (${nodeNames.join(', ')})`, 'untranslated');
    }
    nodeNames.push(me);
  }
  const local = me;
  // this machine's interfaces say something about this node only when we run on it
  const onNode = opts.hostname !== undefined && (local === opts.hostname || local === opts.hostname.split('.')[0]);
  const localInfo = onNode ? opts.local : undefined;

  // ------------------------------------------------------------ links
  const linkOrder: string[] = [];
  const links = new Map<string, Map<string, string>>();
  const linkSrc = new Map<string, SourceLine>();
  const setAddr = (iface: string, node: string, address: string): void => {
    if (!links.has(iface)) {
      links.set(iface, new Map());
      linkOrder.push(iface);
    }
    (links.get(iface) as Map<string, string>).set(node, address);
  };
  const ownerOf = (iface: string, address: string): string | undefined =>
    [...(links.get(iface)?.entries() ?? [])].find(([, a]) => a === address)?.[0];
  for (const a of opts.addresses ?? []) setAddr(a.iface, a.node ?? local, a.address);

  if (ha) {
    if (ha.media.length === 0) ledger.note(inputs.haCf?.file ?? '(import)', 'ha.cf defines no heartbeat medium (ucast, bcast, mcast)', 'untranslated');
    const unattributed = new Map<string, { address: string; src: SourceLine }[]>();
    for (const m of ha.media) {
      if (!links.has(m.iface)) {
        links.set(m.iface, new Map());
        linkOrder.push(m.iface);
      }
      if (!linkSrc.has(m.iface)) linkSrc.set(m.iface, m.src);
      if (m.kind !== 'ucast') {
        const extra = m.kind === 'mcast' ? ` (group ${m.address ?? ''}, ttl and loop are not used)` : '';
        ledger.adjust(m.src, `${m.kind} is mapped to unicast heartbeats to every node's address on link "${m.iface}"${extra}`);
        if (m.kind === 'mcast' && m.port !== undefined && m.port !== (ha.udpport?.port ?? 694)) {
          ledger.adjust(m.src, `port ${m.port} differs from udpport; vigil uses one port (cluster.port ${ha.udpport?.port ?? 694}) on every link`);
        }
        continue;
      }
      const address = await resolver.host(m.address as string);
      if (address === undefined) {
        ledger.skip(m.src, `cannot resolve "${m.address ?? ''}"`);
        continue;
      }
      if (ownerOf(m.iface, address) !== undefined) continue;
      if (localInfo?.interfaces.some((i) => i.address === address)) {
        setAddr(m.iface, local, address); // our own address: Heartbeat ignores it, so do we
        continue;
      }
      const list = unattributed.get(m.iface) ?? [];
      list.push({ address, src: m.src });
      unattributed.set(m.iface, list);
    }
    for (const [iface, list] of unattributed) {
      const candidates = nodeNames.filter((n) => n !== local && !links.get(iface)?.has(n));
      if (list.length === 1 && candidates.length === 1) {
        setAddr(iface, candidates[0] as string, (list[0] as { address: string }).address);
      } else if (list.length === 2 && nodeNames.length === 2 && candidates.length === 1 && !links.get(iface)?.has(local)) {
        for (const u of list) {
          ledger.skip(u.src, `cannot tell which of ${list.map((x) => x.address).join(' and ')} is ${local}'s own address on ${iface} (Heartbeat ignores its own); pass --address ${iface}=<${local}'s address>`);
        }
      } else {
        for (const u of list) {
          ledger.skip(u.src, `cannot tell which node has ${u.address} on ${iface}; pass --address <node>:${iface}=${u.address}`);
        }
      }
    }
  }
  // this node's addresses from this machine's interfaces, when import runs on it
  for (const iface of linkOrder) {
    if (links.get(iface)?.has(local)) continue;
    const mine = localInfo?.interfaces.find((i) => i.name === iface && isIP(i.address) === 4);
    if (mine) setAddr(iface, local, mine.address);
  }
  if (!ha) {
    if (linkOrder.length === 0) {
      setAddr('loopback', local, '127.0.0.1');
      ledger.note('(import)', `no ha.cf: a standalone director "${local}" with its heartbeat on loopback`);
    }
  } else {
    for (const iface of linkOrder) {
      const src = linkSrc.get(iface);
      for (const n of nodeNames) {
        if (links.get(iface)?.has(n)) continue;
        const why =
          n === local
            ? `${n}'s own address on ${iface} is not in ha.cf (a node never lists itself); pass --address ${iface}=<address>, or run vigil import on ${n} itself`
            : `${n}'s address on ${iface} is not known; pass --address ${n}:${iface}=<address>`;
        if (src) ledger.skip(src, why);
        else ledger.note('(import)', why, 'untranslated');
      }
    }
  }
  const haveKey = auth?.key !== undefined;
  cluster.id = 'vigil';
  if (ha?.udpport) cluster.port = ha.udpport.port;
  timers(ha, cluster, ledger, comments, inputs.haCf?.file);
  if (ha?.autoFailback) {
    cluster.preempt = ha.autoFailback.value !== 'off';
    if (ha.autoFailback.value === 'legacy') ledger.adjust(ha.autoFailback.src, 'legacy fails back like "on": preempt: true');
  } else if (ha) {
    cluster.preempt = true;
    ledger.note(inputs.haCf?.file ?? '(import)', 'no auto_failback: Heartbeat’s default "legacy" fails back, so preempt: true');
  }
  if (haveKey || nodeNames.length > 1) {
    if (haveKey) cluster.key_file = opts.keyFile ?? 'vigil.key';
    else {
      ledger.note(
        inputs.authkeys?.file ?? '(import)',
        `no usable key (${auth?.refused ?? 'no --authkeys given'}): cluster.key_file is required for ${nodeNames.length} nodes, so the output does not validate until you add one`,
        'untranslated',
      );
    }
  }
  cluster.nodes = nodeNames.map((n) => {
    const node: Obj = { name: n };
    if (preferred !== undefined && nodeNames.length > 1) node.priority = n === preferred ? 150 : 100;
    node.links = linkOrder.filter((l) => links.get(l)?.has(n)).map((l) => ({ name: l, address: links.get(l)?.get(n) }));
    return node;
  });
  if (preferred !== undefined && nodeNames.length > 1) comments.set('cluster.nodes', `priority 150: ${preferred}, the preferred node in haresources`);
  const tracks = await pingTracks(ha, resolver, ledger);
  if (tracks.length > 0) cluster.tracks = tracks;

  // ------------------------------------------------------------ haresources
  const vips: Obj[] = [];
  const resources: Obj[] = [];
  const wrappers: WrapperScript[] = [];
  const vipSrc = new Map<string, SourceLine>();
  groups.forEach((g, gi) => {
    if (!nodeNames.includes(g.node)) {
      if (ha) {
        ledger.skip(g.src, `node "${g.node}" is not one of the cluster's nodes (${nodeNames.join(', ')})`);
        return;
      }
      // no ha.cf: a standalone director runs every group
    }
    if (g.node !== preferred && gi > 0) {
      ledger.adjust(g.src, `vigil moves every resource with the active node; this group's preferred node ${g.node} is not honoured (${preferred ?? ''} is preferred)`);
    }
    const problems: string[] = [];
    for (const r of g.resources) {
      if (r.kind === 'address') {
        if (vipSrc.has(r.address)) {
          problems.push(`${r.raw}: VIP ${r.address} is already declared`);
          continue;
        }
        const vip: Obj = { address: r.address };
        const onLink = localInfo?.interfaces.find((i) => inSubnet(r.address, i.address, i.prefix));
        const prefix = r.prefix ?? onLink?.prefix;
        if (prefix !== undefined) vip.prefix = prefix;
        else if (isIP(r.address) === 4) problems.push(`${r.raw}: no netmask given (Heartbeat takes the route's); /32 is used`);
        const iface = r.iface ?? onLink?.name ?? opts.vipInterface;
        if (iface !== undefined) vip.interface = iface;
        else {
          ledger.skip(g.src, `${r.raw}: no interface given (Heartbeat finds it from the routing table at run time); pass --vip-interface IFACE or write ${r.agent}::${r.address}/<prefix>/<iface>`);
        }
        if (r.iface === undefined && iface !== undefined) problems.push(`${r.raw}: interface ${iface} (${onLink ? 'the local interface on that subnet' : '--vip-interface'})`);
        if (r.label !== undefined && r.label.length <= 15) vip.label = r.label;
        if (r.broadcast !== undefined && prefix !== undefined && r.broadcast !== highestAddress(r.address, prefix)) {
          problems.push(`${r.raw}: broadcast ${r.broadcast} is not used (the kernel derives it from the prefix)`);
        }
        vips.push(vip);
        vipSrc.set(r.address, g.src);
        comments.set(`vips.${vips.length - 1}`, `from ${g.src.file}:${g.src.line}: ${r.raw}`);
      } else {
        const s = resourceScript(r.name, r.args, r.raw, !!inputs.ldirectord, exists, opts.wrapperDir ?? 'resources', resources.length, g.src);
        if (s.skip !== undefined) {
          problems.push(`${r.raw}: ${s.skip}`);
          continue;
        }
        if (s.note !== undefined) problems.push(`${r.raw}: ${s.note}`);
        if (s.path !== undefined) {
          resources.push({ path: s.path });
          if (s.wrapper) wrappers.push(s.wrapper);
        }
      }
    }
    if (problems.length > 0) ledger.adjust(g.src, problems.join('; '));
    else ledger.ok(g.src);
  });
  if (resources.length > 0) cluster.resources = resources;

  // ------------------------------------------------------------ services
  const states: ServiceState[] = [];
  const keyOf = (proto: string, vip: string | undefined, port: number | undefined, fwmark: number | undefined): string =>
    fwmark !== undefined ? `fwmark ${fwmark}` : `${proto} ${vip ?? ''}:${port ?? 0}`;
  const byKey = new Map<string, ServiceState>();

  if (ld) await ldirectordServices(ld, states, byKey, keyOf, resolver, ledger);
  if (ipvs) {
    const idx = new Map<string, ServiceState>();
    const dupOf = new Map<string, string>();
    const refKey = (proto: IpvsProto, target: string): string => `${proto} ${target}`;
    for (const s of ipvs.services) {
      if (s.proto === 'sctp') {
        ledger.skip(s.src, 'SCTP virtual services are not supported by vigil (tcp, udp, fwmark)');
        continue;
      }
      const resolved = await resolveService(s.proto, s.target, resolver, s.ipv6);
      if (typeof resolved === 'string') {
        ledger.skip(s.src, resolved);
        continue;
      }
      const key = keyOf(s.proto === 'fwmark' ? 'tcp' : s.proto, resolved.vip, resolved.port, resolved.fwmark);
      if (byKey.has(key)) {
        const why = `the same virtual service is defined in ${byKey.get(key)?.origin ?? ''}, which is used`;
        ledger.skip(s.src, why);
        dupOf.set(refKey(s.proto, s.target), why);
        continue;
      }
      const svc: Service = { name: '', scheduler: 'wlc', forward: 'dr', real_servers: [] };
      if (s.proto !== 'fwmark') {
        svc.protocol = s.proto;
        svc.vip = resolved.vip;
        svc.port = resolved.port;
      } else svc.fwmark = resolved.fwmark;
      if (s.scheduler !== undefined) {
        if ((SCHEDULERS as readonly string[]).includes(s.scheduler)) svc.scheduler = s.scheduler;
        else ledger.adjust(s.src, `scheduler "${s.scheduler}" is not one vigil knows (${SCHEDULERS.join(', ')}); wlc is used`);
      }
      if (s.persistent !== undefined) {
        const p: Obj = { timeout_s: s.persistent };
        if (s.netmask !== undefined) p.netmask = s.netmask;
        svc.persistence = p;
      } else if (s.netmask !== undefined) ledger.adjust(s.src, `-M ${s.netmask} without -p has no effect and is dropped`);
      const st: ServiceState = { svc, src: s.src, candidates: new Map(), origin: `${s.src.file}:${s.src.line}`, ipv6: s.ipv6 };
      states.push(st);
      byKey.set(key, st);
      idx.set(refKey(s.proto, s.target), st);
    }
    for (const r of ipvs.reals) {
      const st = idx.get(refKey(r.service.proto, r.service.target));
      if (!st) {
        ledger.skip(r.src, dupOf.get(refKey(r.service.proto, r.service.target)) ?? `no translated -A line for ${r.service.proto === 'fwmark' ? 'fwmark ' : ''}${r.service.target}`);
        continue;
      }
      const hp = splitHostPort(r.target);
      const address = await resolver.host(hp.host, st.ipv6 ? 6 : undefined);
      if (address === undefined) {
        ledger.skip(r.src, `cannot resolve "${hp.host}"`);
        continue;
      }
      const port = hp.port !== undefined ? resolver.service(hp.port, st.svc.protocol ?? 'tcp') : undefined;
      if (hp.port !== undefined && port === undefined) {
        ledger.skip(r.src, `unknown port "${hp.port}" (not a number, not in /etc/services)`);
        continue;
      }
      addReal(st, { address, port, forward: r.forward, weight: r.weight }, r.src, ledger);
    }
  }

  // ------------------------------------------------------------ mon
  const settle: (() => void)[] = [];
  if (mon) await monChecks(mon, states, byKey, keyOf, resolver, ledger, settle);

  // hoist identical real-server checks to the service
  const services: Service[] = [];
  const usedNames = new Set<string>();
  for (const st of states) {
    st.svc.real_servers.forEach((rs, i) => {
      const cands = (st.candidates.get(i) ?? []).sort((a, b) => b.rank - a.rank);
      const [best, ...rest] = cands;
      if (best) {
        rs.check = best.check;
        best.used.won = true;
      }
      for (const c of rest) {
        ledger.skip(c.src, `real server ${rs.address} of ${st.svc.name || keyOf(st.svc.protocol ?? 'tcp', st.svc.vip, st.svc.port, st.svc.fwmark)} is already checked by ${best?.label ?? ''} (vigil runs one check per real server)`);
      }
    });
    const checks = st.svc.real_servers.map((r) => (r.check ? JSON.stringify(r.check) : ''));
    if (st.svc.real_servers.length > 0 && checks.every((c) => c !== '' && c === checks[0]) && st.svc.check === undefined) {
      st.svc.check = st.svc.real_servers[0]?.check;
      for (const r of st.svc.real_servers) delete r.check;
    }
    st.svc.name = uniqueName(st.svc.name !== '' ? st.svc.name : defaultServiceName(st.svc), usedNames);
    services.push(orderService(st.svc));
    comments.set(`services.${services.length - 1}`, `from ${st.origin}${st.comment !== undefined ? `: ${st.comment}` : ''}`);
    if (st.svc.vip !== undefined && !vipSrc.has(st.svc.vip)) {
      vips.push({ address: st.svc.vip, interface: opts.vipInterface ?? 'lo', managed: false });
      vipSrc.set(st.svc.vip, st.src);
      comments.set(`vips.${vips.length - 1}`, `VIP of ${st.svc.name}: not in haresources, so not managed (vigil forwards on it but never adds or removes it)`);
      ledger.note(st.src.file, `VIP ${st.svc.vip} (${st.svc.name}) is not a haresources address: declared with managed: false; set interface and managed: true for vigil to own it`);
    }
  }

  for (const f of settle) f();

  // maxprocs → health.concurrency
  const config: Obj = { node: local, cluster };
  if (vips.length > 0) config.vips = vips;
  if (services.length > 0) config.services = services;
  if (mon?.maxprocs) {
    config.health = { concurrency: mon.maxprocs.value };
    ledger.adjust(mon.maxprocs.src, 'health.concurrency: vigil runs at most this many probes at once');
  }
  for (const g of mon?.globals ?? []) {
    if (ledger.isDone(g.src)) continue;
    if (g.key === 'mondir') ledger.ok(g.src);
    else ledger.skip(g.src, MON_GLOBALS[g.key] ?? 'a mon server setting with no vigil counterpart');
  }

  const report = ledger.finish();
  const result: ImportResult = { config, comments, wrappers, report, sources };
  if (auth?.key) result.key = auth.key.key;
  return result;
}

const MON_GLOBALS: Record<string, string> = {
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

function timers(ha: HaCf | undefined, cluster: Obj, ledger: Ledger, comments: Map<string, string>, file: string | undefined): void {
  if (!ha) return;
  const notes: string[] = [];
  let interval = ha.keepalive?.ms ?? 1000;
  let deadtime = ha.deadtime?.ms ?? 30_000;
  let warntime = ha.warntime?.ms ?? Math.floor(deadtime / 2);
  const initdead = ha.initdead?.ms ?? (deadtime > 10_000 ? deadtime : deadtime < 6000 ? 12_000 : 2 * deadtime);
  for (const [k, v, d] of [
    ['keepalive', ha.keepalive, '1 s'],
    ['deadtime', ha.deadtime, '30 s'],
    ['warntime', ha.warntime, 'deadtime / 2'],
    ['initdead', ha.initdead, 'from deadtime'],
  ] as const) {
    if (v === undefined) notes.push(`${k} not set: Heartbeat's default (${d})`);
  }
  const where = (t: { src: SourceLine } | undefined): SourceLine | undefined => t?.src;
  if (interval < 5) {
    const s = where(ha.keepalive);
    if (s) ledger.adjust(s, `interval_ms ${interval} is below vigil's minimum; 5 is used`);
    interval = 5;
  }
  if (deadtime < 2 * interval) {
    const s = where(ha.deadtime) ?? where(ha.keepalive);
    const msg = `deadtime ${deadtime} ms is below 2 × keepalive; deadtime_ms ${2 * interval} is used`;
    if (s) ledger.adjust(s, msg);
    else notes.push(msg);
    deadtime = 2 * interval;
  }
  if (warntime < interval) {
    const s = where(ha.warntime);
    const msg = `warntime ${warntime} ms is below keepalive; warntime_ms ${interval} is used`;
    if (s) ledger.adjust(s, msg);
    else notes.push(msg);
    warntime = interval;
  } else if (warntime > deadtime) {
    const s = where(ha.warntime);
    const msg = `warntime ${warntime} ms is above deadtime; warntime_ms ${deadtime} is used`;
    if (s) ledger.adjust(s, msg);
    else notes.push(msg);
    warntime = deadtime;
  }
  cluster.interval_ms = interval;
  cluster.deadtime_ms = deadtime;
  cluster.warntime_ms = warntime;
  cluster.initdead_ms = initdead;
  comments.set('cluster.interval_ms', `Heartbeat's keepalive/deadtime/warntime/initdead${notes.length > 0 ? ` (${notes.join('; ')})` : ''}`);
  for (const n of notes) ledger.note(file ?? '(import)', n);
}

async function pingTracks(ha: HaCf | undefined, resolver: Resolver, ledger: Ledger): Promise<Obj[]> {
  if (!ha) return [];
  const tracks: Obj[] = [];
  const fall = ha.deadping ? Math.max(1, Math.ceil(ha.deadping.ms / 1000)) : undefined;
  const withoutIpfail = ha.ipfail === undefined;
  const ipfailNote = withoutIpfail ? '; without ipfail Heartbeat only watched it, vigil lowers this node’s priority while it does not answer' : '';
  const add = async (target: string, weight: number): Promise<string | undefined> => {
    const address = await resolver.host(target);
    if (address === undefined) return `cannot resolve "${target}"`;
    if (tracks.some((t) => t.target === address)) return `${address} is already tracked`;
    const t: Obj = { type: 'ping', target: address, weight };
    if (fall !== undefined) t.fall = fall;
    tracks.push(t);
    return undefined;
  };
  for (const p of ha.pings) {
    const err = await add(p.target, 50);
    if (err) ledger.skip(p.src, err);
    else if (withoutIpfail) ledger.adjust(p.src, `a ping track${ipfailNote}`);
    else ledger.ok(p.src);
  }
  for (const g of ha.pingGroups) {
    const weight = Math.max(1, Math.floor(50 / g.targets.length));
    const errs: string[] = [];
    for (const t of g.targets) {
      const err = await add(t, weight);
      if (err) errs.push(err);
    }
    const msg = `one ping track per member, weight ${weight} each (Heartbeat counted the group up while any member answered)${ipfailNote}`;
    ledger.adjust(g.src, errs.length > 0 ? `${msg}; ${errs.join('; ')}` : msg);
  }
  if (ha.deadping) {
    if (tracks.length > 0) ledger.adjust(ha.deadping.src, `ping tracks declare a target down after ${fall ?? 1} missed 1 s probes (fall)`);
    else ledger.skip(ha.deadping.src, 'no ping nodes to apply it to');
  }
  if (ha.ipfail && tracks.length === 0) ledger.skip(ha.ipfail, 'ipfail without ping nodes does nothing');
  else if (ha.ipfail) ledger.adjust(ha.ipfail, 'ipfail’s job (fail over to the node that reaches the ping nodes) is done by the ping tracks');
  return tracks;
}

function resourceScript(
  name: string,
  args: string[],
  raw: string,
  ldirectordImported: boolean,
  exists: (p: string) => boolean,
  wrapperDir: string,
  index: number,
  src: SourceLine,
): { path?: string; wrapper?: WrapperScript; note?: string; skip?: string } {
  if (name === 'ldirectord') {
    return ldirectordImported
      ? { skip: 'replaced by vigil itself (the ldirectord.cf virtual services are imported)' }
      : { skip: 'ldirectord manages IPVS, which vigil replaces; import its config with --ldirectord FILE' };
  }
  if (name === 'LVSSyncDaemonSwap') return { skip: 'set dataplane.ipvs.sync_daemon {interface, sync_id}: vigil starts the master or backup sync daemon with the role' };
  if (name === 'SendArp') return { skip: 'vigil sends gratuitous ARP for every VIP at takeover (vips[].garp)' };
  if (name === 'MailTo') return { skip: 'use cluster.notify: a script called with the new role on every transition' };
  let path: string;
  let note: string | undefined;
  if (name.startsWith('/')) path = name;
  else if (exists(`${HB_RESOURCE_DIR}/${name}`)) path = `${HB_RESOURCE_DIR}/${name}`;
  else if (exists(`${INIT_DIR}/${name}`)) path = `${INIT_DIR}/${name}`;
  else {
    path = `${HB_RESOURCE_DIR}/${name}`;
    note = `not found here; Heartbeat looks in ${HB_RESOURCE_DIR} then ${INIT_DIR}, and ${path} is assumed`;
  }
  if (args.length === 0) return note !== undefined ? { path, note } : { path };
  const file = `${name.replace(/[^A-Za-z0-9_.-]/g, '_')}-${index + 1}.sh`;
  const wrapperPath = posix.join(wrapperDir, file);
  const quoted = args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const content = `#!/bin/sh\n# Written by vigil import from ${src.file}:${src.line} (${raw}).\n# Heartbeat ran "${name} <args> start|stop"; vigil runs "<path> start|stop".\nexec ${path} ${quoted} "$@"\n`;
  return {
    path: wrapperPath,
    wrapper: { path: wrapperPath, content },
    note: `${note !== undefined ? `${note}; ` : ''}vigil passes no arguments, so ${wrapperPath} wraps "${name} ${args.join(' ')}"`,
  };
}

async function resolveService(
  proto: IpvsProto | 'tcp' | 'udp',
  target: string,
  resolver: Resolver,
  ipv6: boolean,
): Promise<{ vip?: string; port?: number; fwmark?: number } | string> {
  if (proto === 'fwmark') {
    const n = Number(target);
    return Number.isInteger(n) && n >= 1 ? { fwmark: n } : `fwmark "${target}" is not a positive number`;
  }
  const hp = splitHostPort(target);
  if (hp.port === undefined) return `"${target}" has no port`;
  const vip = await resolver.host(hp.host, ipv6 ? 6 : undefined);
  if (vip === undefined) return `cannot resolve "${hp.host}"`;
  const port = resolver.service(hp.port, proto === 'udp' ? 'udp' : 'tcp');
  if (port === undefined || port < 1) return `unknown port "${hp.port}" (not a number, not in /etc/services)`;
  return { vip, port };
}

function addReal(
  st: ServiceState,
  r: { address: string; port: number | undefined; forward: 'dr' | 'tun' | 'nat'; weight: number },
  src: SourceLine,
  ledger: Ledger,
): number | undefined {
  const svc = st.svc;
  const notes: string[] = [];
  if (svc.real_servers.length === 0) svc.forward = r.forward;
  else if (svc.forward !== r.forward) notes.push(`forward method ${r.forward} differs from the service's ${svc.forward} (vigil sets it per service)`);
  const rs: RealServer = { address: r.address, weight: r.weight };
  if (r.port !== undefined && r.port > 0) {
    if (svc.fwmark !== undefined) {
      /* fwmark real servers take the packet's port */
    } else if (svc.forward !== 'nat' && svc.port !== undefined && r.port !== svc.port) {
      notes.push(`port ${r.port} differs from the service port ${svc.port}, which only NAT can map; the service port is used`);
    } else if (r.port !== svc.port) rs.port = r.port;
  }
  if (svc.real_servers.some((x) => x.address === rs.address && (x.port ?? svc.port) === (rs.port ?? svc.port))) {
    ledger.skip(src, `real server ${rs.address} is already in this service`);
    return undefined;
  }
  svc.real_servers.push(rs);
  if (notes.length > 0) ledger.adjust(src, notes.join('; '));
  else ledger.ok(src);
  return svc.real_servers.length - 1;
}

// ---------------------------------------------------------------- ldirectord

/** ldirectord settings whose values the report never shows. */
const SECRET_KEYS = new Set(['passwd', 'secret']);

const LD_UNSUPPORTED: Record<string, string> = {
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
  fork: 'vigil runs every check in its own process group, concurrently',
  maintenancedir: 'use `vigil drain` / `vigil enable` instead of maintenance files',
  readdquiescent: 'vigil re-adds a quiescent real server by setting its weight back',
  checkcount: 'use failurecount (vigil: fall)',
  connecttimeout: 'use checktimeout',
};

async function ldirectordServices(
  ld: ReturnType<typeof parseLdirectord>,
  states: ServiceState[],
  byKey: Map<string, ServiceState>,
  keyOf: (proto: string, vip: string | undefined, port: number | undefined, fwmark: number | undefined) => string,
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
      for (const l of blockLines) if (!ledger.isDone(l)) ledger.skip(l, `virtual service ${v.target} is not translated: ${resolved}`);
      continue;
    }
    const key = keyOf(proto, resolved.vip, resolved.port, resolved.fwmark);
    if (byKey.has(key)) {
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
        if (f.forward !== undefined) ledger.adjust(fb.src, `sorry_server: forwarded like the service's real servers (the "${f.forward}" method on this line is not used)`);
        else ledger.ok(fb.src);
      }
    }
    const st: ServiceState = { svc, src: v.src, candidates: new Map(), origin: `${v.src.file}:${v.src.line}`, ipv6: v.ipv6 };
    ledger.ok(v.src);
    const comment = s('comment');
    if (comment) {
      st.comment = comment.value;
      take(comment);
    }
    // check
    const check = ldCheck(v, proto, setting, take, ledger);
    for (const r of v.reals) {
      const parsed = parseLdReal(r.value);
      if (typeof parsed === 'string') {
        ledger.skip(r.src, parsed);
        continue;
      }
      const first = await resolver.host(parsed.first, v.ipv6 ? 6 : undefined);
      const last = parsed.last !== undefined ? await resolver.host(parsed.last, v.ipv6 ? 6 : undefined) : undefined;
      if (first === undefined || (parsed.last !== undefined && last === undefined)) {
        ledger.skip(r.src, `cannot resolve "${first === undefined ? parsed.first : parsed.last ?? ''}"`);
        continue;
      }
      const addrs = last !== undefined ? ipv4Range(first, last) : [first];
      if (typeof addrs === 'string') {
        ledger.skip(r.src, addrs);
        continue;
      }
      const port = parsed.port !== undefined ? resolver.service(parsed.port, proto) : undefined;
      if (parsed.port !== undefined && port === undefined) {
        ledger.skip(r.src, `unknown port "${parsed.port}"`);
        continue;
      }
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
    if (check) {
      svc.check = check;
      // a real server with its own request/receive keeps its own check
    }
    states.push(st);
    byKey.set(key, st);
    for (const [k, set] of v.settings) {
      if (ledger.isDone(set.src)) continue;
      if (k === 'comment' || k === 'servicename') ledger.ok(set.src);
      else ledger.skip(SECRET_KEYS.has(k) ? { ...set.src, text: `${k}=<not shown>` } : set.src, LD_UNSUPPORTED[k] ?? `"${k}" is not an ldirectord setting vigil translates`);
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
      const s = timeoutSet ?? intervalSet;
      const msg = `check timeout ${timeout} ms is not below the interval ${interval} ms (vigil never overlaps a probe); timeout_ms ${interval - 1} is used`;
      if (s) ledger.adjust(s.src, msg);
      else ledger.note(v.src.file, `${v.target}: ${msg}`, 'adjusted');
      timeout = interval - 1;
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
    if (ct) ledger.skip(ct.src, 'checktype=off (real servers always down) has no vigil counterpart: set their weights to 0 or remove the service');
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
  // negotiate (and the combined "N" form)
  const http = serviceName === 'http' || serviceName === 'http_proxy' || (serviceName === '' && (port === '80' || port === 'http' || port === '8080'));
  const https = serviceName === 'https' || (serviceName === '' && (port === '443' || port === 'https'));
  if (/^\d+$/.test(type) && ct) ledger.adjust(ct.src, `checktype=${type} (negotiate every ${type}th check, connect otherwise): vigil negotiates on every check`);
  else take(ct);
  if (http || https) {
    take(service);
    const c: Check = { type: https ? 'https' : 'http' };
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
  // negotiate for a protocol vigil has no built-in probe for: connect (ping for UDP) instead
  const udp = proto === 'udp' && !isFwmark(v);
  const c = udp ? ping() : common({ type: 'tcp' });
  const msg = `negotiate for service "${serviceName || `port ${port ?? '?'}`}" has no built-in vigil probe: ${udp ? 'a ping check (as ldirectord does for a UDP connect check)' : 'a TCP connect check'} is used (use an exec check for a protocol-level test)`;
  if (service) ledger.adjust(service.src, msg);
  else if (ct) ledger.adjust(ct.src, msg);
  else ledger.adjust(v.src, msg);
  for (const k of ['request', 'receive', 'virtualhost', 'httpmethod']) {
    const s = v.settings.get(k);
    if (s && !ledger.isDone(s.src)) ledger.skip(s.src, 'only used by the negotiate check, which is replaced by a TCP connect check');
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

async function monChecks(
  mon: MonCf,
  states: ServiceState[],
  byKey: Map<string, ServiceState>,
  keyOf: (proto: string, vip: string | undefined, port: number | undefined, fwmark: number | undefined) => string,
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
      const done = await monService(mon, svc, hosts, states, byKey, keyOf, resolver, ledger, settle);
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
  keyOf: (proto: string, vip: string | undefined, port: number | undefined, fwmark: number | undefined) => string,
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

export function sanitizeName(s: string): string {
  return s
    .trim()
    .replace(/[^A-Za-z0-9_.-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 63)
    .replace(/-+$/, '');
}

function defaultServiceName(s: Service): string {
  if (s.fwmark !== undefined) return `fwmark-${s.fwmark}`;
  return sanitizeName(`${s.protocol ?? 'tcp'}-${(s.vip ?? '').replace(/:/g, '-')}-${s.port ?? 0}`);
}

function uniqueName(name: string, used: Set<string>): string {
  let n = name === '' ? 'service' : name;
  for (let i = 2; used.has(n); i++) n = `${name.slice(0, 59)}-${i}`;
  used.add(n);
  return n;
}

/** Keys in the order an operator reads them. */
function orderService(s: Service): Service {
  const order = ['name', 'protocol', 'vip', 'port', 'fwmark', 'scheduler', 'persistence', 'forward', 'quiescent', 'sorry_server', 'check', 'real_servers'];
  const out: Obj = {};
  for (const k of order) if (s[k] !== undefined) out[k] = s[k];
  return out as Service;
}

function highestAddress(address: string, prefix: number): string | undefined {
  if (isIP(address) !== 4) return undefined;
  const n = address.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  const host = prefix >= 32 ? 0 : (2 ** (32 - prefix)) - 1;
  const b = (n | host) >>> 0;
  return [b >>> 24, (b >>> 16) & 255, (b >>> 8) & 255, b & 255].join('.');
}

