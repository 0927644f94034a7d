/**
 * Whether this director announces each VIP (cluster.mode ecmp): a pure function of the
 * director's state and its desired forwarding table. The announcer (announcer.ts) feeds
 * it and performs the result through BIRD; nothing here touches the system.
 *
 * A VIP is announced only when the director can serve it:
 *
 *   stopping ─► withdrawn "stopping"          (SIGTERM, vigil stop)
 *   maintenance ─► withdrawn "maintenance"    (vigil maintenance on)
 *   standby ─► withdrawn "standby"            (vigil standby; vigil takeover undoes it)
 *   dataplane not ready ─► withdrawn "dataplane not ready"
 *   a service on the VIP with no real server of weight > 0
 *                ─► withdrawn "service NAME has no healthy real server"
 *   otherwise ─► announced "serving"
 *
 * The first matching line wins, so the reason names the most important cause. A real
 * server counts when the desired table gives it a weight above 0: healthy, not drained,
 * not weight 0 in the config (a sorry server in the table counts too: it serves).
 */
import { canonicalIp, serviceKey } from '../config/validate.js';
import type { Table } from '../reconcile/table.js';

export interface DirectorState {
  stopping: boolean;
  maintenance: boolean;
  standby: boolean;
  /** The dataplane is up and the first reconcile loaded the table. */
  dataplaneReady: boolean;
}

export interface VipDecision {
  address: string;
  announce: boolean;
  reason: string;
}

/** Per VIP: the services on it with the count of real servers that can take traffic. */
export interface VipServices {
  address: string;
  services: Array<{ name: string; serving: number }>;
}

/** The director-wide reasons a VIP is withdrawn, in decide()'s order, and the one it is announced for. */
export const DIRECTOR_WITHDRAW_REASONS = ['stopping', 'maintenance', 'standby', 'dataplane not ready'] as const;
/** The announcer's own reason (announcer.ts): a reload is about to remove the VIP. */
export const RELOAD_WITHDRAW_REASON = 'removed by reload';
export const ANNOUNCE_REASON = 'serving';
export const noHealthyReason = (service: string): string => `service ${service} has no healthy real server`;

/**
 * Every (to, reason) vigil_ecmp_announce_changes_total can count for a VIP with these
 * services: primed at 0 so the first change after a restart is seen by increase().
 */
export function announceChangeLabels(services: readonly string[]): Array<{ to: 'announced' | 'withdrawn'; reason: string }> {
  return [
    { to: 'announced', reason: ANNOUNCE_REASON },
    ...[...DIRECTOR_WITHDRAW_REASONS, RELOAD_WITHDRAW_REASON, ...services.map(noHealthyReason)].map((reason) => ({ to: 'withdrawn' as const, reason })),
  ];
}

export function decide(state: DirectorState, vips: readonly VipServices[]): VipDecision[] {
  const director = state.stopping
    ? 'stopping'
    : state.maintenance
      ? 'maintenance'
      : state.standby
        ? 'standby'
        : !state.dataplaneReady
          ? 'dataplane not ready'
          : undefined;
  return vips.map((v) => {
    if (director !== undefined) return { address: v.address, announce: false, reason: director };
    const empty = v.services.find((s) => s.serving === 0);
    if (empty) return { address: v.address, announce: false, reason: noHealthyReason(empty.name) };
    return { address: v.address, announce: true, reason: ANNOUNCE_REASON };
  });
}

/**
 * The services of each VIP from the config, counted in the desired table (fwmark
 * services have no VIP and are not counted). A service missing from the table counts 0.
 */
export function vipServices(
  vips: ReadonlyArray<{ address: string }>,
  services: ReadonlyArray<{ name: string; vip?: string | undefined; port?: number | undefined; protocol: string }>,
  table: Table | undefined,
): VipServices[] {
  const serving = new Map<string, number>();
  for (const s of table ?? []) serving.set(s.key, s.realServers.filter((r) => r.weight > 0).length);
  return vips.map((v) => ({
    address: v.address,
    services: services
      .filter((s) => s.vip !== undefined && canonicalIp(s.vip) === canonicalIp(v.address))
      .map((s) => ({ name: s.name, serving: serving.get(serviceKey(s) ?? '') ?? 0 })),
  }));
}

/** True when two decision lists announce the same set (the BIRD file needs no rewrite). */
export function sameAnnounced(a: readonly VipDecision[], b: readonly VipDecision[]): boolean {
  const set = (d: readonly VipDecision[]): string => d.filter((x) => x.announce).map((x) => x.address).sort().join(',');
  return set(a) === set(b);
}
