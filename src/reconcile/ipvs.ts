/**
 * The IPVS dataplane: the kernel's table through ipvsadm (execa).
 *
 *   read()      ipvsadm -S -n                     → parseSave
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
 */
import { execa } from 'execa';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { VigilError } from '../errors.js';
import { formatBatch, parseList, parseSave } from './ipvsadm.js';
import type { Dataplane, DataplaneRole, Operation, RealServerCounters, Table } from './table.js';

export interface IpvsDataplaneOptions {
  /** The ipvsadm binary (dataplane.ipvs.ipvsadm). */
  ipvsadm?: string;
  /** IPVS connection sync daemon: master while active, backup otherwise. */
  syncDaemon?: { interface: string; syncId: number } | undefined;
  logger: Logger;
  metrics?: Metrics;
  /** Kill an ipvsadm run after this long (a 10,000-line restore takes ~15 s under emulation). */
  timeoutMs?: number;
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
  private readonly bin: string;
  private readonly timeoutMs: number;
  private syncState: SyncState = 'none';
  private started = false;
  /** The last stderr of `ipvsadm -R` (error lines of a batch; for logs and tests). */
  lastApplyStderr = '';

  constructor(private readonly opts: IpvsDataplaneOptions) {
    this.bin = opts.ipvsadm ?? 'ipvsadm';
    this.timeoutMs = opts.timeoutMs ?? 120_000;
  }

  async start(): Promise<void> {
    if (this.started) return;
    await this.read(); // fails loudly when ipvsadm or the kernel module is missing
    this.started = true;
    this.setSyncMetric();
  }

  async close(): Promise<void> {
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
    return parseSave(await this.run(['-S', '-n']));
  }

  async apply(ops: Operation[]): Promise<void> {
    if (ops.length === 0) return;
    const input = formatBatch(ops);
    let r;
    try {
      r = await execa(this.bin, ['-R'], { input, reject: false, timeout: this.timeoutMs, stripFinalNewline: true });
    } catch (err) {
      throw new IpvsadmError(`cannot run ${this.bin} -R: ${(err as Error).message}`, '', { cause: err });
    }
    this.lastApplyStderr = r.stderr;
    if (r.stderr) this.opts.logger.warn({ stderr: r.stderr.split('\n').slice(0, 20), lines: ops.length }, 'ipvsadm -R reported errors');
    if (r.failed) {
      throw new IpvsadmError(`${this.bin} -R failed (${r.timedOut ? 'timed out' : `exit ${r.exitCode ?? r.signal}`}): ${firstLine(r.stderr)}`, r.stderr);
    }
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
    let r;
    try {
      r = await execa(this.bin, args, { reject: false, timeout: this.timeoutMs, stripFinalNewline: false });
    } catch (err) {
      throw new IpvsadmError(`cannot run ${this.bin} ${args.join(' ')}: ${(err as Error).message}`, '', { cause: err });
    }
    if (r.failed) {
      const why = r.timedOut ? 'timed out' : r.exitCode !== undefined ? `exit ${r.exitCode}` : (r.signal ?? r.shortMessage);
      throw new IpvsadmError(`${this.bin} ${args.join(' ')} failed (${why}): ${firstLine(r.stderr) || r.shortMessage}`, r.stderr);
    }
    return r.stdout;
  }

  /** Runs a sync daemon command; `alreadyDone` on stderr counts as success (idempotent). */
  private async syncCommand(args: string[], alreadyDone: string): Promise<void> {
    const r = await execa(this.bin, args, { reject: false, timeout: this.timeoutMs });
    if (!r.failed || r.stderr.includes(alreadyDone)) return;
    throw new IpvsadmError(`${this.bin} ${args.join(' ')} failed: ${firstLine(r.stderr) || r.shortMessage}`, r.stderr);
  }

  private setSyncMetric(): void {
    const g = this.opts.metrics?.ipvsSyncDaemon;
    if (!g) return;
    for (const s of ['master', 'backup', 'none'] as const) g.set({ state: s }, s === this.syncState ? 1 : 0);
  }
}

function firstLine(s: string): string {
  return s.split('\n').find((l) => l.trim() !== '')?.trim() ?? '';
}
