/**
 * Load on the directors themselves, for the chaos bench and bench:failover's load
 * scenario: TCP listeners on 127.0.0.1 inside each director namespace (the targets of
 * vigil's built-in tcp probes), the services that probe them and a large table of
 * unprobed real servers, `stress-ng --cpu` hogs, and reloads through the API.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';
import type { Lab } from './lab.js';
import { atDefaultPriority, LabError } from './netns.js';
import { API_PORT } from './vigil.js';

/** First port of the probed listeners (127.0.0.1:<base>..<base + n − 1> in each director). */
export const LISTEN_BASE_PORT = 20000;
/** Port of the lab's services on the VIP (the responders keep 7070). */
export const SERVICE_BASE_PORT = 8000;

const LISTENERS_JS = `
const net = require('net');
const [base, n] = process.argv.slice(1).map(Number);
let left = n;
for (let i = 0; i < n; i++) {
  const s = net.createServer((c) => { c.on('error', () => {}); c.on('end', () => c.destroy()); c.end(); });
  s.on('error', (e) => { process.stderr.write('listener ' + (base + i) + ': ' + e.message + '\\n'); process.exit(1); });
  s.listen({ port: base + i, host: '127.0.0.1', backlog: 511 }, () => { if (--left === 0) process.stdout.write('ready\\n'); });
}
process.on('SIGTERM', () => process.exit(0));
`;

/** Starts `count` TCP listeners on 127.0.0.1 in every director namespace; resolves when all listen. */
export async function startListeners(lab: Lab, count: number, base = LISTEN_BASE_PORT): Promise<ChildProcess[]> {
  if (count <= 0) return [];
  return Promise.all(
    lab.directors.map(
      (d) =>
        new Promise<ChildProcess>((resolve, reject) => {
          const child = lab.spawn(d.ns, atDefaultPriority(['node', '-e', LISTENERS_JS, String(base), String(count)]));
          let err = '';
          const timer = setTimeout(() => reject(new LabError('LAB_START', `listeners in ${d.ns} not ready after 30 s: ${err.trim()}`)), 30_000);
          child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
          child.stdout?.on('data', (b: Buffer) => {
            if (b.toString().includes('ready')) {
              clearTimeout(timer);
              resolve(child);
            }
          });
          child.once('exit', (code) => {
            clearTimeout(timer);
            reject(new LabError('LAB_START', `listeners in ${d.ns} exited (${code}): ${err.trim()}`));
          });
        }),
    ),
  );
}

export interface LoadServicesOptions {
  /** Real servers probed by the built-in tcp check (the listeners of startListeners). */
  probes: number;
  /** Real servers in total (the rest unprobed, in further services of up to 1,000 each). */
  realServers?: number;
  /** Check interval (default 2000 ms, the schema's default; timeout half of it, at most 1 s). */
  intervalMs?: number;
  /** Weight of the first probed real server: a reload that changes it changes the table. */
  weight?: number;
}

/**
 * The `services:` of a loaded director: service `probed` (VIP:8000, forward nat) with
 * `probes` real servers on the local listeners, each probed by tcp every `intervalMs`;
 * then unprobed services `table1`, `table2`... (VIP:8001...) of up to 1,000 real servers
 * each (127.<s>.<i / 250>.<i % 250 + 1>:80, never contacted) until `realServers` in all.
 */
export function loadServices(vip: string, o: LoadServicesOptions): unknown[] {
  const interval = o.intervalMs ?? 2000;
  const services: unknown[] = [];
  if (o.probes > 0) {
    services.push({
      name: 'probed',
      vip,
      port: SERVICE_BASE_PORT,
      forward: 'nat',
      scheduler: 'rr',
      check: { type: 'tcp', interval_ms: interval, timeout_ms: Math.min(1000, Math.floor(interval / 2)), rise: 1, fall: 2, initial: 'up' },
      real_servers: Array.from({ length: o.probes }, (_, i) => ({ address: '127.0.0.1', port: LISTEN_BASE_PORT + i, ...(i === 0 ? { weight: o.weight ?? 1 } : {}) })),
    });
  }
  let rest = Math.max(0, (o.realServers ?? o.probes) - o.probes);
  for (let s = 1; rest > 0; s++) {
    const n = Math.min(1000, rest);
    rest -= n;
    services.push({
      name: `table${s}`,
      vip,
      port: SERVICE_BASE_PORT + s,
      forward: 'nat',
      scheduler: 'wlc',
      real_servers: Array.from({ length: n }, (_, i) => ({ address: `127.${s}.${Math.floor(i / 250)}.${(i % 250) + 1}`, port: 80 })),
    });
  }
  return services;
}

/** `stress-ng --cpu <hogsPerCore × cores>` for `seconds`; the caller kills it when done. */
export function startStress(hogsPerCore: number, seconds: number): ChildProcess | null {
  if (hogsPerCore <= 0) return null;
  const workers = Math.max(1, Math.round(hogsPerCore * cpus().length));
  const [cmd, ...args] = atDefaultPriority(['stress-ng', '--cpu', String(workers), '--timeout', `${Math.ceil(seconds) + 10}s`, '--quiet']);
  return spawn(cmd as string, args, { stdio: 'ignore' });
}

/** POST /v1/reload on a director's API (curl inside its namespace, the lab's token). Resolves with the HTTP status (0 = no answer). */
export async function reloadViaApi(lab: Lab, ns: string, token: string, timeoutS = 10): Promise<number> {
  const r = await lab.exec(
    ns,
    ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', String(timeoutS), '-X', 'POST', '-H', `Authorization: Bearer ${token}`, `http://127.0.0.1:${API_PORT}/v1/reload`],
    { allowFail: true, timeoutMs: (timeoutS + 5) * 1000 },
  );
  return Number(r.stdout.trim()) || 0;
}
