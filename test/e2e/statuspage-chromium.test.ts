/**
 * The status page in Debian's headless Chromium (playwright-core, no bundled browser)
 * against a running daemon: a virtual service whose real server is a TCP listener this
 * test owns. The page shows it up; the test closes the listener; without reloading,
 * the page shows the real server DOWN with the probe's reason, and the health change
 * in its recent events. Then a pair of daemons on loopback: the standby's page shows the
 * peer with both links and RTTs, follows a handover asked through the API, and marks
 * the peer DEAD when it is killed.
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, standaloneConfig, startDaemon, tmpDir, until, writeFile, type RunningDaemon } from '../helpers/daemon.js';
import { Lab, freeTcpPort, freeUdpPort, waitFor } from '../integration/cluster-harness.js';

const CHROMIUM = '/usr/bin/chromium';
const have = existsSync(CHROMIUM);
if (!have) console.log('statuspage: /usr/bin/chromium missing (apt-get install chromium; .ci/run does): test skips');

describe.skipIf(!have)('the status page in headless Chromium', () => {
  let daemon: RunningDaemon;
  let browser: Browser;
  let listener: Server | undefined;
  let rsPort: number;
  let url: string;

  const listen = (port: number) =>
    new Promise<Server>((res, rej) => {
      const s = createServer((sock) => {
        sock.on('error', () => undefined); // probes close abruptly
        sock.end('hi\n');
      });
      s.once('error', rej);
      s.listen(port, '127.0.0.1', () => res(s));
    });

  beforeAll(async () => {
    rsPort = await freePort();
    listener = await listen(rsPort);
    const apiPort = await freePort();
    const dir = tmpDir('vigil-page-');
    daemon = startDaemon(
      writeFile(
        dir,
        'vigil.yaml',
        standaloneConfig({
          apiPort,
          clusterPort: await freePort(),
          node: 'page-node',
          extra: `vips:
  - { address: 127.0.0.1, prefix: 8, interface: lo, managed: false }
services:
  - name: web
    vip: 127.0.0.1
    port: ${await freePort()}
    forward: nat
    check: { type: tcp, interval_ms: 200, timeout_ms: 150, rise: 1, fall: 1 }
    real_servers:
      - { address: 127.0.0.1, port: ${rsPort} }
dataplane: forwarder
`,
        }),
      ),
    );
    url = `http://127.0.0.1:${apiPort}/`;
    await until(async () => (await fetch(`${url}healthz`)).ok, 15_000);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    listener?.close();
    await daemon?.stop();
  });

  it('shows role, VIPs and the real server; marks it DOWN after the listener closes, without a reload', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    await until(async () => (await page.textContent('#node')) === 'page-node', 10_000);
    expect(await page.textContent('#role')).toMatch(/^(init|standby|active|maintenance)$/);
    expect(await page.textContent('[data-vip="127.0.0.1"]')).toContain('127.0.0.1/8');

    const row = `[data-rs="web/127.0.0.1:${rsPort}"]`;
    await page.waitForSelector(`${row}[data-health="up"]`, { timeout: 15_000 });

    await new Promise<void>((r) => (listener as Server).close(() => r()));
    listener = undefined;

    // the page polls by itself: no reload
    await page.waitForSelector(`${row}[data-health="down"]`, { timeout: 15_000 });
    expect(await page.textContent(`${row} [data-testid="health"]`)).toBe('DOWN');
    expect(await page.textContent(`${row} td.reason`)).toMatch(/refused|ECONNREFUSED/i);
    await until(async () => (await page.$$eval('li[data-kind="health"]', (lis) => lis.map((li) => li.textContent ?? ''))).some((t) => t.includes(`127.0.0.1:${rsPort} down`)), 10_000);
    const shot = join(tmpDir('vigil-page-shot-'), 'statuspage.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`statuspage: screenshot in ${shot}`);

    // the daemon goes away: the page says so and keeps the last picture
    await daemon.stop();
    await page.waitForSelector('#banner', { state: 'visible', timeout: 10_000 });
    expect(await page.textContent('#banner')).toContain('not answering');
    expect(errors).toEqual([]);
  }, 60_000);
  it('on a pair: shows the peer and its links, follows a handover and a dead peer by itself', async () => {
    const addrs = { lvs1: ['127.0.0.51', '127.0.0.52'], lvs2: ['127.0.0.53', '127.0.0.54'] };
    const lab = new Lab({
      port: await freeUdpPort(Object.values(addrs).flat()),
      intervalMs: 100,
      deadtimeMs: 600,
      warntimeMs: 300,
      initdeadMs: 1000,
      nodes: [
        { name: 'lvs1', priority: 150, heartbeat: addrs.lvs1[0]!, lan: addrs.lvs1[1]!, apiPort: await freeTcpPort() },
        { name: 'lvs2', priority: 100, heartbeat: addrs.lvs2[0]!, lan: addrs.lvs2[1]!, apiPort: await freeTcpPort() },
      ],
    });
    try {
      lab.start('lvs1');
      lab.start('lvs2');
      await waitFor('lvs1 active, lvs2 standby', () => lab.role('lvs1') === 'active' && lab.role('lvs2') === 'standby', 15_000);
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      await page.goto(`${lab.node('lvs2').api}/`);
      await until(async () => (await page.textContent('#role')) === 'standby', 10_000);
      const peer = '[data-peer="lvs1"]';
      const cells = () => page.$$eval(peer, (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
      // both links up, with an RTT
      await until(async () => {
        const r = await cells();
        return r.length === 2 && r.every((c) => c[6] === 'up' && / ms$/.test(c[7] ?? ''));
      }, 10_000);
      const rows = await cells();
      expect(rows[0]?.slice(0, 7)).toEqual(['lvs1', 'alive', 'active', '150', 'heartbeat', '127.0.0.53 \u2192 127.0.0.51', 'up']);
      expect(rows[1]?.slice(4, 7)).toEqual(['lan', '127.0.0.54 \u2192 127.0.0.52', 'up']);
      expect(await page.textContent('[data-vip="127.0.0.1"]')).toContain('lvs1');

      // a handover, asked through the API: the page follows without a reload
      const r = await fetch(`${lab.node('lvs1').api}/v1/standby`, { method: 'POST', headers: { authorization: `Bearer ${lab.token}`, 'content-type': 'application/json' }, body: '{}' });
      expect(r.status).toBe(200);
      await until(async () => (await page.textContent('#role')) === 'active' && (await cells())[0]?.[2] === 'standby', 10_000);

      // the peer dies: DEAD, links down
      lab.node('lvs1').proc.kill('SIGKILL');
      await until(async () => (await cells())[0]?.[1] === 'DEAD', 10_000);
      expect((await cells()).map((c) => c[6])).toEqual(['down', 'down']);
      await page.close();
    } finally {
      await lab.stopAll();
      lab.cleanup();
    }
  }, 60_000);
});
