/**
 * Address helpers for the schedulers and persistence: folding an address into the
 * 32-bit value IPVS hashes (`addr_fold`: the IPv4 address, or the XOR of an IPv6
 * address's four words) and masking a client address to its persistence granularity.
 */
import { isIP } from 'node:net';

/** `1.2.3.4` → 0x01020304 (host order, as the kernel's ntohl gives it). */
function ipv4ToInt(a: string): number {
  let n = 0;
  let part = 0;
  for (let i = 0; i < a.length; i++) {
    const c = a.charCodeAt(i);
    if (c === 46) {
      n = (n * 256 + part) >>> 0;
      part = 0;
    } else part = part * 10 + (c - 48);
  }
  return (n * 256 + part) >>> 0;
}

/** The eight 16-bit groups of an IPv6 address (an embedded IPv4 tail is expanded). */
function ipv6Groups(a: string): number[] {
  let s = a;
  const pct = s.indexOf('%');
  if (pct >= 0) s = s.slice(0, pct);
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  const last = s.slice(lastColon + 1);
  if (last.includes('.')) {
    const v4 = ipv4ToInt(last);
    tail = [v4 >>> 16, v4 & 0xffff];
    s = s.slice(0, lastColon + 1) + (s.endsWith('::' + last) ? '' : '0');
    if (s.endsWith(':0')) s = s.slice(0, -2);
  }
  const [head, rest] = s.includes('::') ? (s.split('::') as [string, string]) : [s, undefined];
  const h = head === '' ? [] : head.split(':').map((g) => parseInt(g, 16));
  const r = rest === undefined || rest === '' ? [] : rest.split(':').map((g) => parseInt(g, 16));
  const fill = 8 - tail.length - h.length - r.length;
  const groups = rest === undefined ? [...h, ...tail] : [...h, ...new Array<number>(Math.max(0, fill)).fill(0), ...r, ...tail];
  while (groups.length < 8) groups.push(0);
  return groups.slice(0, 8);
}

/** `::ffff:1.2.3.4` → `1.2.3.4`; anything else unchanged. */
export function unmapV4(a: string): string {
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

/** The 32-bit value IPVS's sh/dh hash over (ip for IPv4; XOR of the 4 words for IPv6). */
export function foldAddress(address: string): number {
  const a = unmapV4(address);
  if (isIP(a) === 4) return ipv4ToInt(a);
  const g = ipv6Groups(a);
  let x = 0;
  for (let i = 0; i < 8; i += 2) x ^= (((g[i] ?? 0) << 16) | (g[i + 1] ?? 0)) >>> 0;
  return x >>> 0;
}

/**
 * A function from a client address to its persistence key: the address masked with the
 * service's netmask (ipvsadm -M; dotted for IPv4, a prefix length for IPv6). Without a
 * netmask every client address is its own key (255.255.255.255 / 128).
 */
export function persistenceMasker(netmask: string | undefined): (address: string) => string {
  let v4mask = 0xffffffff;
  let v6prefix = 128;
  if (netmask !== undefined) {
    if (/^\d{1,3}$/.test(netmask)) {
      v6prefix = Number(netmask);
      v4mask = v6prefix >= 32 ? 0xffffffff : v6prefix === 0 ? 0 : (0xffffffff << (32 - v6prefix)) >>> 0;
    } else v4mask = ipv4ToInt(netmask);
  }
  if (v4mask === 0xffffffff && v6prefix === 128) return unmapV4;
  return (address: string): string => {
    const a = unmapV4(address);
    if (isIP(a) === 4) {
      const n = (ipv4ToInt(a) & v4mask) >>> 0;
      return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
    }
    const g = ipv6Groups(a);
    const out: string[] = [];
    for (let i = 0; i < 8; i++) {
      const bits = Math.max(0, Math.min(16, v6prefix - i * 16));
      const m = bits === 0 ? 0 : (0xffff << (16 - bits)) & 0xffff;
      out.push(((g[i] ?? 0) & m).toString(16));
    }
    return out.join(':');
  };
}
