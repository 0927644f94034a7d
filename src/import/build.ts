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
 *   hosts and whose protocol and port are the ones the monitor probes (or exactly the
 *   one an lvs.alert line names); mon's own alerts are reported (monchecks.ts).
 */
import { isIP } from 'node:net';
import { posix } from 'node:path';
import { parseAuthkeys } from './authkeys.js';
import { parseHaCf, type HaCf } from './hacf.js';
import { parseHaresources } from './haresources.js';
import { parseIpvsadm } from './ipvsadm.js';
import { ipvsadmServices } from './ipvsservices.js';
import { parseLdirectord } from './ldirectord.js';
import { ldirectordServices } from './ldservices.js';
import { Ledger, type ReportEntry, type SourceLine } from './ledger.js';
import { MON_GLOBALS, monChecks } from './monchecks.js';
import { parseMonCf } from './moncf.js';
import { keyOf, sanitizeName, type Obj, type Service, type ServiceState } from './model.js';
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

/**
 * haresources resources vigil does itself (reported with what replaces them); every other
 * script becomes a `cluster.resources[]` entry. docs/import-haresources.md lists them.
 */
export const HARESOURCES_REPLACED: Record<string, string> = {
  ldirectord: 'ldirectord manages IPVS, which vigil replaces; import its config with --ldirectord FILE',
  LVSSyncDaemonSwap: 'set dataplane.ipvs.sync_daemon {interface, sync_id}: vigil starts the master or backup sync daemon with the role',
  SendArp: 'vigil sends gratuitous ARP for every VIP at takeover (vips[].garp)',
  MailTo: 'use cluster.notify: a script called with the new role on every transition',
};

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
  const ipvs = inputs.ipvsadm ? parseIpvsadm(inputs.ipvsadm.text, inputs.ipvsadm.file, ledger) : undefined;
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
  // Heartbeat compares node names without regard to case
  for (const g of groups) g.node = nodeNames.find((n) => n.toLowerCase() === g.node.toLowerCase()) ?? g.node;
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
  // Heartbeat kept its generation in /var/lib/heartbeat/hb_generation; vigil's is here
  if (nodeNames.length > 1) cluster.state_file = '/var/lib/vigil/incarnation';
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
        // Heartbeat never starts a group whose node is not in the cluster; carrying its
        // VIPs unmanaged would give a pair that never moves them
        const what = g.resources.map((r) => r.raw).join(' ');
        ledger.error(g.src, `node "${g.node}" is not one of the nodes in ha.cf (${nodeNames.join(', ')}): nothing in this group (${what}) is translated; write the node's name as ha.cf's node line has it`);
        return;
      }
      // no ha.cf: a standalone director runs every group
    }
    if (g.node !== preferred && gi > 0) {
      // Heartbeat ran this group on its own node (active/active); vigil would run it on
      // the active node with every other group
      ledger.error(g.src, `vigil moves every resource with the active node; this group's preferred node ${g.node} is not honoured (${preferred ?? ''} is preferred), so both nodes' groups would run on one`);
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
          // the sync daemon would no longer run until dataplane.ipvs.sync_daemon is set
          if (r.name === 'LVSSyncDaemonSwap') ledger.error(g.src, `${r.raw}: ${s.skip}`);
          else problems.push(`${r.raw}: ${s.skip}`);
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
  const byKey = new Map<string, ServiceState>();

  if (ld) await ldirectordServices(ld, states, byKey, resolver, ledger);
  if (ipvs) await ipvsadmServices(ipvs, states, byKey, resolver, ledger);

  // ------------------------------------------------------------ mon
  const settle: (() => void)[] = [];
  if (mon) await monChecks(mon, states, byKey, resolver, ledger, settle);

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
        const what = `real server ${rs.address} of ${st.svc.name || keyOf(st.svc.protocol ?? 'tcp', st.svc.vip, st.svc.port, st.svc.fwmark)}`;
        // two checks that each took the real server out of the table (mon's lvs.alert):
        // vigil runs one, so a failure only the other one sees would go unnoticed
        if (best && c.rank >= 100 && best.rank >= 100 && JSON.stringify(c.check) !== JSON.stringify(best.check)) {
          ledger.error(c.src, `${what} is also bound by ${best.label} with a different check; vigil runs one check per real server, so this one's failures would not take it out: merge them into one monitor`);
        } else ledger.skip(c.src, `${what} is already checked by ${best?.label ?? ''} (vigil runs one check per real server)`);
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
  if (name === 'ldirectord' && ldirectordImported) return { skip: 'replaced by vigil itself (the ldirectord.cf virtual services are imported)' };
  const replaced = HARESOURCES_REPLACED[name];
  if (replaced !== undefined) return { skip: replaced };
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


