/**
 * Test helpers for running the real daemon as a child process: free ports, temporary
 * config files, start/wait/stop with captured logs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'dist', 'cli.js');

/** A TCP port free on 127.0.0.1 right now (and its UDP twin, for cluster ports). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((res, rej) => {
      const s = createServer();
      s.once('error', rej);
      s.listen(0, host, () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => res(p));
      });
    });
    const udpFree = await new Promise<boolean>((res) => {
      const u = createSocket('udp4');
      u.once('error', () => res(false));
      u.bind(port, host, () => u.close(() => res(true)));
    });
    if (udpFree) return port;
  }
}

export function tmpDir(prefix = 'vigil-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function writeFile(dir: string, name: string, text: string, mode = 0o644): string {
  const p = join(dir, name);
  writeFileSync(p, text, { mode });
  return p;
}

/** A minimal standalone config: one node on loopback, the API on `apiPort`. */
export function standaloneConfig(opts: { apiPort: number; clusterPort: number; extra?: string; node?: string; tokenFile?: string }): string {
  const node = opts.node ?? 'solo';
  return `node: ${node}
cluster:
  port: ${opts.clusterPort}
  initdead_ms: 100
  nodes:
    - name: ${node}
      links: [{ name: lo, address: 127.0.0.1 }]
api:
  listen: 127.0.0.1:${opts.apiPort}
${opts.tokenFile ? `  token_file: ${opts.tokenFile}\n` : ''}logging:
  level: debug
${opts.extra ?? ''}`;
}

/**
 * The `extra` of a standaloneConfig serving one virtual service, `web`, on
 * 127.0.0.1:`port` (an unmanaged loopback VIP, forward nat) with real servers on
 * 127.0.0.1. `service`: more keys of the service (check, scheduler), one per line;
 * `dataplane`: the dataplane section (default: the forwarder).
 */
export function loopbackWeb(opts: { port: number; realServers: { port: number; weight?: number }[]; service?: string[]; dataplane?: string }): string {
  const rs = opts.realServers.map((r) => `      - { address: 127.0.0.1, port: ${r.port}${r.weight === undefined ? '' : `, weight: ${r.weight}`} }`);
  return `vips:
  - { address: 127.0.0.1, prefix: 8, interface: lo, managed: false }
services:
  - name: web
    vip: 127.0.0.1
    port: ${opts.port}
    forward: nat
${(opts.service ?? []).map((l) => `    ${l}\n`).join('')}    real_servers:
${rs.join('\n')}
${opts.dataplane ?? 'dataplane: forwarder'}
`;
}

export interface RunningDaemon {
  child: ChildProcess;
  logs: () => string;
  /** Resolves with the exit code (or signal) once the process ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Waits until a log line matches. */
  waitForLog: (re: RegExp, timeoutMs?: number) => Promise<string>;
  stop: () => Promise<void>;
}

export function startDaemon(configFile: string, env: NodeJS.ProcessEnv = {}): RunningDaemon {
  const child = spawn(process.execPath, [CLI, 'run', '--config', configFile], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const waiters = new Set<() => void>();
  const onData = (b: Buffer): void => {
    out += b.toString();
    for (const w of waiters) w();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
    child.once('exit', (code, signal) => {
      res({ code, signal });
      for (const w of waiters) w();
    });
  });
  return {
    child,
    logs: () => out,
    exited,
    waitForLog: (re, timeoutMs = 10_000) =>
      new Promise((res, rej) => {
        const check = (): void => {
          const line = out.split('\n').find((l) => re.test(l));
          if (line !== undefined) {
            waiters.delete(check);
            clearTimeout(timer);
            res(line);
          } else if (child.exitCode !== null) {
            waiters.delete(check);
            clearTimeout(timer);
            rej(new Error(`daemon exited (${child.exitCode}) before ${re}; logs:\n${out}`));
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          rej(new Error(`timed out waiting for ${re}; logs:\n${out}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Polls `fn` until it returns a truthy value or the timeout passes. */
export async function until<T>(fn: () => Promise<T> | T, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
