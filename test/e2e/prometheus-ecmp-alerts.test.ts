/**
 * The cluster.mode ecmp alerts proven live (issue 14): a real Prometheus (Debian's package)
 * in the ECMP lab's router namespace scrapes the three directors (test/lab/ecmp.ts: each
 * runs vigil and its own BIRD, BGP + BFD to the router's BIRD) every second and evaluates
 * deploy/prometheus/vigil-rules.yml every second, every `for:` shortened to 1s as in
 * test/e2e/prometheus-alerts.test.ts. Each VigilEcmp* condition is driven for real:
 * a BGP session disabled in a director's BIRD, a BIRD config that no longer parses when
 * vigil has a VIP change to hand it, every director withdrawing the VIP.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { EcmpLab, haveBird } from '../lab/ecmp.js';
import { isRoot } from '../lab/netns.js';
import { API_PORT } from '../lab/vigil.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const PROMETHEUS = '/usr/bin/prometheus';
const why = !isRoot()
  ? 'network namespaces need root'
  : !haveBird()
    ? 'bird2 (bird, birdc) is not installed'
    : !existsSync(PROMETHEUS)
      ? `${PROMETHEUS} missing (apt-get install prometheus; .ci/run does)`
      : !existsSync(join(ROOT, 'dist', 'cli.js'))
        ? 'dist/ is not built (npm run build)'
        : undefined;
if (why) console.log(`prometheus-ecmp-alerts: skipped, ${why}`);

const ALL = ['d1', 'd2', 'd3'];
const PROM = 'http://127.0.0.1:9090';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Alert {
  labels: Record<string, string>;
  state: 'pending' | 'firing';
}

describe.skipIf(why !== undefined)('the shipped VigilEcmp* alerts against three live ECMP directors', () => {
  let e: EcmpLab;
  let prom: ChildProcess;
  const inst = (name: string): string => `${e.lab.director(name).lanAddr}:${API_PORT}`;
  const inRouter = async (args: string[]): Promise<string> => (await e.lab.exec(e.router, args, { allowFail: true })).stdout;
  const alerts = async (): Promise<Alert[]> => {
    try {
      return (JSON.parse(await inRouter(['curl', '-sf', '-m', '3', `${PROM}/api/v1/alerts`])) as { data: { alerts: Alert[] } }).data.alerts;
    } catch {
      return [];
    }
  };
  const ecmpAlerts = async (): Promise<Alert[]> => (await alerts()).filter((x) => x.labels.alertname?.startsWith('VigilEcmp'));
  const match = (x: Alert, name: string, labels: Record<string, string>): boolean => x.labels.alertname === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v);
  const fires = async (name: string, labels: Record<string, string> = {}, timeoutMs = 60_000): Promise<Alert> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = (await alerts()).find((x) => x.state === 'firing' && match(x, name, labels));
      if (f) return f;
      if (Date.now() > deadline) throw new Error(`${name} ${JSON.stringify(labels)} did not fire within ${timeoutMs} ms; alerts: ${JSON.stringify((await alerts()).map((x) => [x.state, x.labels]))}`);
      await sleep(500);
    }
  };
  const clears = async (name: string, labels: Record<string, string> = {}, timeoutMs = 60_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while ((await alerts()).some((x) => match(x, name, labels))) {
      if (Date.now() > deadline) throw new Error(`${name} ${JSON.stringify(labels)} still there after ${timeoutMs} ms`);
      await sleep(500);
    }
  };

  beforeAll(async () => {
    e = await EcmpLab.create({ prefix: 'v14e', apiOnLan: true });
    await e.start();
    await e.waitNextHops(ALL, 120_000);
    const rules = parse(readFileSync(join(ROOT, 'deploy', 'prometheus', 'vigil-rules.yml'), 'utf8')) as { groups: { rules: { for?: string }[] }[] };
    for (const g of rules.groups) for (const r of g.rules) if (r.for !== undefined) r.for = '1s';
    writeFileSync(join(e.lab.dir, 'vigil-rules.yml'), stringify(rules));
    writeFileSync(
      join(e.lab.dir, 'prometheus.yml'),
      `global: { scrape_interval: 1s, evaluation_interval: 1s }\nrule_files: [vigil-rules.yml]\nscrape_configs:\n  - job_name: vigil\n    scrape_interval: 1s\n    scrape_timeout: 900ms\n    static_configs:\n      - targets: ${JSON.stringify(ALL.map(inst))}\n`,
    );
    prom = e.lab.spawn(e.router, [PROMETHEUS, `--config.file=${join(e.lab.dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(e.lab.dir, 'prom')}`, '--web.listen-address=127.0.0.1:9090', '--log.level=warn']);
    const deadline = Date.now() + 60_000;
    while ((await inRouter(['curl', '-sf', '-m', '2', `${PROM}/-/ready`])) === '') {
      if (Date.now() > deadline) throw new Error('prometheus not ready after 60 s');
      await sleep(500);
    }
  }, 600_000);

  afterAll(async () => {
    prom?.kill('SIGTERM');
    await e?.destroy();
  }, 60_000);

  it('three healthy directors announcing the VIP fire none of the VigilEcmp* alerts', async () => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const r = JSON.parse(await inRouter(['curl', '-sf', `${PROM}/api/v1/query?query=${encodeURIComponent('sum(vigil_ecmp_bgp_session_up) + sum(vigil_ecmp_vip_announced)')}`])) as { data: { result: { value: [number, string] }[] } };
      if (r.data.result[0]?.value[1] === '6') break;
      if (Date.now() > deadline) throw new Error(`not every session and announcement scraped after 60 s: ${JSON.stringify(r.data.result)}`);
      await sleep(500);
    }
    // a few evaluations past the 1 s `for:`
    await sleep(5000);
    expect((await ecmpAlerts()).map((x) => x.labels)).toEqual([]);
  }, 120_000);

  it('a BGP session disabled on d3 fires VigilEcmpSessionDown and VigilEcmpSessionsDown for d3 only', async () => {
    expect(await e.birdc('d3', ['disable', 'uplink'])).toMatch(/uplink: disabled/);
    try {
      const one = await fires('VigilEcmpSessionDown', { instance: inst('d3'), protocol: 'uplink' });
      expect(one.labels.severity).toBe('warning');
      const all = await fires('VigilEcmpSessionsDown', { instance: inst('d3') });
      expect(all.labels.severity).toBe('critical');
      expect((await ecmpAlerts()).filter((x) => x.labels.instance !== inst('d3')).map((x) => x.labels)).toEqual([]);
    } finally {
      await e.birdc('d3', ['enable', 'uplink']);
    }
    await e.waitNextHops(ALL, 60_000);
    await clears('VigilEcmpSessionsDown');
    await clears('VigilEcmpSessionDown');
  }, 240_000);

  it('a BIRD config that no longer parses fires VigilEcmpBirdUpdateFailing at the next VIP change', async () => {
    const conf = join(e.lab.dir, 'd3-bird.conf');
    const good = readFileSync(conf, 'utf8');
    appendFileSync(conf, 'this is not bird syntax;\n');
    try {
      // maintenance withdraws d3's VIP: vigil writes the include file and runs birdc
      // configure, which BIRD refuses (its running config and sessions are untouched)
      await e.maintenance('d3', true);
      const f = await fires('VigilEcmpBirdUpdateFailing', { instance: inst('d3') });
      expect(f.labels.severity).toBe('critical');
      expect(await e.metric('d3', 'vigil_ecmp_bird_configure_failures_total')).toBeGreaterThan(0);
      expect((await ecmpAlerts()).filter((x) => x.labels.alertname === 'VigilEcmpBirdUpdateFailing' && x.labels.instance !== inst('d3'))).toEqual([]);
    } finally {
      writeFileSync(conf, good);
    }
    // the retry at the next poll goes through: d3 withdraws, then comes back
    await e.waitNextHops(['d1', 'd2'], 60_000);
    await e.maintenance('d3', false);
    await e.waitNextHops(ALL, 60_000);
  }, 240_000);

  it('every director withdrawing the VIP fires VigilEcmpVipWithdrawnEverywhere', async () => {
    expect((await ecmpAlerts()).filter((x) => x.labels.alertname === 'VigilEcmpVipWithdrawnEverywhere')).toEqual([]);
    // every real server stops answering: no director has a healthy one, each withdraws
    for (const r of e.lab.realServers) {
      const pids = execFileSync('ip', ['netns', 'pids', r.ns], { encoding: 'utf8' }).split(/\s+/).filter((x) => /^\d+$/.test(x));
      for (const p of pids) process.kill(Number(p), 'SIGKILL');
    }
    const f = await fires('VigilEcmpVipWithdrawnEverywhere', { vip: e.vip }, 90_000);
    expect(f.labels.severity).toBe('critical');
  }, 180_000);
});
