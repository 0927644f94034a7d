/**
 * deploy/ checked by the tools that will consume it: promtool (rules, rule unit tests,
 * scrape config), systemd-analyze (the unit, its hardening score), and the metric
 * names used by the alert rules and the Grafana dashboard against the registry.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/metrics.js';
import { tmpDir } from '../helpers/daemon.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const DEPLOY = join(ROOT, 'deploy');
const run = promisify(execFile);

const has = (bin: string): boolean => ['/usr/bin', '/usr/sbin', '/bin', '/sbin', '/usr/local/bin'].some((d) => existsSync(join(d, bin)));
const promtool = has('promtool');
const systemd = has('systemd-analyze');
if (!promtool) console.log('deploy-assets: promtool not installed (apt-get install prometheus; .ci/run does): promtool checks skip');
if (!systemd) console.log('deploy-assets: systemd-analyze not installed: unit checks skip');

async function tool(bin: string, args: string[], cwd = DEPLOY): Promise<{ code: number; out: string; err: string }> {
  try {
    const r = await run(bin, args, { cwd, timeout: 30_000 });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: typeof x.code === 'number' ? x.code : 1, out: x.stdout, err: x.stderr };
  }
}

/** Every metric name the registry exposes, with the series suffixes of histograms. */
async function knownMetricNames(): Promise<Set<string>> {
  const m = createMetrics();
  const names = new Set<string>();
  for (const metric of await m.registry.getMetricsAsJSON()) {
    names.add(metric.name);
    const type = String(metric.type);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(metric.name + s);
    if (type === 'summary') for (const s of ['_sum', '_count']) names.add(metric.name + s);
  }
  return names;
}

/** systemd-analyze's lines about vigil's unit (by name or path), not about other units it loaded. */
function ourLines(stderr: string, unitName = 'vigil.service'): string[] {
  return stderr.split('\n').filter((l) => l.startsWith(`${unitName}:`) || l.includes(`/${unitName}:`));
}

const metricRefs = (text: string): string[] => [...new Set([...text.matchAll(/\bvigil_[a-z0-9_]+/g)].map((x) => x[0]))];

describe.skipIf(!promtool)('Prometheus files (promtool)', () => {
  it('promtool check rules passes on the alert rules', async () => {
    const r = await tool('promtool', ['check', 'rules', 'prometheus/vigil-rules.yml']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('the alert rules pass their promtool unit tests', async () => {
    const r = await tool('promtool', ['test', 'rules', 'vigil-rules.test.yml'], join(DEPLOY, 'prometheus'));
    expect(r.out + r.err).toContain('SUCCESS');
    expect(r.code).toBe(0);
  });

  it('promtool check config passes on the scrape config (and the rules it names)', async () => {
    const r = await tool('promtool', ['check', 'config', 'prometheus/prometheus.yml']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('is valid prometheus config file syntax');
  });
});

describe('alert rules and dashboard use real metric names', () => {
  it('has an alert for each case the operator asked for', () => {
    const rules = readFileSync(join(DEPLOY, 'prometheus', 'vigil-rules.yml'), 'utf8');
    const alerts = [...rules.matchAll(/- alert: (\S+)/g)].map((x) => x[1]);
    expect(alerts).toEqual(
      expect.arrayContaining(['VigilFailover', 'VigilPeerDown', 'VigilNoStandby', 'VigilRealServerDown', 'VigilServiceAllRealServersDown', 'VigilProbeOverrun', 'VigilReconcileFailing']),
    );
  });

  it.each([
    ['prometheus/vigil-rules.yml'],
    ['grafana/vigil-dashboard.json'],
  ])('every vigil_ metric in %s exists in the registry', async (file) => {
    const text = readFileSync(join(DEPLOY, file), 'utf8');
    const known = await knownMetricNames();
    const refs = metricRefs(text);
    expect(refs.length).toBeGreaterThan(5);
    expect(refs.filter((n) => !known.has(n))).toEqual([]);
  });

  it('the dashboard is importable Grafana JSON: panels with queries, a datasource input', () => {
    const d = JSON.parse(readFileSync(join(DEPLOY, 'grafana', 'vigil-dashboard.json'), 'utf8')) as {
      uid: string;
      __inputs: { name: string }[];
      panels: { id: number; type: string; targets?: { expr: string }[]; gridPos: object }[];
    };
    expect(d.uid).toBe('vigil-directors');
    expect(d.__inputs[0]?.name).toBe('DS_PROMETHEUS');
    const ids = d.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const graphs = d.panels.filter((p) => p.type !== 'row');
    expect(graphs.length).toBeGreaterThanOrEqual(12);
    for (const p of graphs) expect(p.targets?.length).toBeGreaterThan(0);
  });
});

describe.skipIf(!systemd)('systemd unit', () => {
  const unit = readFileSync(join(DEPLOY, 'vigil.service'), 'utf8');
  const directive = (k: string): string[] => [...unit.matchAll(new RegExp(`^${k}=(.*)$`, 'gm'))].map((x) => x[1] as string);

  it('systemd-analyze verify finds no problem in our unit (other units on the machine may have theirs)', async () => {
    const dir = tmpDir('vigil-unit-');
    // /usr/bin/vigil comes with the Debian package; here the checkout's entry point stands in
    writeFileSync(join(dir, 'vigil.service'), unit.replaceAll('/usr/bin/vigil ', `${join(ROOT, 'bin', 'vigil.js')} `));
    const r = await tool('systemd-analyze', ['verify', './vigil.service'], dir);
    // verify loads every unit ours names (Conflicts=ldirectord.service, ...): on a director
    // being migrated from Debian's ldirectord, its unit's own warning must not fail us
    expect(ourLines(r.err)).toEqual([]);
    expect(r.code).toBe(0);
  });

  it('ourLines keeps what concerns vigil.service and drops other units\' warnings', () => {
    const err = [
      "/lib/systemd/system/ldirectord.service:13: Unit uses KillMode=none. This is unsafe, as it disables systemd's process lifecycle management for the service.",
      'vigil.service: Command /usr/bin/vigil is not executable: No such file or directory',
      '/tmp/x/vigil.service:12: Unknown key name \'Frob\' in section \'Service\', ignoring.',
    ].join('\n');
    expect(ourLines(err)).toEqual([
      'vigil.service: Command /usr/bin/vigil is not executable: No such file or directory',
      "/tmp/x/vigil.service:12: Unknown key name 'Frob' in section 'Service', ignoring.",
    ]);
  });

  it('Type=notify, with NotifyAccess=all for the child that sends READY=1', () => {
    expect(directive('Type')).toEqual(['notify']);
    expect(directive('NotifyAccess')).toEqual(['all']);
  });

  it('an invalid config is not retried forever: exit 78 is not restarted, and a start limit stops a crash loop', () => {
    expect(directive('RestartPreventExitStatus')).toEqual(['78']);
    // systemd consults RestartPreventExitStatus for the main process only: a config refused
    // by an ExecStartPre would be retried like a crash (shown under systemd 252 as PID 1)
    expect(directive('ExecStartPre')).toEqual([]);
    expect(Number(directive('StartLimitIntervalSec')[0])).toBeGreaterThan(0);
    expect(Number(directive('StartLimitBurst')[0])).toBeGreaterThan(0);
    // the start limit belongs in [Unit] (systemd ignores it in [Service] since v230)
    const unitSection = unit.slice(unit.indexOf('[Unit]'), unit.indexOf('[Service]'));
    expect(unitSection).toMatch(/^StartLimitIntervalSec=\d+$/m);
    expect(unitSection).toMatch(/^StartLimitBurst=\d+$/m);
  });

  it('/proc/sys stays read-only except the IPv6 interface settings IPv6 VIPs need', () => {
    expect(directive('ProtectKernelTunables')).toEqual(['yes']);
    expect(directive('ReadWritePaths')[0]?.split(/\s+/)).toContain('-/proc/sys/net/ipv6/conf');
  });

  it('restarts always, reloads with SIGHUP, and keeps only the network capabilities (plus SYS_NICE for realtime)', () => {
    expect(directive('Restart')).toEqual(['always']);
    expect(directive('ExecReload')).toEqual(['/bin/kill -HUP $MAINPID']);
    for (const k of ['CapabilityBoundingSet', 'AmbientCapabilities']) {
      expect(directive(k)[0]?.split(/\s+/).sort()).toEqual(['CAP_NET_ADMIN', 'CAP_NET_BIND_SERVICE', 'CAP_NET_RAW', 'CAP_SYS_NICE']);
    }
    // cluster.realtime (default on): SCHED_RR for the cluster process needs these
    expect(directive('RestrictRealtime')).toEqual(['no']);
    expect(directive('LimitRTPRIO')).toEqual(['99']);
    // no VIP outlives the daemon, however it died
    expect(directive('ExecStopPost')).toEqual(['/usr/bin/vigil cleanup --config ${VIGIL_CONFIG}']);
    for (const k of ['NoNewPrivileges', 'ProtectHome', 'PrivateTmp', 'ProtectKernelModules']) expect(directive(k)).toEqual(['yes']);
    expect(directive('ProtectSystem')).toEqual(['strict']);
    // V8 calls pkey_alloc at start: without @pkey, systemd 252's @system-service filter
    // killed every vigil process with SIGSYS (test/e2e/systemd-unit.test.ts)
    expect(directive('SystemCallFilter')[0]?.split(/\s+/)).toEqual(['@system-service', '@pkey']);
    expect(directive('SystemCallErrorNumber')).toEqual(['EPERM']);
    // Node's JIT needs W+X pages
    expect(directive('MemoryDenyWriteExecute')).toEqual([]);
  });

  it('the real-server template unit verifies for dr and tun (pointing at deploy/ scripts)', async () => {
    const dir = tmpDir('vigil-unit-');
    const text = readFileSync(join(DEPLOY, 'vigil-realserver@.service'), 'utf8').replaceAll('/usr/local/sbin/', `${DEPLOY}/`);
    for (const kind of ['dr', 'tun']) {
      writeFileSync(join(dir, `vigil-realserver@${kind}.service`), text);
      const r = await tool('systemd-analyze', ['verify', `./vigil-realserver@${kind}.service`], dir);
      expect(ourLines(r.err, `vigil-realserver@${kind}.service`)).toEqual([]);
      expect(r.code).toBe(0);
    }
  });

  it('systemd rates its exposure at most 2.5 ("OK")', async () => {
    const dir = tmpDir('vigil-unit-');
    copyFileSync(join(DEPLOY, 'vigil.service'), join(dir, 'vigil.service'));
    const r = await tool('systemd-analyze', ['security', '--offline=true', '--threshold=25', './vigil.service'], dir);
    expect(r.out).toMatch(/Overall exposure level for vigil\.service: [0-2]\.\d/);
    expect(r.code).toBe(0);
  });
});

describe('director sysctl file', () => {
  const text = readFileSync(join(DEPLOY, 'sysctl-director.conf'), 'utf8');
  const settings = Object.fromEntries(
    text
      .split('\n')
      .filter((l) => /^[a-z]/.test(l))
      .map((l) => l.split('=').map((s) => s.trim()) as [string, string]),
  );

  it('turns on forwarding and the IPVS expiry settings that make drain work', () => {
    expect(settings).toMatchObject({
      'net.ipv4.ip_forward': '1',
      'net.ipv4.vs.expire_nodest_conn': '1',
      'net.ipv4.vs.expire_quiescent_template': '1',
      'net.ipv4.conf.all.send_redirects': '0',
    });
  });

  it('every key outside net.ipv4.vs exists in this kernel (the vs keys are checked in the IPVS VM)', () => {
    for (const key of Object.keys(settings).filter((k) => !k.startsWith('net.ipv4.vs.'))) {
      expect(existsSync(`/proc/sys/${key.replaceAll('.', '/')}`), key).toBe(true);
    }
  });
});
