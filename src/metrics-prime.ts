/**
 * Series that exist before their first event. A Prometheus counter that appears with its
 * first increment makes `increase()` blind to that increment (there is no earlier sample
 * to compare with), so the first failover, reconcile failure or probe overrun after a
 * restart would alert nobody. The daemon calls primeConfigMetrics() at start and after
 * every applied reload (every label set the config makes known gets its 0), and
 * exportPlanMetrics() after every reconcile (per real server: weight in force, drain,
 * sorry server; the forwarder's per-real-server counters). Labelled counters left out,
 * on purpose: `vigil_cluster_transitions_total` (from × to × free-text reason) and
 * `vigil_api_requests_total` (route × method × status); no alert uses their increase.
 */
import { basename } from 'node:path';
import { FAILOVER_REASONS } from './cluster/election.js';
import type { Config } from './config/schema.js';
import type { Metrics } from './metrics.js';
import type { Plan } from './reconcile/desired.js';
import { targetsFromConfig } from './health/targets.js';
import { canonicalIp } from './config/validate.js';
import { announceChangeLabels } from './ecmp/decide.js';
import { realServerId, type Dataplane } from './reconcile/table.js';

/** vigil_cluster_frames_rejected_total's reasons (src/cluster/wire.ts, incarnation). */
export const FRAME_REJECT_REASONS = ['malformed', 'truncated', 'oversized', 'bad_magic', 'bad_version', 'wrong_cluster', 'wrong_link', 'unknown_node', 'bad_hmac', 'replayed', 'stale_incarnation', 'self', 'wrong_source', 'unconfirmed'] as const;
export const RECONCILE_TRIGGERS = ['start', 'health', 'config', 'role', 'drain', 'periodic', 'retry'] as const;
export const OPERATION_KINDS = ['add_service', 'edit_service', 'delete_service', 'add_real_server', 'edit_real_server', 'delete_real_server'] as const;
export const PROBE_RESULTS = ['up', 'down', 'timeout', 'error', 'skipped'] as const;
export const API_ACTIONS = ['takeover', 'standby', 'maintenance', 'drain', 'enable', 'reload'] as const;

/** Zero for every label set the config makes known (idempotent: inc by 0 never moves a value). */
export function primeConfigMetrics(m: Metrics, config: Config, dataplane: Dataplane['kind'] | undefined): void {
  m.clusterInfo.reset();
  m.clusterInfo.set({ cluster_id: config.cluster.id, nodes: config.cluster.nodes.map((n) => n.name).sort().join(',') }, 1);
  for (const result of ['applied', 'rejected']) m.configReloads.inc({ result }, 0);

  // cluster
  for (const reason of FAILOVER_REASONS) m.failovers.inc({ reason }, 0);
  for (const reason of FRAME_REJECT_REASONS) m.framesRejected.inc({ reason }, 0);
  const me = config.cluster.nodes.find((n) => n.name === config.node);
  for (const l of me?.links ?? []) {
    m.framesSent.inc({ link: l.name }, 0);
    m.framesReceived.inc({ link: l.name }, 0);
  }
  for (const p of config.cluster.nodes) if (p.name !== config.node) m.heartbeatLate.inc({ peer: p.name }, 0);
  m.verdictsDeferred.inc(0);
  for (const v of config.vips) {
    m.garpSent.inc({ address: v.address }, 0);
    for (const op of ['add', 'del', 'garp']) m.vipErrors.inc({ address: v.address, op }, 0);
  }
  const scripts = [
    ...config.cluster.resources.flatMap((s) => ['start', 'stop'].map((action) => ({ script: basename(s.path), action }))),
    ...(config.cluster.notify ? [{ script: basename(config.cluster.notify.path), action: 'notify' }] : []),
  ];
  for (const s of scripts) for (const result of ['ok', 'failed', 'timeout']) m.scriptRuns.inc({ ...s, result }, 0);

  // ecmp: every announce/withdraw reason of every VIP (src/ecmp/decide.ts); the table
  // mismatch gauge is primed per peer by the cluster runner (src/cluster/cluster.ts)
  if (config.cluster.mode === 'ecmp') {
    for (const v of config.vips) {
      const services = config.services.filter((s) => s.vip !== undefined && canonicalIp(s.vip) === canonicalIp(v.address)).map((s) => s.name);
      for (const l of announceChangeLabels(services)) m.ecmpAnnounceChanges.inc({ vip: v.address, ...l }, 0);
    }
  }

  // health
  for (const t of targetsFromConfig(config)) {
    m.probeOverruns.inc({ service: t.service }, 0);
    m.probeTimeouts.inc({ service: t.service }, 0);
    for (const result of PROBE_RESULTS) m.probeRuns.inc({ probe: t.probe, result }, 0);
    for (const to of ['up', 'down']) m.healthTransitions.inc({ service: t.service, real_server: realServerId(t.address, t.port), to }, 0);
  }

  // reconcile and dataplane
  if (dataplane) {
    m.reconcileFailures.inc({ dataplane }, 0);
    m.reconcileDriftRepairs.inc({ dataplane }, 0);
    for (const trigger of RECONCILE_TRIGGERS) m.reconcileRuns.inc({ dataplane, trigger }, 0);
    for (const kind of OPERATION_KINDS) m.reconcileOperations.inc({ dataplane, kind }, 0);
  }
  if (dataplane === 'forwarder') {
    for (const s of config.services) {
      m.fwdRetries.inc({ service: s.name }, 0);
      m.fwdNoRealServer.inc({ service: s.name }, 0);
    }
  }

  // API
  for (const action of API_ACTIONS) for (const result of ['ok', 'error']) m.apiMutations.inc({ action, result }, 0);
  m.apiMutations.inc({ action: 'unauthorized', result: 'refused' }, 0);
}

/**
 * After a reconcile: drains and sorry servers as planned; weights in force only when the
 * run succeeded (`applied`), since a failed run left the dataplane as it was. The
 * forwarder's per-real-server counters get their 0 for every entry of the table.
 */
export function exportPlanMetrics(m: Metrics, plan: Plan, dataplane: Dataplane['kind'], applied: boolean): void {
  m.realServerDrained.reset();
  m.sorryServerActive.reset();
  if (applied) m.realServerWeight.reset();
  const nameOf = new Map(plan.services.map((s) => [s.key, s.name]));
  for (const s of plan.services) {
    m.sorryServerActive.set({ service: s.name }, s.sorryServerActive ? 1 : 0);
    for (const r of s.realServers) {
      const labels = { service: s.name, real_server: realServerId(r.address, r.port) };
      m.realServerDrained.set(labels, r.drained ? 1 : 0);
      if (applied && r.weight !== null) m.realServerWeight.set(labels, r.weight);
    }
  }
  if (dataplane !== 'forwarder') return;
  for (const s of plan.table) {
    const service = nameOf.get(s.key);
    if (service === undefined) continue;
    for (const r of s.realServers) {
      const labels = { service, real_server: realServerId(r.address, r.port) };
      for (const c of [m.fwdConnections, m.fwdBytesIn, m.fwdBytesOut, m.fwdPacketsIn, m.fwdPacketsOut, m.fwdConnectFailures]) c.inc(labels, 0);
    }
  }
}
