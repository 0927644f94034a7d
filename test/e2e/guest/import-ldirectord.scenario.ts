/**
 * Runs INSIDE the IPVS VM (test/e2e/import-ldirectord-vm.test.ts compiles and boots it once).
 *
 * Real HTTP servers on a dummy interface (the shipped example's real servers, answering
 * "Test Page"), host names in /etc/hosts for the cases that use them. For each case of the
 * manifest (argv[2]): the real ldirectord (`ldirectord -d CF start`) runs until a whole
 * round of its checks is over and the next round leaves the table as it was (see Rounds),
 * the table is saved; a case with `down` then stops the HTTP servers and saves
 * ldirectord's table the same way (rounds started after the stop), and starts them again;
 * ldirectord is stopped. Then the config `vigil import` made from the same file is loaded into the real
 * vigil daemon (started once, reloaded with SIGHUP) and its table must equal ldirectord's;
 * with `down`, the HTTP servers are stopped again and vigil's table must equal
 * ldirectord's second table as vigil's documentation says it differs (`quiescentFallback`:
 * services where ldirectord keeps its failed real servers at weight 0 beside the fallback,
 * vigil programs the sorry server alone). A case may be imported here, in the guest, when
 * it needs the guest's /etc/hosts. One JSON object per line.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, copyFileSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';

interface Case {
  name: string;
  cf: string;
  /** The imported config (absent: import here, to this path). */
  yaml: string;
  importInGuest?: boolean;
  /** Also compare the tables with every HTTP server stopped. */
  down?: boolean;
  /** ipvsadm service keys (`-t vip:port`, `-f mark`) of quiescent services with a fallback. */
  quiescentFallback?: string[];
}
interface Manifest {
  /** The node name every import is given (--node), the daemon's too. */
  node: string;
  current: string;
  empty: string;
  /** Real servers that answer HTTP on port 80 with "Test Page". */
  http: string[];
  /** Lines appended to the guest's /etc/hosts. */
  hosts: string;
  cases: Case[];
}

const emit = (o: Record<string, unknown>): void => void process.stdout.write(JSON.stringify(o) + '\n');
const sh = (cmd: string): string => spawnSync('sh', ['-c', cmd], { encoding: 'utf8' }).stdout;
/** The kernel table, sorted; read without blocking this event loop (it runs the daemon's pipes). */
const table = async (): Promise<string[]> =>
  (await promisify(execFile)('ipvsadm', ['-S', '-n'], { encoding: 'utf8' })).stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .sort();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const exited = (c: ChildProcess): Promise<void> => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())));

const m = JSON.parse(readFileSync(process.argv[2] as string, 'utf8')) as Manifest;
sh('ipvsadm -C; ip link add ldrs type dummy && ip link set ldrs up');
for (const a of m.http) sh(`ip addr add ${a}/32 dev ldrs`);
appendFileSync('/etc/hosts', m.hosts);

/**
 * The real servers: one process of their own, so that nothing this scenario does (under
 * emulation a spawned ipvsadm costs hundreds of ms) delays their answers past the checks'
 * 3 s timeout. Down is the process killed: a check gets a reset.
 */
const HTTP_SERVERS = `const http = require('node:http');
const addrs = JSON.parse(process.argv[1]);
let n = 0;
for (const a of addrs) http.createServer((_q, r) => r.end('<html>Test Page</html>\\n')).listen(80, a, () => { if (++n === addrs.length) process.stdout.write('ready\\n'); });`;
let servers: ChildProcess | undefined;
async function startHttp(): Promise<void> {
  const p = spawn('node', ['-e', HTTP_SERVERS, JSON.stringify(m.http)], { stdio: ['ignore', 'pipe', 'inherit'] });
  servers = p;
  await new Promise<void>((resolve, reject) => {
    let out = '';
    p.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve();
    });
    p.once('exit', (code) => reject(new Error(`the HTTP servers exited (${code}) before listening`)));
  });
}
async function stopHttp(): Promise<void> {
  const p = servers;
  servers = undefined;
  if (!p) return;
  p.kill('SIGKILL');
  await exited(p);
}
await startHttp();

// ONE vigil daemon, started now with no services, reloaded per case
copyFileSync(m.empty, m.current);
const daemon = spawn('node', ['dist/cli.js', 'run', '--config', m.current], { stdio: ['ignore', 'pipe', 'pipe'] });
let vlog = '';
daemon.stdout.on('data', (d: Buffer) => (vlog += d.toString()));
daemon.stderr.on('data', (d: Buffer) => (vlog += d.toString()));
const t0 = performance.now();

async function until(want: string[], timeoutMs: number): Promise<{ ok: boolean; got: string[]; ms: number }> {
  const t = performance.now();
  let got: string[] = [];
  while (performance.now() - t < timeoutMs && daemon.exitCode === null) {
    got = await table();
    if (got.join('\n') === want.join('\n')) return { ok: true, got, ms: Math.round(performance.now() - t) };
    await sleep(250);
  }
  return { ok: false, got, ms: Math.round(performance.now() - t) };
}

/**
 * ldirectord's rounds of checks, from its debug output (`-d`: a line "DEBUG2: Checking
 * <type>: real server=<id> (virtual=<id>)" before each real server's check, one process
 * (fork=no) checking every real server of every block in turn, then sleeping checkinterval).
 * The first such line names the first real server of a round; each time it comes again, the
 * round before it is over, and every change that round made (a real server or a fallback
 * added or removed, by ipvsadm before the next check) is in the table. A fixed "unchanged
 * for N s" window is not that: a round with unreachable real servers waits checktimeout on
 * each, and on a loaded host the table stayed unchanged for more than 8 s before its first
 * round was over.
 */
class Rounds {
  private first: string | undefined;
  private buf = '';
  /** Round boundaries seen (the first real server's check started again). */
  boundaries = 0;
  /** Whether a round has started. */
  get started(): boolean {
    return this.first !== undefined;
  }
  feed(chunk: string): void {
    this.buf += chunk;
    const lines = this.buf.split('\n');
    this.buf = lines.pop() ?? '';
    for (const l of lines) {
      if (!/^DEBUG2: Checking [^:]+: real server=/.test(l)) continue;
      if (this.first === undefined) this.first = l;
      else if (l === this.first) this.boundaries++;
    }
  }
}

/**
 * ldirectord's table after the first whole round of checks that started after this call,
 * once it is the same after the next whole round too (a check that flapped shows up as a
 * difference, and another round is waited for). `rounds`: how many rounds ldirectord had
 * ended when the table was taken.
 */
async function settle(ld: ChildProcess, rounds: Rounds, timeoutMs: number): Promise<{ got: string[]; stable: boolean; ms: number; rounds: number }> {
  const t = performance.now();
  // a round under way at the call may have checked some real servers before the change
  // being waited for: the first whole round is the next one
  let want = rounds.started ? rounds.boundaries + 2 : 1;
  let prev: string | undefined;
  let got: string[] = [];
  while (performance.now() - t < timeoutMs && ld.exitCode === null) {
    if (rounds.boundaries < want) {
      await sleep(100);
      continue;
    }
    got = await table();
    const now = got.join('\n');
    if (prev !== undefined && now === prev) return { got, stable: true, ms: Math.round(performance.now() - t), rounds: want };
    prev = now;
    want = rounds.boundaries + 1;
  }
  return { got: await table(), stable: false, ms: Math.round(performance.now() - t), rounds: rounds.boundaries };
}

/** vigil's documented difference: a quiescent service with a sorry server active has it alone. */
function vigilSemantics(ldTable: string[], keys: string[]): string[] {
  return ldTable.filter((l) => !(keys.some((k) => l.startsWith(`-a ${k} -r `)) && / -w 0$/.test(l)));
}

const reloadSaid = (from: number): string[] =>
  vlog
    .slice(from)
    .split('\n')
    .filter((l) => /config reload/.test(l))
    .map((l) => {
      try {
        const e = JSON.parse(l) as { msg: string; reason?: string };
        return e.reason ? `${e.msg}: ${e.reason}` : e.msg;
      } catch {
        return l;
      }
    });

let active = false;
for (const c of m.cases) {
  // the import (here, for the guest's /etc/hosts) runs while ldirectord starts
  let importOut = '';
  const importer = c.importInGuest ? spawn('node', ['dist/cli.js', 'import', '--ldirectord', c.cf, '--node', m.node, '-o', c.yaml], { stdio: ['ignore', 'ignore', 'pipe'] }) : undefined;
  importer?.stderr?.on('data', (d: Buffer) => (importOut += d.toString()));
  sh('ipvsadm -C');
  const ld = spawn('/usr/sbin/ldirectord', ['-d', c.cf, 'start'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let ldlog = '';
  const rounds = new Rounds();
  ld.stdout.on('data', (d: Buffer) => (ldlog += d.toString()));
  ld.stderr.on('data', (d: Buffer) => {
    ldlog += d.toString();
    rounds.feed(d.toString());
  });
  const up = await settle(ld, rounds, 600_000);
  let down: { got: string[]; stable: boolean; ms: number; rounds: number } | undefined;
  if (c.down) {
    await stopHttp();
    down = await settle(ld, rounds, 300_000);
    await startHttp();
  }
  ld.kill('SIGTERM');
  await Promise.race([exited(ld), sleep(60_000)]);
  if (ld.exitCode === null && ld.signalCode === null) ld.kill('SIGKILL');
  sh('ipvsadm -C');
  let imported: Record<string, unknown> = {};
  if (importer) {
    await exited(importer);
    imported = { importExit: importer.exitCode, importReport: importOut.split('\n').filter((l) => /: (error|adjusted): /.test(l)) };
  }
  if (!active) {
    while (!/"to":"active"/.test(vlog) && daemon.exitCode === null && performance.now() - t0 < 400_000) await sleep(250);
    active = /"to":"active"/.test(vlog);
    emit({ step: 'daemon', startMs: Math.round(performance.now() - t0), active });
  }
  copyFileSync(c.yaml, m.current);
  const mark = vlog.length;
  daemon.kill('SIGHUP');
  const v = await until(up.got, 120_000);
  // what the daemon said about this reload (a refusal is logged with its reason)
  const reload = reloadSaid(mark);
  let vdown: { ok: boolean; got: string[]; ms: number } | undefined;
  let expectedDown: string[] | undefined;
  if (down) {
    expectedDown = vigilSemantics(down.got, c.quiescentFallback ?? []);
    await stopHttp();
    vdown = await until(expectedDown, 120_000);
    await startHttp();
  }
  const ok = v.ok && up.stable && (vdown === undefined || (vdown.ok && down?.stable === true));
  const vtail = vlog.slice(mark).split('\n').filter((l) => l !== '').slice(-8).join('\n');
  emit({
    case: c.name,
    ...imported,
    ldirectord: up.got,
    ldMs: up.ms,
    ldRounds: up.rounds,
    stable: up.stable,
    vigil: v.got,
    ok: v.ok,
    ms: v.ms,
    reload,
    ...(down && vdown ? { ldirectordDown: down.got, ldDownMs: down.ms, ldDownRounds: down.rounds, stableDown: down.stable, expectedDown, vigilDown: vdown.got, okDown: vdown.ok, msDown: vdown.ms } : {}),
    ...(ok ? {} : { ldlog: ldlog.split('\n').slice(-15).join('\n'), vlog: vtail }),
  });
  copyFileSync(m.empty, m.current);
  daemon.kill('SIGHUP');
  await until([], 60_000);
}
daemon.kill('SIGTERM');
await exited(daemon);
await stopHttp();
sh('ipvsadm -C');
emit({ done: true });
process.exit(0);
