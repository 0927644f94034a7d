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
  /** ipvsadm -p [timeout] and -M netmask. */
  persistence?: { timeoutS: number; netmask?: string };
  realServers: TableRealServer[];
}

export type Table = TableService[];
