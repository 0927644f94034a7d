/**
 * The shipped checks/ scripts, run as an operator runs them by hand (`checks/http
 * 10.0.0.5 80`), against real listeners on 127.0.0.1: up, down and slow for each.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  closedPort,
  dnsAnswer,
  hangingTcpPort,
  httpListener,
  tcpListener,
  udpListener,
  type Listener,
} from '../helpers/listeners.js';

const CHECKS = resolve(import.meta.dirname, '..', '..', 'checks');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

function run(script: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const t0 = performance.now();
  return new Promise((res) => {
    execFile(resolve(CHECKS, script), args, { env: { ...process.env, ...env }, timeout: 10_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      res({ code, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

const oneLine = (r: Run) => {
  expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(1);
  return r.stdout.trim();
};

let down: number;
let hang: Listener;
beforeAll(async () => {
  down = await closedPort();
  hang = await hangingTcpPort();
});
afterAll(async () => {
  await hang.close();
});

describe('checks/tcp', () => {
  it('up: prints one OK line and exits 0', async () => {
    const l = await tcpListener();
    const r = await run('tcp', ['127.0.0.1', String(l.port)]);
    await l.close();
    expect(r.code).toBe(0);
    expect(oneLine(r)).toMatch(new RegExp(`^OK 127\\.0\\.0\\.1:${l.port}: connected in [\\d.]+ ms$`));
  });
  it('down: connection refused', async () => {
    const r = await run('tcp', ['127.0.0.1', String(down)]);
    expect(r.code).toBe(1);
    expect(oneLine(r)).toBe(`FAIL 127.0.0.1:${down}: ECONNREFUSED`);
  });
  it('slow: gives up at --timeout (or VIGIL_TIMEOUT_MS − 50)', async () => {
    const r = await run('tcp', ['--timeout', '300', '127.0.0.1', String(hang.port)]);
    expect(r.code).toBe(1);
    expect(oneLine(r)).toBe(`FAIL 127.0.0.1:${hang.port}: no connection within 300 ms`);
    const r2 = await run('tcp', ['127.0.0.1', String(hang.port)], { VIGIL_TIMEOUT_MS: '350' });
    expect(oneLine(r2)).toBe(`FAIL 127.0.0.1:${hang.port}: no connection within 300 ms`);
  });
  it('usage errors exit 2', async () => {
    expect((await run('tcp', ['127.0.0.1'])).code).toBe(2);
    expect((await run('tcp', ['--bogus', '127.0.0.1', '80'])).code).toBe(2);
  });
});

describe('checks/http and checks/https', () => {
  it('up: status, Host header and body regex', async () => {
    const l = await httpListener((req, res) => {
      res.writeHead(req.url === '/health' ? 200 : 404).end(`hello from ${req.headers.host}`);
    });
    const r = await run('http', ['--path', '/health', '--host', 'www.example.com', '--body-regex', 'hello from www\\.example', '127.0.0.1', String(l.port)]);
    await l.close();
    expect(r.code).toBe(0);
    expect(oneLine(r)).toMatch(/^OK http:\/\/127\.0\.0\.1:\d+\/health: HTTP 200, body matches/);
    expect(l.requests[0]?.headers.host).toBe('www.example.com');
  });
  it('down: wrong status, body mismatch, refused', async () => {
    const l = await httpListener((req, res) => res.writeHead(req.url === '/' ? 503 : 200).end('maintenance'));
    const r1 = await run('http', ['127.0.0.1', String(l.port)]);
    const r2 = await run('http', ['--path', '/x', '--body-regex', '^ok$', '127.0.0.1', String(l.port)]);
    const r3 = await run('http', ['--expect', '200,503', '127.0.0.1', String(l.port)]);
    await l.close();
    expect([r1.code, r2.code, r3.code]).toEqual([1, 1, 0]);
    expect(oneLine(r1)).toBe(`FAIL http://127.0.0.1:${l.port}/: HTTP 503 (expected 200)`);
    expect(oneLine(r2)).toBe(`FAIL http://127.0.0.1:${l.port}/x: HTTP 200, body does not match /^ok$/`);
    const r4 = await run('http', ['127.0.0.1', String(down)]);
    expect(r4.code).toBe(1);
    expect(oneLine(r4)).toBe(`FAIL http://127.0.0.1:${down}/: ECONNREFUSED`);
  });
  it('slow: a server that does not answer in time is down', async () => {
    const l = await httpListener((_req, res) => setTimeout(() => res.end('late'), 2000));
    const r = await run('http', ['--timeout', '300', '127.0.0.1', String(l.port)]);
    await l.close();
    expect(r.code).toBe(1);
    expect(oneLine(r)).toBe(`FAIL http://127.0.0.1:${l.port}/: no answer within 300 ms`);
    expect(r.ms).toBeLessThan(2000);
  });
  it('https: up with a self-signed certificate, down with --verify, down when slow', async () => {
    const l = await httpsListener();
    const ok = await run('https', ['--path', '/', '127.0.0.1', String(l.port)]);
    const verify = await run('https', ['--verify', '127.0.0.1', String(l.port)]);
    await l.close();
    expect(ok.code).toBe(0);
    expect(oneLine(ok)).toMatch(/^OK https:\/\/127\.0\.0\.1:\d+\/: HTTP 200 in/);
    expect(verify.code).toBe(1);
    expect(oneLine(verify)).toMatch(/^FAIL https:.*(SELF_SIGNED|self.signed|ERR_TLS_CERT_ALTNAME_INVALID)/i);
    const slow = await run('https', ['--timeout', '300', '127.0.0.1', String(hang.port)]);
    expect(slow.code).toBe(1);
    expect(oneLine(slow)).toContain('no answer within 300 ms');
    const refused = await run('https', ['127.0.0.1', String(down)]);
    expect(oneLine(refused)).toBe(`FAIL https://127.0.0.1:${down}/: ECONNREFUSED`);
  });
});

async function httpsListener() {
  return httpListener((_req, res) => res.writeHead(200).end('secure'), true);
}

describe('checks/dns', () => {
  it('up: the name resolves, to the expected address when --expect is given', async () => {
    const l = await udpListener((q) => dnsAnswer(q, { 'www.example.com': ['10.0.0.1', '10.0.0.2'] }));
    const r1 = await run('dns', ['--name', 'www.example.com', '127.0.0.1', String(l.port)]);
    const r2 = await run('dns', ['--name', 'www.example.com', '--expect', '10.0.0.2', '127.0.0.1', String(l.port)]);
    const r3 = await run('dns', ['--name', 'nope.example.com', '127.0.0.1', String(l.port)]);
    await l.close();
    expect([r1.code, r2.code, r3.code]).toEqual([0, 0, 0]);
    expect(oneLine(r1)).toMatch(/^OK www\.example\.com A @127\.0\.0\.1:\d+: NOERROR, 2 answer\(s\)/);
    expect(oneLine(r2)).toMatch(/^OK www\.example\.com A @127\.0\.0\.1:\d+: 10\.0\.0\.2 in/);
    expect(oneLine(r3)).toMatch(/NXDOMAIN, 0 answer/); // answered: the server is up
  });
  it('down: wrong address, NXDOMAIN with --expect, refused', async () => {
    const l = await udpListener((q) => dnsAnswer(q, { 'www.example.com': ['10.0.0.1'] }));
    const r1 = await run('dns', ['--name', 'www.example.com', '--expect', '10.9.9.9', '127.0.0.1', String(l.port)]);
    const r2 = await run('dns', ['--name', 'gone.example.com', '--expect', '10.0.0.1', '127.0.0.1', String(l.port)]);
    await l.close();
    expect(r1.code).toBe(1);
    expect(oneLine(r1)).toMatch(/FAIL www\.example\.com A @.*: 10\.0\.0\.1 \(expected 10\.9\.9\.9\)$/);
    expect(r2.code).toBe(1);
    expect(oneLine(r2)).toMatch(/: NXDOMAIN$/);
    const r3 = await run('dns', ['--name', 'www.example.com', '127.0.0.1', String(down)]);
    expect(r3.code).toBe(1);
    expect(oneLine(r3)).toMatch(/ECONNREFUSED$/);
  });
  it('slow: a server that never answers is down at the timeout', async () => {
    const l = await udpListener(() => undefined);
    const r = await run('dns', ['--timeout', '300', '--name', 'www.example.com', '127.0.0.1', String(l.port)]);
    await l.close();
    expect(r.code).toBe(1);
    expect(oneLine(r)).toMatch(/no answer within 300 ms$/);
    expect(l.received).toHaveLength(1);
  });
});

describe('checks/udp', () => {
  it('up: any reply to the payload', async () => {
    const l = await udpListener((m) => Buffer.concat([Buffer.from('echo '), m]));
    const r1 = await run('udp', ['--payload', 'hello', '127.0.0.1', String(l.port)]);
    const r2 = await run('udp', ['--hex', '0001ff', '--expect', '^echo', '127.0.0.1', String(l.port)]);
    await l.close();
    expect([r1.code, r2.code]).toEqual([0, 0]);
    expect(oneLine(r1)).toMatch(/^OK 127\.0\.0\.1:\d+: 10-byte reply in/);
    expect(l.received.map((b) => b.toString('hex'))).toEqual([Buffer.from('hello').toString('hex'), '0001ff']);
  });
  it('down: refused (ICMP port unreachable) or a reply not matching --expect', async () => {
    const r1 = await run('udp', ['127.0.0.1', String(down)]);
    expect(r1.code).toBe(1);
    expect(oneLine(r1)).toBe(`FAIL 127.0.0.1:${down}: ECONNREFUSED`);
    const l = await udpListener(() => Buffer.from('ERR'));
    const r2 = await run('udp', ['--expect', '^OK', '127.0.0.1', String(l.port)]);
    await l.close();
    expect(r2.code).toBe(1);
    expect(oneLine(r2)).toMatch(/reply does not match/);
  });
  it('slow: no reply within the timeout', async () => {
    const l = await udpListener(() => undefined);
    const r = await run('udp', ['--timeout', '300', '127.0.0.1', String(l.port)]);
    await l.close();
    expect(r.code).toBe(1);
    expect(oneLine(r)).toMatch(/no reply within 300 ms$/);
  });
});

describe('checks/tcp.monitor (mon.d convention)', () => {
  it('all hosts up: no output, exit 0', async () => {
    const l = await tcpListener();
    const r = await run('tcp.monitor', ['-p', String(l.port), '127.0.0.1', 'localhost']);
    await l.close();
    expect(r).toMatchObject({ code: 0, stdout: '' });
  });
  it('failed hosts: the first line is their list, then one detail line each, exit 1', async () => {
    const l = await tcpListener();
    const r = await run('tcp.monitor', ['-p', String(l.port), '127.0.0.2', '127.0.0.1', '127.0.0.3']);
    await l.close();
    expect(r.code).toBe(1);
    // the listener is on 127.0.0.1 only
    expect(r.stdout.split('\n')[0]).toBe('127.0.0.2 127.0.0.3');
    expect(r.stdout).toContain(`127.0.0.2: ECONNREFUSED (port ${l.port})`);
  });
  it('slow: -t seconds bounds each connect', async () => {
    const r = await run('tcp.monitor', ['-p', String(hang.port), '-t', '0.3', '127.0.0.1']);
    expect(r.code).toBe(1);
    expect(r.stdout.split('\n')[0]).toBe('127.0.0.1');
    expect(r.stdout).toContain('127.0.0.1: timeout after 0.3 s');
  });
});
