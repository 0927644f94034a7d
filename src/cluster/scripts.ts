/**
 * Resource scripts (`<path> start` in order on takeover, `<path> stop` in reverse order
 * on release, like a haresources line) and the notify script (`<path> <new-role>
 * <old-role> <reason>` on every transition). Each run goes through src/proc.ts (own
 * process group, timeout, TERM then KILL); results are logged and counted, never thrown.
 */
import { basename } from 'node:path';
import type { ClusterConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { describeResult, runScript, succeeded, type ScriptResult } from '../proc.js';

type Script = NonNullable<ClusterConfig['notify']>;

export interface ScriptRunnerOptions {
  logger: Logger;
  metrics: Metrics;
  node: string;
  killGraceMs?: number;
}

const resultLabel = (r: ScriptResult): string => (succeeded(r) ? 'ok' : r.kind === 'timeout' ? 'timeout' : 'failed');

export class ScriptRunner {
  private notifyChain: Promise<void> = Promise.resolve();

  constructor(private readonly opts: ScriptRunnerOptions) {}

  private async runOne(s: Script, action: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = s.timeout_ms): Promise<ScriptResult> {
    const r = await runScript(s.path, args, {
      timeoutMs,
      killGraceMs: this.opts.killGraceMs ?? 500,
      env: { VIGIL_NODE: this.opts.node, ...env },
    });
    const result = resultLabel(r);
    this.opts.metrics.scriptRuns.inc({ script: basename(s.path), action, result });
    const log = { script: s.path, action, result: describeResult(r, timeoutMs), output: r.firstLine, durationMs: Math.round(r.durationMs) };
    if (result === 'ok') this.opts.logger.info(log, `script ${action} ok`);
    else this.opts.logger.error(log, `script ${action} failed`);
    return r;
  }

  /** `start` in order; a failure is logged and the next script still runs. */
  async start(scripts: readonly Script[], reason: string): Promise<void> {
    for (const s of scripts) await this.runOne(s, 'start', ['start'], { VIGIL_ACTION: 'start', VIGIL_REASON: reason });
  }

  /** `stop` in reverse order; with `budgetMs` (shutdown) all of them together get at most that long. */
  async stop(scripts: readonly Script[], reason: string, budgetMs?: number): Promise<void> {
    const end = budgetMs === undefined ? Infinity : performance.now() + budgetMs;
    for (const s of [...scripts].reverse()) {
      const left = Math.max(50, Math.min(s.timeout_ms, end - performance.now()));
      await this.runOne(s, 'stop', ['stop'], { VIGIL_ACTION: 'stop', VIGIL_REASON: reason }, left);
    }
  }

  /** Runs notify in the background, one at a time, in transition order. */
  notify(s: Script | undefined, role: string, previous: string, reason: string): Promise<void> {
    if (!s) return this.notifyChain;
    this.notifyChain = this.notifyChain.then(async () => {
      await this.runOne(s, 'notify', [role, previous, reason], { VIGIL_ROLE: role, VIGIL_PREVIOUS_ROLE: previous, VIGIL_REASON: reason });
    });
    return this.notifyChain;
  }

  /** Resolves when every queued notify has run, or after `maxWaitMs` (the runs go on under their own timeout). */
  idle(maxWaitMs = Infinity): Promise<void> {
    if (maxWaitMs === Infinity) return this.notifyChain;
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((r) => {
      timer = setTimeout(r, maxWaitMs);
      timer.unref();
    });
    return Promise.race([this.notifyChain, bound]).finally(() => clearTimeout(timer));
  }
}
