/**
 * The probes themselves (the I/O shell around the scheduler): built-in tcp and http(s)
 * run in-process, without spawning anything; exec runs a script through src/proc.ts.
 * Every probe resolves (never rejects) with a ProbeResult, within timeout_ms plus the
 * kill grace of an exec probe.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { describeResult, runScript } from '../proc.js';
import type { ProbeSpawner } from './spawner.js';
import { execArgs, execEnv, resolveCommand, type ProbeTarget } from './targets.js';

/** skipped: the probe never ran (the director's own overload); it does not count toward fall. */
export type ProbeOutcome = 'up' | 'down' | 'timeout' | 'error' | 'skipped';

export interface ProbeResult {
  ok: boolean;
  /** For the runs-by-result metric: down = the server answered wrongly or refused. */
  result: ProbeOutcome;
  /** One line: the script's first output line, `connected`, `HTTP 503 (expected 200)`. */
  reason: string;
  durationMs: number;
}

/** The port the runner drives; the unit tests put a recording fake in its place. */
export type ProbeExecutor = (target: ProbeTarget, signal: AbortSignal) => Promise<ProbeResult>;

export interface ExecutorOptions {
  checksDir: string;
  killGraceMs: number;
  outputLimitBytes: number;
  /** Exec probe processes started / ended (the processes-running gauge). */
  onProcess?: (delta: 1 | -1) => void;
  /** Spawn exec probes in this helper process (the daemon); without it, in this process. */
  spawner?: ProbeSpawner;
}

const MAX_REASON = 200;
const clip = (s: string): string => (s.length > MAX_REASON ? `${s.slice(0, MAX_REASON - 1)}…` : s);

export function createExecutor(opts: ExecutorOptions): ProbeExecutor {
  return (t, signal) => {
    const c = t.check;
    switch (c.type) {
      case 'tcp':
        return tcpProbe(t.address, t.checkPort, c.timeout_ms, signal);
      case 'http':
      case 'https':
        return httpProbe(
          {
            tls: c.type === 'https',
            address: t.address,
            port: t.checkPort,
            path: c.path,
            host: c.host,
            method: c.method,
            expectStatus: c.expect_status,
            bodyRegex: c.body_regex === undefined ? undefined : new RegExp(c.body_regex),
            insecure: c.insecure,
          },
          c.timeout_ms,
          signal,
        );
      case 'exec':
        return execProbe(t, opts, signal);
    }
  };
}

// ---------------------------------------------------------------- exec

export async function execProbe(t: ProbeTarget, opts: ExecutorOptions, signal: AbortSignal): Promise<ProbeResult> {
  if (t.check.type !== 'exec') throw new TypeError('execProbe needs an exec check');
  const timeoutMs = t.check.timeout_ms;
  opts.onProcess?.(1);
  const run = opts.spawner ? opts.spawner.run.bind(opts.spawner) : runScript;
  const r = await run(resolveCommand(t.check.command, opts.checksDir), execArgs(t), {
    timeoutMs,
    killGraceMs: opts.killGraceMs,
    outputLimit: opts.outputLimitBytes,
    env: execEnv(t),
    signal,
    killLeftovers: true,
  }).finally(() => opts.onProcess?.(-1));
  const durationMs = r.durationMs;
  if ('notStarted' in r && typeof r.notStarted === 'string') return { ok: false, result: 'skipped', reason: clip(r.notStarted), durationMs };
  if (r.kind === 'exited' && r.code === 0) return { ok: true, result: 'up', reason: clip(r.firstLine || 'exit 0'), durationMs };
  const how = describeResult(r, timeoutMs);
  if (r.kind === 'timeout') return { ok: false, result: 'timeout', reason: clip(r.firstLine ? `${how}: ${r.firstLine}` : how), durationMs };
  if (r.kind === 'error') return { ok: false, result: 'error', reason: clip(how), durationMs };
  return { ok: false, result: 'down', reason: clip(r.firstLine ? `${how}: ${r.firstLine}` : how), durationMs };
}

// ---------------------------------------------------------------- tcp

/** Connects and closes: up when the handshake completes within the timeout. */
export function tcpProbe(address: string, port: number, timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const sock = connect({ host: address, port, noDelay: true });
    const done = (ok: boolean, result: ProbeOutcome, reason: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      sock.destroy();
      resolve({ ok, result, reason, durationMs: performance.now() - started });
    };
    const timer = setTimeout(() => done(false, 'timeout', `no connection within ${timeoutMs} ms`), timeoutMs);
    const onAbort = (): void => done(false, 'error', 'stopped');
    signal?.addEventListener('abort', onAbort, { once: true });
    sock.once('connect', () => done(true, 'up', 'connected'));
    sock.once('error', (e: NodeJS.ErrnoException) => done(false, 'down', `connect: ${e.code ?? e.message}`));
  });
}

// ---------------------------------------------------------------- http / https

export interface HttpProbeOptions {
  tls: boolean;
  address: string;
  port: number;
  path: string;
  host?: string | undefined;
  method: 'GET' | 'HEAD';
  expectStatus: readonly number[];
  bodyRegex?: RegExp | undefined;
  insecure: boolean;
}

/** At most this much of a body is read for body_regex; the rest is not waited for. */
export const BODY_LIMIT = 64 * 1024;

export function httpProbe(o: HttpProbeOptions, timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const hostHeader = o.host ?? (o.address.includes(':') ? `[${o.address}]:${o.port}` : `${o.address}:${o.port}`);
    const req = (o.tls ? httpsRequest : httpRequest)({
      host: o.address,
      port: o.port,
      path: o.path,
      method: o.method,
      agent: false,
      headers: { Host: hostHeader, 'User-Agent': 'vigil-health', Connection: 'close' },
      ...(o.tls ? { rejectUnauthorized: !o.insecure, servername: o.host && !/^[\d.:]+$/.test(o.host) ? o.host.replace(/:\d+$/, '') : undefined } : {}),
    });
    let res: IncomingMessage | undefined;
    const done = (ok: boolean, result: ProbeOutcome, reason: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      res?.destroy();
      req.destroy();
      resolve({ ok, result, reason: clip(reason), durationMs: performance.now() - started });
    };
    const timer = setTimeout(() => done(false, 'timeout', `no answer within ${timeoutMs} ms`), timeoutMs);
    const onAbort = (): void => done(false, 'error', 'stopped');
    signal?.addEventListener('abort', onAbort, { once: true });
    req.once('error', (e: NodeJS.ErrnoException) => done(false, 'down', `${o.tls ? 'https' : 'http'}: ${e.code ?? e.message}`));
    req.once('response', (r) => {
      res = r;
      const status = r.statusCode ?? 0;
      if (!o.expectStatus.includes(status)) {
        done(false, 'down', `HTTP ${status} (expected ${o.expectStatus.join(' or ')})`);
        return;
      }
      if (!o.bodyRegex || o.method === 'HEAD') {
        done(true, 'up', `HTTP ${status}`);
        return;
      }
      const re = o.bodyRegex;
      const chunks: Buffer[] = [];
      let size = 0;
      const check = (final: boolean): void => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (re.test(body)) done(true, 'up', `HTTP ${status}, body matches /${re.source}/`);
        else if (final) done(false, 'down', `HTTP ${status}, body does not match /${re.source}/`);
      };
      r.on('data', (c: Buffer) => {
        if (size >= BODY_LIMIT) return;
        const part = c.subarray(0, BODY_LIMIT - size);
        chunks.push(part);
        size += part.length;
        if (size >= BODY_LIMIT) check(true);
      });
      r.once('end', () => check(true));
      r.once('error', (e: NodeJS.ErrnoException) => done(false, 'down', `http body: ${e.code ?? e.message}`));
    });
    req.end();
  });
}
