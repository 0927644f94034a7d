/**
 * VipPort: the one place that touches the kernel's addresses. One method per operation,
 * each idempotent ("already there" on add and "already gone" on delete are success),
 * with the real implementation (iproute2 `ip`, iputils `arping`) and a recording fake
 * beside it for unit tests of the logic above.
 */
import { writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import { VigilError } from '../errors.js';
import { ArmedCommands } from './armed.js';
import { GarpSender } from './garp-sender.js';
import { IpBatch } from './ip-batch.js';

export interface VipSpec {
  address: string;
  prefix: number;
  interface: string;
  /** `ip addr ... label`; IPv4 only (ignored for IPv6). */
  label?: string | undefined;
}

export interface VipPort {
  /** `ip addr add`; 'present' when the address was already configured. */
  add(v: VipSpec): Promise<'added' | 'present'>;
  /** `ip addr del`; 'absent' when it was not configured. */
  del(v: VipSpec): Promise<'removed' | 'absent'>;
  /** True when the address is configured on the interface. */
  has(v: VipSpec): Promise<boolean>;
  /** Sends one gratuitous ARP (`mode` U: unsolicited request, A: reply); false when not sent. */
  garp(v: VipSpec, mode: 'U' | 'A'): Promise<boolean>;
  /**
   * Optional: hold what a takeover of these VIPs runs ready (the add and the first GARP of
   * each), so that acquiring them costs no process spawn. Replaces the previous set.
   */
  prepare?(vips: readonly VipSpec[]): void;
  /**
   * Optional: whether what prepare() set up is running, so that a takeover now would
   * start no process (absent: always true).
   */
  ready?(): boolean;
  /** Optional: drop whatever prepare() holds. */
  close?(): void;
}

export class VipError extends VigilError {
  constructor(message: string, options?: ErrorOptions) {
    super('VIGIL_VIP_FAILED', message, 500, options);
    this.name = 'VipError';
  }
}

const isV6 = (a: string): boolean => a.includes(':');

export interface IpVipPortOptions {
  /** Run inside this network namespace (`ip -n NS`, `ip netns exec NS arping`). Tests use it. */
  netns?: string;
  ip?: string;
  arping?: string;
  sysctl?: string;
  timeoutMs?: number;
  /** How many first GARPs prepare() keeps armed (default 16 VIPs) while the GARP helper is not running. */
  armedLimit?: number;
  /** The perl that runs the GARP helper (garp-sender.ts); default `perl`. */
  perl?: string;
}

/** The real port: iproute2 and iputils-arping through execa. */
export class IpVipPort implements VipPort {
  private readonly ip: string;
  private readonly arping: string;
  private readonly sysctl: string;
  private readonly timeoutMs: number;
  /** Interfaces already set up for IPv6 VIPs (prepareV6). */
  private readonly v6Ready = new Set<string>();
  /** The takeover's first GARPs, started ahead and held (armed.ts); used by run() when they match. */
  private readonly armed: ArmedCommands;
  private readonly armedLimit: number;
  /** Adds and removals through one long-lived `ip -batch` once prepare() ran (ip-batch.ts). */
  private batch: IpBatch | undefined;
  /** GARPs from one long-lived helper holding a packet socket once prepare() ran (garp-sender.ts). */
  private garps: GarpSender | undefined;
  /** The first GARP of each IPv4 VIP of the last prepare(): armed while the helper is not usable. */
  private garpLines: Array<{ file: string; args: string[] }> = [];

  constructor(private readonly opts: IpVipPortOptions = {}) {
    this.ip = opts.ip ?? 'ip';
    this.arping = opts.arping ?? 'arping';
    this.sysctl = opts.sysctl ?? 'sysctl';
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.armedLimit = opts.armedLimit ?? 16;
    this.armed = new ArmedCommands(this.armedLimit);
  }

  /**
   * Starts the `ip -batch` co-process and the GARP helper; while the helper is not usable
   * (perl missing, starting, died), the first GARP of each IPv4 VIP is armed instead.
   */
  prepare(vips: readonly VipSpec[]): void {
    if (vips.length > 0) {
      this.batch ??= new IpBatch(this.ip, this.opts.netns ? ['-n', this.opts.netns] : [], this.timeoutMs);
      this.batch.start();
    }
    const v4 = vips.filter((v) => !isV6(v.address));
    this.garpLines = v4.map((v) => this.garpLine(v, 'U'));
    if (v4.length > 0) {
      this.garps ??= new GarpSender(this.opts.perl ?? 'perl', this.opts.netns ? [this.ip, 'netns', 'exec', this.opts.netns] : [], Math.min(this.timeoutMs, 1000), (usable) =>
        this.armed.want(usable ? [] : this.garpLines),
      );
      this.garps.start();
    }
    this.armed.want(this.garps?.usable ? [] : this.garpLines);
  }

  /** The `ip -batch` co-process runs and the first GARPs go through the helper or armed shells. */
  ready(): boolean {
    const batch = this.batch === undefined || this.batch.usable;
    const garp = this.garpLines.length === 0 || (this.garps?.usable ?? false) || this.armed.size >= Math.min(this.garpLines.length, this.armedLimit);
    return batch && garp;
  }

  close(): void {
    this.armed.close();
    this.batch?.close();
    this.garps?.close();
  }

  /** Whether adds and removals go through the long-lived `ip -batch` now. */
  get batchRunning(): boolean {
    return this.batch?.usable ?? false;
  }

  /** Whether GARPs go through the long-lived helper now (no process start per GARP). */
  get garpHelperRunning(): boolean {
    return this.garps?.usable ?? false;
  }

  /** An `ip addr` change: through the co-process when it runs, else a spawned `ip`. */
  private async ipChange(args: string[]): Promise<{ code: number; stderr: string }> {
    if (this.batch?.usable) {
      try {
        return await this.batch.run(args);
      } catch {
        // the co-process died or hung (it restarts by itself): this one goes the ordinary way
      }
    }
    return this.run(this.ip, this.ipArgs(args));
  }

  /** Armed command lines ready to fire (tests, metrics). */
  get armedCount(): number {
    return this.armed.size;
  }

  private ipArgs(args: string[]): string[] {
    return this.opts.netns ? ['-n', this.opts.netns, ...args] : args;
  }

  private async run(file: string, args: string[]) {
    const armed = this.armed.take(file, args);
    if (armed) {
      try {
        return await armed.fire(`${file} ${args.join(' ')}`, this.timeoutMs);
      } catch (err) {
        throw new VipError((err as Error).message, { cause: err });
      }
    }
    // cleanup: false — no signal-exit handlers: the daemon's own SIGTERM handling releases the VIPs
    const r = await execa(file, args, { reject: false, timeout: this.timeoutMs, stdin: 'ignore', cleanup: false });
    if (r.failed && r.exitCode === undefined) {
      throw new VipError(`${file} ${args.join(' ')}: ${r.timedOut ? `timed out after ${this.timeoutMs} ms` : r.shortMessage}`);
    }
    return { code: r.exitCode ?? 1, stderr: String(r.stderr ?? '').trim(), stdout: String(r.stdout ?? '') };
  }

  private addrArgs(v: VipSpec, op: 'add' | 'del'): string[] {
    const a = ['addr', op, `${v.address}/${v.prefix}`, 'dev', v.interface];
    if (op === 'add' && v.label && !isV6(v.address)) a.push('label', v.label);
    return a;
  }

  async add(v: VipSpec): Promise<'added' | 'present'> {
    if (isV6(v.address)) await this.prepareV6(v.interface);
    const r = await this.ipChange(this.addrArgs(v, 'add'));
    if (r.code === 0) return 'added';
    if (/File exists|already assigned/i.test(r.stderr)) return 'present';
    throw new VipError(`ip addr add ${v.address}/${v.prefix} dev ${v.interface}: ${r.stderr || `exit ${r.code}`}`);
  }

  /**
   * IPv6 VIPs: the interface gets accept_dad=0 and ndisc_notify=1 before the first one is
   * added. Then an added address is usable at once and the kernel sends one unsolicited
   * neighbour advertisement with the override flag, which moves the neighbours' entries
   * for the VIP to this director's MAC (the IPv6 gratuitous ARP). Measured in network
   * namespaces: with duplicate address detection the VIP stays tentative (answers
   * nothing) for about a second, and would fail for good if the old active still holds
   * it; `nodad` skips the detection but then the kernel sends no advertisement at all;
   * without ndisc_notify neither does. Done once per interface and process.
   */
  private async prepareV6(ifname: string): Promise<void> {
    if (this.v6Ready.has(ifname)) return;
    const settings = [`net/ipv6/conf/${ifname}/accept_dad=0`, `net/ipv6/conf/${ifname}/ndisc_notify=1`];
    if (this.opts.netns) {
      // another namespace's /proc/sys is only reachable from inside it (tests)
      const r = await this.run(this.ip, ['netns', 'exec', this.opts.netns, this.sysctl, '-q', '-w', ...settings]);
      if (r.code !== 0) throw new VipError(`sysctl ${settings.join(' ')}: ${r.stderr.split('\n')[0] || `exit ${r.code}`}`);
    } else {
      // written directly: no process on the takeover path, and no dependency on procps
      for (const kv of settings) {
        const [key, value] = kv.split('=') as [string, string];
        try {
          await writeFile(`/proc/sys/${key}`, value);
        } catch (err) {
          throw new VipError(`cannot set ${key.replaceAll('/', '.')}=${value} for IPv6 VIPs on ${ifname}: ${(err as Error).message}`, { cause: err });
        }
      }
    }
    this.v6Ready.add(ifname);
  }

  async del(v: VipSpec): Promise<'removed' | 'absent'> {
    const r = await this.ipChange(this.addrArgs(v, 'del'));
    if (r.code === 0) return 'removed';
    if (/Cannot assign requested address|not found|No such address/i.test(r.stderr)) return 'absent';
    throw new VipError(`ip addr del ${v.address}/${v.prefix} dev ${v.interface}: ${r.stderr || `exit ${r.code}`}`);
  }

  async has(v: VipSpec): Promise<boolean> {
    const r = await this.run(this.ip, this.ipArgs(['-j', 'addr', 'show', 'dev', v.interface]));
    if (r.code !== 0) {
      if (/does not exist|Cannot find device/i.test(r.stderr)) return false;
      throw new VipError(`ip addr show dev ${v.interface}: ${r.stderr || `exit ${r.code}`}`);
    }
    try {
      const links = JSON.parse(r.stdout) as { addr_info?: { local?: string; prefixlen?: number }[] }[];
      return links.some((l) => (l.addr_info ?? []).some((a) => a.local === v.address && a.prefixlen === v.prefix));
    } catch (err) {
      throw new VipError(`ip -j addr show dev ${v.interface}: unreadable output`, { cause: err });
    }
  }

  private garpLine(v: VipSpec, mode: 'U' | 'A'): { file: string; args: string[] } {
    const args = [`-${mode}`, '-c', '1', '-I', v.interface, v.address];
    return this.opts.netns ? { file: this.ip, args: ['netns', 'exec', this.opts.netns, this.arping, ...args] } : { file: this.arping, args };
  }

  async garp(v: VipSpec, mode: 'U' | 'A'): Promise<boolean> {
    if (isV6(v.address)) return false; // IPv6 has no ARP: the kernel advertised it at add (see prepareV6)
    if (this.garps?.usable) {
      try {
        await this.garps.send(mode, v.interface, v.address);
        return true;
      } catch {
        // the helper could not (it restarts by itself if it died): arping says why, or sends it
      }
    }
    const line = this.garpLine(v, mode);
    const r = await this.run(line.file, line.args);
    if (r.code !== 0) throw new VipError(`arping -${mode} -I ${v.interface} ${v.address}: ${r.stderr.split('\n')[0] || `exit ${r.code}`}`);
    return true;
  }
}

export type VipCall = { op: 'add' | 'del' | 'has' | 'garp'; address: string; interface: string; mode?: 'U' | 'A' };

/** The recording fake: keeps a set of configured addresses; optional failures by op. */
export class RecordingVipPort implements VipPort {
  readonly calls: VipCall[] = [];
  readonly configured = new Set<string>();
  fail: Partial<Record<VipCall['op'], string>> = {};
  /** The addresses of the last prepare() (null: never prepared, or closed). */
  prepared: string[] | null = null;

  /** Tests set it: what ready() answers once prepared. */
  readyAnswer = true;

  ready(): boolean {
    return this.prepared !== null && this.readyAnswer;
  }

  prepare(vips: readonly VipSpec[]): void {
    this.prepared = vips.map((v) => v.address);
  }
  close(): void {
    this.prepared = null;
  }

  private key(v: VipSpec): string {
    return `${v.address}/${v.prefix}@${v.interface}`;
  }
  private check(op: VipCall['op']): void {
    const msg = this.fail[op];
    if (msg) throw new VipError(msg);
  }

  async add(v: VipSpec): Promise<'added' | 'present'> {
    this.calls.push({ op: 'add', address: v.address, interface: v.interface });
    this.check('add');
    if (this.configured.has(this.key(v))) return 'present';
    this.configured.add(this.key(v));
    return 'added';
  }
  async del(v: VipSpec): Promise<'removed' | 'absent'> {
    this.calls.push({ op: 'del', address: v.address, interface: v.interface });
    this.check('del');
    return this.configured.delete(this.key(v)) ? 'removed' : 'absent';
  }
  async has(v: VipSpec): Promise<boolean> {
    this.calls.push({ op: 'has', address: v.address, interface: v.interface });
    this.check('has');
    return this.configured.has(this.key(v));
  }
  async garp(v: VipSpec, mode: 'U' | 'A'): Promise<boolean> {
    this.calls.push({ op: 'garp', address: v.address, interface: v.interface, mode });
    this.check('garp');
    return true;
  }
}
