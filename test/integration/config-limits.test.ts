/**
 * The config limits through every door an operator uses: `vigil validate`, `vigil run`,
 * and a reload of a running daemon (the API and SIGHUP), which is refused with the
 * running config kept; `vigil validate` checking cluster.key_file as `run` reads it; and
 * a large accepted reload, parsed in a worker thread, not stalling the daemon's loop.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_LIMITS } from '../../src/config/limits.js';
import { CLI, freePort, standaloneConfig, startDaemon, tmpDir, until, writeFile, type RunningDaemon } from '../helpers/daemon.js';

const run = async (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], { env: { ...process.env, VIGIL_NODE: '' } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
};

const vips = (n: number): string => `vips:\n${Array.from({ length: n }, (_, i) => `  - { address: 10.77.${i >> 8}.${i & 255}, interface: lo, managed: false }`).join('\n')}\n`;
const L = CONFIG_LIMITS;
const dir = tmpDir('vigil-limits-');

describe('vigil validate and vigil run refuse an over-limit config', { timeout: 120_000 }, () => {
  const base = standaloneConfig({ apiPort: 1, clusterPort: 2 });

  it('validate: at the VIP limit ok, one over refused with file, limit and value (exit 1)', async () => {
    const at = writeFile(dir, 'vips-at.yaml', base + vips(L.vips));
    const over = writeFile(dir, 'vips-over.yaml', base + vips(L.vips + 1));
    const ok = await run(['validate', at]);
    expect(ok).toMatchObject({ code: 0, stderr: '' });
    const bad = await run(['validate', over]);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim()).toBe(`${over}: vips: too many VIPs: ${L.vips + 1} (limit ${L.vips}) (line ${base.split('\n').length + 1})`);
  });

  it('validate: a file over the size limit is refused before it is parsed', async () => {
    const big = writeFile(dir, 'big.yaml', `${base}#${'x'.repeat(L.fileBytes)}\n`);
    const bad = await run(['validate', big]);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim()).toBe(`${big}: (top level): file too large: ${L.fileBytes + base.length + 2} bytes (limit ${L.fileBytes} bytes = 4 MiB)`);
  });

  it('run: exits 78 (EX_CONFIG, not restarted by the unit) with the same message and starts nothing', async () => {
    const over = writeFile(dir, 'run-over.yaml', base + vips(L.vips + 1));
    const r = await run(['run', '--config', over]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain(`${over}: vips: too many VIPs: ${L.vips + 1} (limit ${L.vips})`);
    expect(r.stdout).not.toMatch(/vigil started/);
  });
});

describe('vigil validate checks cluster.key_file as run reads it', { timeout: 120_000 }, () => {
  const pair = (keyFile: string): string => `node: a
cluster:
  key_file: ${keyFile}
  nodes:
    - name: a
      links: [{ name: hb, address: 10.0.0.1 }]
    - name: b
      links: [{ name: hb, address: 10.0.0.2 }]
`;
  it.each([
    ['missing', (f: string) => f, (f: string) => `cluster.key_file ${f}: cannot read (ENOENT)`],
    ['mode 0644', (f: string) => (writeFileSync(f, 'secret\n', { mode: 0o644 }), f), (f: string) => `cluster.key_file ${f} has mode 0644; it must be 0600 (readable by its owner only): chmod 600 ${f}`],
    ['empty', (f: string) => (writeFileSync(f, '\n', { mode: 0o600 }), f), (f: string) => `cluster.key_file ${f} is empty`],
  ])('%s: one line naming the file, exit 1', async (name, make, message) => {
    const key = make(`${dir}/key-${name.replace(/\W/g, '')}`);
    const cfg = writeFile(dir, `pair-${name.replace(/\W/g, '')}.yaml`, pair(key));
    const r = await run(['validate', cfg]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim()).toBe(`${cfg}: ${message(key)}`);
  });

  it('a readable key of mode 0600 passes', async () => {
    const key = writeFile(dir, 'key-ok', 'secret\n', 0o600);
    const cfg = writeFile(dir, 'pair-ok.yaml', pair(key));
    expect(await run(['validate', cfg])).toMatchObject({ code: 0, stdout: `${cfg}: ok\n`, stderr: '' });
  });

  it('--schema-only skips the key file (a config checked away from its director)', async () => {
    const cfg = writeFile(dir, 'pair-nokey.yaml', pair(`${dir}/no-such-key`));
    expect(await run(['validate', '--schema-only', cfg])).toMatchObject({ code: 0, stdout: `${cfg}: ok\n`, stderr: '' });
  });
});

describe('a running daemon refuses an over-limit reload and keeps its config', { timeout: 120_000 }, () => {
  const TOKEN = 'limits-test-token';
  let d: RunningDaemon;
  let api: string;
  let file: string;
  let original: string;

  beforeAll(async () => {
    const apiPort = await freePort();
    const tokenFile = writeFile(dir, 'token', `${TOKEN}\n`, 0o600);
    original = standaloneConfig({ apiPort, clusterPort: await freePort(), tokenFile }) + vips(3);
    file = writeFile(dir, 'daemon.yaml', original);
    d = startDaemon(file);
    api = `http://127.0.0.1:${apiPort}`;
    await until(async () => (await fetch(`${api}/healthz`)).ok, 100_000);
  }, 120_000);
  afterAll(async () => {
    await d?.stop();
  });

  const reload = () => fetch(`${api}/v1/reload`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{}' });
  const vipCount = async () => ((await (await fetch(`${api}/status`)).json()) as { vips: unknown[] }).vips.length;
  const metrics = async () => (await fetch(`${api}/metrics`)).text();

  it('through the API: 400 naming the file, limit and value; rejected counted; the VIPs unchanged', async () => {
    writeFileSync(file, original.replace(/vips:[\s\S]*$/, vips(L.vips + 1)));
    const r = await reload();
    expect(r.status).toBe(400);
    const err = ((await r.json()) as { error: { code: string; message: string } }).error;
    expect(err.code).toBe('VIGIL_CONFIG_INVALID');
    expect(err.message).toContain(`${file}: vips: too many VIPs: ${L.vips + 1} (limit ${L.vips})`);
    expect(await metrics()).toMatch(/^vigil_config_reloads_total\{result="rejected"\} 1$/m);
    expect(await vipCount()).toBe(3);
  });

  it('on SIGHUP: a file over the size limit is rejected, logged, counted; the daemon keeps running', async () => {
    writeFileSync(file, `${original}#${'x'.repeat(L.fileBytes)}\n`);
    d.child.kill('SIGHUP');
    const line = JSON.parse(await d.waitForLog(/file too large/, 20_000)) as { errors: string[] };
    expect(line.errors).toEqual([`${file}: (top level): file too large: ${original.length + L.fileBytes + 2} bytes (limit ${L.fileBytes} bytes = 4 MiB)`]);
    await until(async () => /^vigil_config_reloads_total\{result="rejected"\} 2$/m.test(await metrics()), 10_000);
    expect(await vipCount()).toBe(3);
    expect(d.child.exitCode).toBeNull();
  });

  it('a valid file afterwards is applied (the worker path applies, too)', async () => {
    writeFileSync(file, original.replace(/vips:[\s\S]*$/, vips(L.vips)));
    const r = await reload();
    expect(r.status).toBe(200);
    expect(await vipCount()).toBe(L.vips);
    expect(await metrics()).toMatch(/^vigil_config_reloads_total\{result="applied"\} 1$/m);
    expect(readFileSync(file, 'utf8')).toContain('10.77.0.255');
  });
});
