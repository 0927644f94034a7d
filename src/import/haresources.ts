/**
 * haresources: each logical line is a resource group, `<preferred-node> <resource>...`,
 * continued onto the next line by a trailing backslash; `#` starts a comment line.
 * A resource is `name::arg1::arg2`; a bare IP address means `IPaddr::<address>`.
 * IPaddr/IPaddr2 take `ip[/prefix[/iface[/broadcast]]]` (the third part is the
 * broadcast address when it looks like one) or the `name=value` form
 * (`ip=`, `cidr_netmask=`, `nic=`, `broadcast=`, `iflabel=`).
 */
import { isIP } from 'node:net';
import { Ledger, splitLines, type SourceLine } from './ledger.js';

export interface HaAddress {
  kind: 'address';
  agent: string;
  address: string;
  prefix?: number;
  iface?: string;
  label?: string;
  broadcast?: string;
  raw: string;
}

export interface HaScript {
  kind: 'script';
  name: string;
  args: string[];
  raw: string;
}

export type HaResource = HaAddress | HaScript;

export interface HaGroup {
  node: string;
  resources: HaResource[];
  src: SourceLine;
}

export interface ParsedAddress {
  address: string;
  prefix?: number;
  iface?: string;
  label?: string;
  broadcast?: string;
}

/** Parses IPaddr/IPaddr2 arguments; a string when they are not an address. */
export function parseIpaddrArgs(args: string[]): ParsedAddress | string {
  let address: string | undefined;
  let prefix: string | undefined;
  let iface: string | undefined;
  let broadcast: string | undefined;
  let label: string | undefined;
  if (args.length > 0 && args.every((a) => a.includes('='))) {
    for (const a of args) {
      const [k, ...v] = a.split('=');
      const val = v.join('=');
      if (k === 'ip') address = val;
      else if (k === 'cidr_netmask' || k === 'netmask') prefix = val;
      else if (k === 'nic') iface = val;
      else if (k === 'broadcast') broadcast = val;
      else if (k === 'iflabel') label = val;
      else return `unknown IPaddr parameter "${k}"`;
    }
  } else {
    const [first, ...extra] = args;
    if (first === undefined) return 'no address given';
    const parts = [first, ...extra].join('/').split('/');
    address = parts[0];
    prefix = parts[1];
    const third = parts[2];
    const fourth = parts[3];
    if (third !== undefined && isIP(third) !== 0) broadcast = third;
    else {
      iface = third;
      broadcast = fourth;
    }
    if (parts.length > 4) return `too many parts in "${first}"`;
  }
  if (address === undefined || isIP(address) === 0) return `"${address ?? ''}" is not an IP address`;
  const out: ParsedAddress = { address };
  if (prefix !== undefined && prefix !== '') {
    const p = /^\d+$/.test(prefix) ? Number(prefix) : dottedToPrefix(prefix);
    if (p === undefined || p > (isIP(address) === 6 ? 128 : 32)) return `"${prefix}" is not a prefix length or netmask`;
    out.prefix = p;
  }
  if (iface !== undefined && iface !== '') {
    // Heartbeat accepts eth0:1 as an interface with an alias label
    const [dev, alias] = iface.split(':');
    out.iface = dev as string;
    if (alias !== undefined) out.label = iface;
  }
  if (label !== undefined) out.label = `${out.iface ?? ''}:${label}`;
  if (broadcast !== undefined && broadcast !== '') {
    if (isIP(broadcast) === 0) return `"${broadcast}" is not a broadcast address`;
    out.broadcast = broadcast;
  }
  return out;
}

export function dottedToPrefix(s: string): number | undefined {
  if (isIP(s) !== 4) return undefined;
  const n = s.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  let bits = 0;
  for (let i = 31; i >= 0 && (n >>> i) & 1; i--) bits++;
  return ((0xffffffff << (32 - bits)) >>> 0) === n || (bits === 0 && n === 0) ? bits : undefined;
}

export function parseHaresources(text: string, file: string, ledger: Ledger): HaGroup[] {
  const lines = splitLines(text, file, { comment: 'leading', continuation: true });
  ledger.register(lines);
  const groups: HaGroup[] = [];
  for (const src of lines) {
    const [node, ...tokens] = src.text.split(/\s+/);
    if (node === undefined || tokens.length === 0) {
      ledger.skip(src, 'a resource group needs a node name and at least one resource');
      continue;
    }
    const resources: HaResource[] = [];
    let bad: string | undefined;
    for (const tok of tokens) {
      const [name, ...args] = tok.split('::');
      const n = name as string;
      if (isIP(tok.split('/')[0] as string) !== 0) {
        const a = parseIpaddrArgs([tok]);
        if (typeof a === 'string') bad = `${tok}: ${a}`;
        else resources.push({ kind: 'address', agent: 'IPaddr', raw: tok, ...a });
      } else if (n === 'IPaddr' || n === 'IPaddr2' || n === 'IPv6addr') {
        // an IPv6 address holds "::" itself: only the name=value form splits on it
        const rest = tok.slice(n.length + 2);
        const a = parseIpaddrArgs(rest.includes('=') ? args : [rest]);
        if (typeof a === 'string') bad = `${tok}: ${a}`;
        else resources.push({ kind: 'address', agent: n, raw: tok, ...a });
      } else {
        resources.push({ kind: 'script', name: n, args, raw: tok });
      }
    }
    if (bad !== undefined) {
      ledger.skip(src, bad);
      continue;
    }
    groups.push({ node, resources, src });
  }
  return groups;
}
