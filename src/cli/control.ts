/**
 * The control commands: `status`, `takeover`, `standby`, `maintenance on|off`, `drain`,
 * `enable`, `reload`. Each talks to the local daemon's API (src/api/server.ts); the
 * messages for the usual failures (daemon not running, wrong token) come from client.ts.
 */
import type { DrainResult, StatusDoc } from '../api/types.js';
import { statusWarnings, type WarningKind } from '../api/warnings.js';
import { canonicalIp } from '../config/validate.js';
import { defaultConfigPath, parse, UsageError, type CommandContext } from './context.js';
import { CliError, EXIT, request, resolveTarget, type ApiTarget } from './client.js';
import { formatDuration, formatStatus, hostPort, parseDuration } from './format.js';

const commonOptions = {
  api: { type: 'string' },
  config: { type: 'string', short: 'c' },
} as const;

/** Default time the drain command waits for a real server's connections to end. */
export const DEFAULT_DRAIN_DEADLINE_MS = 30_000;

function target(values: { api?: string; config?: string }, env: NodeJS.ProcessEnv, needToken: boolean): ApiTarget {
  return resolveTarget({ api: values.api, config: values.config ?? defaultConfigPath(env), env, needToken });
}

/** Runs a command body, turning a CliError into its message and exit status. */
async function guarded(ctx: CommandContext, name: string, fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof CliError) {
      // main() prints usage errors itself, with the usage line
      if (e.exitCode === EXIT.usage) throw new UsageError(e.message);
      ctx.err(`vigil ${name}: ${e.message}`);
      return e.exitCode;
    }
    throw e;
  }
}

export async function statusCommand(ctx: CommandContext): Promise<number> {
  const { values } = parse(ctx.argv, { ...commonOptions, json: { type: 'boolean' }, events: { type: 'string' } });
  return guarded(ctx, 'status', async () => {
    const events = values.events === undefined ? 5 : Number(values.events);
    if (!Number.isInteger(events) || events < 0) throw new UsageError(`--events "${values.events}" is not a count`);
    const t = target(values, ctx.env, false);
    const doc = await request<StatusDoc>(t, { method: 'GET', path: '/status', timeoutMs: 5000, env: ctx.env });
    if (values.json) ctx.out(JSON.stringify(doc, null, 2));
    else for (const line of formatStatus(doc, Date.now(), events)) ctx.out(line);
    return statusExitCode(doc);
  });
}

const WARNING_EXIT: Record<WarningKind, number> = {
  'no-active': EXIT.noActive,
  'split-brain': EXIT.splitBrain,
  'dead-peer': EXIT.deadPeer,
  'no-standby': EXIT.noStandby,
  'service-down': EXIT.realServerDown,
  'real-server-down': EXIT.realServerDown,
  'table-mismatch': EXIT.tableMismatch,
};

/** 0 when all is well, else the code of the most serious warning (the lowest number). */
export function statusExitCode(doc: StatusDoc): number {
  const codes = statusWarnings(doc).map((w) => WARNING_EXIT[w.kind]);
  return codes.length === 0 ? EXIT.ok : Math.min(...codes);
}

/** takeover, standby, reload: a POST without arguments that answers a message. */
export function simpleCommand(name: 'takeover' | 'standby' | 'reload', timeoutMs = 30_000) {
  return async (ctx: CommandContext): Promise<number> => {
    const { values } = parse(ctx.argv, commonOptions);
    return guarded(ctx, name, async () => {
      const t = target(values, ctx.env, true);
      const res = await request<{ message: string }>(t, { method: 'POST', path: `/v1/${name}`, auth: true, timeoutMs, env: ctx.env });
      ctx.out(res.message);
      return EXIT.ok;
    });
  };
}

export async function maintenanceCommand(ctx: CommandContext): Promise<number> {
  const { values, positionals } = parse(ctx.argv, commonOptions, true);
  const [state, ...extra] = positionals;
  if ((state !== 'on' && state !== 'off') || extra.length > 0) throw new UsageError('say "on" or "off"');
  return guarded(ctx, 'maintenance', async () => {
    const t = target(values, ctx.env, true);
    const res = await request<{ message: string }>(t, { method: 'POST', path: '/v1/maintenance', body: { on: state === 'on' }, auth: true, timeoutMs: 30_000, env: ctx.env });
    ctx.out(res.message);
    return EXIT.ok;
  });
}

function realServerArgs(positionals: string[]): { service: string; addr: string } {
  const [service, addr, ...extra] = positionals;
  if (service === undefined || addr === undefined || extra.length > 0) throw new UsageError('name a service and a real server: <service> <address:port>');
  return { service, addr };
}

function rsPath(service: string, addr: string, action: 'drain' | 'enable'): string {
  return `/v1/services/${encodeURIComponent(service)}/real-servers/${encodeURIComponent(addr)}/${action}`;
}

/** Why `<service> <address[:port]>` names no real server in the document, or undefined. */
export function whyNotFound(doc: StatusDoc, service: string, addr: string): string | undefined {
  const s = doc.services.find((x) => x.name === service);
  if (!s) return `service "${service}" not found (services: ${doc.services.map((x) => x.name).join(', ') || 'none'})`;
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(addr) ?? /^([^:]+)(?::(\d+))?$/.exec(addr) ?? [addr, addr, undefined];
  const address = canonicalIp(m[1] ?? addr);
  const port = m[2] === undefined ? undefined : Number(m[2]);
  const found = s.realServers.some((r) => canonicalIp(r.address) === address && (port === undefined || r.port === port));
  if (found) return undefined;
  return `real server ${addr} not found in service "${service}" (real servers: ${s.realServers.map((r) => hostPort(r.address, r.port)).join(', ') || 'none'})`;
}

export async function drainCommand(ctx: CommandContext): Promise<number> {
  const { values, positionals } = parse(ctx.argv, { ...commonOptions, deadline: { type: 'string' } }, true);
  const { service, addr } = realServerArgs(positionals);
  const deadlineMs = values.deadline === undefined ? DEFAULT_DRAIN_DEADLINE_MS : parseDuration(values.deadline);
  if (deadlineMs === undefined || deadlineMs > 86_400_000) throw new UsageError(`--deadline "${values.deadline}" is not a duration up to 24h (30s, 500ms, 5m)`);
  return guarded(ctx, 'drain', async () => {
    const t = target(values, ctx.env, true);
    if (deadlineMs > 0) {
      // an unknown name is said at once, not after announcing a wait (the daemon would
      // answer 404 too, but only the request that waits can ask it)
      const doc = await request<StatusDoc>(t, { method: 'GET', path: '/status', timeoutMs: 5000, env: ctx.env });
      const missing = whyNotFound(doc, service, addr);
      if (missing) throw new CliError(missing, EXIT.refused);
    }
    if (deadlineMs > 0) ctx.err(`draining ${service} ${addr}: weight 0, waiting up to ${formatDuration(deadlineMs)} for its connections to end...`);
    const res = await request<DrainResult & { ok: boolean }>(t, {
      method: 'POST',
      path: rsPath(service, addr, 'drain'),
      body: { deadline_ms: deadlineMs },
      auth: true,
      timeoutMs: deadlineMs + 15_000,
      env: ctx.env,
    });
    const who = `${res.service} ${hostPort(res.address, res.port)}`;
    const enable = `vigil enable ${res.service} ${hostPort(res.address, res.port)}`;
    switch (res.outcome) {
      case 'drained':
        ctx.out(`${who} drained: no connections left after ${formatDuration(res.waitedMs)}; weight stays 0 until "${enable}"`);
        return EXIT.ok;
      case 'started':
        ctx.out(`${who}: drain started (weight 0), ${res.remainingConnections} connection(s) still open; not waiting. "${enable}" restores it`);
        return EXIT.ok;
      case 'deadline':
        ctx.out(`${who}: deadline of ${formatDuration(res.waitedMs)} passed with ${res.remainingConnections} connection(s) left; weight stays 0 until "${enable}"`);
        return EXIT.deadline;
    }
    ctx.out(JSON.stringify(res));
    return EXIT.ok;
  });
}

export async function enableCommand(ctx: CommandContext): Promise<number> {
  const { values, positionals } = parse(ctx.argv, commonOptions, true);
  const { service, addr } = realServerArgs(positionals);
  return guarded(ctx, 'enable', async () => {
    const t = target(values, ctx.env, true);
    const res = await request<{ message: string }>(t, { method: 'POST', path: rsPath(service, addr, 'enable'), auth: true, timeoutMs: 30_000, env: ctx.env });
    ctx.out(res.message);
    return EXIT.ok;
  });
}
