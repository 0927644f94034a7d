/**
 * Messages between the daemon (supervisor.ts) and the cluster process (process.ts) over
 * the IPC channel of `child_process.fork` (serialization: advanced, so a Config — plain
 * data — crosses as it is).
 */
import type { PeerStatus, Role, VipStatus } from '../api/types.js';
import type { Config } from '../config/schema.js';
import type { RoleEvent } from './cluster.js';

export type ClusterCommand = 'takeover' | 'standby' | 'maintenance-on' | 'maintenance-off';

export interface ClusterSnapshot {
  role: Role;
  elected: boolean;
  priority: number;
  effectivePriority: number;
  serving: boolean;
  peers: PeerStatus[];
  vips: VipStatus[];
}

export interface WireError {
  message: string;
  code?: string;
  status?: number;
}

export type ToCluster =
  | { type: 'start'; config: Config; env: NodeJS.ProcessEnv; leaseMs: number }
  /** Renewed every interval: the daemon is alive; serving = its dataplane can serve. */
  | { type: 'lease'; serving: boolean; why?: string }
  /**
   * cluster.mode ecmp: the desired-table digest (`sha256:<hex>`) and the announced-VIP count,
   * sent whenever either changes (and again after the cluster process restarts); carried
   * in the heartbeats (wire.ts version 3) and compared with the peers' (Cluster.setTable).
   */
  | { type: 'table'; digest: string; announced: number }
  | { type: 'command'; id: number; command: ClusterCommand }
  | { type: 'reload'; id: number; config: Config }
  | { type: 'metrics'; id: number }
  | { type: 'close'; why: string };

export type FromCluster =
  | { type: 'hello'; pid: number }
  | { type: 'started'; ok: true; pid: number }
  | { type: 'started'; ok: false; error: WireError }
  | { type: 'role'; event: RoleEvent }
  | { type: 'snapshot'; snapshot: ClusterSnapshot }
  | { type: 'reply'; id: number; ok: true; message: string }
  | { type: 'reply'; id: number; ok: false; error: WireError }
  | { type: 'closed'; why: string };
