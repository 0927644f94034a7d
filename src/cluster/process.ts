/**
 * The cluster process: heartbeats, the election and the takeover path (VIPs, gratuitous
 * ARP, resource and notify scripts) in a process of their own, forked by the daemon
 * (supervisor.ts). Nothing else of vigil runs here — no probes, reconciles, API, metrics
 * scrapes of the dataplane or config parsing — so none of it can delay a heartbeat or
 * share a heap with it (measurements in docs/ARCHITECTURE.md, "Cluster process").
 *
 * Coupling both ways:
 * - The daemon renews a lease over the IPC channel every interval, saying whether its
 *   dataplane can serve. No renewal for `cluster.lease_ms`, or serving = false: this node
 *   announces priority 0 and hands the VIPs to a peer that can (make-before-break).
 * - The channel closing (the daemon exited, was killed, died of out-of-memory) means the
 *   daemon is gone: release the VIPs, tell the peers (leaving frame) and exit.
 * - This process dying is seen by the daemon, which removes the VIPs itself.
 */
import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { createLogger } from '../log.js';
import { createMetrics, dropFamilies, partitionMetrics } from '../metrics.js';
import { primeConfigMetrics } from '../metrics-prime.js';
import { Cluster, type RoleEvent } from './cluster.js';
import { daemonDying, judgeFrozenMs, leaseVerdict, type SchedSample } from './lease.js';
import { SchedReader } from './schedstat.js';
import type { ClusterSnapshot, FromCluster, ToCluster, WireError } from './protocol.js';

export function snapshotOf(c: Cluster): ClusterSnapshot {
  return {
    role: c.role(),
    elected: c.elected(),
    priority: c.priority(),
    effectivePriority: c.effectivePriority(),
    serving: c.serving(),
    peers: c.peers(),
    vips: c.vipStatus(),
  };
}

/** The daemon: the parent this process was forked by (a later ppid is whoever adopted it). */
const DAEMON_PID = process.ppid;

/** The daemon is gone or dying: adopted by another parent, a zombie, or a SIGKILL pending. */
function daemonGone(): boolean {
  if (process.ppid !== DAEMON_PID) return true;
  try {
    return daemonDying(readFileSync(`/proc/${DAEMON_PID}/status`, 'utf8'));
  } catch {
    return true; // no such process
  }
}

/** The daemon's (the parent's) main-thread CPU and every thread's run-queue wait; undefined where unreadable. */
const sched = new SchedReader(DAEMON_PID);
const readSched = (): SchedSample | undefined => sched.read();

/** Lease periods a lapsed lease must be renewed on time before the node is eligible again. */
const RECOVER_LEASES = 5;

/** A VigilError (code, statusCode) as it crosses the IPC channel. */
function wireError(err: unknown): WireError {
  const e = err as { message?: string; code?: string; statusCode?: number };
  return { message: e.message ?? String(err), code: e.code, status: e.statusCode };
}

function send(msg: FromCluster): void {
  if (process.connected) process.send?.(msg);
}

async function main(): Promise<void> {
  let cluster: Cluster | undefined;
  let config: Config | undefined;
  let leaseTimer: NodeJS.Timeout | undefined;
  let snapTimer: NodeJS.Timeout | undefined;
  let lastLease = performance.now();
  let daemonServing = true;
  let daemonWhy = 'the dataplane cannot serve';
  /** When the lease last lapsed or said "cannot serve" (hysteresis below). */
  let lapsedAt = -Infinity;
  /** The daemon's CPU counters at the last lease, and whether this late lease was logged. */
  let schedAtLease: SchedSample | undefined;
  let starvedLogged = false;
  let logger: ReturnType<typeof createLogger> | undefined;
  let closing: Promise<void> | undefined;
  const metrics = createMetrics({ defaults: false });
  partitionMetrics(metrics, 'cluster');
  let lastSnap = '';

  const pushSnapshot = (force = false): void => {
    if (!cluster) return;
    const snap = snapshotOf(cluster);
    const text = JSON.stringify(snap);
    if (!force && text === lastSnap) return;
    lastSnap = text;
    send({ type: 'snapshot', snapshot: snap });
  };

  const close = (why: string, code: number): Promise<void> => {
    closing ??= (async () => {
      if (leaseTimer) clearInterval(leaseTimer);
      if (snapTimer) clearInterval(snapTimer);
      try {
        await cluster?.close();
      } finally {
        pushSnapshot(true);
        send({ type: 'closed', why });
        // let the last message and log lines out, then go
        setTimeout(() => process.exit(code), 20).unref();
        if (process.connected) process.disconnect();
      }
    })();
    return closing;
  };

  // the daemon is gone (exit, crash, SIGKILL, out of memory): nobody serves behind the
  // VIPs and nobody would remove them — release, tell the peers, exit
  process.on('disconnect', () => {
    if (!closing) void close('daemon gone', 0);
  });
  // signals go to the daemon, which closes this process in order; a stray SIGTERM
  // (a process-group kill) must still leave no VIP behind
  process.on('SIGTERM', () => void close('SIGTERM', 0));
  process.on('SIGINT', () => undefined);
  process.on('SIGHUP', () => undefined);

  process.on('message', (m: ToCluster) => {
    void (async () => {
      switch (m.type) {
        case 'start': {
          config = m.config;
          // this process's families exist from the start (increase() sees the first failover)
          primeConfigMetrics(metrics, config, undefined);
          // vigil_ecmp_table_*: exported from here in cluster.mode ecmp only (daemon.ts drops the rest)
          if (config.cluster.mode !== 'ecmp') dropFamilies(metrics, 'vigil_ecmp_');
          logger = createLogger(config.logging.level, m.env, config.node);
          cluster = new Cluster({ config, logger, metrics, env: m.env });
          cluster.on('role', (e: RoleEvent) => {
            send({ type: 'role', event: e });
            pushSnapshot(true);
          });
          try {
            await cluster.start();
          } catch (err) {
            send({ type: 'started', ok: false, error: wireError(err) });
            setTimeout(() => process.exit(1), 20).unref();
            return;
          }
          lastLease = performance.now();
          const leaseMs = m.leaseMs;
          const every = Math.max(5, Math.min(config.cluster.interval_ms, 100));
          // Hysteresis: once the lease lapsed, the node is eligible again only after the
          // lease was renewed on time for RECOVER_LEASES × lease_ms, so two daemons that
          // both stall now and then do not pass the VIPs back and forth.
          // A late lease counts against the daemon only when it is blocked, stopped or hung,
          // not when it waits for a CPU on an overloaded machine (lease.ts).
          let lastTick = performance.now();
          leaseTimer = setInterval(() => {
            const now = performance.now();
            // this process was frozen with the daemon: the lease's window starts after it
            const frozen = judgeFrozenMs(now - lastTick, every);
            lastTick = now;
            if (frozen > 0) {
              lastLease = Math.min(now, lastLease + frozen);
              schedAtLease = readSched();
            }
            // a daemon killed but not yet torn down (its exit waits for a CPU) keeps the IPC
            // channel open: once its lease is late, look; gone is gone — release, leaving, exit
            if (now - lastLease > 2 * every && daemonGone()) {
              if (!closing) void close('daemon gone (killed; its exit was still under way)', 0);
              return;
            }
            const v = leaseVerdict(now - lastLease, leaseMs, schedAtLease, now - lastLease > leaseMs ? readSched() : undefined);
            const fresh = v.kind !== 'lapsed';
            if (v.kind === 'starved' && !starvedLogged) {
              starvedLogged = true;
              logger?.warn({ lateMs: Math.round(v.lateMs), waitedMs: Math.round(v.waitedMs), ranMs: Math.round(v.ranMs) }, 'the daemon is late with its lease but waiting for a CPU (machine overloaded), not blocked: staying eligible');
            }
            if (!fresh || !daemonServing) lapsedAt = now;
            const recovered = now - lapsedAt >= RECOVER_LEASES * leaseMs;
            const ok = fresh && daemonServing && recovered;
            const why = v.kind === 'lapsed' ? v.why : !daemonServing ? daemonWhy : 'serving again, but only recently';
            cluster?.setServing(ok, why, fresh && daemonServing && !recovered);
          }, every);
          snapTimer = setInterval(() => pushSnapshot(), Math.max(50, config.cluster.interval_ms));
          send({ type: 'started', ok: true, pid: process.pid });
          pushSnapshot(true);
          return;
        }
        case 'lease':
          lastLease = performance.now();
          schedAtLease = readSched();
          starvedLogged = false;
          daemonServing = m.serving;
          if (!m.serving) {
            lapsedAt = lastLease;
            daemonWhy = m.why ?? 'the dataplane cannot serve';
            cluster?.setServing(false, daemonWhy);
          }
          return;
        case 'table':
          try {
            cluster?.setTable(m.digest, m.announced);
          } catch (err) {
            logger?.error({ err, digest: m.digest }, 'the daemon sent a table digest this process cannot carry; keeping the last one');
          }
          pushSnapshot();
          return;
        case 'command': {
          if (!cluster) return send({ type: 'reply', id: m.id, ok: false, error: { message: 'the cluster is not running', code: 'VIGIL_UNAVAILABLE', status: 409 } });
          try {
            const run = m.command === 'takeover' ? cluster.takeover() : m.command === 'standby' ? cluster.standby() : cluster.maintenance(m.command === 'maintenance-on');
            const message = await run;
            send({ type: 'reply', id: m.id, ok: true, message });
          } catch (err) {
            send({ type: 'reply', id: m.id, ok: false, error: wireError(err) });
          }
          pushSnapshot(true);
          return;
        }
        case 'reload': {
          if (!cluster) return send({ type: 'reply', id: m.id, ok: false, error: { message: 'the cluster is not running' } });
          try {
            await cluster.reload(m.config);
            config = m.config;
            primeConfigMetrics(metrics, config, undefined);
            send({ type: 'reply', id: m.id, ok: true, message: 'reloaded' });
          } catch (err) {
            send({ type: 'reply', id: m.id, ok: false, error: wireError(err) });
          }
          pushSnapshot(true);
          return;
        }
        case 'metrics':
          send({ type: 'reply', id: m.id, ok: true, message: await metrics.registry.metrics() });
          return;
        case 'close':
          await close(m.why, 0);
          return;
      }
    })();
  });
  send({ type: 'hello', pid: process.pid });
}

void main();
