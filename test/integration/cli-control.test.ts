/**
 * The control commands over real HTTP: in-process (main()) against the real API module
 * with a recording Control, for outcomes a fresh daemon cannot produce on demand (a
 * drain that hits its deadline), and as `node dist/cli.js` against a real daemon for
 * what an operator sees: the status table, --json, reload, the token and
 * not-running messages.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApi } from '../../src/api/server.js';
import type { Control, DrainResult, StatusDoc } from '../../src/api/types.js';
import { main } from '../../src/cli.js';
import { notFound } from '../../src/errors.js';
import { createMetrics } from '../../src/metrics.js';
import { CLI, freePort, loopbackWeb, standaloneConfig, startDaemon, tmpDir, until, writeFile, type RunningDaemon } from '../helpers/daemon.js';
import { sampleStatus } from '../support/operate-fixtures.js';

const TOKEN = 'cli-test-token';
const run = promisify(execFile);

async function vigil(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env: { ...process.env, VIGIL_API_TOKEN: '', ...env }, timeout: 20_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('in process, against the API module', () => {
  let app: FastifyInstance;
  let url: string;
  const calls: unknown[][] = [];
  const control: Control = {
    takeover: async () => 'lvs1 is taking over',
    standby: async () => 'lvs1 released; lvs2 takes over',
    maintenance: async (on) => (calls.push(['maintenance', on]), `maintenance ${on ? 'on' : 'off'}`),
    drain: async (service, address, port, deadlineMs): Promise<DrainResult> => {
      calls.push(['drain', service, address, port, deadlineMs]);
      if (service !== 'web') throw notFound(`service "${service}"`);
      if (deadlineMs === 0) return { service, address, port: port ?? 80, outcome: 'started', remainingConnections: 4, waitedMs: 0 };
      if (address === '172.16.100.11') return { service, address, port: port ?? 80, outcome: 'deadline', remainingConnections: 3, waitedMs: deadlineMs };
      return { service, address, port: port ?? 80, outcome: 'drained', remainingConnections: 0, waitedMs: 1500 };
    },
    enable: async (service, address, port) => `${service} ${address}:${port}: weight 1 restored`,
    reload: async () => 'reloaded /etc/vigil/vigil.yaml',
  };

  beforeAll(async () => {
    app = await createApi({
      logger: pino({ level: 'silent' }),
      metrics: createMetrics({ defaults: false }),
      status: sampleStatus,
      ready: () => true,
      healthy: () => true,
      control,
      token: () => TOKEN,
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    await app.close();
  });

  async function cli(args: string[], env: NodeJS.ProcessEnv = { VIGIL_API_TOKEN: TOKEN, VIGIL_CONFIG: '/nonexistent/vigil.yaml' }) {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main([...args, '--api', url], { env, out: (l) => out.push(l), err: (l) => err.push(l) });
    return { code, out: out.join('\n'), err: err.join('\n') };
  }

  it('status prints the table; --json the document; both exit 10 for a down real server', async () => {
    const t = await cli(['status']);
    expect(t.code).toBe(10);
    expect(t.out.split('\n').slice(1, 3)).toEqual(['  ! web 172.16.100.11:80 is down', '']);
    expect(t.out).toContain('vigil 0.1.0 on lvs1: ACTIVE');
    expect(t.out).toContain('Prot LocalAddress:Port Scheduler Flags');
    expect(t.out).toMatch(/-> 172\.16\.100\.11:80 +Route +0\/2 +0 +0 +DOWN/);
    const j = await cli(['status', '--json']);
    expect(j.code).toBe(10);
    expect(JSON.parse(j.out)).toEqual(sampleStatus());
  });

  it('takeover, standby, maintenance, enable, reload print the daemon message', async () => {
    expect((await cli(['takeover'])).out).toBe('lvs1 is taking over');
    expect((await cli(['standby'])).out).toBe('lvs1 released; lvs2 takes over');
    expect((await cli(['maintenance', 'on'])).out).toBe('maintenance on');
    expect((await cli(['enable', 'web', '10.0.0.11:80'])).out).toBe('web 10.0.0.11:80: weight 1 restored');
    expect((await cli(['reload'])).out).toBe('reloaded /etc/vigil/vigil.yaml');
    expect(calls).toContainEqual(['maintenance', true]);
  });

  it('drain waits 30 s by default and reports the outcome', async () => {
    const r = await cli(['drain', 'web', '172.16.100.10:80']);
    expect(r.code).toBe(0);
    expect(r.err).toBe('draining web 172.16.100.10:80: weight 0, waiting up to 30 s for its connections to end...');
    expect(r.out).toBe('web 172.16.100.10:80 drained: no connections left after 1.5 s; weight stays 0 until "vigil enable web 172.16.100.10:80"');
    expect(calls).toContainEqual(['drain', 'web', '172.16.100.10', 80, 30_000]);
  });

  it('drain exits 5 when the deadline passes with connections left', async () => {
    const r = await cli(['drain', 'web', '172.16.100.11:80', '--deadline', '2s']);
    expect(r.code).toBe(5);
    expect(r.out).toBe('web 172.16.100.11:80: deadline of 2.0 s passed with 3 connection(s) left; weight stays 0 until "vigil enable web 172.16.100.11:80"');
  });

  it('drain --deadline 0 starts the drain without waiting', async () => {
    const r = await cli(['drain', 'web', '10.0.0.11:80', '--deadline', '0']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('drain started (weight 0), 4 connection(s) still open; not waiting');
  });

  it('reports the daemon refusal with its code, exit 1', async () => {
    const r = await cli(['drain', 'db', '10.0.0.11:80', '--deadline', '0']);
    expect(r.code).toBe(1);
    expect(r.err).toBe('vigil drain: service "db" not found (404 VIGIL_NOT_FOUND)');
  });

  it('drain of an unknown service or real server says "not found" at once, before announcing a wait', async () => {
    const before = calls.length;
    const a = await cli(['drain', 'db', '10.0.0.11:80']);
    expect(a.code).toBe(1);
    expect(a.err).toBe('vigil drain: service "db" not found (services: web, dns)');
    const b = await cli(['drain', 'web', '10.9.9.9:80']);
    expect(b.code).toBe(1);
    expect(b.err).toBe('vigil drain: real server 10.9.9.9:80 not found in service "web" (real servers: 172.16.100.10:80, 172.16.100.11:80, 172.16.100.12:80)');
    expect(calls.length).toBe(before); // the daemon was never asked to drain
  });

  it('an https:// API URL is refused with a sentence, not an OpenSSL dump (exit 2)', async () => {
    const err: string[] = [];
    const code = await main(['status', '--api', url.replace('http:', 'https:')], { env: {}, out: () => undefined, err: (l) => err.push(l) });
    expect(code).toBe(2);
    expect(err.join('\n').split('\n')[0]).toBe(`vigil status: --api "${url.replace('http:', 'https:')}" is https://, but vigil's API speaks plain HTTP (it listens on loopback): use http://`);
    expect(err.join('\n')).not.toMatch(/SSL|ssl3|wrong version/);
  });

  it.each([
    [['maintenance'], 'say "on" or "off"'],
    [['maintenance', 'maybe'], 'say "on" or "off"'],
    [['drain', 'web'], 'name a service and a real server'],
    [['drain', 'web', '10.0.0.1:80', '--deadline', 'soon'], '--deadline "soon" is not a duration'],
    [['status', '--bogus'], "Unknown option '--bogus'"],
    [['status', '--events', 'lots'], '--events "lots" is not a count'],
  ])('usage errors exit 2: %j', async (args, words) => {
    const r = await cli(args);
    expect(r.code).toBe(2);
    expect(r.err).toContain(words);
  });

  it('says when there is no token at all, exit 4', async () => {
    const r = await cli(['takeover'], { VIGIL_CONFIG: '/nonexistent/vigil.yaml' });
    expect(r.code).toBe(4);
    expect(r.err).toBe(
      'vigil takeover: no API token in /nonexistent/vigil.yaml (cannot read it: ENOENT): set api.token_file there, or $VIGIL_API_TOKEN, or name another config with --config (the daemon refuses control requests without a token)',
    );
  });

  it('without --config or $VIGIL_CONFIG the CLI reads /etc/vigil/vigil.yaml, and says so', async () => {
    const r = await cli(['standby'], {});
    expect(r.code).toBe(4);
    expect(r.err).toMatch(/^vigil standby: no API token in \/etc\/vigil\/vigil\.yaml[ :]/);
    const out: string[] = [];
    const err: string[] = [];
    const v = await main(['validate'], { env: {}, out: (l) => out.push(l), err: (l) => err.push(l) });
    expect([...out, ...err].join('\n')).toMatch(/^\/etc\/vigil\/vigil\.yaml: /);
    expect(v).toBe(existsSync('/etc/vigil/vigil.yaml') ? v : 1);
  });
});

describe('as a command, against a running daemon', () => {
  let daemon: RunningDaemon;
  let configFile: string;
  let dir: string;
  let apiPort: number;

  beforeAll(async () => {
    dir = tmpDir('vigil-cli-');
    const tokenFile = writeFile(dir, 'api-token', `${TOKEN}\n`, 0o600);
    apiPort = await freePort();
    configFile = writeFile(dir, 'vigil.yaml', standaloneConfig({ apiPort, clusterPort: await freePort(), tokenFile }));
    daemon = startDaemon(configFile);
    await until(async () => (await fetch(`http://127.0.0.1:${apiPort}/healthz`)).ok, 50_000); // Node starts slowly on a loaded machine
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it('vigil status finds the API through the config and prints the cluster section; exit 0 when all is well', async () => {
    await until(async () => ((await (await fetch(`http://127.0.0.1:${apiPort}/status`)).json()) as StatusDoc).role === 'active', 15_000);
    const r = await vigil(['status', '--config', configFile]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^vigil \S+ on solo: ACTIVE, priority 100, up /);
    expect(r.stdout).not.toContain('  ! ');
    expect(r.stdout).toContain('\nRecent events:\n');
  });

  it.each([['| true'], ['| head -1']])('vigil status %s: a reader that goes away is no error (no EPIPE trace, exit 0)', async (pipe) => {
    const script = `"${process.execPath}" "${CLI}" status --events 200 --config "${configFile}" ${pipe} >/dev/null; echo "status=\${PIPESTATUS[0]}"`;
    const { stdout, stderr } = await run('bash', ['-c', script], { env: { ...process.env, VIGIL_API_TOKEN: '' }, timeout: 80_000 });
    expect(stderr).toBe('');
    expect(stdout.trim()).toBe('status=0');
  }, 90_000);

  it('vigil status --json prints the /status document; $VIGIL_CONFIG works too', async () => {
    const r = await vigil(['status', '--json'], { VIGIL_CONFIG: configFile });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ node: 'solo', peers: [], history: expect.any(Array) });
  });

  it('vigil reload reads the token from api.token_file', async () => {
    const r = await vigil(['reload', '--config', configFile]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(`reloaded ${configFile}`);
    await daemon.waitForLog(/"audit":true,"action":"reload".*"user":"[^"]+@[^"]+"/);
  });

  it('a wrong token gets a clear message and exit 4', async () => {
    const r = await vigil(['takeover', '--config', configFile], { VIGIL_API_TOKEN: 'wrong' });
    expect(r.code).toBe(4);
    expect(r.stderr.trim()).toBe('vigil takeover: the daemon refused the token (401): check api.token_file / $VIGIL_API_TOKEN (token from $VIGIL_API_TOKEN)');
  });

  it('a daemon without api.token_file says control is disabled', async () => {
    const apiPort = await freePort();
    const noToken = startDaemon(writeFile(dir, 'no-token.yaml', standaloneConfig({ apiPort, clusterPort: await freePort() })));
    try {
      await until(async () => (await fetch(`http://127.0.0.1:${apiPort}/healthz`)).ok, 50_000); // Node starts slowly on a loaded machine
      const r = await vigil(['standby', '--api', `127.0.0.1:${apiPort}`], { VIGIL_API_TOKEN: TOKEN });
      expect(r.code).toBe(4);
      expect(r.stderr.trim()).toBe('vigil standby: the daemon has control disabled (401): set api.token_file in its config and reload or restart it');
    } finally {
      await noToken.stop();
    }
  });

  it('a daemon that is not running: exit 3 and "is it running?"', async () => {
    const port = await freePort();
    const r = await vigil(['status', '--api', `127.0.0.1:${port}`]);
    expect(r.code).toBe(3);
    expect(r.stderr.trim()).toBe(`vigil status: vigil daemon not reachable at http://127.0.0.1:${port} (connection refused): is it running?`);
    const t = await vigil(['takeover', '--api', `http://127.0.0.1:${port}`], { VIGIL_API_TOKEN: TOKEN });
    expect(t.code).toBe(3);
  });

  it('a malformed --api is a usage error, said once', async () => {
    const r = await vigil(['status', '--api', 'not a url']);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n').filter((l) => l.includes('is not a URL or host:port'))).toHaveLength(1);
    expect(r.stderr).toContain('Usage: vigil status');
  });

  it('vigil status still finds the API while the config file is being edited (invalid)', async () => {
    const { readFileSync } = await import('node:fs');
    const broken = writeFile(dir, 'broken.yaml', `${readFileSync(configFile, 'utf8')}\nservices: [{ name: "no vip" }]\n`);
    const r = await vigil(['status', '--config', broken]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('on solo:');
  });
});

describe('drain life cycle against a running daemon (forwarder dataplane)', () => {
  let daemon: RunningDaemon;
  let rs: Server;
  let config: string;
  let vipPort: number;
  let rsPort: number;
  const held = new Set<Socket>();

  beforeAll(async () => {
    const dir = tmpDir('vigil-drain-');
    const tokenFile = writeFile(dir, 'api-token', `${TOKEN}\n`, 0o600);
    rsPort = await freePort();
    vipPort = await freePort();
    rs = createServer((s) => {
      s.on('error', () => undefined);
      held.add(s);
      s.on('close', () => held.delete(s));
    });
    await new Promise<void>((r) => rs.listen(rsPort, '127.0.0.1', () => r()));
    const apiPort = await freePort();
    config = writeFile(
      dir,
      'vigil.yaml',
      standaloneConfig({
        apiPort,
        clusterPort: await freePort(),
        tokenFile,
        extra: loopbackWeb({ port: vipPort, realServers: [{ port: rsPort }], service: ['check: { type: tcp, interval_ms: 200, timeout_ms: 150, rise: 1, fall: 1 }'] }),
      }),
    );
    daemon = startDaemon(config);
    await until(async () => (await fetch(`http://127.0.0.1:${apiPort}/readyz`)).ok, 50_000);
  });
  afterAll(async () => {
    for (const s of held) s.destroy();
    rs?.close();
    await daemon?.stop();
  });

  const realServer = async () => {
    const r = await vigil(['status', '--json', '--config', config]);
    const doc = JSON.parse(r.stdout) as StatusDoc;
    return doc.services.find((s) => s.name === 'web')?.realServers.find((x) => x.port === rsPort);
  };

  it('drain waits for the open connection, reports the deadline (exit 5); drains once it closes; enable restores', async () => {
    await until(async () => (await realServer())?.healthy, 10_000);
    // a client connection through the forwarder to the real server, held open
    const client = connect(vipPort, '127.0.0.1');
    client.on('error', () => undefined);
    await until(async () => (await realServer())?.connections?.active === 1, 10_000);

    const d1 = await vigil(['drain', 'web', `127.0.0.1:${rsPort}`, '--deadline', '1s', '--config', config]);
    expect(d1.stdout.trim()).toBe(`web 127.0.0.1:${rsPort}: deadline of 1.0 s passed with 1 connection(s) left; weight stays 0 until "vigil enable web 127.0.0.1:${rsPort}"`);
    expect(d1.code).toBe(5);
    expect(await realServer()).toMatchObject({ weight: 0, drained: true });

    setTimeout(() => client.destroy(), 500);
    const d2 = await vigil(['drain', 'web', `127.0.0.1:${rsPort}`, '--deadline', '10s', '--config', config]);
    expect(d2.code).toBe(0);
    expect(d2.stdout).toMatch(new RegExp(`^web 127\\.0\\.0\\.1:${rsPort} drained: no connections left after `));

    const table = await vigil(['status', '--config', config]);
    expect(table.stdout).toMatch(new RegExp(`-> 127\\.0\\.0\\.1:${rsPort} +Masq +0/1 +0 +\\d+ +drained`));

    const e = await vigil(['enable', 'web', `127.0.0.1:${rsPort}`, '--config', config]);
    expect(e.code).toBe(0);
    expect(await realServer()).toMatchObject({ weight: 1, drained: false });
    await daemon.waitForLog(/"audit":true,"action":"enable".*"result":"ok"/);
  }, 120_000);

  it('an unknown service or real server is a 404 from the daemon, exit 1', async () => {
    const a = await vigil(['drain', 'nope', `127.0.0.1:${rsPort}`, '--deadline', '0', '--config', config]);
    expect(a.code).toBe(1);
    expect(a.stderr).toMatch(/\(404 VIGIL_NOT_FOUND\)/);
    const b = await vigil(['enable', 'web', '127.0.0.1:1', '--config', config]);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/\(404 VIGIL_NOT_FOUND\)/);
  });

  it('maintenance on is refused, like standby, when no other director could take over (a cluster of one)', async () => {
    const on = await vigil(['maintenance', 'on', '--config', config]);
    expect(on.code).toBe(1);
    expect(on.stderr.trim()).toBe('vigil maintenance: maintenance-on: no eligible peer is alive to take over; not entering maintenance (409 VIGIL_CONFLICT)');
    expect((await vigil(['status', '--config', config])).stdout).toMatch(/^vigil \S+ on solo: ACTIVE/);
    const off = await vigil(['maintenance', 'off', '--config', config]);
    expect(off.code).toBe(0);
    expect(off.stdout.trim()).toBe('not in maintenance (active)');
  });
});
