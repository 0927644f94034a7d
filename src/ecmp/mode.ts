/**
 * cluster.mode ecmp, wired into the daemon (src/daemon.ts calls these, nothing else):
 *
 * - The cluster keeps running for its heartbeats (peer liveness, and the table digests:
 *   followTable below, peer-tables.ts), but sees no VIPs: in this mode the VIPs sit on
 *   ecmp.vip_interface on every director at once and are announced through BIRD, not
 *   moved by ARP (clusterView).
 * - The dataplane is active on every director whatever the election says (the forwarder
 *   listens, IPVS holds the table); the role no longer drives it.
 * - The announcer (announcer.ts) follows every applied reconcile and the control commands.
 */
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Reconciler } from '../reconcile/reconciler.js';
import { IpVipPort } from '../vip/port.js';
import { EcmpAnnouncer } from './announcer.js';
import { BirdControl, writeAtomic } from './bird.js';
import { NOT_ECMP } from '../cluster/wire.js';

export const isEcmp = (config: Config): boolean => config.cluster.mode === 'ecmp';

/** The config the cluster runner gets: in ecmp mode without VIPs (the announcer owns them). */
export function clusterView(config: Config): Config {
  return isEcmp(config) ? { ...config, vips: [] } : config;
}

/** Refuses a reload that switches cluster.mode (the dataplane, VIPs and BIRD would all change hands). */
export function modeChangeProblem(from: Config, to: Config): string | undefined {
  return from.cluster.mode === to.cluster.mode ? undefined : `reload cannot change cluster.mode (${from.cluster.mode} → ${to.cluster.mode}); restart instead`;
}

export interface EcmpWiring {
  config: () => Config;
  logger: Logger;
  metrics: Metrics;
  reconciler: Reconciler;
  /** The cluster (process): carries the table digest and announced count in its heartbeats. */
  cluster: { setTable(digest: string, announced: number): void };
}

/**
 * Keeps the heartbeats' table current: the reconciler's digest (emitted when the desired
 * table changes, before it is applied) and the announced-VIP count (after every include
 * file BIRD accepted). Returns the function that sends it (the announcer calls it too).
 */
export function followTable(w: EcmpWiring, announced: () => number): () => void {
  const send = (): void => {
    const d = w.reconciler.digest();
    if (d !== undefined) w.cluster.setTable(d, announced());
  };
  w.reconciler.on('digest', send);
  w.reconciler.on('reconciled', send);
  send();
  return send;
}

/** Makes the dataplane active, builds the announcer on the real BIRD and `ip`, starts it. */
export async function startEcmp(w: EcmpWiring): Promise<EcmpAnnouncer> {
  const e = w.config().cluster.ecmp;
  let announcer: EcmpAnnouncer | undefined;
  const sendTable = followTable(w, () => announcer?.announcedCount() ?? NOT_ECMP);
  const control = new BirdControl({ socket: e.bird_socket, birdc: e.birdc, timeoutMs: e.birdc_timeout_ms });
  announcer = new EcmpAnnouncer({
    config: w.config,
    bird: {
      writeInclude: writeAtomic,
      configure: () => control.configure(),
      protocols: () => control.protocols(),
      bfdSessions: () => control.bfdSessions(),
    },
    vipPort: new IpVipPort(),
    table: () => w.reconciler.current?.table,
    dataplaneReady: () => w.reconciler.ready,
    logger: w.logger.child({ component: 'ecmp' }),
    metrics: w.metrics,
    onApplied: () => sendTable(),
  });
  const a = announcer;
  w.reconciler.on('reconciled', () => void a.request());
  // the VIPs must be on the interface before the forwarder binds to them
  await a.start();
  await w.reconciler.setRole('active');
  await a.request();
  return a;
}
