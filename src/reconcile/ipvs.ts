/**
 * The IPVS dataplane: the kernel's table through ipvsadm.
 *
 *   read()      ipvsadm -S -n                     → SaveParser (unchanged services reused)
 *               (+ ipvsadm -L -n --nosort with listOrder: the kernel's order of mh real servers)
 *   apply(ops)  ipvsadm -R  (the batch on stdin)  — one process per reconcile
 *   setRole()   ipvsadm --start-daemon master|backup --mcast-interface IF --syncid N
 *               ipvsadm --stop-daemon master|backup
 *   counters()  ipvsadm -L -n --exact, --stats, --rate (three listings in parallel)
 *
 * `ipvsadm -R` applies every line even after a failing one and its exit status reflects
 * only the last line, so apply() never claims success: the reconciler reads the table
 * back and compares. apply() throws only when ipvsadm could not run at all or exited
 * non-zero; whatever ipvsadm printed on stderr is logged either way.
 *
 * close() leaves the kernel table in place (traffic keeps flowing across a restart of
 * vigil; the next start reconciles it) and stops the sync daemon vigil started.
 *
 * ipvsadm is spawned with node:child_process directly rather than execa: on the
 * reconcile path every millisecond of spawn overhead counts against the bare `ipvsadm -R`
 * (measured on this machine: execa ~15 ms per call, a plain spawn ~8 ms), and the target
 * is vigil's apply ≤ 1.2 × bare. `runIpvsadm` still classifies every run (exit code,
 * signal, timeout, spawn error) and kills a run that outlives its timeout. The `-R`
 * batch goes in, and its stderr comes out, through files in a private temp dir passed as
 * plain file descriptors (what a shell's `ipvsadm -R < batch 2> err` does): node's pipe
 * streams cost more than the restore of a one-line batch itself under emulation. The
 * stderr file stays open in append mode and is emptied before each run, so a clean
 * restore costs one open, one write and one fstat besides the spawn.
 *
 * read() goes through a SaveParser, which reuses the services of the previous read-back
 * whose lines did not change: one health change in a 10,000-entry table then leaves
 * 0.3 MB of garbage instead of 26 MB (see SaveParser in ipvsadm.ts for why that matters).
 */
import { spawn } from 'node:child_process';
import { closeSync, fstatSync, ftruncateSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { VigilError } from '../errors.js';
import { formatBatch, parseList, SaveParser, type ListColumns } from './ipvsadm.js';
import { realServerId, type Dataplane, type DataplaneRole, type Operation, type RealServerCounters, type Table, type TableRealServer } from './table.js';

export interface IpvsDataplaneOptions {
  /** The ipvsadm binary (dataplane.ipvs.ipvsadm). */
  ipvsadm?: string;
  /** IPVS connection sync daemon: master while active, backup otherwise. */
  syncDaemon?: { interface: string; syncId: number } | undefined;
  logger: Logger;
  metrics?: Metrics;
  /** Kill an ipvsadm run after this long (a 10,000-line restore takes ~15 s under emulation). */
  timeoutMs?: number;
  /**
   * cluster.mode ecmp: set net.ipv4.vs.sloppy_tcp and sloppy_sctp to 1 at start, so this
   * director picks up a connection another director began (the routers moved its flow
   * here mid-stream) instead of dropping its packets.
   */
  sloppy?: boolean;
  /** Where /proc/sys is (tests point it at a directory of their own). */
  procSys?: string;
  /**
   * read() gives an mh service's real servers in the kernel's list order (newest
   * first), which ip_vs_mh populates its table in: `ipvsadm -S -n` sorts them by
   * address and refuses `--nosort`, so the order comes from `ipvsadm -L -n --nosort`.
   * cluster.mode ecmp sets it so the reconciler keeps mh services in canonical order.
   */
  listOrder?: boolean;
}

/** The sysctls ecmp mode needs on an IPVS director (written as files under /proc/sys). */
export const SLOPPY_SYSCTLS = ['net/ipv4/vs/sloppy_tcp', 'net/ipv4/vs/sloppy_sctp'] as const;

/**
 * Writes 1 to each sloppy sysctl; a failure names the setting and why it matters.
 * Direct writes, as for the IPv6 VIP settings (src/vip/port.ts): no sysctl process.
 */
export async function enableSloppy(procSys = '/proc/sys'): Promise<void> {
  for (const key of SLOPPY_SYSCTLS) {
    try {
      await writeFile(`${procSys}/${key}`, '1\n');
    } catch (err) {
      throw new VigilError(
        'VIGIL_IPVS_SYSCTL',
        `cannot set ${key.replaceAll('/', '.')}=1 (cluster.mode ecmp needs it: without it connections moved here from another director are dropped): ${(err as Error).message}`,
        500,
        { cause: err },
      );
    }
  }
}

/**
 * The table with each mh service's real servers in the order of the listing (the
 * kernel's list order, from `ipvsadm -L -n --nosort`). A real server the listing lacks
 * (the table changed between the two reads) goes last; the next read sees it.
 */
export function inListOrder(table: Table, listing: ListColumns): Table {
  return table.map((s) => {
    const order = listing.get(s.key);
    if (s.scheduler !== 'mh' || order === undefined) return s;
    const rank = new Map([...order.keys()].map((id, i) => [id, i]));
    const at = (r: TableRealServer): number => rank.get(realServerId(r.address, r.port)) ?? Number.MAX_SAFE_INTEGER;
    return { ...s, realServers: [...s.realServers].sort((a, b) => at(a) - at(b)) };
  });
}

export class IpvsadmError extends VigilError {
  constructor(
    message: string,
    readonly stderr: string,
    options?: ErrorOptions,
  ) {
    super('VIGIL_IPVSADM_FAILED', message, 500, options);
    this.name = 'IpvsadmError';
  }
}

type SyncState = 'master' | 'backup' | 'none';

export class IpvsDataplane implements Dataplane {
  readonly kind = 'ipvs' as const;
  readonly listOrder: boolean;
  private readonly bin: string;
  private readonly timeoutMs: number;
  private syncState: SyncState = 'none';
  private started = false;
  private tmp: { dir: string; batch: string; errFd: number } | undefined;
  /** Reuses the services of the previous read-back that did not change (see SaveParser). */
  private readonly saveParser = new SaveParser();
  /** The last stderr of `ipvsadm -R` (error lines of a batch; for logs and tests). */
  lastApplyStderr = '';

  constructor(private readonly opts: IpvsDataplaneOptions) {
    this.bin = opts.ipvsadm ?? 'ipvsadm';
    this.listOrder = opts.listOrder === true;
    this.timeoutMs = opts.timeoutMs ?? 120_000;
  }

  async start(): Promise<void> {
    if (this.started) return;
    await this.read(); // fails loudly when ipvsadm or the kernel module is missing
    if (this.opts.sloppy === true) {
      await enableSloppy(this.opts.procSys);
      this.opts.logger.info({ sysctls: SLOPPY_SYSCTLS.map((k) => `${k.replaceAll('/', '.')}=1`) }, 'IPVS picks up connections begun on another director (cluster.mode ecmp)');
    }
    this.started = true;
    this.setSyncMetric();
  }

  async close(): Promise<void> {
    if (this.tmp) {
      closeSync(this.tmp.errFd);
      rmSync(this.tmp.dir, { recursive: true, force: true });
    }
    this.tmp = undefined;
    if (!this.started) return;
    this.started = false;
    if (this.syncState !== 'none') {
      await this.syncCommand(['--stop-daemon', this.syncState], 'No daemon is running').catch((err: unknown) => {
        this.opts.logger.warn({ err }, 'could not stop the IPVS sync daemon');
      });
      this.syncState = 'none';
      this.setSyncMetric();
    }
  }

  async read(): Promise<Table> {
    if (!this.listOrder) return this.saveParser.parse(await this.run(['-S', '-n']));
    const [save, list] = await Promise.all([this.run(['-S', '-n']), this.run(['-L', '-n', '--nosort'])]);
    return inListOrder(this.saveParser.parse(save), parseList(list));
  }

  async apply(ops: Operation[]): Promise<void> {
    if (ops.length === 0) return;
    const files = this.files();
    // the batch goes to a fresh file read from offset 0 (pwrite leaves the offset alone);
    // stderr goes to one append-mode file kept open, emptied before each run
    const inFd = openSync(files.batch, 'w+');
    let r: IpvsadmRun;
    try {
      writeSync(inFd, formatBatch(ops), 0, 'utf8');
      ftruncateSync(files.errFd, 0);
      r = await runIpvsadm(this.bin, ['-R'], { fd: inFd }, this.timeoutMs, files.errFd);
    } finally {
      closeSync(inFd);
    }
    const size = fstatSync(files.errFd).size;
    r.stderr = size === 0 ? '' : readErr(files.errFd, size);
    this.lastApplyStderr = r.stderr.trim();
    if (r.stderr.trim()) this.opts.logger.warn({ stderr: r.stderr.trim().split('\n').slice(0, 20), lines: ops.length }, 'ipvsadm -R reported errors');
    if (!succeeded(r)) throw new IpvsadmError(`${this.bin} -R failed (${describe(r)}): ${firstLine(r.stderr)}`, r.stderr, { cause: r.error });
  }

  /** The private temp dir of the restore files (made on first use, removed by close()). */
  private files(): { batch: string; errFd: number } {
    if (!this.tmp) {
      const dir = mkdtempSync(join(tmpdir(), 'vigil-ipvsadm-'));
      this.tmp = { dir, batch: join(dir, 'batch'), errFd: openSync(join(dir, 'stderr'), 'a+') };
    }
    return this.tmp;
  }

  async setRole(role: DataplaneRole): Promise<void> {
    const sync = this.opts.syncDaemon;
    if (!sync) return;
    const want: SyncState = role === 'active' ? 'master' : 'backup';
    if (want === this.syncState) return;
    if (this.syncState !== 'none') {
      await this.syncCommand(['--stop-daemon', this.syncState], 'No daemon is running');
      this.syncState = 'none';
      this.setSyncMetric();
    }
    await this.syncCommand(['--start-daemon', want, '--mcast-interface', sync.interface, '--syncid', String(sync.syncId)], 'Daemon has already run');
    this.syncState = want;
    this.setSyncMetric();
    this.opts.logger.info({ state: want, interface: sync.interface, syncId: sync.syncId }, 'IPVS sync daemon started');
  }

  /** The sync daemon state in force (for status and tests). */
  syncDaemonState(): SyncState {
    return this.syncState;
  }

  async counters(): Promise<Map<string, Map<string, RealServerCounters>>> {
    const [plain, stats, rate] = await Promise.all([
      this.run(['-L', '-n', '--exact']),
      this.run(['-L', '-n', '--stats', '--exact']),
      this.run(['-L', '-n', '--rate', '--exact']),
    ]);
    const p = parseList(plain);
    const s = parseList(stats);
    const r = parseList(rate);
    const out = new Map<string, Map<string, RealServerCounters>>();
    for (const [key, servers] of p) {
      const m = new Map<string, RealServerCounters>();
      for (const [id, cols] of servers) {
        const st = s.get(key)?.get(id) ?? [];
        const rt = r.get(key)?.get(id) ?? [];
        m.set(id, {
          active: cols[1] ?? 0,
          inactive: cols[2] ?? 0,
          connections: st[0] ?? 0,
          packetsIn: st[1] ?? 0,
          packetsOut: st[2] ?? 0,
          bytesIn: st[3] ?? 0,
          bytesOut: st[4] ?? 0,
          cps: rt[0] ?? 0,
          bpsIn: rt[3] ?? 0,
          bpsOut: rt[4] ?? 0,
        });
      }
      out.set(key, m);
    }
    return out;
  }

  private async run(args: string[]): Promise<string> {
    const r = await runIpvsadm(this.bin, args, undefined, this.timeoutMs);
    if (!succeeded(r)) throw new IpvsadmError(`${this.bin} ${args.join(' ')} failed (${describe(r)}): ${firstLine(r.stderr)}`, r.stderr, { cause: r.error });
    return r.stdout;
  }

  /** Runs a sync daemon command; `alreadyDone` on stderr counts as success (idempotent). */
  private async syncCommand(args: string[], alreadyDone: string): Promise<void> {
    const r = await runIpvsadm(this.bin, args, undefined, this.timeoutMs);
    if (succeeded(r) || (r.code !== null && r.stderr.includes(alreadyDone))) return;
    throw new IpvsadmError(`${this.bin} ${args.join(' ')} failed (${describe(r)}): ${firstLine(r.stderr)}`, r.stderr, { cause: r.error });
  }

  private setSyncMetric(): void {
    const g = this.opts.metrics?.ipvsSyncDaemon;
    if (!g) return;
    for (const s of ['master', 'backup', 'none'] as const) g.set({ state: s }, s === this.syncState ? 1 : 0);
  }
}

export interface IpvsadmRun {
  /** Exit code, or null when it was killed or never ran. */
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** Set when the binary could not be spawned (missing, not executable). */
  error?: Error;
  stdout: string;
  stderr: string;
}

const succeeded = (r: IpvsadmRun): boolean => r.code === 0 && !r.timedOut && !r.error;

function describe(r: IpvsadmRun): string {
  if (r.error) return `cannot run: ${r.error.message}`;
  if (r.timedOut) return 'timed out';
  return r.code !== null ? `exit ${r.code}` : `signal ${r.signal}`;
}

/**
 * Runs ipvsadm once; never rejects; KILLs it after timeoutMs. stdin: a string, an open
 * file (`{ fd }`) or nothing; stdout and stderr are collected, unless `stderrFd` takes
 * stderr (a restore: the caller reads that file; stdout, which -R leaves empty, is dropped).
 */
export function runIpvsadm(bin: string, args: readonly string[], input: string | { fd: number } | undefined, timeoutMs: number, stderrFd?: number): Promise<IpvsadmRun> {
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let spawnError: Error | undefined;
    const stdin = input === undefined ? 'ignore' : typeof input === 'string' ? 'pipe' : input.fd;
    const child = spawn(bin, args, { stdio: [stdin, stderrFd === undefined ? 'pipe' : 'ignore', stderrFd ?? 'pipe'] });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => (spawnError = e));
    child.stdin?.on('error', () => undefined); // ipvsadm exited before reading everything: its exit status says why
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const r: IpvsadmRun = { code, signal, timedOut, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
      if (spawnError) r.error = spawnError;
      resolve(r);
    });
    if (typeof input === 'string') child.stdin?.end(input);
  });
}

function readErr(fd: number, size: number): string {
  const buf = Buffer.alloc(Math.min(size, 1 << 20)); // a batch of failing lines prints a line each; 1 MiB is plenty
  const n = readSync(fd, buf, 0, buf.length, 0);
  return buf.toString('utf8', 0, n);
}

function firstLine(s: string): string {
  return s.split('\n').find((l) => l.trim() !== '')?.trim() ?? '';
}
