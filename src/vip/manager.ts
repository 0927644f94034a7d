/**
 * VIP ownership on this node: the takeover sequence (add every managed VIP, then a burst
 * of gratuitous ARPs, a repeat burst `repeat_after_ms` later, an optional periodic
 * refresh), the release (remove them, in reverse order), and the stale-VIP cleanup a
 * standby does at start. `managed: false` VIPs are never touched, only reported as owned
 * while this node is active. Errors are logged and counted, never thrown to the caller:
 * one failed `ip` command must not turn into a failover storm.
 */
import type { VipConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { VipPort, VipSpec } from './port.js';

export function vipSpec(v: VipConfig): VipSpec {
  const fallback = `${v.interface}:vigil`;
  return {
    address: v.address,
    prefix: v.prefix,
    interface: v.interface,
    label: v.label ?? (fallback.length <= 15 ? fallback : undefined),
  };
}

export interface VipManagerOptions {
  port: VipPort;
  vips: VipConfig[];
  logger: Logger;
  metrics: Metrics;
}

export class VipManager {
  private vips: VipConfig[];
  private readonly port: VipPort;
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  private active = false;
  private readonly owned = new Set<string>();
  private timers = new Set<NodeJS.Timeout>();
  private refresh: NodeJS.Timeout | undefined;
  private readonly inflight = new Set<Promise<unknown>>();
  private armed = false;
  /** A successor holds the VIPs: no more GARPs from here, though the addresses stay until release(). */
  private silenced = false;

  constructor(opts: VipManagerOptions) {
    this.port = opts.port;
    this.vips = opts.vips;
    this.logger = opts.logger;
    this.metrics = opts.metrics;
  }

  /** True while this node holds the VIP (managed: configured by us; unmanaged: while active). */
  isOwned(address: string): boolean {
    const v = this.vips.find((x) => x.address === address);
    if (!v) return false;
    return v.managed ? this.owned.has(address) : this.active;
  }

  list(): VipConfig[] {
    return this.vips;
  }

  /**
   * Has the port hold the takeover's commands ready (VipPort.prepare): the node that may
   * take over (the cluster process) calls it once it runs; a reload keeps it current.
   */
  arm(): void {
    this.armed = true;
    this.port.prepare?.(this.vips.filter((v) => v.managed).map(vipSpec));
  }

  /**
   * Whether a takeover now would start no process: no managed VIP, or arm() ran and the
   * port's co-processes (or armed shells) are up.
   */
  takeoverReady(): boolean {
    if (!this.vips.some((v) => v.managed)) return true;
    return this.armed && (this.port.ready?.() ?? true);
  }

  /** Adds every managed VIP (in order) and starts the GARP schedule. */
  async acquire(): Promise<void> {
    this.active = true;
    this.silenced = false;
    for (const v of this.vips) {
      await this.addOne(v);
      this.garpBurstOne(v); // announce each VIP as soon as it exists, not after the last one
    }
    this.publish();
    const repeat = Math.max(0, ...this.vips.filter((v) => v.managed).map((v) => v.garp.repeat_after_ms));
    for (const v of this.vips) {
      if (!v.managed || v.garp.repeat_after_ms <= 0) continue;
      this.after(v.garp.repeat_after_ms, () => this.garpOne(v));
    }
    this.startRefresh();
    if (repeat > 0) this.logger.debug({ repeatAfterMs: repeat }, 'GARP repeat scheduled');
  }

  /**
   * Stops this node's GARPs at once and keeps the addresses: a successor has taken the
   * VIPs (make-before-break) and announced them, and one more GARP from here — the
   * repeat burst of a recent takeover, or the refresh — would point the clients back at
   * this node for the rest of the overlap (bench:failover saw it: answers from both
   * directors alternately). release() removes the addresses; acquire() ends the silence.
   */
  silence(): void {
    this.silenced = true;
    this.cancelTimers();
  }

  /** Stops GARPs and removes every managed VIP, in reverse order. */
  async release(): Promise<void> {
    this.active = false;
    this.cancelTimers();
    for (const v of [...this.vips].reverse()) {
      if (!v.managed) continue;
      try {
        const r = await this.port.del(vipSpec(v));
        this.owned.delete(v.address);
        this.logger.info({ vip: v.address, interface: v.interface, result: r }, 'VIP removed');
      } catch (err) {
        this.metrics.vipErrors.inc({ address: v.address, op: 'del' });
        this.logger.error({ err, vip: v.address, interface: v.interface }, 'cannot remove VIP');
      }
    }
    this.publish();
  }

  /** A fresh GARP burst for every owned VIP (after a healed split brain). */
  regarp(reason: string): void {
    if (!this.active) return;
    this.garpBurst(reason);
  }

  /** At start, on a node that is not active: remove managed VIPs left over from a crash. */
  async removeStale(): Promise<string[]> {
    const removed: string[] = [];
    for (const v of this.vips) {
      if (!v.managed) continue;
      try {
        if (await this.port.has(vipSpec(v))) {
          await this.port.del(vipSpec(v));
          removed.push(v.address);
          this.logger.warn({ vip: v.address, interface: v.interface }, 'removed a stale VIP found on this node at start');
        }
      } catch (err) {
        this.metrics.vipErrors.inc({ address: v.address, op: 'del' });
        this.logger.error({ err, vip: v.address }, 'cannot check or remove a stale VIP');
      }
    }
    return removed;
  }

  /** Reload: while active, add VIPs that appeared and remove those that went away. */
  async update(next: VipConfig[]): Promise<void> {
    const prev = this.vips;
    this.vips = next;
    if (this.armed) this.arm();
    const same = (a: VipConfig, b: VipConfig): boolean =>
      a.address === b.address && a.prefix === b.prefix && a.interface === b.interface && a.managed === b.managed && a.label === b.label;
    if (!this.active) {
      this.publish();
      return;
    }
    for (const old of prev) {
      if (old.managed && !next.some((n) => same(n, old))) {
        try {
          await this.port.del(vipSpec(old));
          this.owned.delete(old.address);
        } catch (err) {
          this.metrics.vipErrors.inc({ address: old.address, op: 'del' });
          this.logger.error({ err, vip: old.address }, 'cannot remove a VIP dropped from the config');
        }
      }
    }
    for (const v of next) {
      if (v.managed && !prev.some((o) => same(o, v))) {
        await this.addOne(v);
        this.garpOne(v);
      }
    }
    this.cancelRefresh();
    this.startRefresh();
    this.publish();
  }

  /**
   * Cancels the GARP schedule and waits for the arpings in flight (each lasts about a
   * second), at most `maxWaitMs`: they finish on their own. Leaves the addresses as they are.
   */
  async close(maxWaitMs = Infinity): Promise<void> {
    this.cancelTimers();
    if (this.armed) this.port.close?.();
    this.armed = false;
    let timer: NodeJS.Timeout | undefined;
    const bound = maxWaitMs === Infinity ? new Promise<void>(() => undefined) : new Promise<void>((r) => (timer = setTimeout(r, maxWaitMs)));
    await Promise.race([Promise.allSettled([...this.inflight]), bound]);
    clearTimeout(timer);
  }

  private async addOne(v: VipConfig): Promise<void> {
    if (!v.managed) return;
    try {
      const r = await this.port.add(vipSpec(v));
      this.owned.add(v.address);
      this.logger.info({ vip: `${v.address}/${v.prefix}`, interface: v.interface, result: r }, 'VIP added');
    } catch (err) {
      this.metrics.vipErrors.inc({ address: v.address, op: 'add' });
      this.logger.error({ err, vip: v.address, interface: v.interface }, 'cannot add VIP');
    }
  }

  private publish(): void {
    this.metrics.vipOwned.reset();
    for (const v of this.vips) this.metrics.vipOwned.set({ address: v.address, interface: v.interface }, this.isOwned(v.address) ? 1 : 0);
  }

  private garpBurst(reason: string): void {
    for (const v of this.vips) this.garpBurstOne(v);
    this.logger.debug({ reason }, 'GARP burst');
  }

  private garpBurstOne(v: VipConfig): void {
    if (!v.managed || !this.owned.has(v.address)) return;
    for (let i = 0; i < v.garp.count; i++) {
      // -U (unsolicited request) and -A (reply) alternate: some devices honour only one
      const mode = i % 2 === 0 ? 'U' : 'A';
      if (i === 0) this.garpOne(v, mode);
      else this.after(i * v.garp.interval_ms, () => this.garpOne(v, mode));
    }
  }

  private garpOne(v: VipConfig, mode: 'U' | 'A' = 'U'): void {
    if (!this.active || this.silenced || !this.owned.has(v.address)) return;
    const p = this.port.garp(vipSpec(v), mode).then(
      (sent) => {
        if (sent) this.metrics.garpSent.inc({ address: v.address });
      },
      (err: unknown) => {
        this.metrics.vipErrors.inc({ address: v.address, op: 'garp' });
        this.logger.warn({ err, vip: v.address }, 'gratuitous ARP failed');
      },
    );
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  private after(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    t.unref();
    this.timers.add(t);
  }

  private startRefresh(): void {
    const periods = this.vips.filter((v) => v.managed && v.garp.refresh_ms > 0).map((v) => v.garp.refresh_ms);
    if (periods.length === 0 || !this.active) return;
    const every = Math.min(...periods);
    this.refresh = setInterval(() => {
      for (const v of this.vips) if (v.managed && v.garp.refresh_ms > 0) this.garpOne(v);
    }, every);
    this.refresh.unref();
  }

  private cancelRefresh(): void {
    if (this.refresh) clearInterval(this.refresh);
    this.refresh = undefined;
  }

  private cancelTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.cancelRefresh();
  }
}
