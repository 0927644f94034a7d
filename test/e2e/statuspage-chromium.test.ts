/**
 * The status page in Debian's headless Chromium (playwright-core, no bundled browser)
 * against a running daemon: a virtual service whose real server is a TCP listener this
 * test owns. The page shows it up; the test closes the listener; without reloading,
 * the page shows the real server DOWN with the probe's reason, and the health change
 * in its recent events. Then a pair of daemons on loopback: the standby's page shows the
 * peer with both links and RTTs, follows a handover asked through the API, and marks
 * the peer DEAD when it is killed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { pino } from 'pino';
import { createApi } from '../../src/api/server.js';
import type { StatusDoc } from '../../src/api/types.js';
import { createMetrics } from '../../src/metrics.js';
import { sampleStatus } from '../support/operate-fixtures.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, standaloneConfig, startDaemon, tmpDir, until, writeFile, type RunningDaemon } from '../helpers/daemon.js';
import { Lab, freeTcpPort, freeUdpPort, waitFor } from '../integration/cluster-harness.js';

// browser globals used inside page.evaluate/$eval callbacks (the project has no DOM lib)
declare const document: { documentElement: { scrollWidth: number; clientWidth: number } };
declare function getComputedStyle(el: unknown): { color: string; backgroundColor: string };

const CHROMIUM = '/usr/bin/chromium';
const GREEN = 'rgb(31, 138, 76)';
const RED = 'rgb(198, 40, 40)';
const AMBER = 'rgb(178, 106, 0)';

/** [text, computed color of the kind] of every recent health event. */
const historyColors = (page: Page) =>
  page.$$eval('li[data-kind="health"]', (lis) => lis.map((li) => [li.textContent ?? '', getComputedStyle(li.querySelector('.kind')!).color] as [string, string]));

/** Width of a PNG (IHDR), to hold a full-page screenshot to the viewport's width. */
const pngWidth = (file: string): number => readFileSync(file).readUInt32BE(16);
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
    await until(async () => (await fetch(`${url}healthz`)).ok, 60_000); // a loaded 2-core machine starts Node slowly
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  }, 120_000);

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
    expect(await page.getAttribute('#role', 'data-role')).toMatch(/^(init|standby|active|maintenance)$/);
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

    // back up: the health "up" event is green, the "down" one red (a `\b` in the page's
    // template literal once turned into a backspace and made every event red)
    listener = await listen(rsPort);
    await page.waitForSelector(`${row}[data-health="up"]`, { timeout: 15_000 });
    await until(async () => (await historyColors(page)).some(([t]) => t.includes(`127.0.0.1:${rsPort} up:`)), 10_000);
    const colors = await historyColors(page);
    expect(colors.find(([t]) => t.includes(`127.0.0.1:${rsPort} up:`))?.[1]).toBe(GREEN);
    expect(colors.find(([t]) => t.includes(`127.0.0.1:${rsPort} down:`))?.[1]).toBe(RED);
    // the figures of a live real server: failed checks counted, time in state and downtime shown
    expect(Number(await page.textContent(`${row} [data-fig="checks"]`))).toBeGreaterThanOrEqual(1);
    expect(await page.textContent(`${row} [data-fig="downtime"]`)).toMatch(/^\d+s$|^\d+m \d+s$/);

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
      // two Node daemons starting on a loaded 2-core machine can take tens of seconds
      await waitFor('lvs1 active, lvs2 standby', () => lab.role('lvs1') === 'active' && lab.role('lvs2') === 'standby', 60_000);
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
      // not a plain green ACTIVE: the badge says the peer is dead, and the strip warns
      await page.waitForSelector('#role[data-degraded="1"]', { timeout: 10_000 });
      expect(await page.textContent('#role')).toBe('active \u2014 peer dead');
      expect(await page.$eval('#role', (el) => getComputedStyle(el).backgroundColor)).not.toBe(GREEN);
      expect(await page.$$eval('#warnings li', (lis) => lis.map((li) => li.getAttribute('data-warning')))).toEqual(['dead-peer', 'no-standby']);
      await page.close();
    } finally {
      await lab.stopAll();
      lab.cleanup();
    }
  }, 150_000);
});

/** A document with the HAProxy-like figures filled and every real server healthy. */
function figuresDoc(): StatusDoc {
  const d = sampleStatus();
  d.services = d.services.filter((s) => s.realServers.length > 0);
  d.services[0]!.realServers.forEach((r, i) => {
    Object.assign(r, { healthy: true, drained: false, weight: r.configuredWeight, connections: { active: 3, inactive: 1, total: 1200 + i } });
    r.stats = { bytesIn: 1_234_567, bytesOut: 98_765_432, packetsIn: 10, packetsOut: 20, cps: 7, bpsIn: 100, bpsOut: 200, cpsMax: 42, connectErrors: i === 0 ? null : 3 };
    r.state = { failedChecks: 5, inStateS: 3725, downtimeS: 65 };
  });
  d.history = [
    { at: '2026-01-01T12:00:00.000Z', kind: 'health', message: 'web 172.16.100.11:80 up: HTTP 200' },
    { at: '2026-01-01T11:59:58.123Z', kind: 'health', message: 'web 172.16.100.11:80 down: connect ECONNREFUSED' },
  ];
  return d;
}

describe.skipIf(!have)('the status page at desktop and phone widths (fixed documents)', () => {
  let app: Awaited<ReturnType<typeof createApi>>;
  let url: string;
  let browser: Browser;
  let doc: StatusDoc = figuresDoc();
  const shots = tmpDir('vigil-page-widths-');

  beforeAll(async () => {
    app = await createApi({ logger: pino({ level: 'silent' }), metrics: createMetrics({ defaults: false }), status: () => doc, ready: () => true, healthy: () => true, control: {} as never, token: () => undefined });
    await app.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  /** Serves `d`, waits until the page drew it (the node name is the marker). */
  async function show(page: Page, d: StatusDoc): Promise<void> {
    doc = d;
    await until(async () => (await page.textContent('#node')) === d.node, 10_000);
  }

  it.each([
    ['desktop', 1280],
    ['phone', 390],
  ])('%s (%i px): no horizontal scroll, UTC times, figures per real server, right colors', async (name, width) => {
    const page = await browser.newPage({ viewport: { width, height: 800 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    await show(page, { ...figuresDoc(), node: `lvs1-${name}` });

    const scroll = await page.evaluate(() => ({ sw: document.documentElement.scrollWidth, cw: document.documentElement.clientWidth }));
    expect(scroll.sw).toBeLessThanOrEqual(scroll.cw);
    const shot = join(shots, `${name}.png`);
    await page.screenshot({ path: shot, fullPage: true });
    expect(pngWidth(shot)).toBe(width); // a page wider than the viewport makes a wider full-page shot
    console.log(`statuspage: ${name} screenshot in ${shot}`);

    // healthy pair: a plain badge, no warning strip
    expect(await page.textContent('#role')).toBe('active');
    expect(await page.$eval('#role', (el) => getComputedStyle(el).backgroundColor)).toBe(GREEN);
    expect(await page.isVisible('#warnings')).toBe(false);

    // times in UTC, as the CLI prints them
    expect(await page.$$eval('ul.history .when', (els) => els.map((e) => e.textContent))).toEqual(['2026-01-01 12:00:00Z', '2026-01-01 11:59:58Z']);
    expect(await page.textContent('#updated')).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
    // up events green, down events red
    expect((await historyColors(page)).map(([, c]) => c)).toEqual([GREEN, RED]);

    // the HAProxy figures
    const fig = (rs: string, f: string) => page.textContent(`[data-rs="web/${rs}"] [data-fig="${f}"]`);
    expect(await fig('172.16.100.11:80', 'rate')).toBe('7 / 42');
    expect(await fig('172.16.100.11:80', 'sessions')).toBe('1201');
    expect(await fig('172.16.100.11:80', 'bytes')).toBe('1.2 MB / 99 MB');
    expect(await fig('172.16.100.11:80', 'errors')).toBe('3');
    expect(await fig('172.16.100.10:80', 'errors')).toBe('-');
    expect(await fig('172.16.100.11:80', 'checks')).toBe('5');
    expect(await fig('172.16.100.11:80', 'in-state')).toBe('1h 2m');
    expect(await fig('172.16.100.11:80', 'downtime')).toBe('1m 5s');
    expect(await page.textContent('[data-service="web"] [data-testid="service-flags"]')).toContain('persistent 300');
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  it.each<[string, (d: StatusDoc) => void, string, string, string[]]>([
    ['dead peer', (d) => Object.assign(d.peers[0]!, { alive: false, role: 'unknown', priority: null }), 'active \u2014 peer dead', AMBER, ['dead-peer', 'no-standby']],
    ['no standby (peer in maintenance)', (d) => Object.assign(d.peers[0]!, { role: 'maintenance' }), 'active \u2014 no standby', AMBER, ['no-standby']],
    ['split brain', (d) => Object.assign(d.peers[0]!, { role: 'active' }), 'active \u2014 split brain', RED, ['split-brain']],
    ['no active director', (d) => Object.assign(d, { role: 'standby' }), 'standby \u2014 no active', RED, ['no-active']],
    ['a service with no healthy real server', (d) => d.services[0]!.realServers.forEach((r) => (r.healthy = false)), 'active', GREEN, ['service-down', 'real-server-down', 'real-server-down', 'real-server-down']],
  ])('warning strip at 390 px: %s', async (what, change, badge, badgeColor, kinds) => {
    const page = await browser.newPage({ viewport: { width: 390, height: 800 } });
    await page.goto(url);
    const d = { ...figuresDoc(), node: `lvs1-${what.replace(/\W+/g, '-')}` };
    change(d);
    await show(page, d);
    expect(await page.textContent('#role')).toBe(badge);
    expect(await page.$eval('#role', (el) => getComputedStyle(el).backgroundColor)).toBe(badgeColor);
    expect(await page.isVisible('#warnings')).toBe(true);
    expect(await page.$$eval('#warnings li', (lis) => lis.map((li) => li.getAttribute('data-warning')))).toEqual(kinds);
    const scroll = await page.evaluate(() => ({ sw: document.documentElement.scrollWidth, cw: document.documentElement.clientWidth }));
    expect(scroll.sw).toBeLessThanOrEqual(scroll.cw);
    const shot = join(shots, `warning-${what.replace(/\W+/g, '-')}.png`);
    await page.screenshot({ path: shot, fullPage: true });
    expect(pngWidth(shot)).toBe(390);
    await page.close();
  }, 60_000);
});
