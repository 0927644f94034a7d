/**
 * `ipvsadm -S` (or `ipvsadm-save`) output: one command per line, `-A` for a virtual
 * service and `-a` for a real server, with numeric addresses (`-S -n`) or names
 * (`-A -t www.example.com:http`). Addresses stay unresolved here; the builder resolves
 * names. Long options (`--add-service`, `--tcp-service`, ...) are accepted too.
 */
import { Ledger, splitLines, type SourceLine } from './ledger.js';

export type IpvsProto = 'tcp' | 'udp' | 'sctp' | 'fwmark';

export interface IpvsServiceRef {
  proto: IpvsProto;
  /** `host:port` as written, or the fwmark number. */
  target: string;
}

export interface IpvsService extends IpvsServiceRef {
  scheduler?: string;
  /** Persistence timeout in seconds (`-p` alone means 300). */
  persistent?: number;
  netmask?: string;
  ipv6: boolean;
  src: SourceLine;
}

export interface IpvsReal {
  service: IpvsServiceRef;
  /** `host:port` as written. */
  target: string;
  forward: 'dr' | 'tun' | 'nat';
  weight: number;
  src: SourceLine;
}

export interface IpvsRules {
  services: IpvsService[];
  reals: IpvsReal[];
}

const ALIASES: Record<string, string> = {
  '--add-service': '-A', '--edit-service': '-E', '--add-server': '-a', '--edit-server': '-e',
  '--tcp-service': '-t', '--udp-service': '-u', '--fwmark-service': '-f', '--sctp-service': '--sctp',
  '--scheduler': '-s', '--persistent': '-p', '--netmask': '-M', '--real-server': '-r',
  '--gatewaying': '-g', '--ipip': '-i', '--masquerading': '-m', '--weight': '-w',
  '--u-threshold': '-x', '--l-threshold': '-y', '--sched-flags': '-b', '--clear': '-C', '--ipv6': '-6',
};

/** Options vigil has no counterpart for. */
const UNSUPPORTED: Record<string, string> = {
  '-x': 'upper connection thresholds (-x) are not supported by vigil',
  '-y': 'lower connection thresholds (-y) are not supported by vigil',
  '-b': 'scheduler flags (-b) are not supported by vigil',
  '--pe': 'persistence engines (--pe) are not supported by vigil',
  '--tun-type': 'tunnel types other than ipip are not supported by vigil',
  '--tun-port': 'tunnel types other than ipip are not supported by vigil',
  '--tun-nocsum': 'tunnel types other than ipip are not supported by vigil',
  '--tun-csum': 'tunnel types other than ipip are not supported by vigil',
  '--tun-remcsum': 'tunnel types other than ipip are not supported by vigil',
};

export function parseIpvsadmSave(text: string, file: string, ledger: Ledger): IpvsRules {
  const lines = splitLines(text, file, { comment: 'leading' });
  ledger.register(lines);
  const out: IpvsRules = { services: [], reals: [] };
  for (const src of lines) {
    const tokens = src.text.split(/\s+/).flatMap((t) => {
      const eq = /^(--[a-z-]+)=(.*)$/.exec(t);
      return eq ? [eq[1] as string, eq[2] as string] : [t];
    });
    const opts = new Map<string, string>();
    let problem: string | undefined;
    for (let i = 0; i < tokens.length; i++) {
      const raw = tokens[i] as string;
      const t = ALIASES[raw] ?? raw;
      const next = tokens[i + 1];
      if (UNSUPPORTED[t] !== undefined) {
        problem = UNSUPPORTED[t];
        if (next !== undefined && !next.startsWith('-')) i++;
        continue;
      }
      if (['-A', '-E', '-a', '-e', '-g', '-i', '-m', '-C', '-6'].includes(t)) {
        opts.set(t, '');
      } else if (t === '-p') {
        if (next !== undefined && /^\d+$/.test(next)) {
          opts.set(t, next);
          i++;
        } else opts.set(t, '300');
      } else if (['-t', '-u', '-f', '--sctp', '-s', '-M', '-r', '-w'].includes(t)) {
        if (next === undefined) {
          problem = `${raw} needs a value`;
          break;
        }
        opts.set(t, next);
        i++;
      } else {
        problem = `unknown option "${raw}"`;
      }
    }
    if (opts.has('-C')) {
      ledger.skip(src, 'vigil never clears the table; it only touches the virtual services it declares');
      continue;
    }
    const isService = opts.has('-A') || opts.has('-E');
    const isReal = opts.has('-a') || opts.has('-e');
    if (!isService && !isReal) {
      ledger.skip(src, 'not an -A (virtual service) or -a (real server) line');
      continue;
    }
    const proto: IpvsProto | undefined = opts.has('-t') ? 'tcp' : opts.has('-u') ? 'udp' : opts.has('-f') ? 'fwmark' : opts.has('--sctp') ? 'sctp' : undefined;
    const target = opts.get('-t') ?? opts.get('-u') ?? opts.get('-f') ?? opts.get('--sctp');
    if (proto === undefined || target === undefined) {
      ledger.skip(src, 'no -t, -u or -f names the virtual service');
      continue;
    }
    if (proto === 'fwmark' && !/^\d+$/.test(target)) {
      ledger.skip(src, `fwmark "${target}" is not a number`);
      continue;
    }
    if (problem !== undefined) ledger.adjust(src, `${problem}; the rest of the line is translated`);
    if (isService) {
      const svc: IpvsService = { proto, target, ipv6: opts.has('-6') || target.startsWith('['), src };
      const s = opts.get('-s');
      if (s !== undefined) svc.scheduler = s;
      const p = opts.get('-p');
      if (p !== undefined) svc.persistent = Number(p);
      const mask = opts.get('-M');
      if (mask !== undefined) svc.netmask = mask;
      out.services.push(svc);
      if (problem === undefined) ledger.ok(src);
    } else {
      const r = opts.get('-r');
      if (r === undefined) {
        ledger.skip(src, 'an -a line needs -r <real server>');
        continue;
      }
      const w = opts.get('-w');
      const weight = w === undefined ? 1 : Number(w);
      if (!Number.isInteger(weight) || weight < 0 || weight > 65535) {
        ledger.skip(src, `weight "${w ?? ''}" is not 0-65535`);
        continue;
      }
      out.reals.push({
        service: { proto, target },
        target: r,
        forward: opts.has('-m') ? 'nat' : opts.has('-i') ? 'tun' : 'dr',
        weight,
        src,
      });
      if (problem === undefined) ledger.ok(src);
    }
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
