/**
 * ldirectord.cf: `key=value` globals at the start of a line; `virtual=` (or `virtual6=`)
 * opens a block of lines indented by at least four spaces (a tab counts four), each
 * `key=value`; `#` starts a comment anywhere. Values keep their quotes here.
 */
import { Ledger, splitLines, type SourceLine } from './ledger.js';

export interface LdSetting {
  key: string;
  value: string;
  src: SourceLine;
}

export interface LdVirtual {
  /** `ip:port`, `[v6]:port`, `host:service` or a fwmark number. */
  target: string;
  ipv6: boolean;
  src: SourceLine;
  reals: LdSetting[];
  settings: Map<string, LdSetting>;
  /** Settings given twice: the last wins, the earlier ones are reported. */
  overridden: LdSetting[];
}

export interface LdirectordCf {
  globals: Map<string, LdSetting>;
  virtuals: LdVirtual[];
}

export function unquote(s: string): string {
  const m = /^"(.*)"$/.exec(s.trim());
  return m ? (m[1] as string) : s.trim();
}

export function parseLdirectord(text: string, file: string, ledger: Ledger): LdirectordCf {
  const lines = splitLines(text, file, { comment: 'anywhere' });
  ledger.register(lines);
  const out: LdirectordCf = { globals: new Map(), virtuals: [] };
  let current: LdVirtual | undefined;
  for (const src of lines) {
    const m = /^([A-Za-z0-9_]+)\s*=\s*(.*)$/.exec(src.text);
    const inBlock = current !== undefined && src.indent >= 4;
    if (!m) {
      ledger.skip(src, 'expected key=value');
      continue;
    }
    const key = (m[1] as string).toLowerCase();
    const value = (m[2] as string).trim();
    const setting = { key, value, src };
    if (!inBlock) current = undefined;
    if (key === 'virtual' || key === 'virtual6') {
      if (src.indent >= 4) {
        ledger.skip(src, 'virtual= must start at the beginning of a line');
        continue;
      }
      current = { target: value, ipv6: key === 'virtual6', src, reals: [], settings: new Map(), overridden: [] };
      out.virtuals.push(current);
      continue;
    }
    if (current) {
      if (key === 'real' || key === 'real6') current.reals.push(setting);
      else {
        const prev = current.settings.get(key);
        if (prev) current.overridden.push(prev);
        current.settings.set(key, setting);
      }
    } else {
      const prev = out.globals.get(key);
      if (prev) ledger.skip(prev.src, `${key} is given again on line ${src.line}, which wins`);
      out.globals.set(key, setting);
    }
  }
  for (const v of out.virtuals) for (const o of v.overridden) ledger.skip(o.src, `${o.key} is given again in this virtual service; the last one wins`);
  return out;
}

/**
 * `real=ip[->ip2][:port] gate|masq|ipip [weight] ["request", "receive"]`.
 * A string when the line cannot be read.
 */
export interface LdReal {
  first: string;
  last?: string;
  port?: string;
  forward: 'dr' | 'nat' | 'tun';
  weight: number;
  request?: string;
  receive?: string;
  /** `l:N` / `u:N`: the real server's lower and upper connection thresholds. */
  lower?: number;
  upper?: number;
}

export function parseLdReal(value: string): LdReal | string {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?:->(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+))?(?::{1,2}([A-Za-z0-9_-]+))?\s+(gate|masq|ipip)(?:\s+(\d+))?(?:\s+"(.*)"[, ]\s*"(.*)")?(?:\s+l:(\d+))?(?:\s+u:(\d+))?\s*$/.exec(value);
  if (!m) return 'expected "real=<address>[-><address>][:port] gate|masq|ipip [weight] ["request", "receive"] [l:N] [u:N]" (ldirectord refuses to start on this line)';
  const strip = (s: string): string => s.replace(/^\[(.*)\]$/, '$1');
  const r: LdReal = {
    first: strip(m[1] as string),
    forward: m[4] === 'masq' ? 'nat' : m[4] === 'ipip' ? 'tun' : 'dr',
    weight: m[5] !== undefined ? Number(m[5]) : 1,
  };
  if (m[2] !== undefined) r.last = strip(m[2]);
  if (m[3] !== undefined) r.port = m[3];
  if (m[6] !== undefined) r.request = m[6].startsWith('/') ? m[6] : `/${m[6]}`;
  if (m[7] !== undefined) r.receive = m[7];
  if (m[8] !== undefined) r.lower = Number(m[8]);
  if (m[9] !== undefined) r.upper = Number(m[9]);
  return r;
}

/** `fallback=ip[:port] [gate|masq|ipip]`. */
export function parseLdFallback(value: string): { host: string; port?: string; forward?: string } | string {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::([A-Za-z0-9_-]+))?(?:\s+(gate|masq|ipip))?\s*$/.exec(value);
  if (!m) return 'expected "fallback=<address>[:port] [gate|masq|ipip]"';
  const out: { host: string; port?: string; forward?: string } = { host: (m[1] as string).replace(/^\[(.*)\]$/, '$1') };
  if (m[2] !== undefined) out.port = m[2];
  if (m[3] !== undefined) out.forward = m[3];
  return out;
}
