/**
 * The `services[]` part of /status: config + the reconciler's last plan + health's last
 * checks + the dataplane's counters. Pure; the daemon passes the pieces in.
 */
import type { RealServerStatus, ServiceStatus } from '../api/types.js';
import type { Config } from '../config/schema.js';
import { canonicalIp, tableKey, type Plan } from './desired.js';
import type { RealServerFigures } from './figures.js';
import { realServerId, type Dataplane, type RealServerCounters } from './table.js';

export interface HealthInfo {
  healthy: boolean;
  lastCheck: RealServerStatus['lastCheck'];
}

export interface StatusInputs {
  config: Pick<Config, 'services'>;
  plan: Plan | undefined;
  dataplane: Dataplane['kind'] | 'none';
  /** Health's view of one real server; undefined when it has no check (then healthy). */
  health: (service: string, address: string, port: number) => HealthInfo | undefined;
  counters: Map<string, Map<string, RealServerCounters>>;
  /** Failed checks, time in state, downtime, max rate (src/reconcile/figures.ts); optional. */
  figures?: (service: string, address: string, port: number, healthy: boolean, cps: number | undefined) => RealServerFigures;
}

export function serviceStatuses(i: StatusInputs): ServiceStatus[] {
  return i.config.services.map((s) => {
    const key = tableKey(s);
    const sp = i.plan?.services.find((x) => x.name === s.name && x.key === key);
    const counters = i.counters.get(key);
    const realServers = s.real_servers.map((r): RealServerStatus => {
      const port = r.port ?? s.port ?? 0;
      const address = canonicalIp(r.address);
      const rp = sp?.realServers.find((x) => x.address === address && x.port === port);
      const h = i.health(s.name, r.address, port);
      const c = counters?.get(realServerId(address, s.forward === 'nat' || s.fwmark !== undefined ? port : (s.port ?? port)));
      const f = i.figures?.(s.name, r.address, port, h?.healthy ?? true, c?.cps);
      return {
        address: r.address,
        port,
        weight: rp?.weight ?? 0,
        configuredWeight: r.weight,
        healthy: rp?.healthy ?? h?.healthy ?? true,
        drained: rp?.drained ?? false,
        lastCheck: h?.lastCheck ?? null,
        connections: c ? { active: c.active, inactive: c.inactive, total: c.connections } : null,
        stats: c
          ? {
              bytesIn: c.bytesIn,
              bytesOut: c.bytesOut,
              packetsIn: c.packetsIn,
              packetsOut: c.packetsOut,
              cps: c.cps,
              bpsIn: c.bpsIn,
              bpsOut: c.bpsOut,
              ...(f ? { cpsMax: f.cpsMax } : {}),
              connectErrors: c.connectErrors ?? null,
            }
          : null,
        ...(f ? { state: { failedChecks: f.failedChecks, inStateS: f.inStateS, downtimeS: f.downtimeS } } : {}),
      };
    });
    return {
      name: s.name,
      protocol: s.fwmark !== undefined ? 'fwmark' : s.protocol,
      vip: s.vip ?? null,
      port: s.port ?? null,
      fwmark: s.fwmark ?? null,
      scheduler: s.scheduler,
      forward: s.forward,
      dataplane: i.dataplane,
      persistence: s.persistence ? { timeoutS: s.persistence.timeout_s, netmask: s.persistence.netmask ?? null } : null,
      quiescent: s.quiescent,
      sorryServerActive: sp?.sorryServerActive ?? false,
      realServers,
    };
  });
}
