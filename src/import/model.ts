/**
 * The shapes the import builds (the YAML's own names) and the helpers the service
 * sources (ipvsadm, ldirectord, mon's lvs.alert) share.
 */
import { splitHostPort, type IpvsProto } from './ipvsadm.js';
import type { Ledger, SourceLine } from './ledger.js';
import type { Resolver } from './resolve.js';

export type Obj = Record<string, unknown>;
export interface Check extends Obj {
  type: string;
}
export interface RealServer extends Obj {
  address: string;
  port?: number;
  weight: number;
  check?: Check;
}
export interface Service extends Obj {
  name: string;
  protocol?: 'tcp' | 'udp';
  vip?: string;
  port?: number;
  fwmark?: number;
  scheduler: string;
  forward: 'dr' | 'tun' | 'nat';
  real_servers: RealServer[];
}

export interface ServiceState {
  svc: Service;
  src: SourceLine;
  /** Check candidates per real server, best chosen at the end. */
  candidates: Map<number, { check: Check; rank: number; src: SourceLine; label: string; used: { won: boolean } }[]>;
  origin: string;
  ipv6: boolean;
  /** ldirectord's comment=, carried as a YAML comment. */
  comment?: string;
}

/** A virtual service's identity across sources: `tcp 10.0.0.1:80`, `fwmark 3`. */
export function keyOf(proto: string, vip: string | undefined, port: number | undefined, fwmark: number | undefined): string {
  return fwmark !== undefined ? `fwmark ${fwmark}` : `${proto} ${vip ?? ''}:${port ?? 0}`;
}

export async function resolveService(
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

export function addReal(
  st: ServiceState,
  r: { address: string; port: number | undefined; forward: 'dr' | 'tun' | 'nat'; weight: number },
  src: SourceLine,
  ledger: Ledger,
): number | undefined {
  const svc = st.svc;
  const notes: string[] = [];
  if (svc.real_servers.length === 0) svc.forward = r.forward;
  else if (svc.forward !== r.forward) {
    ledger.error(src, `real server ${r.address} is forwarded by ${r.forward} but the service's first real server by ${svc.forward}: vigil sets one forwarding method per service, so it would be forwarded by ${svc.forward}`);
  }
  const rs: RealServer = { address: r.address, weight: r.weight };
  if (r.port !== undefined && r.port > 0) {
    if (svc.fwmark !== undefined) {
      /* fwmark real servers take the packet's port */
    } else if (svc.forward !== 'nat' && svc.port !== undefined && r.port !== svc.port) {
      notes.push(`port ${r.port} becomes the service port ${svc.port}: direct routing and tunnelling cannot map ports (the kernel does the same)`);
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

export function sanitizeName(s: string): string {
  return s
    .trim()
    .replace(/[^A-Za-z0-9_.-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 63)
    .replace(/-+$/, '');
}
