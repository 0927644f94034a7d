/**
 * `npm run bench:forwarder`: vigil's built-in forwarder against HAProxy (mode tcp,
 * roundrobin, nbthread 1) on loopback, in one run, interleaved. Three nginx backends
 * serve a 1 KiB body and a 100 MiB file; wrk drives keep-alive and `Connection: close`
 * load, curl downloads the big file. wrk and the backends share the machine's cores with
 * the proxy, so besides raw figures the table gives throughput per proxy CPU-second
 * (requests divided by the CPU time the proxy's processes used, read from /proc).
 *
 * Environment: BENCH_DURATION_S (per wrk run, default 6), BENCH_ROUNDS (default 3; the medians are over rounds),
 * BENCH_CONNECTIONS (wrk -c, default 32), BENCH_CPU_PROF=DIR (vigil workers write
 * --cpu-prof profiles there), BENCH_MAX_ACCEPT (dataplane.forwarder.max_accept; the
 * forwarder's settings are otherwise the config defaults), BENCH_MAX_ACCEPT_AB=1,8 (instead
 * of 1 and N workers, run 1 worker once per max_accept value listed: an A/B of that setting
 * in one run).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const DURATION = Number(process.env.BENCH_DURATION_S ?? 6);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const CPU_PROF = process.env.BENCH_CPU_PROF;
const MAX_ACCEPT = process.env.BENCH_MAX_ACCEPT;
const MAX_ACCEPT_AB = process.env.BENCH_MAX_ACCEPT_AB?.split(',').map(Number);
const BACKENDS = [18181, 18182, 18183];
const HAPROXY_PORT = 18190;
const VIGIL_PORT = 18191;
const TICK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
const ROOT = resolve(import.meta.dirname ?? '.', '../..');

function have(bin: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function ensureTools(): void {
  const missing = [
    ['haproxy', 'haproxy'],
    ['nginx', 'nginx-light'],
    ['wrk', 'wrk'],
    ['curl', 'curl'],
  ].filter(([bin]) => !have(bin as string) && !existsSync(`/usr/sbin/${bin}`));
  if (missing.length === 0) return;
  const pkgs = missing.map(([, p]) => p as string);
  console.log(`installing ${pkgs.join(' ')} from Debian`);
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

/** utime + stime of the processes, in seconds. */
function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // exited
    }
  }
  return ticks / TICK;
}

async function waitPort(port: number, ms = 10_000): Promise<void> {
  const net = await import('node:net');
  const until = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((res) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        res(true);
      });
      s.once('error', () => res(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`port ${port} did not open`);
    await sleep(100);
  }
}

interface Proxy {
  name: string;
  port: number;
  pids: () => number[];
  stop: () => Promise<void>;
}

function startNginx(dir: string): ChildProcess {
  const www = join(dir, 'www');
  mkdirSync(www, { recursive: true });
  writeFileSync(join(www, '1k.bin'), Buffer.alloc(1024, 'x'));
  execFileSync('dd', ['if=/dev/zero', `of=${join(www, '100m.bin')}`, 'bs=1M', 'count=100'], { stdio: 'ignore' });
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `daemon off; master_process off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/nginx.err warn;
events { worker_connections 4096; }
http { access_log off; sendfile on; tcp_nopush on; keepalive_requests 1000000; keepalive_timeout 60s;
  client_body_temp_path ${dir}/cb; proxy_temp_path ${dir}/pt; fastcgi_temp_path ${dir}/ft; uwsgi_temp_path ${dir}/ut; scgi_temp_path ${dir}/st;
${BACKENDS.map((p) => `  server { listen 127.0.0.1:${p} reuseport backlog=4096; root ${www}; }`).join('\n')}
}
`,
  );
  return spawn('nginx', ['-c', conf, '-p', dir], { stdio: 'inherit' });
}

async function startHaproxy(dir: string): Promise<Proxy> {
  const conf = join(dir, 'haproxy.cfg');
  writeFileSync(
    conf,
    `global
  nbthread 1
  maxconn 8000
defaults
  mode tcp
  timeout connect 2s
  timeout client 60s
  timeout server 60s
listen fwd
  bind 127.0.0.1:${HAPROXY_PORT}
  balance roundrobin
${BACKENDS.map((p, i) => `  server s${i} 127.0.0.1:${p}`).join('\n')}
`,
  );
  const p = spawn('haproxy', ['-db', '-f', conf], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitPort(HAPROXY_PORT);
  return {
    name: 'haproxy',
    port: HAPROXY_PORT,
    pids: () => [p.pid as number],
    stop: async () => {
      p.kill('SIGTERM');
      await new Promise((r) => p.once('exit', r));
    },
  };
}

/** The forwarder in a process of its own: the dataplane (main) plus its workers. */
async function startVigil(workers: number, maxAccept = MAX_ACCEPT): Promise<Proxy> {
  const dataplane = join(ROOT, 'dist/forwarder/dataplane.js');
  const metricsMod = join(ROOT, 'dist/metrics.js');
  const logMod = join(ROOT, 'dist/log.js');
  const schemaMod = join(ROOT, 'dist/config/schema.js');
  const forwarder = { workers, ...(maxAccept !== undefined ? { max_accept: Number(maxAccept) } : {}) };
  const script = `
    const { createForwarderDataplane } = await import(${JSON.stringify(dataplane)});
    const { createMetrics } = await import(${JSON.stringify(metricsMod)});
    const { createLogger } = await import(${JSON.stringify(logMod)});
    const { dataplaneSchema } = await import(${JSON.stringify(schemaMod)});
    const config = { services: [], dataplane: dataplaneSchema.parse({ mode: 'forwarder', forwarder: ${JSON.stringify(forwarder)} }) };
    const dp = createForwarderDataplane(config, { logger: createLogger('warn'), metrics: createMetrics({ defaults: false }),
      workerExecArgv: ${JSON.stringify(CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', CPU_PROF] : [])} });
    await dp.start();
    await dp.apply([{ kind: 'add_service', service: { key: 'tcp 127.0.0.1:${VIGIL_PORT}', protocol: 'tcp', vip: '127.0.0.1', port: ${VIGIL_PORT}, scheduler: 'rr',
      realServers: ${JSON.stringify(BACKENDS.map((p) => ({ address: '127.0.0.1', port: p, weight: 1, forward: 'nat' })))} } }]);
    await dp.setRole('active');
    process.stdout.write(JSON.stringify({ pids: dp.workerPids() }) + '\\n');
    process.on('SIGTERM', async () => { await dp.close(); process.exit(0); });
  `;
  const p = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const pids = await new Promise<number[]>((res, rej) => {
    let buf = '';
    p.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) res((JSON.parse(buf.slice(0, nl)) as { pids: number[] }).pids);
    });
    p.once('exit', (code) => rej(new Error(`vigil host exited with ${code}`)));
  });
  await waitPort(VIGIL_PORT);
  return {
    name: (workers === 1 ? 'vigil (1 worker)' : `vigil (${workers} workers)`) + (MAX_ACCEPT_AB !== undefined ? ` ma=${maxAccept}` : ''),
    port: VIGIL_PORT,
    pids: () => [p.pid as number, ...pids],
    stop: async () => {
      p.kill('SIGTERM');
      await new Promise((r) => p.once('exit', r));
    },
  };
}

function parseLatency(s: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(s.trim());
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 'ms' ? v : v * 1000;
}

interface WrkResult {
  requests: number;
  rps: number;
  p99ms: number;
  errors: number;
}

function wrk(port: number, close: boolean): Promise<WrkResult> {
  const args = ['-t1', `-c${CONNS}`, `-d${DURATION}s`, '--latency', ...(close ? ['-H', 'Connection: close'] : []), `http://127.0.0.1:${port}/1k.bin`];
  return new Promise((res, rej) => {
    const p = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.once('exit', (code) => {
      if (code !== 0) return rej(new Error(`wrk exited ${code}: ${out}`));
      const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
      const p99 = parseLatency(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? '');
      const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
      const errors = (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0) + non2xx;
      res({ requests, rps, p99ms: p99, errors });
    });
  });
}

function curlBulk(port: number): { bytes: number; seconds: number } {
  const out = execFileSync('curl', ['-s', '-o', '/dev/null', '-w', '%{size_download} %{time_total}', `http://127.0.0.1:${port}/100m.bin`]).toString();
  const [b, t] = out.split(' ').map(Number);
  return { bytes: b ?? 0, seconds: t ?? 1 };
}

interface Row {
  kaRps: number[];
  kaPerCpu: number[];
  p99: number[];
  ncRps: number[];
  ncPerCpu: number[];
  bulkMBs: number[];
  bulkPerCpu: number[];
  errors: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

async function measure(p: Proxy, row: Row): Promise<void> {
  // keep-alive
  let c0 = cpuSeconds(p.pids());
  const ka = await wrk(p.port, false);
  let cpu = cpuSeconds(p.pids()) - c0;
  row.kaRps.push(ka.rps);
  row.kaPerCpu.push(ka.requests / cpu);
  row.p99.push(ka.p99ms);
  row.errors += ka.errors;
  await sleep(500);
  // new connection per request
  c0 = cpuSeconds(p.pids());
  const nc = await wrk(p.port, true);
  cpu = cpuSeconds(p.pids()) - c0;
  row.ncRps.push(nc.rps);
  row.ncPerCpu.push(nc.requests / cpu);
  row.errors += nc.errors;
  await sleep(1500); // let TIME_WAIT-heavy churn settle
  // bulk: three downloads of 100 MiB
  c0 = cpuSeconds(p.pids());
  let bytes = 0;
  let secs = 0;
  for (let i = 0; i < 3; i++) {
    const r = curlBulk(p.port);
    bytes += r.bytes;
    secs += r.seconds;
  }
  cpu = cpuSeconds(p.pids()) - c0;
  row.bulkMBs.push(bytes / 1e6 / secs);
  row.bulkPerCpu.push(bytes / 1e6 / cpu);
}

async function main(): Promise<void> {
  ensureTools();
  if (!existsSync(join(ROOT, 'dist/forwarder/worker.js'))) throw new Error('dist/ is missing: run npm run build');
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-fwd-'));
  if (CPU_PROF) mkdirSync(CPU_PROF, { recursive: true });
  const nginx = startNginx(dir);
  const multi = Math.max(2, availableParallelism());
  const kinds: { name: string; start: () => Promise<Proxy> }[] = [
    { name: 'haproxy', start: () => startHaproxy(dir) },
    ...(MAX_ACCEPT_AB !== undefined
      ? MAX_ACCEPT_AB.map((ma) => ({ name: `1w ma=${ma}`, start: () => startVigil(1, String(ma)) }))
      : [
          { name: '1w', start: () => startVigil(1) },
          { name: 'Nw', start: () => startVigil(multi) },
        ]),
  ];
  const rows = new Map<string, Row>();
  const labels = new Map<string, string>();
  try {
    for (const port of BACKENDS) await waitPort(port);
    console.log(
      `forwarder bench: ${ROUNDS} rounds × (haproxy, ${MAX_ACCEPT_AB !== undefined ? `vigil 1 worker with max_accept ${MAX_ACCEPT_AB.join(', ')}` : `vigil 1 worker, vigil ${multi} workers`}), wrk -t1 -c${CONNS} -d${DURATION}s, ${availableParallelism()} cores${MAX_ACCEPT_AB === undefined ? `, max_accept ${MAX_ACCEPT ?? 'default'}` : ''}`,
    );
    for (let round = 1; round <= ROUNDS; round++) {
      // The order rotates: whoever runs right after another proxy's new-connection run
      // meets its tens of thousands of TIME_WAIT sockets (connect() must pick ports among them).
      for (let j = 0; j < kinds.length; j++) {
        const k = kinds[(round - 1 + j) % kinds.length] as (typeof kinds)[number];
        const p = await k.start();
        labels.set(k.name, p.name);
        let row = rows.get(k.name);
        if (row === undefined) rows.set(k.name, (row = { kaRps: [], kaPerCpu: [], p99: [], ncRps: [], ncPerCpu: [], bulkMBs: [], bulkPerCpu: [], errors: 0 }));
        try {
          await sleep(300);
          await measure(p, row);
        } finally {
          await p.stop();
        }
        console.log(
          `round ${round} ${p.name}: keep-alive ${row.kaRps.at(-1)?.toFixed(0)} req/s (${row.kaPerCpu.at(-1)?.toFixed(0)}/cpu-s, p99 ${row.p99.at(-1)?.toFixed(2)} ms), ` +
            `new conns ${row.ncRps.at(-1)?.toFixed(0)}/s (${row.ncPerCpu.at(-1)?.toFixed(0)}/cpu-s), bulk ${row.bulkMBs.at(-1)?.toFixed(0)} MB/s`,
        );
        await sleep(1000);
      }
    }
  } finally {
    nginx.kill('SIGTERM');
    await new Promise((r) => nginx.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
  printTable(rows, labels);
}

function printTable(rows: Map<string, Row>, labels: Map<string, string>): void {
  const h = rows.get('haproxy');
  if (h === undefined) return;
  // label, the per-round figures, target ratio (0: none), whether the target is a floor or a ceiling
  const cols: [string, (r: Row) => number[], number, 'min' | 'max'][] = [
    ['keep-alive req/s', (r) => r.kaRps, 0, 'min'],
    ['keep-alive req/cpu-s', (r) => r.kaPerCpu, 0.9, 'min'],
    ['new conn/s', (r) => r.ncRps, 0, 'min'],
    ['new conn/cpu-s', (r) => r.ncPerCpu, 0.7, 'min'],
    ['p99 ms (keep-alive)', (r) => r.p99, 1.5, 'max'],
    ['bulk MB/s', (r) => r.bulkMBs, 1.0, 'min'],
    ['bulk MB/cpu-s', (r) => r.bulkPerCpu, 0, 'min'],
  ];
  const verdict = (r: number, target: number, dir: 'min' | 'max'): string => (target === 0 ? '' : (dir === 'min' ? r >= target : r <= target) ? ' ok' : ' MISS');
  const names = [...rows.keys()];
  const w = 22;
  const pad = (s: string, n = w): string => s.padStart(n);
  console.log('');
  console.log(pad('metric', 22) + names.map((n) => pad(labels.get(n) ?? n)).join('') + names.filter((n) => n !== 'haproxy').map((n) => pad(`ratio ${n}`, 14)).join('') + pad('target', 10));
  for (const [label, series, target, dir] of cols) {
    const f = (r: Row): number => median(series(r));
    const hv = f(h);
    const cells = names.map((n) => pad(f(rows.get(n) as Row).toFixed(label.startsWith('p99') ? 2 : 0)));
    const ratios = names
      .filter((n) => n !== 'haproxy')
      .map((n) => {
        const r = f(rows.get(n) as Row) / hv;
        return pad(`${r.toFixed(2)}${verdict(r, target, dir)}`, 14);
      });
    console.log(pad(label, 22) + cells.join('') + ratios.join('') + pad(target === 0 ? '-' : `${dir === 'min' ? '≥' : '≤'}${target}×`, 10));
  }
  // The machine's speed drifts between rounds (HAProxy's own figures move 5-40 %): each
  // round's ratio against the HAProxy run just before it cancels that drift.
  console.log('\npaired: median over rounds of (vigil / the same round\'s haproxy)');
  for (const [label, series, target, dir] of cols) {
    if (target === 0) continue;
    const ref = series(h);
    const ratios = names
      .filter((n) => n !== 'haproxy')
      .map((n) => {
        const r = median(series(rows.get(n) as Row).map((x, i) => x / (ref[i] as number)));
        // the paired ratios are the judged ones: a miss fails the bench
        if (verdict(r, target, dir) === ' MISS') process.exitCode = 1;
        return pad(`${r.toFixed(2)}${verdict(r, target, dir)}`, 14);
      });
    console.log(pad(label, 22) + ' '.repeat(w * names.length) + ratios.join('') + pad(`${dir === 'min' ? '≥' : '≤'}${target}×`, 10));
  }
  const errs = names.map((n) => `${labels.get(n) ?? n}: ${rows.get(n)?.errors ?? 0}`).join(', ');
  console.log(`\nclient errors (wrk socket errors + non-2xx): ${errs}`);
  console.log('ratios are vigil / haproxy (nbthread 1); medians over rounds; per cpu-s = requests (or MB) / proxy CPU seconds from /proc');
}

await main();
