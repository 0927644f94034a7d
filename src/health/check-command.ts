/**
 * `vigil check --config <file>`: the operator's dry run. Runs every configured probe
 * once (the same probes the daemon runs, with the same timeouts, concurrency cap and
 * process-group kill) and prints one row per real server:
 *
 *   SERVICE  REAL SERVER     PROBE  VERDICT  DURATION  REASON
 *   web      10.0.0.5:80     http   up       3.1 ms    HTTP 200
 *
 * Exit status: 0 when every real server is up, 1 otherwise (2 for usage errors). A real
 * server without a check is listed as up ("no check").
 */
import type { CommandContext } from '../cli/context.js';
import { ConfigError, loadConfig, type LoadedConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { realServerId } from '../reconcile/table.js';
import { createExecutor, type ProbeExecutor, type ProbeResult } from './probes.js';
import { targetsFromConfig, type ProbeTarget } from './targets.js';

export interface CheckRow {
  service: string;
  realServer: string;
  probe: string;
  up: boolean;
  durationMs: number | null;
  reason: string;
}

/** Runs each probe once, at most `health.concurrency` at a time; rows in config order. */
export async function checkOnce(config: Config, executor?: ProbeExecutor): Promise<CheckRow[]> {
  const exec =
    executor ??
    createExecutor({
      checksDir: config.health.checks_dir ?? 'checks',
      killGraceMs: config.health.kill_grace_ms,
      outputLimitBytes: config.health.output_limit_bytes,
    });
  const targets = targetsFromConfig(config);
  const byKey = new Map<string, ProbeTarget>();
  for (const t of targets) byKey.set(`${t.service}\0${t.address}\0${t.port}`, t);
  const results = new Map<ProbeTarget, ProbeResult>();
  const queue = [...targets];
  const worker = async (): Promise<void> => {
    for (let t = queue.shift(); t; t = queue.shift()) {
      const ac = new AbortController();
      results.set(t, await exec(t, ac.signal));
    }
  };
  await Promise.all(Array.from({ length: Math.min(config.health.concurrency, Math.max(1, targets.length)) }, worker));

  const rows: CheckRow[] = [];
  for (const s of config.services) {
    for (const rs of s.real_servers) {
      const port = rs.port ?? s.port ?? 0;
      const id = realServerId(rs.address, port);
      const t = byKey.get(`${s.name}\0${rs.address}\0${port}`);
      const r = t ? results.get(t) : undefined;
      if (!t || !r) {
        rows.push({ service: s.name, realServer: id, probe: '-', up: true, durationMs: null, reason: 'no check: counted as healthy' });
        continue;
      }
      rows.push({ service: s.name, realServer: id, probe: t.probe, up: r.ok, durationMs: r.durationMs, reason: r.reason });
    }
  }
  return rows;
}

export function formatCheckTable(rows: CheckRow[]): string {
  const head = ['SERVICE', 'REAL SERVER', 'PROBE', 'VERDICT', 'DURATION', 'REASON'];
  const body = rows.map((r) => [
    r.service,
    r.realServer,
    r.probe,
    r.up ? 'up' : 'DOWN',
    r.durationMs === null ? '-' : `${r.durationMs.toFixed(1)} ms`,
    r.reason,
  ]);
  const all = [head, ...body];
  const widths = head.map((_, i) => Math.max(...all.map((row) => (row[i] ?? '').length)));
  return all.map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

export async function runCheck(ctx: CommandContext, configFile: string): Promise<number> {
  let loaded: LoadedConfig;
  try {
    loaded = loadConfig(configFile, ctx.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      for (const line of e.message.split('\n').slice(1)) ctx.err(line);
      return 1;
    }
    throw e;
  }
  const rows = await checkOnce(loaded.config);
  if (rows.length === 0) {
    ctx.out(`${loaded.file}: no real servers configured`);
    return 0;
  }
  ctx.out(formatCheckTable(rows));
  const down = rows.filter((r) => !r.up).length;
  ctx.out('');
  ctx.out(down === 0 ? `all ${rows.length} real servers up` : `${down} of ${rows.length} real servers down`);
  return down === 0 ? 0 : 1;
}
