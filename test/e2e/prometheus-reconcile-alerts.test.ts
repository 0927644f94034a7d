/**
 * The dataplane alerts proven live (issue 14): VigilReconcileEntryRefused,
 * VigilReconcileFailing and VigilReconcileStale need a dataplane that refuses an entry,
 * the kernel's IPVS, which only the VM has (../shared/ipvs-vm). In ONE boot, two real
 * vigil directors with the IPVS dataplane and a real Prometheus evaluating the shipped
 * rules every second (test/e2e/guest/prometheus-reconcile-alerts.scenario.ts):
 *   - A reconciles fine, then a reload adds a real server on a multicast address, which
 *     the kernel refuses: its reconciles fail from then on and stop succeeding;
 *   - B has that real server from its start: no reconcile of it ever succeeds, so it has
 *     no last-success series and VigilReconcileStale fires from the daemon's start time.
 * The rules are the shipped file with every `for:` shortened to 1s, as in
 * test/e2e/prometheus-alerts.test.ts; the 120 s staleness threshold is the shipped one.
 * Evaluated every second, scraped every 3 s (the guest is emulated: 10-25x slower).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { compileGuest, ROOT, runInVm, vmUnavailable, type VmRun } from './ipvs-vm.js';

const PROMETHEUS = '/usr/bin/prometheus';
const why = vmUnavailable() ?? (!existsSync(PROMETHEUS) ? `${PROMETHEUS} missing (apt-get install prometheus; .ci/run does)` : undefined);
if (why) console.log(`prometheus-reconcile-alerts: skipped, ${why}`);

const STALE_S = 120;
const A = '10.99.1.2:9694';
const B = '10.99.2.2:9694';
const REFUSED = '224.1.1.1:80';

interface Seen {
  key: string;
  labels: Record<string, string>;
  activeAt: string;
  firstPendingAt: number;
  firingAt?: number;
  value?: string;
}

/** A director of one, IPVS dataplane, one service; `refused` adds the multicast real server. */
function director(id: string, refused: boolean): Record<string, unknown> {
  return {
    node: 'd1',
    // a cluster of one (its own id: two clusters of one named alike would be one pair with
    // two actives to VigilSplitBrain); slow timers, little work for the emulated CPU
    cluster: { id, interval_ms: 1000, deadtime_ms: 10000, warntime_ms: 5000, initdead_ms: 1000, nodes: [{ name: 'd1', links: [{ name: 'l', address: '127.0.0.1' }] }] },
    vips: [{ address: '10.10.0.1', interface: 'lo', managed: false }],
    services: [
      {
        name: 'web',
        vip: '10.10.0.1',
        port: 80,
        forward: 'nat',
        // no check: counted healthy, so the refused entry is in the desired table at once
        real_servers: [{ address: '10.20.0.2', port: 80 }, ...(refused ? [{ address: '224.1.1.1', port: 80 }] : [])],
      },
    ],
    // a failed run is retried with backoff anyway; the periodic run only repairs drift
    dataplane: { mode: 'ipvs', reconcile_interval_ms: 10000 },
    api: { listen: '0.0.0.0:9694' },
    logging: { level: 'info' },
  };
}

describe.skipIf(why !== undefined)('the reconcile alerts against the kernel IPVS and a real Prometheus (VM)', () => {
  let run: VmRun;
  let dir = '';
  const rec = (step: string): Record<string, unknown> => {
    const r = run.records.find((x) => x.step === step);
    if (!r) throw new Error(`step ${step} missing; VM output:\n${run.output.slice(-4000)}`);
    return r;
  };
  const seen = (name: string, instance: string): Seen => {
    const s = (rec('alerts').alerts as Seen[]).find((x) => x.key === `${name} ${instance}`);
    if (!s?.firingAt) throw new Error(`${name} on ${instance} never fired; seen: ${JSON.stringify(rec('alerts').alerts)}`);
    return s;
  };

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('boots the VM once: two directors and Prometheus, healthy, then a refused entry', async () => {
    dir = mkdtempSync(join(tmpdir(), 'vigil-promvm-'));
    const rules = parse(readFileSync(join(ROOT, 'deploy', 'prometheus', 'vigil-rules.yml'), 'utf8')) as { groups: { rules: { for?: string }[] }[] };
    for (const g of rules.groups) for (const r of g.rules) if (r.for !== undefined) r.for = '1s';
    writeFileSync(join(dir, 'vigil-rules.yml'), stringify(rules));
    // evaluated every second; scraped every 3 s with a 3 s timeout (an emulated daemon on a
    // loaded host answering /metrics in over a second is slow, not down)
    const prom = (targets: string[]): string =>
      `global: { scrape_interval: 3s, evaluation_interval: 1s }\nrule_files: [${join(dir, 'vigil-rules.yml')}]\nscrape_configs:\n  - job_name: vigil\n    scrape_interval: 3s\n    scrape_timeout: 3s\n    static_configs:\n      - targets: ${JSON.stringify(targets)}\n`;
    writeFileSync(join(dir, 'prometheus.yml'), prom([A, B]));
    writeFileSync(join(dir, 'a.yaml'), stringify(director('vm-a', false)));
    writeFileSync(join(dir, 'a-bad.yaml'), stringify(director('vm-a', true)));
    writeFileSync(join(dir, 'b.yaml'), stringify(director('vm-b', true)));
    // both configs are valid as vigil sees them: the kernel, not validation, refuses 224.1.1.1
    for (const f of ['a.yaml', 'a-bad.yaml', 'b.yaml']) execFileSync('node', [join(ROOT, 'dist', 'cli.js'), 'validate', join(dir, f)], { stdio: 'pipe' });
    const manifest = join(dir, 'manifest.json');
    writeFileSync(
      manifest,
      JSON.stringify({ root: ROOT, prometheus: PROMETHEUS, dir, configA: join(dir, 'a.yaml'), badA: join(dir, 'a-bad.yaml'), configB: join(dir, 'b.yaml'), promConfig: join(dir, 'prometheus.yml'), waitS: 240 }),
    );
    const file = compileGuest('test/e2e/guest/prometheus-reconcile-alerts.scenario.ts');
    run = await runInVm(`node ${file} ${manifest}`, 900);
    console.log(`prometheus-reconcile-alerts: ${Math.round(run.wallMs / 1000)} s in the VM\n${run.records.map((r) => JSON.stringify(r)).join('\n')}`);
    expect(run.records.find((r) => r.step === 'crash')).toBeUndefined();
    expect(run.records.at(-1)).toMatchObject({ done: true });
    expect(run.code).toBe(0);
  }, 960_000);

  it('a healthy director with the IPVS table in fires none of the reconcile alerts', () => {
    expect(rec('started').tableA).toEqual(['-A -t 10.10.0.1:80 -s wlc', '-a -t 10.10.0.1:80 -r 10.20.0.2:80 -m -w 1']);
    // A only: B runs with the refused entry from its start
    const healthy = (rec('healthy').alerts as Record<string, string>[]).filter((x) => x.instance === A);
    expect(healthy.filter((x) => x.alertname?.startsWith('VigilReconcile'))).toEqual([]);
    // a cluster of one has no standby (true), and the emulated CPU may run timers late
    expect(healthy.filter((x) => !['VigilNoStandby', 'VigilTimerLate'].includes(x.alertname as string))).toEqual([]);
  });

  it('the refused real server fires VigilReconcileEntryRefused on both, naming it', () => {
    for (const i of [A, B]) {
      expect(seen('VigilReconcileEntryRefused', i).labels).toMatchObject({ severity: 'critical', service: 'web', real_server: REFUSED, job: 'vigil' });
    }
    // every other entry is in the kernel; the refusal is logged by name
    const r = rec('alerts');
    for (const t of [r.tableA, r.tableB]) expect(t).toEqual(['-A -t 10.10.0.1:80 -s wlc', '-a -t 10.10.0.1:80 -r 10.20.0.2:80 -m -w 1']);
    for (const l of [r.refusedLogA, r.refusedLogB] as string[][]) expect(l[0]).toContain(`the dataplane refused real server ${REFUSED} of web`);
  });

  it('the reconciles that keep failing fire VigilReconcileFailing on both', () => {
    for (const i of [A, B]) expect(seen('VigilReconcileFailing', i).labels).toMatchObject({ severity: 'critical', dataplane: 'ipvs' });
    expect(rec('alerts').failuresA as number).toBeGreaterThan(1);
    expect(rec('alerts').failuresB as number).toBeGreaterThan(1);
  });

  it('VigilReconcileStale fires on A 120 s after its last success, not before', () => {
    const r = rec('alerts');
    const last = r.lastSuccessA as number;
    // no success once the reloaded table was refused
    expect(last).toBe(r.lastSuccessAtRefusal);
    expect(last * 1000).toBeLessThanOrEqual((r.tReload as number) + (r.refusedAfterMs as number));
    const s = seen('VigilReconcileStale', A);
    expect(s.labels).toMatchObject({ severity: 'warning', dataplane: 'ipvs' });
    expect(Date.parse(s.activeAt) / 1000 - last).toBeGreaterThanOrEqual(STALE_S);
    expect(s.firstPendingAt / 1000 - last).toBeGreaterThanOrEqual(STALE_S);
  });

  it('VigilReconcileStale fires on B, which never reconciled successfully, 120 s after its start (the fallback)', () => {
    const r = rec('alerts');
    // what the rule has to stand in for: no last-success series on B, in its scrape or in Prometheus
    expect(r.bExportsLastSuccess).toBe(false);
    expect(r.lastSuccessB).toEqual([]);
    const s = seen('VigilReconcileStale', B);
    expect(s.labels.dataplane).toBeUndefined();
    expect(Date.parse(s.activeAt) / 1000 - (r.startB as number)).toBeGreaterThanOrEqual(STALE_S);
    console.log(
      `prometheus-reconcile-alerts: stale after ${Math.round(Date.parse(seen('VigilReconcileStale', A).activeAt) / 1000 - (r.lastSuccessA as number))} s (A, from its last success) and ${Math.round(Date.parse(s.activeAt) / 1000 - (r.startB as number))} s (B, from its start)`,
    );
  });
});
