/** `vigil check --config <file>` through the built CLI, against listeners on 127.0.0.1. */
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, tmpDir, writeFile } from '../helpers/daemon.js';
import { closedPort, httpListener, tcpListener, type Listener } from '../helpers/listeners.js';

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, VIGIL_NODE: '' } }, (err, stdout, stderr) => {
      res({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

const config = (services: string) => `node: solo
cluster:
  nodes:
    - name: solo
      links: [{ name: lo, address: 127.0.0.1 }]
vips:
  - { address: 127.0.0.1, interface: lo, managed: false }
services:
${services}
`;

let tcp: Listener;
let web: Listener;
let down: number;
beforeAll(async () => {
  tcp = await tcpListener();
  web = await httpListener((req, res) => res.writeHead(req.url === '/health' ? 200 : 500).end('ok'));
  down = await closedPort();
});
afterAll(async () => {
  await tcp.close();
  await web.close();
});

describe('vigil check', () => {
  it('prints service, real server, probe, verdict, duration and reason; exit 1 when one is down', async () => {
    const dir = tmpDir('vigil-check-');
    const file = writeFile(
      dir,
      'vigil.yaml',
      config(`  - name: app
    vip: 127.0.0.1
    port: ${tcp.port}
    forward: nat
    check: { type: tcp, interval_ms: 1000, timeout_ms: 300 }
    real_servers:
      - { address: 127.0.0.1 }
      - { address: 127.0.0.1, port: ${down} }
      - address: 127.0.0.1
        port: ${web.port}
        check: { type: http, path: /health, interval_ms: 1000, timeout_ms: 300 }
  - name: legacy
    vip: 127.0.0.1
    port: 1
    forward: nat
    check: { type: exec, command: tcp.monitor, args: ["-p", "${tcp.port}"], args_style: mon, interval_ms: 5000, timeout_ms: 3000 }
    real_servers:
      - { address: 127.0.0.1 }
  - name: unchecked
    vip: 127.0.0.1
    port: 2
    forward: nat
    real_servers:
      - { address: 127.0.0.9 }`),
    );
    const r = await run(['check', '--config', file]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(1);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^SERVICE\s+REAL SERVER\s+PROBE\s+VERDICT\s+DURATION\s+REASON$/);
    expect(lines[1]).toMatch(new RegExp(`^app\\s+127\\.0\\.0\\.1:${tcp.port}\\s+tcp\\s+up\\s+[\\d.]+ ms\\s+connected$`));
    expect(lines[2]).toMatch(new RegExp(`^app\\s+127\\.0\\.0\\.1:${down}\\s+tcp\\s+DOWN\\s+[\\d.]+ ms\\s+connect: ECONNREFUSED$`));
    expect(lines[3]).toMatch(new RegExp(`^app\\s+127\\.0\\.0\\.1:${web.port}\\s+http\\s+up\\s+[\\d.]+ ms\\s+HTTP 200$`));
    expect(lines[4]).toMatch(/^legacy\s+127\.0\.0\.1:1\s+exec:tcp\.monitor\s+up\s+[\d.]+ ms\s+exit 0$/);
    expect(lines[5]).toMatch(/^unchecked\s+127\.0\.0\.9:2\s+-\s+up\s+-\s+no check: counted as healthy$/);
    expect(lines.at(-1)).toBe('1 of 5 real servers down');
  });

  it('exits 0 when every real server is up, and 1 with located errors for an invalid config', async () => {
    const dir = tmpDir('vigil-check-');
    const ok = writeFile(
      dir,
      'ok.yaml',
      config(`  - name: app
    vip: 127.0.0.1
    port: ${tcp.port}
    forward: nat
    check: { type: tcp, interval_ms: 1000, timeout_ms: 300 }
    real_servers: [{ address: 127.0.0.1 }]`),
    );
    const r = await run(['check', '--config', ok]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n').at(-1)).toBe('all 1 real servers up');
    const bad = writeFile(
      dir,
      'bad.yaml',
      config(`  - name: app
    vip: 127.0.0.1
    port: 80
    check: { type: tcp, interval_ms: 1000, timeout_ms: 1000 }
    real_servers: [{ address: 127.0.0.1 }]`),
    );
    const r2 = await run(['check', '-c', bad]);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain('services[0].check.timeout_ms: timeout_ms (1000) must be less than interval_ms (1000)');
  });
});
