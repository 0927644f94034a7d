/**
 * Dataplane selection (`dataplane.mode`):
 *   auto       IPVS when the kernel has it (/proc/net/ip_vs), the built-in forwarder otherwise
 *   ipvs       IPVS; a clear start error when the kernel lacks it
 *   forwarder  the built-in forwarder
 */
import { existsSync } from 'node:fs';
import { execa } from 'execa';
import type { Config } from '../config/schema.js';
import { VigilError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { IpvsDataplane } from './ipvs.js';
import type { Dataplane } from './table.js';

export interface SelectDeps {
  logger: Logger;
  metrics: Metrics;
  /** Where the kernel shows IPVS (tests point it elsewhere). */
  procPath?: string;
  /** Builds the built-in forwarder's dataplane. */
  forwarder?: (config: Config) => Dataplane;
}

export interface Selection {
  dataplane: Dataplane;
  /** Why this one (for the start log line). */
  reason: string;
}

export async function selectDataplane(config: Config, deps: SelectDeps): Promise<Selection> {
  const mode = config.dataplane.mode;
  const proc = deps.procPath ?? '/proc/net/ip_vs';
  const ipvs = (): IpvsDataplane => {
    const sync = config.dataplane.ipvs.sync_daemon;
    return new IpvsDataplane({
      ipvsadm: config.dataplane.ipvs.ipvsadm,
      syncDaemon: sync ? { interface: sync.interface, syncId: sync.sync_id } : undefined,
      sloppy: config.cluster.mode === 'ecmp',
      listOrder: config.cluster.mode === 'ecmp',
      logger: deps.logger,
      metrics: deps.metrics,
    });
  };
  const forwarder = (why: string): Selection => {
    if (!deps.forwarder) {
      throw new VigilError('VIGIL_DATAPLANE_UNAVAILABLE', `the built-in forwarder is not available in this build (${why}); use dataplane: ipvs on a kernel with IPVS`);
    }
    const fwmark = config.services.find((s) => s.fwmark !== undefined);
    if (fwmark) {
      throw new VigilError('VIGIL_DATAPLANE_UNAVAILABLE', `service "${fwmark.name}" is an fwmark service, which needs IPVS, but the built-in forwarder was selected (${why})`);
    }
    return { dataplane: deps.forwarder(config), reason: why };
  };
  if (mode === 'forwarder') return forwarder('dataplane: forwarder');
  if (mode === 'auto') {
    return existsSync(proc) ? { dataplane: ipvs(), reason: `dataplane: auto and ${proc} exists` } : forwarder(`dataplane: auto and ${proc} is missing (no IPVS in this kernel)`);
  }
  if (!existsSync(proc)) {
    // ipvsadm loads the ip_vs module on its first call where the kernel has it as a module
    await execa(config.dataplane.ipvs.ipvsadm, ['-S', '-n'], { reject: false, timeout: 10_000 }).catch(() => undefined);
    if (!existsSync(proc)) {
      throw new VigilError(
        'VIGIL_IPVS_UNAVAILABLE',
        `dataplane: ipvs, but this kernel has no IPVS (${proc} is missing and loading ip_vs failed); load the ip_vs module, or use dataplane: auto or forwarder`,
      );
    }
  }
  return { dataplane: ipvs(), reason: 'dataplane: ipvs' };
}
