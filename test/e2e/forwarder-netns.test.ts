/**
 * The built-in forwarder end to end, in network namespaces: a client, a director running
 * the real daemon (`node dist/cli.js run`) with `dataplane: forwarder` and 2 workers, and
 * three real servers. Checks: traffic balanced by weight (wrr 1:2:3), UDP flows answered
 * from the VIP, a real server dying (RST) and one black-holed by nftables (connect
 * timeout) cost the client no error, and weight 0 drains (existing connections finish,
 * new ones go elsewhere).
 *
 *   client (cN) ── veth ── director (dN, VIP 10.77.0.10) ─┬─ veth ── rs1 (10.77.1.2)
 *                                                          ├─ veth ── rs2 (10.77.2.2)
 *                                                          └─ veth ── rs3 (10.77.3.2)
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = process.getuid?.() === 0;
const haveIp = (() => {
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
    execFileSync('nft', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
if (!root) console.log('forwarder-netns e2e skipped: needs root (network namespaces, nftables)');
else if (!haveIp) console.log('forwarder-netns e2e skipped: needs ip (iproute2) and nft (nftables)');

const ROOT = resolve(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'cli.js');
const id = `${process.pid.toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`.slice(-5);
const ns = { c: `vfc${id}`, d: `vfd${id}`, r1: `vf1${id}`, r2: `vf2${id}`, r3: `vf3${id}` };
const VIP = '10.77.0.10';
const dir = mkdtempSync(join(tmpdir(), 'vigil-fwd-e2e-'));
const procs: ChildProcess[] = [];
let daemon: ChildProcess | undefined;
let daemonLog = '';

const sh = (argv: string[]): string => execFileSync(argv[0] as string, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const inNs = (n: string, argv: string[]): string => sh(['ip', 'netns', 'exec', n, ...argv]);

/** The real servers: TCP greets with the name then echoes; UDP answers `name:payload`. */
const REAL_SERVER = `
import net from 'node:net'; import dgram from 'node:dgram';
const name = process.argv[2];
net.createServer({ allowHalfOpen: true }, (s) => { s.on('error', () => {}); s.write(name + '\\n'); s.on('data', (d) => s.write(d)); s.on('end', () => s.end()); }).listen(8080, '0.0.0.0');
const u = dgram.createSocket('udp4'); u.on('message', (m, r) => u.send(name + ':' + m, r.port, r.address)); u.bind(5353, '0.0.0.0');
`;

/** The client's tools, run inside the client namespace; one JSON line of results. */
const CLIENT = `
import net from 'node:net'; import dgram from 'node:dgram';
const [cmd, a, b] = process.argv.slice(2);
const VIP = ${JSON.stringify(VIP)};
function greet(timeoutMs = 5000) {
  return new Promise((res) => {
    const s = net.connect({ host: VIP, port: 80, allowHalfOpen: true });
    let buf = ''; const t = setTimeout(() => { s.destroy(); res({ err: 'timeout' }); }, timeoutMs);
    s.on('data', (d) => { buf += d; const nl = buf.indexOf('\\n'); if (nl >= 0) { clearTimeout(t); res({ name: buf.slice(0, nl), sock: s }); } });
    s.on('error', (e) => { clearTimeout(t); res({ err: e.code || e.message }); });
    s.on('close', () => { clearTimeout(t); res({ err: 'closed: ' + JSON.stringify(buf) }); });
  });
}
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
if (cmd === 'tcp') {
  const names = {}; const errors = [];
  const n = Number(a); const spacing = Number(b ?? 0);
  for (let i = 0; i < n; i++) {
    const r = await greet();
    if (r.sock) { r.sock.destroy(); names[r.name] = (names[r.name] ?? 0) + 1; } else errors.push(r.err);
    if (spacing) await new Promise((z) => setTimeout(z, spacing));
  }
  out({ names, errors });
} else if (cmd === 'udp') {
  const names = {}; const problems = [];
  for (let i = 0; i < Number(a); i++) {
    const u = dgram.createSocket('udp4');
    await new Promise((z) => u.bind(0, z));
    const ask = (text) => new Promise((res) => { const t = setTimeout(() => res(null), 2000); u.once('message', (m, r) => { clearTimeout(t); res({ text: String(m), from: r.address + ':' + r.port }); }); u.send(text, 53, VIP); });
    const r1 = await ask('q1'); const r2 = await ask('q2');
    u.close();
    if (!r1 || !r2) { problems.push('no reply'); continue; }
    if (r1.from !== VIP + ':53') problems.push('reply from ' + r1.from);
    const n1 = r1.text.split(':')[0]; const n2 = r2.text.split(':')[0];
    if (n1 !== n2) problems.push('flow moved ' + n1 + ' -> ' + n2);
    names[n1] = (names[n1] ?? 0) + 1;
  }
  out({ names, problems });
} else if (cmd === 'hold') {
  // Hold a connection to real server a; after b ms check it still works.
  let held;
  for (let i = 0; i < 100 && !held; i++) { const r = await greet(); if (r.sock && r.name === a) held = r.sock; else r.sock?.destroy(); }
  if (!held) { out({ held: false }); process.exit(0); }
  out({ held: true });
  await new Promise((z) => setTimeout(z, Number(b)));
  const echoed = await new Promise((res) => { let got = ''; const t = setTimeout(() => res(got), 2000); held.on('data', (d) => { got += d; if (got.length >= 5) { clearTimeout(t); res(got); } }); held.write('alive'); });
  out({ echoed });
  held.destroy();
}
`;

function config(weights: [number, number, number]): string {
  return `node: director
cluster:
  port: 16694
  initdead_ms: 200
  nodes:
    - name: director
      links: [{ name: lan, address: 10.77.0.1 }]
vips:
  - address: ${VIP}
    prefix: 24
    interface: d${id}c
    managed: false
services:
  - name: web
    protocol: tcp
    vip: ${VIP}
    port: 80
    scheduler: wrr
    forward: nat
    # slow on purpose: the forwarder's retries must cover a real server health has not marked down yet
    check: { type: tcp, interval_ms: 2000, timeout_ms: 1000, rise: 1, fall: 2, initial: up }
    real_servers:
${weights.map((w, i) => `      - { address: 10.77.${i + 1}.2, port: 8080, weight: ${w} }`).join('\n')}
  - name: dns
    protocol: udp
    vip: ${VIP}
    port: 53
    scheduler: rr
    forward: nat
    real_servers:
${[1, 2, 3].map((i) => `      - { address: 10.77.${i}.2, port: 5353 }`).join('\n')}
dataplane:
  mode: forwarder
  forwarder: { workers: 2, connect_timeout_ms: 500, connect_retries: 2 }
api:
  listen: 127.0.0.1:9694
logging:
  level: info
`;
}

function client(args: string[], timeoutMs = 30_000): Promise<Record<string, unknown>[]> {
  return new Promise((res, rej) => {
    const p = spawn('ip', ['netns', 'exec', ns.c, process.execPath, join(dir, 'client.mjs'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('exit', (code) => {
      clearTimeout(t);
      if (code !== 0) return rej(new Error(`client ${args.join(' ')} exited ${code}: ${err}`));
      res(out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>));
    });
  });
}

function startRealServer(i: 1 | 2 | 3): ChildProcess {
  const p = spawn('ip', ['netns', 'exec', ns[`r${i}`], process.execPath, join(dir, 'rs.mjs'), `rs${i}`], { stdio: 'ignore' });
  procs.push(p);
  return p;
}

function cleanup(): void {
  daemon?.kill('SIGKILL');
  for (const p of procs) p.kill('SIGKILL');
  for (const n of Object.values(ns)) {
    try {
      execFileSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
    } catch {
      // not there
    }
  }
  rmSync(dir, { recursive: true, force: true });
}

describe.skipIf(!root || !haveIp)('forwarder e2e in network namespaces', () => {
  const rsProcs: ChildProcess[] = [];

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build`);
    process.once('exit', cleanup);
    writeFileSync(join(dir, 'rs.mjs'), REAL_SERVER);
    writeFileSync(join(dir, 'client.mjs'), CLIENT);
    for (const n of Object.values(ns)) sh(['ip', 'netns', 'add', n]);
    for (const n of Object.values(ns)) inNs(n, ['ip', 'link', 'set', 'lo', 'up']);
    // client <-> director
    sh(['ip', 'link', 'add', `c${id}d`, 'netns', ns.c, 'type', 'veth', 'peer', 'name', `d${id}c`, 'netns', ns.d]);
    inNs(ns.c, ['ip', 'addr', 'add', '10.77.0.2/24', 'dev', `c${id}d`]);
    inNs(ns.c, ['ip', 'link', 'set', `c${id}d`, 'up']);
    inNs(ns.d, ['ip', 'addr', 'add', '10.77.0.1/24', 'dev', `d${id}c`]);
    inNs(ns.d, ['ip', 'addr', 'add', `${VIP}/24`, 'dev', `d${id}c`]); // unmanaged VIP
    inNs(ns.d, ['ip', 'link', 'set', `d${id}c`, 'up']);
    // director <-> each real server
    for (const i of [1, 2, 3] as const) {
      sh(['ip', 'link', 'add', `d${id}${i}`, 'netns', ns.d, 'type', 'veth', 'peer', 'name', `r${id}${i}`, 'netns', ns[`r${i}`]]);
      inNs(ns.d, ['ip', 'addr', 'add', `10.77.${i}.1/24`, 'dev', `d${id}${i}`]);
      inNs(ns.d, ['ip', 'link', 'set', `d${id}${i}`, 'up']);
      inNs(ns[`r${i}`], ['ip', 'addr', 'add', `10.77.${i}.2/24`, 'dev', `r${id}${i}`]);
      inNs(ns[`r${i}`], ['ip', 'link', 'set', `r${id}${i}`, 'up']);
      rsProcs.push(startRealServer(i));
    }
    writeFileSync(join(dir, 'vigil.yaml'), config([1, 2, 3]));
    daemon = spawn('ip', ['netns', 'exec', ns.d, process.execPath, CLI, 'run', '--config', join(dir, 'vigil.yaml')], { stdio: ['ignore', 'pipe', 'pipe'] });
    daemon.stdout?.on('data', (d: Buffer) => (daemonLog += d.toString()));
    daemon.stderr?.on('data', (d: Buffer) => (daemonLog += d.toString()));
    // Until the node is active and the forwarder answers on the VIP.
    const until = performance.now() + 20_000;
    for (;;) {
      const [r] = await client(['tcp', '1']);
      if ((r?.errors as string[]).length === 0) break;
      if (performance.now() > until) throw new Error(`the forwarder never answered on ${VIP}:80; daemon log:\n${daemonLog.slice(-3000)}`);
      await new Promise((z) => setTimeout(z, 300));
    }
  }, 60_000);

  afterAll(async () => {
    if (daemon && daemon.exitCode === null) {
      daemon.kill('SIGTERM');
      await new Promise((r) => {
        const t = setTimeout(r, 3000);
        daemon?.once('exit', () => {
          clearTimeout(t);
          r(undefined);
        });
      });
    }
    cleanup();
  });

  it('balances TCP connections by weight (wrr 1:2:3)', async () => {
    const [r] = await client(['tcp', '120']);
    expect(r?.errors).toEqual([]);
    const names = r?.names as Record<string, number>;
    // Two workers each run wrr; together the split stays within a few of 20/40/60.
    expect(Math.abs((names.rs1 ?? 0) - 20)).toBeLessThanOrEqual(4);
    expect(Math.abs((names.rs2 ?? 0) - 40)).toBeLessThanOrEqual(4);
    expect(Math.abs((names.rs3 ?? 0) - 60)).toBeLessThanOrEqual(4);
  });

  it('serves UDP flows: replies come from the VIP, a flow stays on its real server', async () => {
    const [r] = await client(['udp', '9']);
    expect(r?.problems).toEqual([]);
    expect(r?.names).toEqual({ rs1: 3, rs2: 3, rs3: 3 });
  });

  it('keeps serving with 0 client errors while a real server dies and another is black-holed', async () => {
    const load = client(['tcp', '150', '10'], 60_000);
    try {
      await blackholeAndKill(load);
    } finally {
      // Restore both for the next test.
      execFileSync('ip', ['netns', 'exec', ns.r2, 'nft', 'delete', 'table', 'inet', 'vfwd'], { stdio: 'ignore' });
      rsProcs[2] = startRealServer(3);
    }
  }, 60_000);

  async function blackholeAndKill(load: Promise<Record<string, unknown>[]>): Promise<void> {
    await new Promise((z) => setTimeout(z, 300));
    // rs2: packets to 8080 silently dropped → connects time out (500 ms) and are retried.
    execFileSync('ip', ['netns', 'exec', ns.r2, 'nft', '-f', '-'], {
      input: 'table inet vfwd {\n chain in {\n  type filter hook input priority 0;\n  tcp dport 8080 drop\n }\n}\n',
    });
    await new Promise((z) => setTimeout(z, 300));
    // rs3: the process dies → connects are refused (RST) and retried.
    rsProcs[2]?.kill('SIGKILL');
    const [r] = await load;
    expect(r?.errors).toEqual([]);
    const names = r?.names as Record<string, number>;
    expect((names.rs1 ?? 0) + (names.rs2 ?? 0) + (names.rs3 ?? 0)).toBe(150);
    // The failed connects were retried elsewhere and counted per real server.
    const metrics = inNs(ns.d, ['curl', '-s', 'http://127.0.0.1:9694/metrics']);
    const value = (re: RegExp): number => Number(re.exec(metrics)?.[1] ?? 0);
    expect({
      retries: value(/vigil_forwarder_retries_total\{service="web"\} (\d+)/) > 0,
      timeoutsRs2: value(/vigil_forwarder_connect_failures_total\{service="web",real_server="10\.77\.2\.2:8080"\} (\d+)/) > 0,
      refusedRs3: value(/vigil_forwarder_connect_failures_total\{service="web",real_server="10\.77\.3\.2:8080"\} (\d+)/) > 0,
    }).toEqual({ retries: true, timeoutsRs2: true, refusedRs3: true });
  }

  it('drains a real server on weight 0: its connection finishes, new ones go elsewhere', async () => {
    // Wait until rs3 is back (its check passes again).
    const back = performance.now() + 15_000;
    for (;;) {
      const [r] = await client(['tcp', '12']);
      if (((r?.names as Record<string, number>).rs3 ?? 0) > 0) break;
      if (performance.now() > back) throw new Error('rs3 did not come back');
      await new Promise((z) => setTimeout(z, 300));
    }
    const hold = client(['hold', 'rs1', '2500']);
    await new Promise((z) => setTimeout(z, 700));
    writeFileSync(join(dir, 'vigil.yaml'), config([0, 2, 3]));
    daemon?.kill('SIGHUP');
    await new Promise((z) => setTimeout(z, 700));
    const [r] = await client(['tcp', '40']);
    expect(r?.errors).toEqual([]);
    expect((r?.names as Record<string, number>).rs1).toBeUndefined();
    const held = await hold;
    expect(held[0]).toEqual({ held: true });
    expect(held[1]).toEqual({ echoed: 'alive' });
  }, 40_000);
});
