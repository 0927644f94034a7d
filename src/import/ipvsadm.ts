/**
 * ipvsadm rules: `ipvsadm -S` (or `ipvsadm-save`) output, a rules file for `ipvsadm -R`,
 * or a shell script's `ipvsadm ...` command lines — one command per line, with or
 * without the leading `ipvsadm` (or its path). Every table command is kept, in order,
 * so the builder can apply the sequence as the kernel would (src/import/ipvsservices.ts):
 * `-A`/`-E`/`-D` add, edit, delete a virtual service, `-a`/`-e`/`-d` a real server,
 * `-C` clears the table. Addresses stay unresolved here; the builder resolves names.
 * Long options (`--add-service`, `--tcp-service`, `--scheduler=wrr`, ...) are accepted.
 *
 * IPVSADM_OPTIONS is the one table of what each option becomes or why it is refused;
 * docs/import-ipvsadm.md is checked against it by a unit test.
 */
import { Ledger, splitLines, type SourceLine } from './ledger.js';

export type IpvsProto = 'tcp' | 'udp' | 'sctp' | 'fwmark';
export type IpvsOp = 'A' | 'E' | 'D' | 'a' | 'e' | 'd' | 'C';

export interface IpvsServiceRef {
  proto: IpvsProto;
  /** `host:port` as written, or the fwmark number. */
  target: string;
}

/** One table command, as written; the kernel's defaults are applied by the builder. */
export interface IpvsCommand {
  op: IpvsOp;
  /** Absent only for -C. */
  service?: IpvsServiceRef;
  ipv6: boolean;
  /** -A/-E: `-s` (absent: the kernel's default, wlc). */
  scheduler?: string;
  /** -A/-E: persistence timeout in seconds (`-p` alone: ipvsadm's default, 360). */
  persistent?: number;
  /** -A/-E: `-M`. */
  netmask?: string;
  /** -a/-e/-d: `-r host[:port]` as written. */
  real?: string;
  /** -a/-e: `-g` (default), `-i`, `-m`. */
  forward: 'dr' | 'tun' | 'nat';
  /** -a/-e: `-w` (default 1). */
  weight: number;
  /** Options on the line that vigil cannot carry over, each reported on its own. */
  refused: { option: string; reason: string }[];
  src: SourceLine;
}

/** ipvsadm's default persistence timeout (`-p` without a value): 360 s in ipvsadm 1.31. */
export const IPVSADM_DEFAULT_PERSISTENCE = 360;

export interface IpvsadmOption {
  /** The short form (or the long one when there is none). */
  option: string;
  long?: string;
  /** What the option takes. */
  arg: 'none' | 'value' | 'optional number';
  /** What it becomes in vigil.yaml. */
  becomes?: string;
  /** Why vigil refuses it (an error line: the output would not do what the input did). */
  refused?: string;
}

/** Every ipvsadm option the import knows: what it becomes, or why it is refused. */
export const IPVSADM_OPTIONS: readonly IpvsadmOption[] = [
  { option: '-A', long: '--add-service', arg: 'none', becomes: 'a `services[]` entry (the kernel refuses a service that exists: error)' },
  { option: '-E', long: '--edit-service', arg: 'none', becomes: 'replaces the service’s scheduler and persistence, unset ones back to the defaults, as the kernel does (a service that does not exist: error)' },
  { option: '-D', long: '--delete-service', arg: 'none', becomes: 'removes the service and its real servers (one that does not exist: error)' },
  { option: '-a', long: '--add-server', arg: 'none', becomes: 'a `real_servers[]` entry (the service must exist; a duplicate real server: error)' },
  { option: '-e', long: '--edit-server', arg: 'none', becomes: 'replaces the real server’s forwarding method and weight, unset ones back to -g and 1 (one that does not exist: error)' },
  { option: '-d', long: '--delete-server', arg: 'none', becomes: 'removes the real server (one that does not exist: error)' },
  { option: '-C', long: '--clear', arg: 'none', becomes: 'removes every service defined above it in the file (vigil itself never clears services it does not declare: reported)' },
  { option: '-t', long: '--tcp-service', arg: 'value', becomes: '`protocol: tcp`, `vip`, `port` (names through the resolver and /etc/services)' },
  { option: '-u', long: '--udp-service', arg: 'value', becomes: '`protocol: udp`, `vip`, `port`' },
  { option: '-f', long: '--fwmark-service', arg: 'value', becomes: '`fwmark`' },
  { option: '--sctp', long: '--sctp-service', arg: 'value', refused: 'SCTP virtual services are not supported by vigil (tcp, udp, fwmark)' },
  { option: '-s', long: '--scheduler', arg: 'value', becomes: '`scheduler` (rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh; default wlc as the kernel’s)' },
  { option: '-p', long: '--persistent', arg: 'optional number', becomes: `\`persistence.timeout_s\` (\`-p\` alone: ${IPVSADM_DEFAULT_PERSISTENCE}, ipvsadm's default)` },
  { option: '-M', long: '--netmask', arg: 'value', becomes: '`persistence.netmask` (without -p the kernel ignores it: reported)' },
  { option: '-r', long: '--real-server', arg: 'value', becomes: '`real_servers[].address`, `port` (no port, or -g/-i: the service port, as the kernel does)' },
  { option: '-g', long: '--gatewaying', arg: 'none', becomes: '`forward: dr` (the default)' },
  { option: '-i', long: '--ipip', arg: 'none', becomes: '`forward: tun`' },
  { option: '-m', long: '--masquerading', arg: 'none', becomes: '`forward: nat`' },
  { option: '-w', long: '--weight', arg: 'value', becomes: '`real_servers[].weight` (default 1)' },
  { option: '-6', long: '--ipv6', arg: 'none', becomes: 'an IPv6 fwmark service (addresses resolved as IPv6)' },
  { option: '-x', long: '--u-threshold', arg: 'value', refused: 'upper connection thresholds (-x) are not supported by vigil: the real server would take connections past it' },
  { option: '-y', long: '--l-threshold', arg: 'value', refused: 'lower connection thresholds (-y) are not supported by vigil' },
  { option: '-b', long: '--sched-flags', arg: 'value', refused: 'scheduler flags (-b, e.g. sh-port, sh-fallback, mh-port) are not supported by vigil: the scheduler would hash differently' },
  { option: '--pe', arg: 'value', refused: 'persistence engines (--pe sip) are not supported by vigil: persistence would follow the client address, not the Call-ID' },
  { option: '-o', long: '--ops', arg: 'none', refused: 'one-packet scheduling (-o) is not supported by vigil' },
  { option: '--tun-type', arg: 'value', refused: 'tunnel types other than ipip are not supported by vigil' },
  { option: '--tun-port', arg: 'value', refused: 'tunnel types other than ipip are not supported by vigil' },
  { option: '--tun-nocsum', arg: 'none', refused: 'tunnel checksum options are not supported by vigil' },
  { option: '--tun-csum', arg: 'none', refused: 'tunnel checksum options are not supported by vigil' },
  { option: '--tun-remcsum', arg: 'none', refused: 'tunnel checksum options are not supported by vigil' },
];

/** Commands that are not table edits, and what replaces them. */
export const IPVSADM_OTHER_COMMANDS: Record<string, string> = {
  '-S': 'a listing, not a table edit',
  '--save': 'a listing, not a table edit',
  '-L': 'a listing, not a table edit',
  '-l': 'a listing, not a table edit',
  '--list': 'a listing, not a table edit',
  '-Z': 'resets counters, not a table edit',
  '--zero': 'resets counters, not a table edit',
  '-R': 'reads rules from stdin; give that rules file to --ipvsadm-save instead',
  '--restore': 'reads rules from stdin; give that rules file to --ipvsadm-save instead',
  '--set': 'IPVS connection timeouts are not set by vigil (set them with ipvsadm --set at boot)',
  '--start-daemon': 'set dataplane.ipvs.sync_daemon {interface, sync_id}: vigil starts the master or backup sync daemon with the role',
  '--stop-daemon': 'vigil stops the sync daemon itself with the role',
};

const OPS: Record<string, IpvsOp> = { '-A': 'A', '-E': 'E', '-D': 'D', '-a': 'a', '-e': 'e', '-d': 'd', '-C': 'C' };
const BY_NAME = new Map<string, IpvsadmOption>();
for (const o of IPVSADM_OPTIONS) {
  BY_NAME.set(o.option, o);
  if (o.long !== undefined) BY_NAME.set(o.long, o);
}

/** Parses the file into table commands; lines that are not table commands are reported. */
export function parseIpvsadm(text: string, file: string, ledger: Ledger): IpvsCommand[] {
  const lines = splitLines(text, file, { comment: 'leading', continuation: true });
  ledger.register(lines);
  const out: IpvsCommand[] = [];
  for (const src of lines) {
    let tokens = src.text.split(/\s+/).flatMap((t) => {
      const eq = /^(--[a-z-]+)=(.*)$/.exec(t);
      return eq ? [eq[1] as string, eq[2] as string] : [t];
    });
    // a script's command line: `ipvsadm ...`, `/sbin/ipvsadm ...`
    if (/(^|\/)ipvsadm$/.test(tokens[0] ?? '')) tokens = tokens.slice(1);
    const other = tokens.find((t) => IPVSADM_OTHER_COMMANDS[t] !== undefined);
    if (other !== undefined) {
      ledger.skip(src, IPVSADM_OTHER_COMMANDS[other] as string);
      continue;
    }
    const opts = new Map<string, string>();
    const refused: { option: string; reason: string }[] = [];
    let problem: string | undefined;
    for (let i = 0; i < tokens.length && problem === undefined; i++) {
      const raw = tokens[i] as string;
      const o = BY_NAME.get(raw);
      const next = tokens[i + 1];
      if (!o) {
        problem = raw.startsWith('-') ? `unknown option "${raw}"` : `unexpected "${raw}"`;
        break;
      }
      let value = '';
      if (o.arg === 'value') {
        if (next === undefined) problem = `${raw} needs a value`;
        else {
          value = next;
          i++;
        }
      } else if (o.arg === 'optional number' && next !== undefined && /^\d+$/.test(next)) {
        value = next;
        i++;
      }
      // the kernel's defaults, as `ipvsadm -S` prints them, are no change
      const isDefault = (o.option === '--tun-type' && value === 'ipip') || ((o.option === '-x' || o.option === '-y') && value === '0');
      if (o.refused !== undefined && o.option !== '--sctp' && !isDefault) refused.push({ option: value !== '' ? `${raw} ${value}` : raw, reason: o.refused });
      else opts.set(o.option, value);
    }
    if (problem !== undefined) {
      ledger.error(src, `${problem}: ipvsadm would refuse this line`);
      continue;
    }
    const ops = [...opts.keys()].filter((k) => OPS[k] !== undefined);
    if (ops.length !== 1) {
      ledger.error(src, ops.length === 0 ? 'no command (-A, -E, -D, -a, -e, -d or -C): ipvsadm would refuse this line' : `more than one command (${ops.join(' ')}): ipvsadm would refuse this line`);
      continue;
    }
    const op = OPS[ops[0] as string] as IpvsOp;
    const cmd: IpvsCommand = { op, ipv6: opts.has('-6'), forward: opts.has('-m') ? 'nat' : opts.has('-i') ? 'tun' : 'dr', weight: 1, refused, src };
    if (op !== 'C') {
      const protos = (['-t', '-u', '-f', '--sctp'] as const).filter((k) => opts.has(k));
      if (protos.length !== 1) {
        ledger.error(src, protos.length === 0 ? 'no -t, -u or -f names the virtual service' : 'more than one of -t, -u, -f names the virtual service');
        continue;
      }
      const k = protos[0] as '-t' | '-u' | '-f' | '--sctp';
      const proto: IpvsProto = k === '-t' ? 'tcp' : k === '-u' ? 'udp' : k === '-f' ? 'fwmark' : 'sctp';
      const target = opts.get(k) as string;
      if (proto === 'fwmark' && !/^\d+$/.test(target)) {
        ledger.error(src, `fwmark "${target}" is not a number: ipvsadm would refuse this line`);
        continue;
      }
      cmd.service = { proto, target };
      if (target.startsWith('[')) cmd.ipv6 = true;
    }
    const s = opts.get('-s');
    if (s !== undefined) cmd.scheduler = s;
    if (opts.has('-p')) cmd.persistent = opts.get('-p') === '' ? IPVSADM_DEFAULT_PERSISTENCE : Number(opts.get('-p'));
    const mask = opts.get('-M');
    if (mask !== undefined) cmd.netmask = mask;
    const r = opts.get('-r');
    if (r !== undefined) cmd.real = r;
    if ((op === 'a' || op === 'e' || op === 'd') && r === undefined) {
      ledger.error(src, `-${op} needs -r <real server>: ipvsadm would refuse this line`);
      continue;
    }
    const w = opts.get('-w');
    if (w !== undefined) {
      const weight = /^\d+$/.test(w) ? Number(w) : NaN;
      if (!(weight >= 0 && weight <= 2147483647)) {
        ledger.error(src, `weight "${w}" is not a number: ipvsadm would refuse this line`);
        continue;
      }
      if (weight > 65535) {
        ledger.error(src, `weight ${weight} is above vigil's 65535`);
        continue;
      }
      cmd.weight = weight;
    }
    out.push(cmd);
  }
  return out;
}

/** `10.0.0.1:80` → host 10.0.0.1, port "80"; `[2001:db8::1]:http`; `name` → no port. */
export function splitHostPort(s: string): { host: string; port?: string } {
  const v6 = /^\[([^\]]+)\](?::(.+))?$/.exec(s);
  if (v6) return v6[2] !== undefined ? { host: v6[1] as string, port: v6[2] } : { host: v6[1] as string };
  const i = s.lastIndexOf(':');
  if (i < 0 || s.indexOf(':') !== i) return { host: s };
  return { host: s.slice(0, i), port: s.slice(i + 1) };
}
