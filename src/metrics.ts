/**
 * Every vigil metric, in one place. One `Metrics` object is made by the daemon and handed
 * to each subsystem (no global registry), so tests make their own and read it back.
 * Every name starts with `vigil_`; the README's metrics reference lists them all.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface MetricsOptions {
  /** Node's default process metrics (event-loop lag, GC, memory), prefixed `vigil_`. */
  defaults?: boolean;
  version?: string;
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5];

export function createMetrics(opts: MetricsOptions = {}) {
  const registry = new Registry();
  if (opts.defaults !== false) collectDefaultMetrics({ register: registry, prefix: 'vigil_', eventLoopMonitoringPrecision: 10 });
  const r = [registry];

  const m = {
    registry,

    // ---------------------------------------------------------------- daemon
    buildInfo: new Gauge({ name: 'vigil_build_info', help: 'Always 1; labels carry the version and node', labelNames: ['version', 'node'], registers: r }),
    configReloads: new Counter({ name: 'vigil_config_reloads_total', help: 'Config reloads by result (applied, rejected)', labelNames: ['result'], registers: r }),
    configLastReloadSuccess: new Gauge({ name: 'vigil_config_last_reload_success', help: '1 if the last reload was applied, 0 if it was rejected', registers: r }),
    ready: new Gauge({ name: 'vigil_ready', help: '1 once the first election and the first reconcile are done', registers: r }),

    // ---------------------------------------------------------------- cluster
    role: new Gauge({ name: 'vigil_cluster_role', help: '1 for the role this node is in (init, standby, active, maintenance), 0 for the others', labelNames: ['role'], registers: r }),
    transitions: new Counter({ name: 'vigil_cluster_transitions_total', help: 'Role transitions by from, to and reason', labelNames: ['from', 'to', 'reason'], registers: r }),
    failovers: new Counter({ name: 'vigil_cluster_failovers_total', help: 'Times this node became active while a peer had been active or was expected to be, by reason', labelNames: ['reason'], registers: r }),
    effectivePriority: new Gauge({ name: 'vigil_cluster_effective_priority', help: 'Configured priority minus the weights of failed tracks', registers: r }),
    trackUp: new Gauge({ name: 'vigil_cluster_track_up', help: '1 while a tracked target (ping, interface) is up', labelNames: ['track'], registers: r }),
    peerUp: new Gauge({ name: 'vigil_cluster_peer_up', help: '1 while some link delivered a valid heartbeat from the peer within deadtime', labelNames: ['peer'], registers: r }),
    peerRole: new Gauge({ name: 'vigil_cluster_peer_role', help: '1 for the role the peer last announced', labelNames: ['peer', 'role'], registers: r }),
    linkUp: new Gauge({ name: 'vigil_cluster_link_up', help: '1 while the link delivered a valid heartbeat from the peer within deadtime', labelNames: ['peer', 'link'], registers: r }),
    heartbeatRtt: new Histogram({ name: 'vigil_cluster_heartbeat_rtt_seconds', help: 'Heartbeat round-trip time per peer and link', labelNames: ['peer', 'link'], buckets: [0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5], registers: r }),
    heartbeatLate: new Counter({ name: 'vigil_cluster_heartbeats_late_total', help: 'Peer heartbeats that arrived after warntime', labelNames: ['peer'], registers: r }),
    framesSent: new Counter({ name: 'vigil_cluster_frames_sent_total', help: 'Heartbeat frames sent per link', labelNames: ['link'], registers: r }),
    framesReceived: new Counter({ name: 'vigil_cluster_frames_received_total', help: 'Valid heartbeat frames received per link', labelNames: ['link'], registers: r }),
    framesRejected: new Counter({ name: 'vigil_cluster_frames_rejected_total', help: 'Frames dropped, by reason (malformed, truncated, oversized, bad_magic, bad_version, wrong_cluster, wrong_link, unknown_node, bad_hmac, replayed, stale_incarnation, self, wrong_source, unconfirmed)', labelNames: ['reason'], registers: r }),
    timerLateness: new Histogram({ name: 'vigil_cluster_timer_lateness_seconds', help: 'How late the cluster tick fired compared with when it was due (own stalls: GC, paused VM, busy core)', buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5], registers: r }),
    timerLatenessMax: new Gauge({ name: 'vigil_cluster_timer_lateness_max_seconds', help: 'Largest tick lateness seen since the last scrape-independent window (60 s)', registers: r }),
    verdictsDeferred: new Counter({ name: 'vigil_cluster_verdicts_deferred_total', help: 'Peer-dead verdicts deferred because this node itself had stalled', registers: r }),

    // ---------------------------------------------------------------- VIPs and scripts
    vipOwned: new Gauge({ name: 'vigil_vip_owned', help: '1 while this node has the VIP configured', labelNames: ['address', 'interface'], registers: r }),
    garpSent: new Counter({ name: 'vigil_vip_garp_sent_total', help: 'Gratuitous ARP packets sent', labelNames: ['address'], registers: r }),
    vipTakeoverReady: new Gauge({ name: 'vigil_vip_takeover_ready', help: '1 while a takeover would start no process (ip -batch co-process up, first GARPs from the GARP helper or an armed arping); 0: it would spawn ip and arping', registers: r }),
    vipErrors: new Counter({ name: 'vigil_vip_errors_total', help: 'Failed VIP operations (add, del, garp)', labelNames: ['address', 'op'], registers: r }),
    scriptRuns: new Counter({ name: 'vigil_script_runs_total', help: 'Resource and notify script runs by result (ok, failed, timeout)', labelNames: ['script', 'action', 'result'], registers: r }),

    // ---------------------------------------------------------------- health
    probeUp: new Gauge({ name: 'vigil_probe_up', help: 'Result of the last probe run (1 up, 0 down)', labelNames: ['service', 'real_server', 'probe'], registers: r }),
    realServerHealthy: new Gauge({ name: 'vigil_real_server_healthy', help: 'Health verdict after rise/fall (1 healthy, 0 not)', labelNames: ['service', 'real_server'], registers: r }),
    healthTransitions: new Counter({ name: 'vigil_real_server_transitions_total', help: 'Real server health changes by direction (up, down)', labelNames: ['service', 'real_server', 'to'], registers: r }),
    probeDuration: new Histogram({ name: 'vigil_probe_duration_seconds', help: 'Probe run time by probe kind', labelNames: ['probe'], buckets: LATENCY_BUCKETS, registers: r }),
    probeRuns: new Counter({ name: 'vigil_probe_runs_total', help: 'Probe runs by probe kind and result (up, down, timeout, error; skipped: an exec probe that could not be started in time, not counted toward fall)', labelNames: ['probe', 'result'], registers: r }),
    probeTimeouts: new Counter({ name: 'vigil_probe_timeouts_total', help: 'Probe runs that hit timeout_ms', labelNames: ['service'], registers: r }),
    probeOverruns: new Counter({ name: 'vigil_probe_overruns_total', help: 'Probe runs skipped because the previous run of the same probe had not finished', labelNames: ['service'], registers: r }),
    probeScheduleDelay: new Histogram({ name: 'vigil_probe_schedule_delay_seconds', help: 'Actual start minus planned start of probe runs', buckets: LATENCY_BUCKETS, registers: r }),
    probeProcesses: new Gauge({ name: 'vigil_probe_processes_running', help: 'Exec probe processes currently running', registers: r }),
    probesInFlight: new Gauge({ name: 'vigil_probes_in_flight', help: 'Probes currently running (exec and built-in)', registers: r }),
    probeQueued: new Gauge({ name: 'vigil_probes_queued', help: 'Probes due but waiting for the concurrency cap', registers: r }),

    // ---------------------------------------------------------------- reconcile
    reconcileRuns: new Counter({ name: 'vigil_reconcile_runs_total', help: 'Reconcile runs by trigger (health, config, role, periodic, drain)', labelNames: ['dataplane', 'trigger'], registers: r }),
    reconcileOperations: new Counter({ name: 'vigil_reconcile_operations_total', help: 'Dataplane operations applied by kind (add_service, edit_service, delete_service, add_real_server, edit_real_server, delete_real_server)', labelNames: ['dataplane', 'kind'], registers: r }),
    reconcileFailures: new Counter({ name: 'vigil_reconcile_failures_total', help: 'Reconcile runs whose read-back differed from the desired table or whose apply failed', labelNames: ['dataplane'], registers: r }),
    reconcileDriftRepairs: new Counter({ name: 'vigil_reconcile_drift_repairs_total', help: 'Periodic reconciles that found the dataplane changed behind vigil and repaired it', labelNames: ['dataplane'], registers: r }),
    reconcileDuration: new Histogram({ name: 'vigil_reconcile_duration_seconds', help: 'Time of one reconcile (desired + read + diff + apply + read-back)', labelNames: ['dataplane'], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: r }),
    reconcileLastSuccess: new Gauge({ name: 'vigil_reconcile_last_success_timestamp_seconds', help: 'Unix time of the last reconcile whose read-back matched', labelNames: ['dataplane'], registers: r }),
    tableServices: new Gauge({ name: 'vigil_table_virtual_services', help: 'Virtual services in the desired table', registers: r }),
    tableRealServers: new Gauge({ name: 'vigil_table_real_servers', help: 'Real server entries in the desired table', registers: r }),
    ipvsSyncDaemon: new Gauge({ name: 'vigil_ipvs_sync_daemon', help: '1 for the IPVS connection sync daemon state in force (master, backup, none)', labelNames: ['state'], registers: r }),

    // ---------------------------------------------------------------- forwarder
    fwdConnections: new Counter({ name: 'vigil_forwarder_connections_total', help: 'Connections (TCP) or flows (UDP) scheduled to a real server', labelNames: ['service', 'real_server'], registers: r }),
    fwdActive: new Gauge({ name: 'vigil_forwarder_active_connections', help: 'Established connections per real server (IPVS ActiveConn)', labelNames: ['service', 'real_server'], registers: r }),
    fwdInactive: new Gauge({ name: 'vigil_forwarder_inactive_connections', help: 'Half-closed connections and idle UDP flows per real server (IPVS InActConn)', labelNames: ['service', 'real_server'], registers: r }),
    fwdBytesIn: new Counter({ name: 'vigil_forwarder_bytes_in_total', help: 'Bytes from clients to the real server', labelNames: ['service', 'real_server'], registers: r }),
    fwdBytesOut: new Counter({ name: 'vigil_forwarder_bytes_out_total', help: 'Bytes from the real server to clients', labelNames: ['service', 'real_server'], registers: r }),
    fwdPacketsIn: new Counter({ name: 'vigil_forwarder_packets_in_total', help: 'UDP datagrams from clients to the real server', labelNames: ['service', 'real_server'], registers: r }),
    fwdPacketsOut: new Counter({ name: 'vigil_forwarder_packets_out_total', help: 'UDP datagrams from the real server to clients', labelNames: ['service', 'real_server'], registers: r }),
    fwdConnectFailures: new Counter({ name: 'vigil_forwarder_connect_failures_total', help: 'Failed connects to a real server (passed to health as a passive signal)', labelNames: ['service', 'real_server'], registers: r }),
    fwdRetries: new Counter({ name: 'vigil_forwarder_retries_total', help: 'Connections retried on another real server after a failed connect', labelNames: ['service'], registers: r }),
    fwdNoRealServer: new Counter({ name: 'vigil_forwarder_unschedulable_total', help: 'Connections refused because no real server could take them', labelNames: ['service'], registers: r }),
    fwdWorkers: new Gauge({ name: 'vigil_forwarder_workers', help: 'Forwarder worker processes running', registers: r }),

    // ---------------------------------------------------------------- API
    apiRequests: new Counter({ name: 'vigil_api_requests_total', help: 'API requests by route and status code', labelNames: ['route', 'method', 'status'], registers: r }),
    apiMutations: new Counter({ name: 'vigil_api_mutations_total', help: 'Control requests (takeover, standby, drain, ...) by action and result', labelNames: ['action', 'result'], registers: r }),

    // ---------------------------------------------------------------- operator state (issue 14)
    clusterInfo: new Gauge({ name: 'vigil_cluster_info', help: 'Always 1; labels carry the pair this node belongs to (cluster.id, and every node name sorted and comma-joined) so rules can group a job by pair', labelNames: ['cluster_id', 'nodes'], registers: r }),
    realServerWeight: new Gauge({ name: 'vigil_real_server_weight', help: 'Weight in force in the dataplane after the last successful reconcile (0 drained or quiescent, absent when not in the table)', labelNames: ['service', 'real_server'], registers: r }),
    realServerDrained: new Gauge({ name: 'vigil_real_server_drained', help: '1 while an operator drain holds the real server at weight 0 (until vigil enable)', labelNames: ['service', 'real_server'], registers: r }),
    sorryServerActive: new Gauge({ name: 'vigil_service_sorry_server_active', help: '1 while the service sends its traffic to the sorry server (no real server healthy)', labelNames: ['service'], registers: r }),
    reconcileEntryFailing: new Gauge({ name: 'vigil_reconcile_entry_failing', help: '1 for each service or real server the dataplane refused in the last reconcile (no real_server label for the service entry itself)', labelNames: ['service', 'real_server'], registers: r }),
    // ---------------------------------------------------------------- ecmp mode (src/ecmp)
    ecmpVipAnnounced: new Gauge({ name: 'vigil_ecmp_vip_announced', help: '1 while this director announces the VIP to its routers through BIRD', labelNames: ['vip'], registers: r }),
    ecmpAnnounceChanges: new Counter({ name: 'vigil_ecmp_announce_changes_total', help: 'VIP announce/withdraw decisions by VIP, direction and reason', labelNames: ['vip', 'to', 'reason'], registers: r }),
    ecmpConfigure: new Histogram({ name: 'vigil_ecmp_bird_configure_seconds', help: 'Time of one include-file write plus birdc configure', buckets: [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1, 5], registers: r }),
    ecmpConfigureFailures: new Counter({ name: 'vigil_ecmp_bird_configure_failures_total', help: 'birdc configure runs that failed (retried at the next poll)', registers: r }),
    ecmpBirdUp: new Gauge({ name: 'vigil_ecmp_bird_up', help: '1 while the local BIRD answers on its control socket', registers: r }),
    ecmpBgpUp: new Gauge({ name: 'vigil_ecmp_bgp_session_up', help: '1 while the BGP protocol is Established', labelNames: ['protocol'], registers: r }),
    ecmpBfdUp: new Gauge({ name: 'vigil_ecmp_bfd_session_up', help: '1 while the BFD session with the router is Up', labelNames: ['address', 'interface'], registers: r }),
    ecmpTableMismatch: new Gauge({ name: 'vigil_ecmp_table_digest_mismatch', help: '1 while the peer\'s forwarding-table digest (carried in its heartbeats) has differed from this director\'s for longer than the grace: their health views or configs disagree', labelNames: ['peer'], registers: r }),
  };
  m.buildInfo.set({ version: opts.version ?? 'dev', node: '' }, 1);
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;

/** Families the cluster process owns (src/cluster/process.ts): the daemon exports them from there. */
export const isClusterMetric = (name: string): boolean => /^vigil_(cluster|vip|script|ecmp_table)_/.test(name);

/**
 * Splits one Metrics between two processes: `side: 'cluster'` keeps only the cluster
 * process's families, `'daemon'` drops them. The other side's objects still work, they
 * are simply not exported from here.
 */
export function partitionMetrics(m: Metrics, side: 'cluster' | 'daemon'): void {
  for (const metric of m.registry.getMetricsAsArray()) {
    const name = (metric as unknown as { name: string }).name;
    if (isClusterMetric(name) !== (side === 'cluster')) m.registry.removeSingleMetric(name);
  }
}

/** Unregisters every family whose name starts with `prefix` (e.g. vigil_ecmp_ on a pair). */
export function dropFamilies(m: Metrics, prefix: string): void {
  for (const metric of m.registry.getMetricsAsArray()) {
    const name = (metric as unknown as { name: string }).name;
    if (name.startsWith(prefix)) m.registry.removeSingleMetric(name);
  }
}
