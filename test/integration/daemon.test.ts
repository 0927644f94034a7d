import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, standaloneConfig, startDaemon, tmpDir, until, writeFile, type RunningDaemon } from '../helpers/daemon.js';

const running: RunningDaemon[] = [];
/**
 * How long a daemon may take to start or to answer a reload: well under a second on an idle
 * machine, but on the shared 2-core host with IPVS VMs beside it (load average above 30)
 * node alone has taken more than 10 s to start. Honest margins, not a slow daemon.
 */
const SLOW_MS = 60_000;
afterEach(async () => {
  await Promise.all(running.splice(0).map((d) => d.stop()));
});

async function boot(extra = ''): Promise<{ d: RunningDaemon; api: string; file: string }> {
  const dir = tmpDir();
  const apiPort = await freePort();
  const clusterPort = await freePort();
  const file = writeFile(dir, 'vigil.yaml', standaloneConfig({ apiPort, clusterPort, extra }));
  const d = startDaemon(file);
  running.push(d);
  await d.waitForLog(/"msg":"vigil started"/, SLOW_MS);
  return { d, api: `http://127.0.0.1:${apiPort}`, file };
}

describe('the daemon as a child process', { timeout: 4 * SLOW_MS }, () => {
  it('answers /healthz and /metrics over real HTTP, vigil_ metrics and Node defaults', async () => {
    const { api } = await boot();
    const h = await fetch(`${api}/healthz`);
    expect(h.status).toBe(200);
    expect(await h.json()).toEqual({ ok: true });
    const m = await fetch(`${api}/metrics`);
    expect(m.status).toBe(200);
    const text = await m.text();
    expect(text).toMatch(/^vigil_build_info\{version="[^"]+",node="solo"\} 1$/m);
    expect(text).toContain('vigil_nodejs_eventloop_lag_p99_seconds');
    const names = [...text.matchAll(/^# TYPE (\S+) /gm)].map((x) => x[1] as string);
    expect(names.length).toBeGreaterThan(20);
    expect(names.filter((n) => !n.startsWith('vigil_'))).toEqual([]);
  });

  it('logs JSON with the level from $VIGIL_LOG_LEVEL', async () => {
    const dir = tmpDir();
    const file = writeFile(dir, 'vigil.yaml', standaloneConfig({ apiPort: await freePort(), clusterPort: await freePort() }));
    const d = startDaemon(file, { VIGIL_LOG_LEVEL: 'warn' });
    running.push(d);
    await until(async () => (await fetch(`http://${/listen: (\S+)/.exec(readFileSync(file, 'utf8'))?.[1]}/healthz`)).ok, SLOW_MS);
    expect(d.logs()).not.toContain('"msg":"vigil started"');
    d.child.kill('SIGTERM');
    await d.exited;
    for (const line of d.logs().trim().split('\n').filter(Boolean)) {
      expect(() => JSON.parse(line)).not.toThrow();
    }
  });

  it('reloads a valid config on SIGHUP and keeps running on an invalid one', async () => {
    const { d, api, file } = await boot();
    const original = readFileSync(file, 'utf8');

    writeFileSync(file, original.replace('level: debug', 'level: info'));
    d.child.kill('SIGHUP');
    await d.waitForLog(/"msg":"config reloaded"/, SLOW_MS);
    let metrics = await (await fetch(`${api}/metrics`)).text();
    expect(metrics).toMatch(/^vigil_config_reloads_total\{result="applied"\} 1$/m);

    writeFileSync(file, `${original}services:\n  - name: web\n    vip: 10.9.9.9\n    port: 80\n    bogus: 1\n`);
    d.child.kill('SIGHUP');
    const line = await d.waitForLog(/config reload rejected/, SLOW_MS);
    const entry = JSON.parse(line) as { errors: string[]; level: string };
    expect(entry.level).toBe('error');
    expect(entry.errors).toEqual([
      `${file}: services[0].vip: 10.9.9.9 is not declared under vips (line ${original.split('\n').length + 2})`,
      `${file}: services[0].bogus: unknown key "bogus" (line ${original.split('\n').length + 4})`,
    ]);
    metrics = await (await fetch(`${api}/metrics`)).text();
    expect(metrics).toMatch(/^vigil_config_reloads_total\{result="rejected"\} 1$/m);
    expect(metrics).toMatch(/^vigil_config_last_reload_success 0$/m);
    expect((await fetch(`${api}/healthz`)).status).toBe(200);
    expect(d.child.exitCode).toBeNull();
  });

  it('logs a reload refused after the file validated (node changed, cluster key file unusable): what and why, at error', async () => {
    const { d, api, file } = await boot();
    const original = readFileSync(file, 'utf8');
    const rejected = async (n: number): Promise<{ level: string; reason: string; config: string }> => {
      await until(() => d.logs().split('\n').filter((l) => l.includes('"msg":"config reload rejected; keeping the running config"')).length >= n, SLOW_MS);
      const lines = d.logs().split('\n').filter((l) => l.includes('"msg":"config reload rejected; keeping the running config"'));
      return JSON.parse(lines[n - 1] as string) as { level: string; reason: string; config: string };
    };

    // a valid file naming another node: SIGHUP has no caller to answer, so only the log says why
    writeFileSync(file, original.replaceAll('solo', 'other'));
    d.child.kill('SIGHUP');
    let entry = await rejected(1);
    expect(entry).toMatchObject({ level: 'error', config: file, reason: 'reload cannot change node (solo → other); restart instead' });

    // a valid file whose cluster key file the cluster process refuses (readable by others)
    const key = writeFile(tmpDir(), 'cluster.key', 'a-secret-key-of-some-length\n');
    chmodSync(key, 0o644);
    writeFileSync(file, original.replace('  initdead_ms: 100\n', `  initdead_ms: 100\n  key_file: ${key}\n`));
    d.child.kill('SIGHUP');
    entry = await rejected(2);
    expect(entry.level).toBe('error');
    expect(entry.reason).toContain(`cluster.key_file ${key} has mode 0644; it must be 0600`);

    const metrics = await (await fetch(`${api}/metrics`)).text();
    expect(metrics).toMatch(/^vigil_config_reloads_total\{result="rejected"\} 2$/m);
    expect(metrics).toMatch(/^vigil_config_last_reload_success 0$/m);
    expect(d.logs()).not.toContain('"msg":"config reloaded"');
    expect(d.child.exitCode).toBeNull();
  });

  it('stops cleanly within 2 s on SIGTERM and on SIGINT', async () => {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) {
      const { d } = await boot();
      const t0 = performance.now();
      d.child.kill(sig);
      const { code } = await d.exited;
      const took = performance.now() - t0;
      expect(code, sig).toBe(0);
      expect(took, sig).toBeLessThan(2000);
      expect(d.logs()).toContain('"msg":"vigil stopped"');
    }
  });

  it('closes its components in reverse start order, the cluster first (it releases the VIPs and tells the peers)', async () => {
    const { d } = await boot();
    d.child.kill('SIGTERM');
    await d.exited;
    const closed = d
      .logs()
      .split('\n')
      .filter((l) => l.includes('"msg":"component closed"'))
      .map((l) => (JSON.parse(l) as { component: string }).component);
    expect(closed).toEqual(['cluster', 'api', 'reconcile', 'dataplane', 'health']);
  });

  it('refuses to start on an invalid config with every problem listed', async () => {
    const dir = tmpDir();
    const file = writeFile(dir, 'bad.yaml', 'node: x\ncluster:\n  nodes: []\n  frob: 1\n');
    const d = startDaemon(file);
    running.push(d);
    const { code } = await d.exited;
    expect(code).toBe(78); // EX_CONFIG: the unit's RestartPreventExitStatus
    expect(d.logs()).toContain(`${file}: cluster.nodes: list at least this node`);
    expect(d.logs()).toContain(`${file}: cluster.frob: unknown key "frob"`);
  });

  it('refuses to start when $VIGIL_CLUSTER_START_TIMEOUT_MS is not a positive integer, naming it', async () => {
    const dir = tmpDir();
    const file = writeFile(dir, 'vigil.yaml', standaloneConfig({ apiPort: await freePort(), clusterPort: await freePort() }));
    const d = startDaemon(file, { VIGIL_CLUSTER_START_TIMEOUT_MS: '90s' });
    running.push(d);
    const { code } = await d.exited;
    expect(code).toBe(78);
    expect(d.logs()).toContain('vigil run: $VIGIL_CLUSTER_START_TIMEOUT_MS: "90s" is not a positive integer of milliseconds (default 90000)');
    expect(d.logs()).not.toContain('"msg":"vigil started"');
  });
});
