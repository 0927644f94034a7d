/**
 * The alert rules proven live (issue 14): a real Prometheus (Debian's package) evaluates
 * deploy/prometheus/vigil-rules.yml every second against two real director pairs in
 * the network-namespace lab, scraped as ONE job: pair A (d1, d2) with a service and two
 * real servers, pair B (b1, b2) on the same two hosts with the same cluster.id (its own
 * heartbeat port and API port). Each alert's condition is driven for real and read back
 * from Prometheus' /api/v1/alerts; a healthy fresh start of both pairs fires nothing.
 *
 * The rules are the shipped file with one change, made here at test time: every `for:`
 * is shortened to 1s (production keeps 30s..1h; waiting an hour for a drain alert is not
 * a test). Expressions, labels and annotations are the shipped ones. Not driven here:
 * VigilReconcileFailing, VigilReconcileStale and VigilReconcileEntryRefused need a
 * dataplane that refuses entries, the kernel IPVS, only in the VM where this lab does not
 * run (test/e2e/prometheus-reconcile-alerts.test.ts drives them there with a Prometheus
 * of its own; here the last test shows none of them fired for the healthy forwarder
 * pairs); the VigilEcmp* alerts need cluster.mode ecmp (promtool only). promtool covers
 * every alert (deploy/prometheus/vigil-rules.test.yml) with series shaped as the scrape
 * below shows.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { Lab } from '../lab/lab.js';
import { isRoot } from '../lab/netns.js';
import { clusterNodes, VigilNode, waitSettled, writeClusterConfig } from '../lab/vigil.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const PROMETHEUS = '/usr/bin/prometheus';
const why = !isRoot() ? 'the network-namespace lab needs root' : !existsSync(PROMETHEUS) ? `${PROMETHEUS} missing (apt-get install prometheus; .ci/run does)` : !existsSync(join(ROOT, 'dist', 'cli.js')) ? 'dist/ is not built (npm run build)' : undefined;
if (why) console.log(`prometheus-alerts: skipped, ${why}`);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const PROM_PORT = 9090;
const B_API = 9695;
const B_HEARTBEAT = 695;

interface Alert {
  labels: Record<string, string>;
  state: 'pending' | 'firing';
}

describe.skipIf(why !== undefined)('the shipped alert rules against two live pairs in one job', () => {
  let lab: Lab;
  let a: VigilNode[];
  let b: VigilNode[];
  let prom: ChildProcess;
  const listeners = new Map<string, ChildProcess>();
  let configA = '';
  let token = '';
  let promUrl = '';
  /** Who is active and who standby in each pair, once settled (either may win the start). */
  let activeA: VigilNode;
  let standbyA: VigilNode;
  let activeB: VigilNode;
  let standbyB: VigilNode;
  const other = (pair: VigilNode[], n: VigilNode): VigilNode => pair.find((x) => x !== n) as VigilNode;
  const inst = (n: VigilNode): string => `${n.director.lanAddr}:${b.includes(n) ? B_API : 9694}`;

  const node = (name: string): VigilNode => [...a, ...b].find((n) => n.name === name) as VigilNode;
  const inClient = async (args: string[]): Promise<string> => (await lab.exec(lab.client.ns, args, { allowFail: true })).stdout;
  const alerts = async (): Promise<Alert[]> => {
    const text = await inClient(['curl', '-sf', '-m', '3', `${promUrl}/api/v1/alerts`]);
    try {
      return (JSON.parse(text) as { data: { alerts: Alert[] } }).data.alerts;
    } catch {
      return [];
    }
  };
  const firing = async (): Promise<Alert[]> => (await alerts()).filter((x) => x.state === 'firing');
  /** Waits until `name` fires with labels matching `labels`; returns it. */
  const fires = async (name: string, labels: Record<string, string> = {}, timeoutMs = 60_000): Promise<Alert> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = (await firing()).find((x) => x.labels.alertname === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
      if (f) return f;
      if (Date.now() > deadline) throw new Error(`${name} ${JSON.stringify(labels)} did not fire within ${timeoutMs} ms; firing: ${JSON.stringify((await firing()).map((x) => x.labels))}`);
      await sleep(500);
    }
  };
  /** Waits until `name` (with those labels) no longer fires. */
  const clears = async (name: string, labels: Record<string, string> = {}, timeoutMs = 60_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = (await alerts()).find((x) => x.labels.alertname === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
      if (!f) return;
      if (Date.now() > deadline) throw new Error(`${name} still ${f.state} after ${timeoutMs} ms`);
      await sleep(500);
    }
  };
  const post = async (n: VigilNode, path: string, body: unknown, port = 9694): Promise<string> => {
    const r = await lab.exec(n.director.ns, ['curl', '-s', '-m', '30', '-X', 'POST', '-H', `authorization: Bearer ${token}`, '-H', 'content-type: application/json', '-d', JSON.stringify(body), `http://127.0.0.1:${port}${path}`], { allowFail: true });
    return r.stdout;
  };
  const listen = (r: { ns: string; lanAddr: string }): void => {
    listeners.set(r.lanAddr, lab.spawn(r.ns, ['socat', `TCP-LISTEN:8080,bind=${r.lanAddr},fork,reuseaddr`, 'SYSTEM:echo ok']));
  };
  const unlisten = (addr: string): void => {
    listeners.get(addr)?.kill('SIGKILL');
    listeners.delete(addr);
  };

  beforeAll(async () => {
    lab = await Lab.create({ prefix: 'v14a', realServers: 2 });
    for (const r of lab.realServers) listen(r);
    // pair A: the lab's pair with a service on the VIP, real servers r1 and r2. Timers and
    // checks are lenient: the shared 2-core machine runs at load 30-50, and a flap in
    // the healthy phase would be a true alert, not a false one
    const base = writeClusterConfig(lab, { timers: { interval_ms: 200, deadtime_ms: 4000, warntime_ms: 2000, initdead_ms: 3000 } });
    token = readFileSync(join(lab.dir, 'api-token'), 'utf8').trim();
    const cfg = parse(readFileSync(base, 'utf8')) as Record<string, any>;
    cfg.api.listen = '0.0.0.0:9694';
    cfg.cluster.id = 'shared';
    cfg.services = [
      {
        name: 'web',
        vip: lab.vip,
        port: 80,
        forward: 'nat',
        sorry_server: { address: lab.directors[0]?.lanAddr, port: 8081 },
        check: { type: 'tcp', interval_ms: 1500, timeout_ms: 1400, rise: 1, fall: 2 },
        real_servers: lab.realServers.map((r) => ({ address: r.lanAddr, port: 8080 })),
      },
    ];
    configA = join(lab.dir, 'pair-a.yaml');
    writeFileSync(configA, stringify(cfg));
    // pair B: the same hosts, other node names, the same cluster.id, no VIP, no service
    const cfgB = structuredClone(cfg);
    cfgB.node = 'b1';
    cfgB.cluster.port = B_HEARTBEAT;
    cfgB.cluster.nodes = cfg.cluster.nodes.map((n: { name: string }) => ({ ...n, name: n.name.replace('d', 'b') }));
    cfgB.vips = [];
    cfgB.services = [];
    cfgB.api.listen = `0.0.0.0:${B_API}`;
    const configB = join(lab.dir, 'pair-b.yaml');
    writeFileSync(configB, stringify(cfgB));
    a = clusterNodes(lab, configA);
    b = lab.directors.map((d) => {
      const n = new VigilNode(lab, { ...d, name: d.name.replace('d', 'b') }, configB);
      return n;
    });
    // VigilNode talks to port 9694; pair B's API is on 9695: a thin override for its reads
    for (const n of b) n.get = async (path: string, timeoutS = 2) => {
      const r = await lab.exec(n.director.ns, ['curl', '-sf', '-m', String(timeoutS), `http://127.0.0.1:${B_API}${path}`], { allowFail: true });
      return r.exitCode === 0 ? r.stdout : null;
    };
    await Promise.all([...a, ...b].map((n) => n.start({ waitApiMs: 300_000 }))).catch((err: Error) => {
      const tails = [...a, ...b].map((n) => `--- ${n.name}\n${existsSync(n.logFile) ? readFileSync(n.logFile, 'utf8').slice(-3000) : '(no log)'}`);
      throw new Error(`${err.message}\n${tails.join('\n')}`);
    });

    // Prometheus in the client's namespace scrapes the four daemons as one job
    const rules = parse(readFileSync(join(ROOT, 'deploy', 'prometheus', 'vigil-rules.yml'), 'utf8')) as { groups: { rules: { for?: string }[] }[] };
    for (const g of rules.groups) for (const r of g.rules) if (r.for !== undefined) r.for = '1s';
    writeFileSync(join(lab.dir, 'vigil-rules.yml'), stringify(rules));
    const targets = lab.directors.flatMap((d) => [`${d.lanAddr}:9694`, `${d.lanAddr}:${B_API}`]);
    writeFileSync(
      join(lab.dir, 'prometheus.yml'),
      `global: { scrape_interval: 1s, evaluation_interval: 1s }\nrule_files: [vigil-rules.yml]\nscrape_configs:\n  - job_name: vigil\n    scrape_interval: 1s\n    scrape_timeout: 900ms\n    static_configs:\n      - targets: ${JSON.stringify(targets)}\n`,
    );
    promUrl = `http://127.0.0.1:${PROM_PORT}`;
    prom = lab.spawn(lab.client.ns, [PROMETHEUS, `--config.file=${join(lab.dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(lab.dir, 'prom')}`, `--web.listen-address=127.0.0.1:${PROM_PORT}`, '--log.level=warn']);
    const deadline = Date.now() + 60_000;
    while ((await inClient(['curl', '-sf', '-m', '2', `${promUrl}/-/ready`])) === '') {
      if (Date.now() > deadline) throw new Error('prometheus not ready after 60 s');
      await sleep(500);
    }
  }, 600_000);

  afterAll(async () => {
    prom?.kill('SIGTERM');
    for (const c of listeners.values()) c.kill('SIGKILL');
    await Promise.all([...(a ?? []), ...(b ?? [])].map((n) => n.stop()));
    await lab?.destroy();
  }, 60_000);

  it('a healthy fresh start of two pairs in one job fires nothing', async () => {
    // settled: one active per pair, peers heard on every link, both real servers up
    [activeA, activeB] = await Promise.all([waitSettled(a, 120_000), waitSettled(b, 120_000)]);
    standbyA = other(a, activeA);
    standbyB = other(b, activeB);
    await Promise.all([...a, ...b].map((n) => n.waitPeerLinks(30_000)));
    const deadline = Date.now() + 60_000;
    while ((await activeA.metric('vigil_real_server_healthy')) !== 2) {
      if (Date.now() > deadline) throw new Error('real servers not healthy after 60 s');
      await sleep(300);
    }
    // every target scraped for a few evaluations (the 1 s `for:` has passed many times)
    await sleep(8000);
    const up = JSON.parse(await inClient(['curl', '-sf', `${promUrl}/api/v1/query?query=up`])) as { data: { result: { value: [number, string] }[] } };
    expect(up.data.result.map((r) => r.value[1])).toEqual(['1', '1', '1', '1']);
    // Nothing about the pairs fires. The alerts that report this director's own stalls
    // (timers late, probes overrunning) are true on a machine at load 30-50 and are let
    // through only when the daemon's own lateness gauge confirms the stall at that moment;
    // on a quiet machine they do not fire either.
    const now = await alerts();
    const stalls = new Set(['VigilTimerLate', 'VigilProbeOverrun', 'VigilProbeQueueBacklog']);
    expect(now.filter((x) => !stalls.has(x.labels.alertname as string)).map((x) => x.labels)).toEqual([]);
    if (now.length > 0) {
      const late = JSON.parse(await inClient(['curl', '-sf', `${promUrl}/api/v1/query?query=${encodeURIComponent('max_over_time(vigil_cluster_timer_lateness_max_seconds[5m]) > 0.2')}`])) as { data: { result: unknown[] } };
      console.log(`prometheus-alerts: stall alerts on this loaded machine: ${JSON.stringify(now.map((x) => [x.labels.alertname, x.labels.instance]))}`);
      expect(late.data.result.length).toBeGreaterThan(0);
    }
  }, 240_000);

  it('series in the promtool tests are shaped as the daemon really exports them', async () => {
    const scrape = `${(await node('d1').get('/metrics')) ?? ''}\n${(await node('d2').get('/metrics')) ?? ''}`;
    const tests = parse(readFileSync(join(ROOT, 'deploy', 'prometheus', 'vigil-rules.test.yml'), 'utf8')) as { tests: { input_series: { series: string }[] }[] };
    const shapes = new Set<string>();
    for (const line of scrape.split('\n')) {
      const m = /^(vigil_[a-z0-9_]+)(?:\{(.*)\})? /.exec(line);
      if (m) shapes.add(`${m[1]}{${[...(m[2] ?? '').matchAll(/([a-z_]+)="/g)].map((x) => x[1]).sort().join(',')}}`);
    }
    const missing: string[] = [];
    for (const s of tests.tests.flatMap((t) => t.input_series.map((x) => x.series))) {
      const m = /^([a-z_:][a-z0-9_:]*)\{(.*)\}$/.exec(s);
      if (!m || m[1] === 'up') continue;
      const labels = [...(m[2] as string).matchAll(/([a-z_]+)="/g)].map((x) => x[1] as string).filter((l) => l !== 'job' && l !== 'instance');
      const shape = `${m[1]}{${labels.sort().join(',')}}`;
      // a refused service entry has no real_server label; this healthy pair has none to show
      if (m[1] === 'vigil_reconcile_entry_failing') continue;
      // cluster.mode ecmp families: a pair does not export them (test/e2e/ecmp-lab.test.ts)
      if (m[1]!.startsWith('vigil_ecmp_')) continue;
      if (!shapes.has(shape)) missing.push(shape);
    }
    expect(missing).toEqual([]);
    // and the counters the increase() alerts read exist at 0 before their first event
    expect(scrape).toContain('vigil_cluster_failovers_total{reason="peer-dead"} 0');
    expect(scrape).toContain('vigil_config_last_reload_success 1');
  });

  it('a real server down, then all down with the sorry server, fire on the active director only', async () => {
    const [r1, r2] = lab.realServers as unknown as [{ lanAddr: string; ns: string }, { lanAddr: string; ns: string }];
    unlisten(r1.lanAddr);
    const down = await fires('VigilRealServerDown', { real_server: `${r1.lanAddr}:8080` });
    expect(down.labels).toMatchObject({ service: 'web', instance: inst(activeA), severity: 'warning' });
    unlisten(r2.lanAddr);
    await fires('VigilServiceAllRealServersDown', { service: 'web' });
    await fires('VigilSorryServerActive', { service: 'web', instance: inst(activeA) });
    const f = await firing();
    expect(f.filter((x) => x.labels.alertname === 'VigilRealServerDown').every((x) => x.labels.instance === inst(activeA))).toBe(true);
    listen(r1);
    listen(r2);
    await clears('VigilServiceAllRealServersDown');
    await clears('VigilRealServerDown');
  }, 300_000);

  it('a drain left behind fires until enable', async () => {
    const rs = `${lab.realServers[0]?.lanAddr}:8080`;
    expect(await post(activeA, `/v1/services/web/real-servers/${encodeURIComponent(rs)}/drain`, {})).toContain('"ok":true');
    await fires('VigilRealServerDrainLeftBehind', { service: 'web', real_server: rs });
    expect(await post(activeA, `/v1/services/web/real-servers/${encodeURIComponent(rs)}/enable`, {})).toContain('"ok":true');
    await clears('VigilRealServerDrainLeftBehind');
  }, 300_000);

  it('a rejected reload fires until a good one', async () => {
    const good = readFileSync(configA, 'utf8');
    writeFileSync(configA, `${good}bogus: 1\n`);
    expect(await post(standbyA, '/v1/reload', {})).toContain('VIGIL_CONFIG_INVALID');
    await fires('VigilConfigReloadRejected', { instance: inst(standbyA) });
    writeFileSync(configA, good);
    expect(await post(standbyA, '/v1/reload', {})).toContain('"ok":true');
    await clears('VigilConfigReloadRejected');
  }, 300_000);

  it('probes that outlive their interval behind a saturated cap fire VigilProbeOverrun and VigilProbeQueueBacklog', async () => {
    // on standby A only: a service of four real servers whose exec probe takes 600 ms every
    // second, under health.concurrency 1: 2.4 s of probing falls due each second, so runs
    // wait in the queue and a probe still queued or running when due again is an overrun
    const good = readFileSync(configA, 'utf8');
    const cfg = parse(good) as Record<string, any>;
    cfg.health = { ...(cfg.health ?? {}), concurrency: 1 };
    cfg.services.push({
      name: 'slow',
      vip: lab.vip,
      port: 81,
      forward: 'nat',
      check: { type: 'exec', command: '/bin/sh', args: ['-c', 'sleep 0.6'], args_style: 'none', interval_ms: 1000, timeout_ms: 900, rise: 1, fall: 3 },
      real_servers: lab.realServers.flatMap((r) => [81, 82].map((port) => ({ address: r.lanAddr, port }))),
    });
    writeFileSync(configA, stringify(cfg));
    try {
      expect(await post(standbyA, '/v1/reload', {})).toContain('"ok":true');
      const overrun = await fires('VigilProbeOverrun', { instance: inst(standbyA), service: 'slow' });
      expect(overrun.labels.severity).toBe('warning');
      const backlog = await fires('VigilProbeQueueBacklog', { instance: inst(standbyA) });
      expect(backlog.labels.severity).toBe('warning');
      // the active director runs no such probes: neither alert names it for this service
      expect((await firing()).filter((x) => x.labels.service === 'slow' && x.labels.instance !== inst(standbyA))).toEqual([]);
    } finally {
      writeFileSync(configA, good);
    }
    expect(await post(standbyA, '/v1/reload', {})).toContain('"ok":true');
    // the backlog clears with the cap back at its default; the overrun alert keeps firing
    // for the 5 minutes of its increase() window, as it should
    await clears('VigilProbeQueueBacklog', { instance: inst(standbyA) });
  }, 300_000);

  it('a cut heartbeat link fires VigilHeartbeatLinkDown, nothing fails over', async () => {
    const d1 = lab.directors[0] as { ns: string; hbIf?: string | undefined };
    const before = await Promise.all(a.map((n) => n.role()));
    await lab.linkDown(d1.ns, d1.hbIf as string);
    try {
      await fires('VigilHeartbeatLinkDown', { link: 'heartbeat' });
      expect(await Promise.all(a.map((n) => n.role()))).toEqual(before);
    } finally {
      await lab.linkUp(d1.ns, d1.hbIf as string);
    }
    await clears('VigilHeartbeatLinkDown');
  }, 300_000);

  it('maintenance left on fires, and so does VigilNoStandby on the active director', async () => {
    expect(await post(standbyA, '/v1/maintenance', { on: true })).toContain('"ok":true');
    await fires('VigilMaintenanceLeftOn', { instance: inst(standbyA) });
    await fires('VigilNoStandby', { instance: inst(activeA) });
    expect(await post(standbyA, '/v1/maintenance', { on: false })).toContain('"ok":true');
    await clears('VigilMaintenanceLeftOn');
    await clears('VigilNoStandby');
  }, 300_000);

  it('a stalled director fires VigilTimerLate', async () => {
    // the whole director stalls: the daemon and its cluster process (which keeps its own
    // timers on time while only the daemon is stopped)
    const pid = standbyB.pid as number;
    const tree = [pid, ...readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)];
    for (const p of tree) process.kill(p, 'SIGSTOP');
    await sleep(1500);
    for (const p of tree) process.kill(p, 'SIGCONT');
    await fires('VigilTimerLate', { instance: inst(standbyB) });
  }, 300_000);

  it('split brain in pair A fires for pair A only, never for the healthy pair B in the same job', async () => {
    await Promise.all(a.map((n) => n.waitPeerLinks(30_000)));
    await Promise.all(lab.directors.map((d) => lab.heartbeatLoss(d.name, { percent: 100, port: 694 })));
    try {
      const split = await fires('VigilSplitBrain');
      expect(split.labels).toMatchObject({ cluster_id: 'shared', nodes: 'd1,d2' });
      expect((await firing()).filter((x) => x.labels.alertname === 'VigilSplitBrain').map((x) => x.labels.nodes)).toEqual(['d1,d2']);
    } finally {
      await Promise.all(lab.directors.map((d) => lab.clearFilters(d.name)));
    }
    await clears('VigilSplitBrain');
  }, 300_000);

  it('the active director killed: VigilDown, VigilPeerDown, the first VigilFailover after a start, VigilNoStandby', async () => {
    await Promise.all(a.map((n) => n.waitPeerLinks(30_000)));
    const active = await waitSettled(a, 60_000);
    const survivor = other(a, active);
    // the director dies whole: its cluster process too (alone, a killed daemon's cluster
    // process would say leaving: a peer-left hand-over, not a death)
    const pid = active.pid as number;
    for (const c of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)) process.kill(c, 'SIGKILL');
    await active.signal('SIGKILL');
    await fires('VigilDown', { instance: inst(active) });
    await fires('VigilPeerDown', { instance: inst(survivor), peer: active.name });
    const fo = await fires('VigilFailover', { instance: inst(survivor) });
    expect(fo.labels.reason).toBe('peer-dead');
    await fires('VigilNoStandby', { instance: inst(survivor) });
  }, 300_000);

  it('a pair with nobody active fires VigilNoActiveDirector for that pair only', async () => {
    // pair B: every director loses its one tracked interface (priority 0 everywhere), so
    // nobody may hold the role. Maintenance cannot do it: it is refused, like standby,
    // while no other director could take over.
    await waitSettled(b, 60_000);
    const file = join(lab.dir, 'pair-b.yaml');
    const cfgB = parse(readFileSync(file, 'utf8')) as { cluster: Record<string, unknown> };
    cfgB.cluster.tracks = [{ type: 'interface', interface: 'vnoexist0', weight: 255 }];
    writeFileSync(file, stringify(cfgB));
    for (const n of b) expect(await post(n, '/v1/reload', {}, B_API)).toContain('"ok":true');
    const none = await fires('VigilNoActiveDirector');
    expect(none.labels).toMatchObject({ cluster_id: 'shared', nodes: 'b1,b2' });
  }, 300_000);

  it('no reconcile alert fired at any time of the run (the forwarder reconciled on every director)', async () => {
    // VigilReconcileStale falls back to the daemon's start time when no reconcile ever
    // succeeded: a healthy director must not trip it once it has run past the threshold
    // (120 s); on a fast machine the run may not have lasted that long yet
    const ranS = async (): Promise<number> => {
      const r = JSON.parse(await inClient(['curl', '-sf', `${promUrl}/api/v1/query?query=${encodeURIComponent('time() - max(vigil_process_start_time_seconds)')}`])) as { data: { result: { value: [number, string] }[] } };
      return Number(r.data.result[0]?.value[1] ?? 0);
    };
    while ((await ranS()) < 125) await sleep(1000);
    await sleep(3000);
    const q = encodeURIComponent('count_over_time(ALERTS{alertname=~"VigilReconcile.*"}[1h])');
    const r = JSON.parse(await inClient(['curl', '-sf', `${promUrl}/api/v1/query?query=${q}`])) as { status: string; data: { result: unknown[] } };
    expect(r.status).toBe('success');
    expect(r.data.result).toEqual([]);
    console.log(`prometheus-alerts: the newest surviving daemon ran ${Math.round(await ranS())} s with no reconcile alert`);
  }, 180_000);
});
