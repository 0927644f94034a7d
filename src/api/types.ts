/**
 * What the API serves and what it can ask the daemon to do. The daemon implements both;
 * the API knows nothing else about the subsystems.
 */
import type { EcmpStatus } from '../ecmp/announcer.js';

export type { EcmpStatus };

export type Role = 'init' | 'standby' | 'active' | 'maintenance';

export interface LinkStatus {
  name: string;
  local: string;
  remote: string;
  up: boolean;
  rttMs: number | null;
  lastHeardMsAgo: number | null;
}

export interface PeerStatus {
  name: string;
  alive: boolean;
  role: Role | 'unknown';
  priority: number | null;
  links: LinkStatus[];
  /** cluster.mode ecmp only: the peer's forwarding-table digest compared with ours (src/ecmp/peer-tables.ts). */
  table?: PeerTableStatus;
}

export interface PeerTableStatus {
  /** The first 16 hex digits of the peer's table digest, from its last heartbeat; null when dead or it sends none (an older vigil). */
  digest: string | null;
  /** How many VIPs the peer announces to its routers; null when not known. */
  announced: number | null;
  /** true when equal to ours, false when different, null when either is unknown. */
  match: boolean | null;
  /** ISO time `match` took its current value; null while unknown. */
  since: string | null;
  /** Different for longer than the grace: this peer is named (status warning, metric, alert). */
  mismatched: boolean;
}

/** cluster.mode ecmp only: this director's own forwarding table as it carries it in its heartbeats. */
export interface OwnTableStatus {
  /** `sha256:<hex>` of the desired table (src/reconcile/digest.ts); the heartbeats carry its first 16 hex digits. Null before the first reconcile. */
  digest: string | null;
  /** VIPs this director announces. */
  announced: number;
  /** How long a peer's digest may differ before it is named (ms). */
  graceMs: number;
}

export interface VipStatus {
  address: string;
  prefix: number;
  interface: string;
  owned: boolean;
  /** Name of the node believed to hold it, or null when nobody does. */
  owner: string | null;
}

export interface RealServerStatus {
  address: string;
  port: number;
  /** Weight in force in the dataplane (0 when drained or quiescent-down). */
  weight: number;
  configuredWeight: number;
  healthy: boolean;
  drained: boolean;
  lastCheck: { at: string; ok: boolean; reason: string; durationMs: number } | null;
  connections: { active: number; inactive: number; total: number } | null;
  stats?: {
    bytesIn: number;
    bytesOut: number;
    packetsIn: number;
    packetsOut: number;
    /** Current connection (session) rate, per second. */
    cps: number;
    bpsIn: number;
    bpsOut: number;
    /** Highest cps seen since the daemon started (at counters reads). */
    cpsMax?: number;
    /** Failed connects to this real server (the forwarder counts them; null for IPVS, which cannot). */
    connectErrors?: number | null;
  } | null;
  /** Up/down history since the daemon started (HAProxy's Chk, status duration, Dwntme). */
  state?: { failedChecks: number; inStateS: number; downtimeS: number };
}

export interface ServiceStatus {
  name: string;
  /** `fwmark` for a firewall-mark service (IPVS matches the mark alone, whatever the protocol). */
  protocol: 'tcp' | 'udp' | 'fwmark';
  vip: string | null;
  port: number | null;
  fwmark: number | null;
  scheduler: string;
  forward: string;
  dataplane: 'ipvs' | 'forwarder' | 'none';
  /** ipvsadm -p timeout and -M netmask; absent or null when the service is not persistent. */
  persistence?: { timeoutS: number; netmask: string | null } | null;
  /** A failed real server stays with weight 0 instead of being removed. */
  quiescent?: boolean;
  sorryServerActive: boolean;
  realServers: RealServerStatus[];
}

export interface HistoryEntry {
  at: string;
  kind: 'role' | 'health' | 'config' | 'control' | 'reconcile';
  message: string;
}

export interface StatusDoc {
  node: string;
  version: string;
  role: Role;
  priority: number;
  effectivePriority: number;
  uptimeSeconds: number;
  ready: boolean;
  peers: PeerStatus[];
  vips: VipStatus[];
  services: ServiceStatus[];
  history: HistoryEntry[];
  /** cluster.mode ecmp only: per VIP announced or withdrawn and why, BGP and BFD sessions from BIRD. */
  ecmp?: EcmpStatus;
  /** cluster.mode ecmp only: this director's table digest (peers[].table compares theirs with it). */
  table?: OwnTableStatus;
}

export interface DrainResult {
  service: string;
  address: string;
  port: number;
  /** 'drained' when connections reached 0, 'deadline' when the deadline passed first. */
  outcome: 'drained' | 'deadline' | 'started';
  remainingConnections: number;
  waitedMs: number;
}

/** Control operations, each answered with a short human message or a thrown VigilError. */
export interface Control {
  takeover(): Promise<string>;
  standby(): Promise<string>;
  maintenance(on: boolean): Promise<string>;
  drain(service: string, address: string, port: number | undefined, deadlineMs: number): Promise<DrainResult>;
  enable(service: string, address: string, port: number | undefined): Promise<string>;
  reload(): Promise<string>;
}
