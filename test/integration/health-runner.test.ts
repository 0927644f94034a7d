/**
 * The health runner for real: built-in tcp/http(s) probes and exec probes (checks/
 * scripts, a mon.d monitor, hung, forking and noisy scripts) against listeners on
 * 127.0.0.1, with real timers and real child processes.
 */
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema, type Config } from '../../src/config/schema.js';
import { httpProbe, tcpProbe } from '../../src/health/probes.js';
import { HealthRunner, type HealthEvent } from '../../src/health/runner.js';
import { createMetrics } from '../../src/metrics.js';
import { closedPort, hangingTcpPort, httpListener, tcpListener, type Listener } from '../helpers/listeners.js';

const CHECKS = resolve(import.meta.dirname, '..', '..', 'checks');
const dir = mkdtempSync(join(tmpdir(), 'vigil-health-'));
let hang: Listener;
beforeAll(async () => {
  hang = await hangingTcpPort();
});
afterAll(async () => {
  await hang.close();
  rmSync(dir, { recursive: true, force: true });
});

function script(name: string, body: string, shell = '/bin/sh'): string {
  const p = join(dir, name);
  writeFileSync(p, `#!${shell}\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Live processes whose command line contains `marker`. */
function processesWith(marker: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(marker) && alive(Number(d))) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

function config(services: object[], health: object = {}): Config {
  return configSchema.parse({
    node: 'a',
    cluster: { nodes: [{ name: 'a', links: [{ name: 'l', address: '127.0.0.1' }] }] },
    vips: [{ address: '127.0.0.1', interface: 'lo', managed: false }],
    services,
    health: { checks_dir: CHECKS, kill_grace_ms: 100, ...health },
  });
}

function svc(name: string, port: number, check: object, realServers: object[] = [{ address: '127.0.0.1' }]) {
  return { name, vip: '127.0.0.1', port, forward: 'nat', check, real_servers: realServers };
}

function collect(runner: HealthRunner) {
  const events: { kind: 'up' | 'down'; ev: HealthEvent }[] = [];
  runner.on('realServerUp', (ev) => events.push({ kind: 'up', ev }));
  runner.on('realServerDown', (ev) => events.push({ kind: 'down', ev }));
  const next = (kind: 'up' | 'down', service?: string, ms = 5000) =>
    new Promise<HealthEvent>((res, rej) => {
      const t = setTimeout(() => rej(new Error(`no ${kind} event within ${ms} ms`)), ms);
      runner.on(kind === 'up' ? 'realServerUp' : 'realServerDown', (ev) => {
        if (service === undefined || ev.service === service) {
          clearTimeout(t);
          res(ev);
        }
      });
    });
  return { events, next };
}

describe('built-in probes', () => {
  it('tcp: connected, refused, timed out', async () => {
    const l = await tcpListener();
    const down = await closedPort();
    const [up, refused, slow] = await Promise.all([tcpProbe('127.0.0.1', l.port, 500), tcpProbe('127.0.0.1', down, 500), tcpProbe('127.0.0.1', hang.port, 200)]);
    await l.close();
    expect(up).toMatchObject({ ok: true, result: 'up', reason: 'connected' });
    expect(refused).toMatchObject({ ok: false, result: 'down', reason: 'connect: ECONNREFUSED' });
    expect(slow).toMatchObject({ ok: false, result: 'timeout', reason: 'no connection within 200 ms' });
    expect(slow.durationMs).toBeGreaterThanOrEqual(199);
  });

  it('http(s): status, Host header, body regex, self-signed TLS, slow', async () => {
    const l = await httpListener((req, res) => {
      if (req.url === '/slow') setTimeout(() => res.end(), 1000);
      else res.writeHead(req.url === '/health' ? 200 : 503).end(`ok from ${req.headers.host}`);
    });
    const tls = await httpListener((_req, res) => res.end('secure'), true);
    const base = { tls: false, address: '127.0.0.1', port: l.port, path: '/health', method: 'GET' as const, expectStatus: [200], insecure: true };
    const [ok, host, bad, body, slow, secure, strict] = await Promise.all([
      httpProbe(base, 500),
      httpProbe({ ...base, host: 'www.example.com', bodyRegex: /from www\.example\.com$/ }, 500),
      httpProbe({ ...base, path: '/' }, 500),
      httpProbe({ ...base, bodyRegex: /^nope/ }, 500),
      httpProbe({ ...base, path: '/slow' }, 200),
      httpProbe({ ...base, tls: true, port: tls.port, path: '/' }, 500),
      httpProbe({ ...base, tls: true, port: tls.port, path: '/', insecure: false }, 500),
    ]);
    await l.close();
    await tls.close();
    expect(ok).toMatchObject({ ok: true, reason: 'HTTP 200' });
    expect(host).toMatchObject({ ok: true, reason: 'HTTP 200, body matches /from www\\.example\\.com$/' });
    expect(bad).toMatchObject({ ok: false, result: 'down', reason: 'HTTP 503 (expected 200)' });
    expect(body).toMatchObject({ ok: false, result: 'down', reason: 'HTTP 200, body does not match /^nope/' });
    expect(slow).toMatchObject({ ok: false, result: 'timeout' });
    expect(secure).toMatchObject({ ok: true, reason: 'HTTP 200' });
    expect(strict).toMatchObject({ ok: false, result: 'down' });
  });
});

describe('HealthRunner with real probes', () => {
  it('built-in tcp: up after rise, down within fall × interval + timeout after the listener dies', async () => {
    const l = await tcpListener();
    const runner = new HealthRunner({
      config: config([svc('web', l.port, { type: 'tcp', interval_ms: 200, timeout_ms: 100, rise: 2, fall: 2 })]),
      metrics: createMetrics({ defaults: false }),
    });
    const { next } = collect(runner);
    const up = next('up');
    await runner.start();
    expect((await up).consecutive).toBe(2);
    const down = next('down');
    const killedAt = performance.now();
    await l.close();
    const ev = await down;
    expect(ev.reason).toBe('connect: ECONNREFUSED');
    // fall × interval + timeout, plus slack for a loaded CI machine (bench:health measures the real figure)
    expect(ev.atMs - killedAt).toBeLessThanOrEqual(2 * 200 + 100 + 250);
    await runner.close();
  });

  it('exec: passes address and port (vigil style) and VIGIL_* variables, keeps the first line as the reason', async () => {
    const cmd = script('env-probe', 'echo "$# $1 $2 $VIGIL_SERVICE $VIGIL_VIP $VIGIL_PORT $VIGIL_REAL_SERVER $VIGIL_REAL_PORT $VIGIL_TIMEOUT_MS"; echo more; exit 0');
    const runner = new HealthRunner({
      config: config([svc('app', 8080, { type: 'exec', command: cmd, interval_ms: 300, timeout_ms: 250, rise: 1, port: 8081 })]),
      metrics: createMetrics({ defaults: false }),
    });
    const { next } = collect(runner);
    const up = next('up');
    await runner.start();
    expect((await up).reason).toBe('2 127.0.0.1 8081 app 127.0.0.1 8080 127.0.0.1 8081 250');
    expect(runner.get('app', '127.0.0.1', 8080)?.lastCheck).toMatchObject({ ok: true });
    await runner.close();
  });

  it('exec: a mon.d monitor runs unchanged with args_style mon (checks/tcp.monitor)', async () => {
    const l = await tcpListener();
    const down = await closedPort();
    const check = (port: number) => ({ type: 'exec', command: 'tcp.monitor', args: ['-p', String(port)], args_style: 'mon', interval_ms: 1000, timeout_ms: 900, rise: 1, fall: 1 });
    const runner = new HealthRunner({
      config: config([svc('up', l.port, check(l.port)), svc('gone', down, check(down), [{ address: '127.0.0.2' }])]),
      metrics: createMetrics({ defaults: false }),
    });
    const { next } = collect(runner);
    const up = next('up', 'up');
    // initial down: give 'gone' one failed run, then it must still be down with the mon summary
    await runner.start();
    await up;
    await new Promise((r) => setTimeout(r, 1200));
    await l.close();
    expect(runner.isHealthy('up', '127.0.0.1', l.port)).toBe(true);
    expect(runner.isHealthy('gone', '127.0.0.2', down)).toBe(false);
    expect(runner.get('gone', '127.0.0.2', down)?.lastCheck).toMatchObject({ ok: false, reason: 'exit 1: 127.0.0.2' });
    await runner.close();
  });

  it('exec: hung and forking scripts time out, never overlap and leave no process behind', async () => {
    const marker = `vigil-test-${process.pid}-${Date.now()}`;
    // `sleep` with a unique marker in its argv (via exec -a) so leftovers can be counted
    const hung = script('hung', `trap '' TERM\n(exec -a ${marker} sleep 1000) &\n(trap '' TERM; exec -a ${marker} sleep 1000) &\necho hanging\nwait`, '/bin/bash');
    const forker = script('forker', `(exec -a ${marker} sleep 1000) &\necho forked\nexit 0`, '/bin/bash');
    const metrics = createMetrics({ defaults: false });
    const runner = new HealthRunner({
      config: config([
        svc('hung', 1, { type: 'exec', command: hung, interval_ms: 400, timeout_ms: 150, rise: 1, fall: 1 }),
        svc('forker', 2, { type: 'exec', command: forker, interval_ms: 2000, timeout_ms: 1500, rise: 1, fall: 1 }),
      ]),
      metrics,
      random: () => 0, // first runs at start
    });
    let maxProcesses = 0;
    runner.on('probeRun', () => (maxProcesses = Math.max(maxProcesses, runner.stats().processes)));
    await runner.start();
    await new Promise((r) => setTimeout(r, 1700));
    await runner.close();
    await new Promise((r) => setTimeout(r, 100));
    expect(processesWith(marker)).toEqual([]);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/vigil_probe_timeouts_total\{service="hung"\} [2-9]/);
    expect(text).not.toContain('vigil_probe_timeouts_total{service="forker"}');
    expect(runner.get('hung', '127.0.0.1', 1)?.lastCheck?.reason).toBe('timeout after 150 ms: hanging');
    expect(runner.get('forker', '127.0.0.1', 2)?.lastCheck).toMatchObject({ ok: true, reason: 'forked' });
    expect(runner.stats().processes).toBe(0);
    expect(maxProcesses).toBeLessThanOrEqual(2);
  });

  it('exec: a script printing 100 MB costs the first KiB; the verdict still comes from its exit', async () => {
    const noisy = script('noisy', 'echo "noisy but fine"; head -c 100000000 /dev/zero; exit 0');
    const runner = new HealthRunner({
      config: config([svc('noisy', 1, { type: 'exec', command: noisy, interval_ms: 5000, timeout_ms: 4000, rise: 1 })], { output_limit_bytes: 1024 }),
      metrics: createMetrics({ defaults: false }),
    });
    const { next } = collect(runner);
    const up = next('up', undefined, 8000);
    const rss = process.memoryUsage().rss;
    await runner.start();
    expect((await up).reason).toBe('noisy but fine');
    expect(process.memoryUsage().rss - rss).toBeLessThan(50 * 1024 * 1024);
    await runner.close();
  });

  it('exec: a missing command is a clear down reason, not a crash', async () => {
    const runner = new HealthRunner({
      config: config([svc('missing', 1, { type: 'exec', command: 'no-such-check', interval_ms: 300, timeout_ms: 200, initial: 'up', rise: 1, fall: 1 })]),
      metrics: createMetrics({ defaults: false }),
    });
    const { next } = collect(runner);
    const down = next('down');
    await runner.start();
    expect((await down).reason).toMatch(/^cannot run: .*no-such-check: ENOENT/);
    await runner.close();
  });
});
