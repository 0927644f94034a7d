/**
 * Name resolution for imported files: service names through /etc/services (Node has no
 * getservbyname), host names through the system resolver (dns.lookup, so /etc/hosts
 * counts as it does for ipvsadm and mon), each lookup bounded by a timeout.
 */
import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';

export interface Resolver {
  /** A port number for a service name or number; undefined when unknown. */
  service(name: string, proto: 'tcp' | 'udp'): number | undefined;
  /** An address for a host name or address; undefined when it does not resolve. */
  host(name: string, family?: 4 | 6): Promise<string | undefined>;
}

/** `/etc/services` → `name/proto` → port, aliases included. */
export function parseServices(text: string): Map<string, number> {
  const map = new Map<string, number>();
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    const m = /^(\S+)\s+(\d+)\/(\w+)(.*)$/.exec(line);
    if (!m) continue;
    const port = Number(m[2]);
    const proto = (m[3] as string).toLowerCase();
    for (const name of [m[1] as string, ...(m[4] as string).trim().split(/\s+/).filter(Boolean)]) {
      if (!map.has(`${name}/${proto}`)) map.set(`${name}/${proto}`, port);
    }
  }
  return map;
}

export function servicePort(services: Map<string, number>, name: string, proto: 'tcp' | 'udp'): number | undefined {
  if (/^\d+$/.test(name)) {
    const n = Number(name);
    return n >= 0 && n <= 65535 ? n : undefined;
  }
  return services.get(`${name}/${proto}`) ?? services.get(`${name}/${proto === 'tcp' ? 'udp' : 'tcp'}`);
}

export function systemResolver(opts: { servicesFile?: string; timeoutMs?: number } = {}): Resolver {
  let services: Map<string, number>;
  try {
    services = parseServices(readFileSync(opts.servicesFile ?? '/etc/services', 'utf8'));
  } catch {
    services = new Map();
  }
  const timeoutMs = opts.timeoutMs ?? 3000;
  const cache = new Map<string, Promise<string | undefined>>();
  return {
    service: (name, proto) => servicePort(services, name, proto),
    host: (name, family) => {
      if (isIP(name) !== 0) return Promise.resolve(name);
      const k = `${name}/${family ?? 0}`;
      let p = cache.get(k);
      if (!p) {
        p = new Promise<string | undefined>((resolve) => {
          const t = setTimeout(() => resolve(undefined), timeoutMs);
          t.unref();
          lookup(name, family ? { family } : {}).then(
            (r) => {
              clearTimeout(t);
              resolve(r.address);
            },
            () => {
              clearTimeout(t);
              resolve(undefined);
            },
          );
        });
        cache.set(k, p);
      }
      return p;
    },
  };
}

/** What import may learn from the machine it runs on, when that machine is the node. */
export interface LocalHost {
  interfaces: { name: string; address: string; prefix: number }[];
}

export function localHost(): LocalHost {
  const out: LocalHost = { interfaces: [] };
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.internal) continue;
      const prefix = Number(a.cidr?.split('/')[1] ?? (a.family === 'IPv4' ? 32 : 128));
      out.interfaces.push({ name, address: a.address, prefix });
    }
  }
  return out;
}

/** True when `addr` lies in `net/prefix` (IPv4 only; IPv6 compares literally). */
export function inSubnet(addr: string, net: string, prefix: number): boolean {
  if (isIP(addr) !== 4 || isIP(net) !== 4) return addr === net;
  const n = (s: string): number => s.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  if (prefix === 0) return true;
  const mask = (0xffffffff << (32 - prefix)) >>> 0;
  return ((n(addr) & mask) >>> 0) === ((n(net) & mask) >>> 0);
}
