/**
 * The desired forwarding table: a pure function of the config, the health verdicts and
 * the drains. No I/O, no clock; the reconciler calls it on every run.
 *
 * Rules, per virtual service (issue 5, DESIGN.md "Reconcile and dataplanes"):
 *   healthy real server         → its configured weight (0 while drained)
 *   unhealthy real server       → removed; kept with weight 0 when the service is `quiescent`
 *   no real server healthy      → the `sorry_server` alone (weight 1), when one is configured
 *
 * The sorry server's forward method: ipvsadm silently rewrites the port of a `-g`/`-i`
 * destination to the service port (checked in the IPVS VM), so a sorry server whose port
 * differs from the service port is given `nat` (-m). A sorry server on the director's
 * loopback on the service port (127.0.0.1, ::1) is given `-g` whatever the service's
 * method: the kernel delivers it locally, while it refuses NAT to a loopback address for
 * traffic from the network (so a port-mapped local sorry server must use a non-loopback
 * address of the director). Otherwise the service's method.
 */
import { isIP } from 'node:net';
import type { Config, ForwardMethod, ServiceConfig } from '../config/schema.js';
import { canonicalIp, serviceKey } from '../config/validate.js';
import { foldAddress } from '../forwarder/address.js';
import { canonicalOrder } from '../forwarder/maglev.js';
import { realServerId, type Table, type TableRealServer, type TableService } from './table.js';

/** Is this real server healthy? Real servers with no check are healthy. */
export type HealthView = (service: string, address: string, port: number) => boolean;

/** The drained real servers: `drainKey(service, address, port)`. */
export type DrainView = ReadonlySet<string>;

export function drainKey(service: string, address: string, port: number): string {
  return `${service} ${realServerId(address, port)}`;
}

/**
 * The table key of a configured service. Address services use `serviceKey`
 * (`tcp 10.0.0.1:80`). IPVS keys fwmark services by address family and mark only (the
 * protocol plays no part), so their key is `fwmark 7`, or `fwmark 7 ipv6` when the
 * service's real servers are IPv6 (`ipvsadm -A -f 7 -6`).
 */
export function tableKey(s: ServiceConfig): string {
  if (s.fwmark !== undefined) return fwmarkKey(s.fwmark, fwmarkIsV6(s));
  return serviceKey({ protocol: s.protocol, vip: canonicalIp(s.vip as string), port: s.port }) as string;
}

export { canonicalIp };

export function fwmarkKey(mark: number, ipv6: boolean): string {
  return ipv6 ? `fwmark ${mark} ipv6` : `fwmark ${mark}`;
}

function fwmarkIsV6(s: ServiceConfig): boolean {
  const first = s.real_servers[0]?.address ?? s.sorry_server?.address;
  return first !== undefined && isIP(first) === 6;
}

/** The full mask is what IPVS uses when none is given; ipvsadm -S omits it. */
export function normalizeNetmask(mask: string | undefined, ipv6: boolean): string | undefined {
  if (mask === undefined) return undefined;
  if (mask === '255.255.255.255' || mask === '128' || (ipv6 && mask === 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')) return undefined;
  if (!ipv6 && mask === '32') return undefined;
  return mask;
}

/** What the daemon shows per real server in /status. */
export interface RealServerPlan {
  address: string;
  port: number;
  configuredWeight: number;
  healthy: boolean;
  drained: boolean;
  /** The weight in the desired table; null when the real server is not in it. */
  weight: number | null;
}

export interface ServicePlan {
  name: string;
  key: string;
  sorryServerActive: boolean;
  realServers: RealServerPlan[];
}

export interface Plan {
  table: Table;
  services: ServicePlan[];
  /** Keys of every configured service (the only ones the diff may touch). */
  declared: Set<string>;
}

/** The desired table with the reasons behind each weight (for /status). */
export function plan(config: Pick<Config, 'services'>, health: HealthView, drains: DrainView): Plan {
  return new Planner().plan(config, health, drains);
}

interface Planned {
  svc: TableService;
  plan: ServicePlan;
}

/**
 * plan() run again and again (every reconcile), reusing the services whose inputs did
 * not change: the same config object (a reload makes new ones) and the same health and
 * drain verdicts for each of its real servers. Those are still asked for every real
 * server, so the result is always plan()'s; only the objects are shared. A health change
 * in a 10,000-entry table then allocates the one service it changed instead of 3 MB
 * (that garbage is collected during the next `ipvsadm -R`; see SaveParser in ipvsadm.ts).
 * The shared objects are frozen.
 */
export class Planner {
  private memo = new Map<ServiceConfig, Planned>();

  plan(config: Pick<Config, 'services'>, health: HealthView, drains: DrainView): Plan {
    const next = new Map<ServiceConfig, Planned>();
    const table: Table = [];
    const services: ServicePlan[] = [];
    const declared = new Set<string>();
    for (const s of config.services) {
      const before = this.memo.get(s);
      const p = before !== undefined && unchanged(s, before.plan, health, drains) ? before : planService(s, health, drains);
      const key = p.svc.key;
      if (declared.has(key)) continue; // a duplicate is a config error; validate.ts reports it
      declared.add(key);
      next.set(s, p);
      table.push(p.svc);
      services.push(p.plan);
    }
    this.memo = next;
    return { table, services, declared };
  }
}

/** Same health and drain verdicts as when `before` was planned (the config object is the same). */
function unchanged(s: ServiceConfig, before: ServicePlan, health: HealthView, drains: DrainView): boolean {
  const svcPort = s.port ?? 0;
  const rs = before.realServers;
  if (rs.length !== s.real_servers.length) return false;
  for (let i = 0; i < rs.length; i++) {
    const r = s.real_servers[i] as ServiceConfig['real_servers'][number];
    const was = rs[i] as RealServerPlan;
    const port = r.port ?? svcPort;
    if (health(s.name, r.address, port) !== was.healthy) return false;
    const drained = drains.size > 0 && drains.has(drainKey(s.name, was.address, port));
    if (drained !== was.drained) return false;
  }
  return true;
}

function planService(s: ServiceConfig, health: HealthView, drains: DrainView): Planned {
  const key = tableKey(s);
  const ipv6 = s.vip !== undefined ? isIP(s.vip) === 6 : key.endsWith(' ipv6');
  const svcPort = s.port ?? 0;
  const rsPlans: RealServerPlan[] = [];
  const entries: TableRealServer[] = [];
  let anyHealthy = false;
  for (const r of s.real_servers) {
    const port = r.port ?? svcPort;
    const healthy = health(s.name, r.address, port);
    const address = canonicalIp(r.address);
    const drained = drains.size > 0 && drains.has(drainKey(s.name, address, port));
    anyHealthy ||= healthy;
    let weight: number | null;
    if (healthy) weight = drained ? 0 : r.weight;
    else weight = s.quiescent ? 0 : null;
    rsPlans.push({ address, port, configuredWeight: r.weight, healthy, drained, weight });
    if (weight !== null) {
      const entry: TableRealServer = { address, port: tablePort(s, s.forward, port), forward: s.forward, weight };
      // mh keeps a weight-0 real server's slots (ip_vs_mh's last_weight): see table.ts
      if (s.scheduler === 'mh' && weight === 0 && r.weight > 0) entry.configuredWeight = r.weight;
      entries.push(entry);
    }
  }
  // mh: the kernel populates its Maglev table in the order the real servers were added
  // (newest first), so every director adds them in one canonical order, whatever the
  // order of the config (docs/ARCHITECTURE.md, "Connection consistency")
  if (s.scheduler === 'mh') sortCanonically(entries);
  const sorryServerActive = !anyHealthy && s.sorry_server !== undefined;
  let realServers = entries;
  if (sorryServerActive && s.sorry_server) {
    const port = s.sorry_server.port ?? svcPort;
    const forward: ForwardMethod = sorryForward(s, s.sorry_server.address, port);
    realServers = [{ address: canonicalIp(s.sorry_server.address), port: tablePort(s, forward, port), forward, weight: 1 }];
    for (const p of rsPlans) p.weight = null;
  }
  const svc: TableService = {
    key,
    protocol: s.protocol,
    scheduler: s.scheduler,
    realServers,
  };
  if (s.scheduler_flags.length > 0) svc.flags = schedulerFlags(s.scheduler_flags);
  if (s.fwmark !== undefined) svc.fwmark = s.fwmark;
  else {
    svc.vip = canonicalIp(s.vip as string);
    svc.port = s.port as number;
  }
  if (s.persistence) {
    const netmask = normalizeNetmask(s.persistence.netmask, ipv6);
    svc.persistence = netmask === undefined ? { timeoutS: s.persistence.timeout_s } : { timeoutS: s.persistence.timeout_s, netmask };
  }
  for (const r of realServers) Object.freeze(r);
  Object.freeze(realServers);
  if (svc.persistence) Object.freeze(svc.persistence);
  if (svc.flags) Object.freeze(svc.flags);
  for (const p of rsPlans) Object.freeze(p);
  Object.freeze(rsPlans);
  return { svc: Object.freeze(svc), plan: Object.freeze({ name: s.name, key, sorryServerActive, realServers: rsPlans }) };
}

/** Real servers in Maglev's canonical order (by folded address, port, address text). */
function sortCanonically(entries: TableRealServer[]): void {
  const folded = entries.map((r) => ({ address: r.address, fold: foldAddress(r.address), port: r.port }));
  const sorted = canonicalOrder(folded).map((i) => entries[i] as TableRealServer);
  entries.splice(0, entries.length, ...sorted);
}

/** Scheduler flags as ipvsadm -S prints them: sorted, each once. */
export function schedulerFlags(flags: readonly string[]): string[] {
  return [...new Set(flags)].sort();
}

/** `desired(config, health, drains) → Table` (see `plan` for the reasons behind it). */
export function desired(config: Pick<Config, 'services'>, health: HealthView, drains: DrainView): Table {
  return plan(config, health, drains).table;
}

/**
 * ipvsadm sets a `-g`/`-i` destination's port to the service port (except for fwmark
 * services), so the desired table says what the kernel will report.
 */
/**
 * The sorry server's forward method: a port-mapped one is NATed (ipvsadm rewrites a -g/-i
 * port); one on the director's loopback on the service port is delivered locally with -g
 * whatever the service's method, as ldirectord adds `fallback=127.0.0.1:80` (ipvsadm's
 * default method), because the kernel drops NAT to a loopback address for traffic from the
 * network; otherwise the service's method.
 */
export function sorryForward(s: Pick<ServiceConfig, 'fwmark' | 'port' | 'forward'>, address: string, port: number): ForwardMethod {
  if (s.fwmark !== undefined) return s.forward;
  if (port !== (s.port ?? 0)) return 'nat';
  return isLoopback(address) ? 'dr' : s.forward;
}

function isLoopback(address: string): boolean {
  const a = canonicalIp(address);
  return isIP(a) === 6 ? a === '::1' : a.startsWith('127.');
}

function tablePort(s: ServiceConfig, forward: ForwardMethod, port: number): number {
  if (forward === 'nat' || s.fwmark !== undefined) return port;
  return s.port ?? port;
}
