/**
 * A real Prometheus (Debian's package) scrapes a real vigil daemon on 127.0.0.1, with the
 * scrape job and the alert rules from deploy/prometheus; the test queries a vigil
 * metric back through Prometheus's HTTP API and checks the rules loaded and evaluate.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, standaloneConfig, startDaemon, tmpDir, until, writeFile, type RunningDaemon } from '../helpers/daemon.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const PROMETHEUS = '/usr/bin/prometheus';
const have = existsSync(PROMETHEUS);
if (!have) console.log('prometheus-scrape: /usr/bin/prometheus missing (apt-get install prometheus; .ci/run does): test skips');

interface QueryResult {
  status: string;
  data: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

describe.skipIf(!have)('a real Prometheus scraping vigil', () => {
  let daemon: RunningDaemon;
  let prom: ChildProcess;
  let promUrl: string;
  let promLog = '';

  beforeAll(async () => {
    const dir = tmpDir('vigil-prom-');
    const apiPort = await freePort();
    daemon = startDaemon(writeFile(dir, 'vigil.yaml', standaloneConfig({ apiPort, clusterPort: await freePort(), node: 'lvs-prom' })));
    await until(async () => (await fetch(`http://127.0.0.1:${apiPort}/healthz`)).ok, 15_000);

    // the shipped rules, next to a config whose only change is the target and a 1 s interval
    copyFileSync(join(ROOT, 'deploy', 'prometheus', 'vigil-rules.yml'), join(dir, 'vigil-rules.yml'));
    const config = writeFile(
      dir,
      'prometheus.yml',
      `global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: [vigil-rules.yml]
scrape_configs:
  - job_name: vigil
    scrape_interval: 1s
    scrape_timeout: 900ms
    static_configs:
      - targets: ['127.0.0.1:${apiPort}']
`,
    );
    const promPort = await freePort();
    promUrl = `http://127.0.0.1:${promPort}`;
    prom = spawn(
      PROMETHEUS,
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        '--storage.tsdb.retention.time=1h',
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    prom.stdout?.on('data', (b: Buffer) => (promLog += b.toString()));
    prom.stderr?.on('data', (b: Buffer) => (promLog += b.toString()));
    await until(async () => (await fetch(`${promUrl}/-/ready`)).ok, 30_000, 200).catch((e: Error) => {
      throw new Error(`${e.message}\nprometheus log:\n${promLog}`);
    });
  }, 60_000);

  afterAll(async () => {
    if (prom && prom.exitCode === null) {
      const gone = new Promise((r) => prom.once('exit', r));
      prom.kill('SIGTERM');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
      if (prom.exitCode === null) prom.kill('SIGKILL');
    }
    await daemon?.stop();
  });

  const query = async (q: string): Promise<QueryResult> => (await (await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`)).json()) as QueryResult;

  it('scrapes vigil and answers a query for a vigil metric', async () => {
    const r = (await until(async () => {
      const res = await query('vigil_build_info');
      return res.data.result.length > 0 ? res : undefined;
    }, 20_000, 250)) as QueryResult;
    expect(r.status).toBe('success');
    expect(r.data.result[0]?.metric).toMatchObject({ __name__: 'vigil_build_info', job: 'vigil', instance: expect.stringMatching(/^127\.0\.0\.1:\d+$/), node: 'lvs-prom' });
    expect(r.data.result[0]?.value[1]).toBe('1');
    const up = await query('up{job="vigil"}');
    expect(up.data.result[0]?.value[1]).toBe('1');
    // Node's own metrics come through the same scrape (event-loop lag matters for heartbeats)
    const lag = await query('vigil_nodejs_eventloop_lag_p99_seconds');
    expect(lag.data.result.length).toBe(1);
  });

  it('loads the shipped alert rules and evaluates them without errors', async () => {
    type Rule = { name: string; health: string; lastError?: string };
    const rules = (await until(async () => {
      const res = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as {
        data: { groups: { name: string; rules: Rule[] }[] };
      };
      const all = res.data.groups.flatMap((g) => g.rules);
      return all.length > 0 && all.every((x) => x.health === 'ok') ? all : undefined;
    }, 20_000, 250)) as Rule[];
    expect(rules.map((x) => x.name)).toContain('VigilPeerDown');
    expect(rules.filter((x) => x.lastError)).toEqual([]);
  });
});
