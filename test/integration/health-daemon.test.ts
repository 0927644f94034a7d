/**
 * Health in the real daemon (child process): probes start with the daemon, transitions
 * reach the log, /metrics and history; a reload keeps unchanged real servers' state;
 * stopping the daemon stops probes in flight, process groups included.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, standaloneConfig, startDaemon, tmpDir, until, writeFile, type RunningDaemon } from '../helpers/daemon.js';
import { tcpListener, type Listener } from '../helpers/listeners.js';

const running: RunningDaemon[] = [];
const listeners: Listener[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((d) => d.stop()));
  await Promise.all(listeners.splice(0).map((l) => l.close().catch(() => undefined)));
});

function processesWith(marker: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (/^\d+ \(.*\) Z/.test(stat)) continue;
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(marker)) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

describe('health in the daemon', () => {
  it('probes real servers, logs and exports transitions, survives a reload, and stops its probes on exit', async () => {
    const l = await tcpListener();
    listeners.push(l);
    const dir = tmpDir('vigil-health-daemon-');
    const marker = `vigil-daemon-test-${process.pid}-${Date.now()}`;
    const hung = writeFile(dir, 'hung', `#!/bin/bash\ntrap '' TERM\n(exec -a ${marker} sleep 1000) &\necho hanging\nwait\n`, 0o755);
    const apiPort = await freePort();
    const svcPort = await freePort();
    const slowPort = await freePort();
    const services = (tcpCheck: string) => `vips:
  - { address: 127.0.0.1, interface: lo, managed: false }
services:
  - name: web
    vip: 127.0.0.1
    port: ${svcPort}
    forward: nat
    check: ${tcpCheck}
    real_servers:
      - { address: 127.0.0.1, port: ${l.port} }
  - name: slow
    vip: 127.0.0.1
    port: ${slowPort}
    forward: nat
    check: { type: exec, command: ${hung}, interval_ms: 2000, timeout_ms: 1900 }
    real_servers:
      - { address: 127.0.0.1, port: 9 }
health:
  kill_grace_ms: 100
`;
    const check = '{ type: tcp, interval_ms: 200, timeout_ms: 100, rise: 1, fall: 1 }';
    const file = writeFile(dir, 'vigil.yaml', standaloneConfig({ apiPort, clusterPort: await freePort(), extra: services(check) }));
    const d = startDaemon(file);
    running.push(d);
    await d.waitForLog(/"msg":"vigil started"/);
    await d.waitForLog(/"msg":"real server up".*"service":"web"|"service":"web".*"msg":"real server up"/);
    const api = `http://127.0.0.1:${apiPort}`;
    const metrics = await (await fetch(`${api}/metrics`)).text();
    expect(metrics).toContain(`vigil_probe_up{service="web",real_server="127.0.0.1:${l.port}",probe="tcp"} 1`);
    expect(metrics).toContain(`vigil_real_server_healthy{service="web",real_server="127.0.0.1:${l.port}"} 1`);
    // /status shows the verdict and the last check of each real server (DESIGN.md interface)
    const st = (await (await fetch(`${api}/status`)).json()) as { services: { name: string; realServers: { port: number; healthy: boolean; lastCheck: { ok: boolean; reason: string } | null }[] }[] };
    const web = st.services.find((x) => x.name === 'web')?.realServers.find((r) => r.port === l.port);
    expect(web).toMatchObject({ healthy: true, lastCheck: { ok: true, reason: 'connected' } });

    // a reload that changes nothing about web's check keeps its state: no new "up"
    const before = d.logs().split('\n').filter((x) => x.includes('"real server up"')).length;
    writeFileSync(file, readFileSync(file, 'utf8').replace('level: debug', 'level: info'));
    d.child.kill('SIGHUP');
    await d.waitForLog(/"msg":"config reloaded"/);
    await new Promise((r) => setTimeout(r, 500));
    expect(d.logs().split('\n').filter((x) => x.includes('"real server up"')).length).toBe(before);

    await l.close();
    await d.waitForLog(/"msg":"real server down"/, 3000);
    const status = (await (await fetch(`${api}/status`)).json()) as { history: { kind: string; message: string }[] };
    expect(status.history.some((h) => h.kind === 'health' && h.message === `web 127.0.0.1:${l.port} down: connect: ECONNREFUSED`)).toBe(true);

    await until(() => processesWith(marker).length > 0, 5000); // the hung probe is running
    d.child.kill('SIGTERM');
    expect(await d.exited).toEqual({ code: 0, signal: null });
    await new Promise((r) => setTimeout(r, 100));
    expect(processesWith(marker)).toEqual([]);
  });
});
