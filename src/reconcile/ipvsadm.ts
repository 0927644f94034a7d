/**
 * ipvsadm text, both ways. Pure.
 *
 * - parseSave: `ipvsadm -S -n` output → Table. Every form ipvsadm 1.31 prints:
 *   `-A -t|-u ADDR:PORT` / `-A -f MARK [-6]`, `-s SCHED`, `-b FLAGS` (mh-fallback,mh-port), `-p [TIMEOUT]`,
 *   `-M NETMASK`, `--pe NAME`, `-o`; `-a ... -r ADDR:PORT -g|-i|-m [--tun-type ...]
 *   -w N [-x N] [-y N]`; IPv6 in brackets. Recorded outputs are in test/fixtures/ipvsadm/.
 * - formatOperations: Operations → `ipvsadm -R` lines (`-A`, `-E`, `-D`, `-a`, `-e`, `-d`).
 * - parseList: `ipvsadm -L -n [--stats|--rate] --exact` → per real server numbers.
 *
 * Table keys: `tcp 10.0.0.1:80`, `udp [2001:db8::1]:53`, `fwmark 7`, `fwmark 7 ipv6`.
 */
import { VigilError } from '../errors.js';
import type { ForwardMethod, Protocol, Scheduler } from '../config/schema.js';
import { fwmarkKey, schedulerFlags } from './desired.js';
import { realServerId, type Operation, type Table, type TableRealServer, type TableService } from './table.js';

export class IpvsadmParseError extends VigilError {
  constructor(
    readonly lineNumber: number,
    readonly line: string,
    message: string,
  ) {
    super('VIGIL_IPVSADM_PARSE', `ipvsadm output line ${lineNumber}: ${message}: "${line}"`);
    this.name = 'IpvsadmParseError';
  }
}

const FORWARD_FLAGS: Record<string, ForwardMethod> = { '-g': 'dr', '-i': 'tun', '-m': 'nat' };
const FLAG_OF: Record<ForwardMethod, string> = { dr: '-g', tun: '-i', nat: '-m' };
/** ipvsadm's default persistence timeout when `-p` has no value. */
const DEFAULT_PERSISTENCE_S = 360;

interface ServiceAddr {
  key: string;
  protocol: Protocol;
  vip?: string;
  port?: number;
  fwmark?: number;
}

/** `10.0.0.1:80` or `[2001:db8::1]:80` → address and port; null when malformed. */
export function splitHostPort(s: string): { address: string; port: number } | null {
  const m = /^\[([0-9A-Fa-f:.]+)\]:(\d+)$/.exec(s) ?? /^([0-9.]+):(\d+)$/.exec(s);
  if (!m) return null;
  const port = Number(m[2]);
  if (port > 65535) return null;
  return { address: (m[1] as string).toLowerCase(), port };
}

/**
 * Parses `ipvsadm -S -n`. A scheduler vigil does not know (fo, ovf, twos) is kept as is
 * on a foreign service; the diff never touches foreign services.
 */
export function parseSave(text: string): Table {
  const table: Table = [];
  const byKey = new Map<string, TableService>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] as string;
    const line = raw.trim();
    if (line === '') continue;
    const fail = (msg: string): never => {
      throw new IpvsadmParseError(i + 1, line, msg);
    };
    const tok = line.split(/\s+/);
    const cmd = tok[0];
    if (cmd !== '-A' && cmd !== '-a') fail('expected a line starting with -A or -a');
    let svc: Partial<ServiceAddr> = {};
    let ipv6Flag = false;
    let scheduler: string | undefined;
    let flags: string[] | undefined;
    let persistence: TableService['persistence'];
    let netmask: string | undefined;
    let rs: { address: string; port: number } | undefined;
    let forward: ForwardMethod | undefined;
    let weight: number | undefined;
    let sctp = false;
    const num = (v: string | undefined, what: string, max: number): number => {
      if (v === undefined || !/^\d+$/.test(v) || Number(v) > max) return fail(`${what} "${v ?? ''}" is not a number`);
      return Number(v);
    };
    for (let j = 1; j < tok.length; j++) {
      const t = tok[j] as string;
      const next = (): string => {
        j += 1;
        const v = tok[j];
        if (v === undefined) fail(`${t} needs a value`);
        return v as string;
      };
      switch (t) {
        case '--sctp-service':
          next();
          sctp = true;
          break;
        case '-t':
        case '--tcp-service':
        case '-u':
        case '--udp-service': {
          const v = next();
          const hp = splitHostPort(v) ?? fail(`"${v}" is not ADDRESS:PORT`);
          const protocol: Protocol = t === '-t' || t === '--tcp-service' ? 'tcp' : 'udp';
          const host = hp.address.includes(':') ? `[${hp.address}]` : hp.address;
          svc = { key: `${protocol} ${host}:${hp.port}`, protocol, vip: hp.address, port: hp.port };
          break;
        }
        case '-f':
        case '--fwmark-service':
          svc = { protocol: 'tcp', fwmark: num(next(), 'fwmark', 0xffffffff) };
          break;
        case '-6':
          ipv6Flag = true;
          break;
        case '-s':
          scheduler = next();
          break;
        case '-p': {
          const v = tok[j + 1];
          if (v !== undefined && /^\d+$/.test(v)) {
            j += 1;
            persistence = { timeoutS: Number(v) };
          } else persistence = { timeoutS: DEFAULT_PERSISTENCE_S };
          break;
        }
        case '-M':
          netmask = next();
          break;
        case '-b':
        case '--sched-flags':
          flags = schedulerFlags(next().split(',').filter((f) => f !== ''));
          break;
        case '--pe':
        case '--tun-type':
        case '--tun-port':
        case '-x':
        case '-y':
          next();
          break;
        case '-o':
        case '--tun-nocsum':
        case '--tun-csum':
        case '--tun-remcsum':
          break;
        case '-r': {
          const v = next();
          rs = splitHostPort(v) ?? fail(`"${v}" is not ADDRESS:PORT`);
          break;
        }
        case '-g':
        case '-i':
        case '-m':
          forward = FORWARD_FLAGS[t];
          break;
        case '-w':
          weight = num(next(), 'weight', 65535);
          break;
        default:
          fail(`unknown option "${t}"`);
      }
    }
    if (sctp) continue; // vigil declares tcp, udp and fwmark services only; SCTP ones are foreign
    if (svc.fwmark !== undefined) svc.key = fwmarkKey(svc.fwmark, ipv6Flag);
    if (svc.key === undefined) fail('no -t, -u or -f');
    const key = svc.key as string;
    if (cmd === '-A') {
      if (scheduler === undefined) fail('no -s scheduler');
      if (byKey.has(key)) fail(`service ${key} listed twice`);
      const s: TableService = { key, protocol: svc.protocol as Protocol, scheduler: scheduler as Scheduler, realServers: [] };
      if (flags !== undefined && flags.length > 0) s.flags = flags;
      if (svc.fwmark !== undefined) s.fwmark = svc.fwmark;
      else {
        s.vip = svc.vip as string;
        s.port = svc.port as number;
      }
      if (persistence) s.persistence = netmask === undefined ? persistence : { ...persistence, netmask };
      byKey.set(key, s);
      table.push(s);
    } else {
      const s = byKey.get(key) ?? fail(`real server of ${key} before its -A line`);
      if (!rs) fail('no -r real server');
      const r = rs as { address: string; port: number };
      const entry: TableRealServer = { address: r.address, port: r.port, forward: forward ?? 'dr', weight: weight ?? 1 };
      s.realServers.push(entry);
    }
  }
  return table;
}

/**
 * `ipvsadm -S -n` parsed again and again (every reconcile reads the table back), reusing
 * the services whose lines did not change since the previous read.
 *
 * Why: a health change touches one line of a 10,000-line table, yet a plain parseSave of
 * the read-back allocates about 26 MB (measured: 2.6 KB a line), and the garbage of one
 * reconcile is collected during the next one, in the middle of its `ipvsadm -R`. Under
 * the IPVS VM's emulation those pauses made vigil's apply 1.2-1.6 × a bare restore.
 *
 * How: the text is cut into blocks, each an `-A` line and the lines up to the next `-A`
 * (ipvsadm prints every service followed by its real servers). A block whose text is
 * byte-for-byte one of the previous read's gets that read's parsed service, frozen and
 * shared; any other block goes through parseSave. Anything irregular (a block that does
 * not parse alone, a service listed twice) falls back to one parseSave of the whole
 * text, which gives the same result, or the same located error, as always.
 */
export class SaveParser {
  private memo = new Map<string, Table>();

  parse(text: string): Table {
    const next = new Map<string, Table>();
    const table: Table = [];
    const keys = new Set<string>();
    let start = 0;
    while (start < text.length) {
      let end = text.indexOf('\n-A ', start);
      end = end === -1 ? text.length : end + 1;
      const block = text.slice(start, end);
      start = end;
      let part = this.memo.get(block) ?? next.get(block);
      if (part === undefined) {
        try {
          part = deepFreeze(parseSave(block));
        } catch {
          return this.fallback(text);
        }
      }
      next.set(block, part);
      for (const svc of part) {
        if (keys.has(svc.key)) return this.fallback(text);
        keys.add(svc.key);
        table.push(svc);
      }
    }
    this.memo = next;
    return table;
  }

  private fallback(text: string): Table {
    this.memo = new Map();
    return parseSave(text);
  }
}

function deepFreeze(table: Table): Table {
  for (const s of table) {
    for (const r of s.realServers) Object.freeze(r);
    Object.freeze(s.realServers);
    if (s.persistence) Object.freeze(s.persistence);
    if (s.flags) Object.freeze(s.flags);
    Object.freeze(s);
  }
  return Object.freeze(table) as Table;
}

/** `-t 10.0.0.1:80`, `-u [2001:db8::1]:53`, `-f 7`, `-f 7 -6` from a table key. */
export function serviceArgs(key: string): string {
  const fw = /^fwmark (\d+)( ipv6)?$/.exec(key);
  if (fw) return fw[2] ? `-f ${fw[1]} -6` : `-f ${fw[1]}`;
  const m = /^(tcp|udp) (\S+)$/.exec(key);
  if (!m) throw new VigilError('VIGIL_BAD_TABLE_KEY', `"${key}" is not a virtual service key (tcp ADDR:PORT, udp ADDR:PORT, fwmark N)`);
  return `${m[1] === 'tcp' ? '-t' : '-u'} ${m[2]}`;
}

function serviceSpec(s: TableService): string {
  let out = `${serviceArgs(s.key)} -s ${s.scheduler}`;
  if (s.flags !== undefined && s.flags.length > 0) out += ` -b ${s.flags.join(',')}`;
  if (s.persistence) {
    out += ` -p ${s.persistence.timeoutS}`;
    if (s.persistence.netmask !== undefined) out += ` -M ${s.persistence.netmask}`;
  }
  return out;
}

function realServerSpec(serviceKey: string, r: TableRealServer): string {
  return `${serviceArgs(serviceKey)} -r ${realServerId(r.address, r.port)} ${FLAG_OF[r.forward]} -w ${r.weight}`;
}

/** One operation as one `ipvsadm -R` line. */
export function formatOperation(op: Operation): string {
  switch (op.kind) {
    case 'add_service':
      return `-A ${serviceSpec(op.service)}`;
    case 'edit_service':
      return `-E ${serviceSpec(op.service)}`;
    case 'delete_service':
      return `-D ${serviceArgs(op.key)}`;
    case 'add_real_server':
      return `-a ${realServerSpec(op.serviceKey, op.realServer)}`;
    case 'edit_real_server':
      return `-e ${realServerSpec(op.serviceKey, op.realServer)}`;
    case 'delete_real_server':
      return `-d ${serviceArgs(op.serviceKey)} -r ${realServerId(op.address, op.port)}`;
  }
}

/** The `ipvsadm -R` batch for a list of operations (newline-terminated). */
export function formatBatch(ops: readonly Operation[]): string {
  let out = '';
  for (const op of ops) out += formatOperation(op) + '\n';
  return out;
}

/** A table as `ipvsadm -S -n` would print it (for logs and tests). */
export function formatSave(table: Table): string {
  const ops: Operation[] = [];
  for (const s of table) {
    ops.push({ kind: 'add_service', service: s });
    for (const r of s.realServers) ops.push({ kind: 'add_real_server', serviceKey: s.key, realServer: r });
  }
  return formatBatch(ops);
}

/** Per real server columns of `ipvsadm -L -n [--stats|--rate] --exact`. */
export type ListColumns = Map<string, Map<string, number[]>>;

/**
 * Parses a listing: service lines (`TCP  10.0.0.1:80 wlc`, `FWM  7 IPv6 rr`) and real
 * server lines (`  -> 10.0.1.2:80  Route 1 0 0`). Returns serviceKey → real server id →
 * the numeric columns of its line (Forward is skipped): plain listing [weight, active,
 * inactive]; --stats [conns, inpkts, outpkts, inbytes, outbytes]; --rate [cps, inpps,
 * outpps, inbps, outbps].
 */
export function parseList(text: string): ListColumns {
  const out: ListColumns = new Map();
  let current: Map<string, number[]> | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const t = line.trim();
    if (t === '' || t.startsWith('IP Virtual Server') || t.startsWith('Prot ') || t.startsWith('-> RemoteAddress')) continue;
    const tok = t.split(/\s+/);
    if (tok[0] === '->') {
      if (!current) throw new IpvsadmParseError(i + 1, t, 'real server before its service');
      const hp = splitHostPort(tok[1] ?? '');
      if (!hp) throw new IpvsadmParseError(i + 1, t, 'not ADDRESS:PORT');
      const nums = tok.slice(2).filter((x) => /^\d+$/.test(x)).map(Number);
      current.set(realServerId(hp.address, hp.port), nums);
      continue;
    }
    let key: string;
    if (tok[0] === 'TCP' || tok[0] === 'UDP') {
      const hp = splitHostPort(tok[1] ?? '');
      if (!hp) throw new IpvsadmParseError(i + 1, t, 'not ADDRESS:PORT');
      key = `${tok[0].toLowerCase()} ${realServerId(hp.address, hp.port)}`;
    } else if (tok[0] === 'FWM') {
      key = fwmarkKey(Number(tok[1]), tok[2] === 'IPv6');
    } else if (tok[0] === 'SCTP') {
      current = new Map(); // not a protocol vigil declares; read past it
      continue;
    } else throw new IpvsadmParseError(i + 1, t, 'expected TCP, UDP, FWM or ->');
    current = new Map();
    out.set(key, current);
  }
  return out;
}
