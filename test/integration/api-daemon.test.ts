/**
 * The API of a real daemon (node dist/cli.js run) over real HTTP on 127.0.0.1: the status
 * document against its published schema, the status page, the token from a file, reload
 * through the API, audit lines in the daemon's log.
 */
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, loopbackWeb, standaloneConfig, startDaemon, tmpDir, until, writeFile, type RunningDaemon } from '../helpers/daemon.js';
import { sampleStatus } from '../support/operate-fixtures.js';
import { statusSchemaErrors } from '../support/status-schema.js';

const TOKEN = 'api-daemon-test-token';
let daemon: RunningDaemon;
let api: string;
let configFile: string;
let configText: string;

beforeAll(async () => {
  const dir = tmpDir('vigil-api-');
  const tokenFile = writeFile(dir, 'api-token', `${TOKEN}\n`, 0o600);
  const apiPort = await freePort();
  const rsPort = await freePort();
  configText = standaloneConfig({
    apiPort,
    clusterPort: await freePort(),
    tokenFile,
    extra: loopbackWeb({ port: await freePort(), realServers: [{ port: rsPort }] }),
  });
  configFile = writeFile(dir, 'vigil.yaml', configText);
  daemon = startDaemon(configFile);
  api = `http://127.0.0.1:${apiPort}`;
  await until(async () => (await fetch(`${api}/healthz`)).ok, 15_000);
});
afterAll(async () => {
  await daemon?.stop();
});

const post = (path: string, body: unknown, token = TOKEN) =>
  fetch(`${api}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'x-vigil-user': 'tester@ci' },
    body: JSON.stringify(body),
  });

describe('a running daemon', () => {
  it('serves a /status that conforms to docs/status.schema.json', async () => {
    const doc = (await (await fetch(`${api}/status`)).json()) as Record<string, unknown>;
    expect(doc.node).toBe('solo');
    expect(await statusSchemaErrors(doc)).toEqual([]);
  });

  it('the schema is strict enough to catch a wrong document', async () => {
    expect(await statusSchemaErrors(sampleStatus())).toEqual([]);
    const bad = sampleStatus() as unknown as { role: string; services: { realServers: { healthy: unknown }[] }[] };
    bad.role = 'leader';
    (bad.services[0] as { realServers: { healthy: unknown }[] }).realServers[0]!.healthy = 'yes';
    const errors = await statusSchemaErrors(bad);
    expect(errors.join('\n')).toMatch(/\/role must be equal to one of the allowed values/);
    expect(errors.join('\n')).toMatch(/\/services\/0\/realServers\/0\/healthy must be boolean/);
  });

  it('becomes ready (/readyz 200) after its first election and reconcile', async () => {
    const r = await until(async () => {
      const res = await fetch(`${api}/readyz`);
      return res.status === 200 ? res : undefined;
    }, 15_000);
    expect(await (r as Response).json()).toEqual({ ready: true });
  });

  it('serves the status page', async () => {
    const r = await fetch(`${api}/`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await r.text()).toContain('<title>vigil</title>');
  });

  it('refuses a wrong token with 401 and logs the refusal', async () => {
    const r = await post('/v1/takeover', {}, 'not-the-token');
    expect(r.status).toBe(401);
    expect(await r.json()).toEqual({ error: { code: 'VIGIL_UNAUTHORIZED', message: 'missing or wrong bearer token' } });
    const line = await daemon.waitForLog(/"audit":true.*"result":"refused"/);
    expect(JSON.parse(line)).toMatchObject({ user: 'tester@ci', url: '/v1/takeover', reason: 'wrong token' });
  });

  it('takeover on the lone active node answers 200; standby with no peer to hand to is 409', async () => {
    await until(async () => (await fetch(`${api}/readyz`)).ok, 15_000);
    const t = await post('/v1/takeover', {});
    expect(t.status).toBe(200);
    expect(await t.json()).toMatchObject({ ok: true, message: expect.stringContaining('active') });
    const s = await post('/v1/standby', {});
    expect(s.status).toBe(409);
    const err = ((await s.json()) as { error: { code: string; message: string } }).error;
    expect(err.code).toBe('VIGIL_CONFLICT');
    expect(err.message).toContain('no eligible peer');
    expect(JSON.parse(await daemon.waitForLog(/"audit":true,"action":"standby"/))).toMatchObject({ result: 'error', code: 'VIGIL_CONFLICT', user: 'tester@ci' });
  });

  it('reloads through the API, and keeps the running config when the file is broken', async () => {
    const ok = await post('/v1/reload', {});
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ ok: true, message: `reloaded ${configFile}` });
    expect(JSON.parse(await daemon.waitForLog(/"audit":true,"action":"reload".*"result":"ok"/))).toMatchObject({ user: 'tester@ci', remote: '127.0.0.1' });

    writeFileSync(configFile, configText.replace('forward: nat', 'forward: sideways'));
    try {
      const bad = await post('/v1/reload', {});
      expect(bad.status).toBe(400);
      const err = ((await bad.json()) as { error: { code: string; message: string } }).error;
      expect(err.code).toBe('VIGIL_CONFIG_INVALID');
      expect(err.message).toContain('services[0].forward');
      // still serving, with the old config
      expect((await fetch(`${api}/healthz`)).status).toBe(200);
      const metrics = await (await fetch(`${api}/metrics`)).text();
      expect(metrics).toMatch(/^vigil_config_reloads_total\{result="rejected"\} 1$/m);
      expect(metrics).toMatch(/^vigil_config_last_reload_success 0$/m);
    } finally {
      writeFileSync(configFile, configText);
    }
  });
});
