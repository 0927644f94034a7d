/**
 * The forwarding table: what the reconciler wants the dataplane to hold, and what a
 * dataplane reports it holds. The same shape drives IPVS (ipvsadm) and the built-in
 * forwarder, so both go through one desired → diff → apply path.
 *
 * Identity: a virtual service is keyed like ipvsadm names it (`tcp 10.0.0.1:80`,
 * `udp [2001:db8::1]:53`, `fwmark 7`); a real server within it by `address:port`.
 */
import type { ForwardMethod, Protocol, Scheduler } from '../config/schema.js';

export interface TableRealServer {
  address: string;
  port: number;
  /** IPVS -g / -i / -m. */
  forward: ForwardMethod;
  weight: number;
  /**
   * mh only: the configured weight of a real server held at weight 0 (failed in a
   * quiescent service, or drained). The forwarder keeps its Maglev slots, as the kernel
   * keeps last_weight, so only its own flows move (ipvsadm never sees this field).
   */
  configuredWeight?: number;
}

export interface TableService {
  /** `tcp 10.0.0.1:80` | `fwmark 7` (see serviceKey in config/validate.ts). */
  key: string;
  protocol: Protocol;
  /** For address services; absent for fwmark services. */
  vip?: string;
  port?: number;
  fwmark?: number;
  scheduler: Scheduler;
  /** ipvsadm -b (`mh-fallback`, `mh-port`), sorted; absent when none. */
  flags?: string[];
  /** ipvsadm -p [timeout] and -M netmask. */
  persistence?: { timeoutS: number; netmask?: string };
  realServers: TableRealServer[];
}

export type Table = TableService[];

/** One change to a dataplane's table; the diff produces the minimal list of these. */
export type Operation =
  | { kind: 'add_service'; service: TableService }
  | { kind: 'edit_service'; service: TableService }
  | { kind: 'delete_service'; key: string }
  | { kind: 'add_real_server'; serviceKey: string; realServer: TableRealServer }
  | { kind: 'edit_real_server'; serviceKey: string; realServer: TableRealServer }
  | { kind: 'delete_real_server'; serviceKey: string; address: string; port: number };

/** Per real server counters, as `ipvsadm -L -n --stats --rate` shows them. */
export interface RealServerCounters {
  active: number;
  inactive: number;
  /** Connections (TCP) or flows (UDP) scheduled to it since start. */
  connections: number;
  bytesIn: number;
  bytesOut: number;
  packetsIn: number;
  packetsOut: number;
  /** Rates over the last few seconds. */
  cps: number;
  bpsIn: number;
  bpsOut: number;
  /** Failed connects to it (the forwarder counts these; IPVS cannot see them). */
  connectErrors?: number;
}

export type DataplaneRole = 'init' | 'standby' | 'active' | 'maintenance';

/**
 * The port every dataplane implements (IPVS through ipvsadm, the built-in forwarder).
 * The reconciler is its only caller: desired → read() → diff → apply(ops) → read() again.
 */
export interface Dataplane {
  readonly kind: 'ipvs' | 'forwarder';
  /**
   * read() gives each service's real servers in the kernel's list order, newest first
   * (IPVS with `ipvsadm -L -n --nosort`, cluster.mode ecmp); the diff then keeps mh services in
   * canonical add order (diff.ts).
   */
  readonly listOrder?: boolean;
  start(): Promise<void>;
  close(): Promise<void>;
  /** The table as the dataplane holds it now: all services, vigil's and foreign ones. */
  read(): Promise<Table>;
  /** Applies the operations as one batch. The reconciler verifies by reading back. */
  apply(ops: Operation[]): Promise<void>;
  /** Follows the cluster role (forwarder: listen only while active; ipvs: sync daemon). */
  setRole(role: DataplaneRole): Promise<void>;
  /** serviceKey → `address:port` → counters, where the dataplane can tell. */
  counters(): Promise<Map<string, Map<string, RealServerCounters>>>;
}

/** `10.0.0.1:80`, `[2001:db8::1]:80` — a real server's identity within a service. */
export function realServerId(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}
