/**
 * `npm run bench:config` — the largest accepted config, reloaded without stalling.
 *
 * Generates a config at every count limit of src/config/limits.ts at once (5,000
 * services, 20,000 real servers, 10,000 of them probed, 256 VIPs) and measures:
 *
 *   1. in this process: the time loadConfig takes (read + parse + validate) and this
 *      event loop's max lag while it runs inline, then while loadConfigInWorker runs the
 *      same load in a worker thread (the longest gap of a 1 ms interval timer);
 *   2. a real daemon (node dist/cli.js run; built first) started with a small config,
 *      put in maintenance (the forwarder opens no listeners), then reloaded to the large
 *      file through POST /v1/reload VIGIL_BENCH_RELOADS times (default 3): the daemon's
 *      own max event-loop lag (vigil_nodejs_eventloop_lag_max_seconds, reset at every
 *      scrape) over each reload call, over the seconds after it (the reconcile and the
 *      health update the new config starts), and over an idle window of the same length.
 *
 * Target: the daemon's max lag over a reload call ≤ TARGET_LAG_MS (20 ms); the exit status
 * is 1 when it is missed. On a machine whose cores are oversubscribed the idle lag alone
 * can exceed it: the idle figure is printed beside it to tell the two apart.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONFIG_LIMITS } from '../../src/config/limits.js';
import { loadConfig } from '../../src/config/load.js';
import { loadConfigInWorker } from '../../src/config/offthread.js';
import { freePort, standaloneConfig, startDaemon, until } from '../helpers/daemon.js';

const TARGET_LAG_MS = 20;
const RELOADS = Number(process.env.VIGIL_BENCH_RELOADS ?? 3);
const TOKEN = 'bench-config-token';
const L = CONFIG_LIMITS;

/** The largest accepted config: every count at its limit; loopback addresses only. */
export function largestConfig(head: string): string {
  const per = L.realServers / L.services;
  const out: string[] = [head, 'vips:'];
  for (let v = 0; v < L.vips; v++) out.push(`  - { address: 127.0.${v}.1, prefix: 32, interface: lo, managed: false }`);
  out.push('services:');
  let probed = 0;
  for (let i = 0; i < L.services; i++) {
    const check = probed + per <= L.probes;
    if (check) probed += per;
    out.push(`  - name: svc${i}`, `    vip: 127.0.${i % L.vips}.1`, `    port: ${10000 + Math.floor(i / L.vips)}`, '    forward: nat', '    scheduler: wlc');
    if (check) out.push('    check: { type: tcp, interval_ms: 60000, timeout_ms: 1000 }');
    out.push('    real_servers:');
    for (let j = 0; j < per; j++) {
      const n = i * per + j;
      out.push(`      - { address: 127.${100 + (n >> 16)}.${(n >> 8) & 255}.${(n & 255) + 0}, port: 8080, weight: ${1 + (j % 3)} }`);
    }
  }
  return `${out.join('\n')}\n`;
}

const f = (ms: number): string => `${ms.toFixed(ms < 100 ? 1 : 0)} ms`;

/**
 * This loop's max lag while fn runs: the longest gap between the runs of a 1 ms interval
 * timer, less the 1 ms (a histogram reset just before a long block under-reports it).
 */
async function lagOf<T>(fn: () => Promise<T> | T): Promise<{ lagMs: number; ms: number; value: T }> {
  let last = performance.now();
  let worst = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - 1);
    last = now;
  }, 1);
  await new Promise((r) => setTimeout(r, 20));
  worst = 0;
  const t0 = performance.now();
  const value = await fn();
  const ms = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 20)); // the timer's first run after a block measures it
  clearInterval(timer);
  return { lagMs: worst, ms, value };
}

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-config-'));
  const child: { stop?: () => Promise<void> } = {};
  try {
    const apiPort = await freePort();
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    const head = standaloneConfig({ apiPort, clusterPort: await freePort(), tokenFile })
      .replace('level: debug', 'level: info')
      .concat('dataplane: { mode: forwarder, reconcile_interval_ms: 3600000, forwarder: { workers: 1, max_accept: 1 } }\n');
    const big = largestConfig(head);
    const file = join(dir, 'vigil.yaml');
    writeFileSync(file, big);
    console.log(
      `config bench: ${L.services} services, ${L.realServers} real servers (${L.probes} probed), ${L.vips} VIPs; ${big.length} bytes (limit ${L.fileBytes}); node ${process.version}; load average ${loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')}`,
    );

    // 1. in this process: inline vs worker
    const inline: { ms: number; lagMs: number }[] = [];
    const worker: { ms: number; lagMs: number; parseMs: number }[] = [];
    for (let i = 0; i < RELOADS; i++) {
      const a = await lagOf(() => loadConfig(file, {}));
      inline.push(a);
      const b = await lagOf(() => loadConfigInWorker(file, {}));
      worker.push({ ms: b.ms, lagMs: b.lagMs, parseMs: b.value.parseMs });
    }
    console.log('\nin this process (max event-loop lag while loading: longest gap of a 1 ms timer):');
    for (let i = 0; i < RELOADS; i++) {
      const a = inline[i] as { ms: number; lagMs: number };
      const b = worker[i] as { ms: number; lagMs: number; parseMs: number };
      console.log(`  run ${i + 1}: inline load ${f(a.ms)}, lag ${f(a.lagMs)} | worker load ${f(b.ms)} (parse in worker ${f(b.parseMs)}), lag ${f(b.lagMs)}`);
    }

    // 2. a real daemon: small config → maintenance → reloads of the large one
    writeFileSync(file, head);
    const d = startDaemon(file);
    child.stop = d.stop;
    const api = `http://127.0.0.1:${apiPort}`;
    await until(async () => (await fetch(`${api}/healthz`)).ok, 60_000, 200);
    const post = (path: string, body: unknown) =>
      fetch(`${api}${path}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const m = await post('/v1/maintenance', { on: true });
    if (!m.ok) throw new Error(`maintenance on: ${m.status} ${await m.text()}`);
    const lagMax = async (): Promise<number> => {
      const text = await (await fetch(`${api}/metrics`)).text();
      return Number(/^vigil_nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(text)?.[1] ?? NaN) * 1000;
    };
    writeFileSync(file, big);
    const rows: { reloadMs: number; during: number; after: number; idle: number }[] = [];
    for (let i = 0; i < RELOADS; i++) {
      await lagMax();
      const t0 = performance.now();
      const r = await post('/v1/reload', {});
      const reloadMs = performance.now() - t0;
      if (!r.ok) throw new Error(`reload: ${r.status} ${await r.text()}`);
      const during = await lagMax();
      await new Promise((res) => setTimeout(res, 3000));
      const after = await lagMax();
      await new Promise((res) => setTimeout(res, Math.max(reloadMs, 3000)));
      const idle = await lagMax();
      rows.push({ reloadMs, during, after, idle });
    }
    console.log('\nthe daemon (POST /v1/reload of the file above; vigil_nodejs_eventloop_lag_max_seconds, 10 ms resolution):');
    for (const [i, r] of rows.entries()) {
      console.log(`  reload ${i + 1}: call ${f(r.reloadMs)}; max lag during the call ${f(r.during)}, 3 s after it ${f(r.after)}, idle window ${f(r.idle)}`);
    }
    const worst = Math.max(...rows.map((r) => r.during));
    const met = worst <= TARGET_LAG_MS;
    console.log(`\nmax lag during a reload: ${f(worst)} (target ≤ ${TARGET_LAG_MS} ms): ${met ? 'met' : 'NOT met'}; load average now ${loadavg()[0]?.toFixed(1)}`);
    return met ? 0 : 1;
  } finally {
    await child.stop?.();
    rmSync(dir, { recursive: true, force: true });
  }
}

process.exitCode = await main();
