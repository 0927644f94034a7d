/**
 * The ECMP announcer (cluster.mode ecmp): keeps the local BIRD announcing exactly the
 * VIPs this director can serve. The decision is decide() (decide.ts, pure); this class
 * is the edge around it:
 *
 *   start ─► VIPs on ecmp.vip_interface (lo / dummy, no ARP), include file empty, configure
 *   request() (reconciled table, control, timer) ─► decide() ─► changed? ─► write include,
 *                                                                   birdc configure
 *   withdraw (standby, maintenance, stop, reload that removes a VIP)
 *        ─► decide() with the flag set ─► include without the VIP ─► configure
 *        ─► wait ecmp.withdraw_wait_ms (routers converge) ─► only then the caller goes on
 *           (the dataplane stops, the service is deleted)
 *   poll (ecmp.poll_interval_ms) ─► birdc show protocols / show bfd sessions ─► status, metrics;
 *        a failed configure is retried here
 *
 * Evaluations run one at a time (a promise chain), so the file and BIRD see one order.
 */
import type { Config, EcmpConfig } from '../config/schema.js';
import { canonicalIp } from '../config/validate.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Table } from '../reconcile/table.js';
import type { VipPort, VipSpec } from '../vip/port.js';
import { bgpUp, renderInclude, type BfdSession, type BirdProtocol } from './bird.js';
import { RELOAD_WITHDRAW_REASON, decide, sameAnnounced, vipServices, type DirectorState, type VipDecision } from './decide.js';

/** What the announcer needs from BIRD (BirdControl + writeAtomic in production, a recorder in tests). */
export interface BirdPort {
  writeInclude(file: string, text: string): void;
  configure(): Promise<void>;
  protocols(): Promise<BirdProtocol[]>;
  bfdSessions(): Promise<BfdSession[]>;
}

export interface EcmpVipStatus {
  address: string;
  announced: boolean;
  reason: string;
  /** ISO time of the last change of `announced`. */
  since: string;
}

export interface EcmpStatus {
  mode: 'ecmp';
  vipInterface: string;
  /** The last `birdc configure` failed (the routes may not match the decision); null when it succeeded. */
  birdError: string | null;
  vips: EcmpVipStatus[];
  /** BGP protocols as BIRD reports them; `up` = Established. */
  bgp: Array<{ name: string; state: string; info: string; up: boolean }>;
  bfd: Array<{ address: string; interface: string; state: string }>;
}

export interface AnnouncerDeps {
  config: () => Config;
  bird: BirdPort;
  vipPort: VipPort;
  /** The desired table last applied by the reconciler (undefined before the first). */
  table: () => Table | undefined;
  dataplaneReady: () => boolean;
  logger: Logger;
  metrics: Metrics;
  sleep?: (ms: number) => Promise<void>;
  /** Wall clock for `since` (display only). */
  wallClock?: () => Date;
  /** Called after every include file BIRD accepted (the announced set may have changed). */
  onApplied?: () => void;
}

const defaultSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class EcmpAnnouncer {
  readonly name = 'ecmp';
  private state: DirectorState = { stopping: false, maintenance: false, standby: false, dataplaneReady: false };
  private applied: VipDecision[] = [];
  private decisions: VipDecision[] = [];
  private since = new Map<string, string>();
  /** VIPs a reload is about to remove: withdrawn before the dataplane forgets them. */
  private removing = new Set<string>();
  private dirty = true;
  private birdError: string | null = null;
  private protocols: BirdProtocol[] = [];
  private sessions: BfdSession[] = [];
  private chain: Promise<unknown> = Promise.resolve();
  private pollTimer: NodeJS.Timeout | undefined;
  private started = false;
  private closed = false;
  /** VIP specs currently configured on the VIP interface by this announcer. */
  private onInterface = new Map<string, VipSpec>();
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly m: { announced: Metrics['ecmpVipAnnounced']; changes: Metrics['ecmpAnnounceChanges']; configure: Metrics['ecmpConfigure']; configureFailures: Metrics['ecmpConfigureFailures']; birdUp: Metrics['ecmpBirdUp']; bgpUp: Metrics['ecmpBgpUp']; bfdUp: Metrics['ecmpBfdUp'] };

  constructor(private readonly deps: AnnouncerDeps) {
    this.sleep = deps.sleep ?? defaultSleep;
    const m = deps.metrics;
    this.m = {
      announced: m.ecmpVipAnnounced,
      changes: m.ecmpAnnounceChanges,
      configure: m.ecmpConfigure,
      configureFailures: m.ecmpConfigureFailures,
      birdUp: m.ecmpBirdUp,
      bgpUp: m.ecmpBgpUp,
      bfdUp: m.ecmpBfdUp,
    };
  }

  private get ecmp(): EcmpConfig {
    return this.deps.config().cluster.ecmp;
  }

  /** VIPs on the interface, include file written with nothing announced, poll started. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.syncInterface(this.deps.config());
    await this.enqueue(() => this.apply([], true));
    this.pollTimer = setInterval(() => void this.poll(), this.ecmp.poll_interval_ms);
    this.pollTimer.unref();
    void this.poll();
    await this.request();
  }

  /** Re-decides (after a reconcile, a control command, a poll); resolves when applied. */
  request(): Promise<VipDecision[]> {
    return this.enqueue(() => this.evaluate());
  }

  /** `vigil standby` (on) / `vigil takeover` (off): withdraw every VIP, or announce again. */
  async setStandby(on: boolean): Promise<string> {
    return this.setFlag('standby', on);
  }

  async setMaintenance(on: boolean): Promise<string> {
    return this.setFlag('maintenance', on);
  }

  private async setFlag(flag: 'standby' | 'maintenance', on: boolean): Promise<string> {
    this.state = { ...this.state, [flag]: on };
    const withdrawn = await this.withdrawAndWait(() => this.evaluate());
    const announced = this.decisions.filter((d) => d.announce).length;
    return on
      ? `${flag}: ${withdrawn} VIP(s) withdrawn${withdrawn > 0 ? ` (waited ${this.ecmp.withdraw_wait_ms} ms for the routers)` : ''}`
      : `${flag} off: ${announced} of ${this.decisions.length} VIP(s) announced`;
  }

  /**
   * Before a reload is applied: withdraws the VIPs the new config no longer has and waits
   * for the routers, so the dataplane deletes their services only once no traffic comes.
   */
  async beforeReload(next: Config): Promise<void> {
    const keep = new Set(next.vips.map((v) => canonicalIp(v.address)));
    const gone = this.deps.config().vips.filter((v) => !keep.has(canonicalIp(v.address)));
    if (gone.length === 0) return;
    for (const v of gone) this.removing.add(canonicalIp(v.address));
    await this.withdrawAndWait(() => this.evaluate());
  }

  /** After a reload was applied: VIP interface follows the config, decisions are redone. */
  async afterReload(): Promise<void> {
    this.removing.clear();
    await this.syncInterface(this.deps.config());
    this.dirty = true; // a new VIP list may change the file even if the announced set did not
    await this.request();
  }

  /** SIGTERM / stop: withdraw everything, wait for the routers, then take the VIPs off the interface. */
  async close(): Promise<void> {
    if (this.closed || !this.started) return;
    this.closed = true;
    this.state = { ...this.state, stopping: true };
    await this.withdrawAndWait(() => this.evaluate());
    if (this.pollTimer) clearInterval(this.pollTimer);
    await this.syncInterface(undefined);
  }

  status(): EcmpStatus {
    return {
      mode: 'ecmp',
      vipInterface: this.ecmp.vip_interface,
      birdError: this.birdError,
      vips: this.decisions.map((d) => ({ ...d, announced: this.isApplied(d.address), since: this.since.get(d.address) ?? '' })).map(({ announce: _a, ...rest }) => rest),
      bgp: this.protocols.filter((p) => p.proto === 'BGP').map((p) => ({ name: p.name, state: p.state, info: p.info, up: bgpUp(p) })),
      bfd: this.sessions.map((s) => ({ address: s.address, interface: s.interface, state: s.state })),
    };
  }

  /** How many VIPs BIRD was last told to announce. */
  announcedCount(): number {
    return this.applied.filter((d) => d.announce).length;
  }

  private isApplied(address: string): boolean {
    return this.applied.some((d) => d.address === address && d.announce);
  }

  /** Runs `step`; when it withdrew something that was announced, waits for the routers. Returns how many were withdrawn. */
  private async withdrawAndWait(step: () => Promise<VipDecision[]>): Promise<number> {
    const before = new Set(this.applied.filter((d) => d.announce).map((d) => d.address));
    await this.enqueue(step);
    const withdrawn = [...before].filter((a) => !this.isApplied(a)).length;
    if (withdrawn > 0 && this.ecmp.withdraw_wait_ms > 0) {
      this.deps.logger.info({ withdrawn, waitMs: this.ecmp.withdraw_wait_ms }, 'VIPs withdrawn; waiting for the routers to converge');
      await this.sleep(this.ecmp.withdraw_wait_ms);
    }
    return withdrawn;
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async evaluate(): Promise<VipDecision[]> {
    const config = this.deps.config();
    this.state = { ...this.state, dataplaneReady: this.deps.dataplaneReady() };
    const vips = config.vips.map((v) => ({ address: v.address }));
    let decisions = decide(this.state, vipServices(vips, config.services, this.deps.table()));
    decisions = decisions.map((d) => (this.removing.has(canonicalIp(d.address)) ? { ...d, announce: false, reason: RELOAD_WITHDRAW_REASON } : d));
    for (const d of decisions) {
      const prev = this.decisions.find((x) => x.address === d.address);
      if (!prev || prev.announce !== d.announce || prev.reason !== d.reason) {
        if (prev?.announce !== d.announce) this.m.changes.inc({ vip: d.address, to: d.announce ? 'announced' : 'withdrawn', reason: d.reason });
        if (prev || d.announce) this.deps.logger.info({ vip: d.address, announce: d.announce, reason: d.reason }, d.announce ? 'announcing VIP' : 'VIP withdrawn');
      }
    }
    this.decisions = decisions;
    if (this.dirty || !sameAnnounced(decisions, this.applied)) await this.apply(decisions, false);
    return decisions;
  }

  /** Writes the include file and runs birdc configure; on failure marks dirty (the poll retries). */
  private async apply(decisions: VipDecision[], initial: boolean): Promise<void> {
    const e = this.ecmp;
    const t0 = performance.now();
    try {
      this.deps.bird.writeInclude(e.include_file, renderInclude(e.protocol, decisions.filter((d) => d.announce)));
      await this.deps.bird.configure();
      this.m.configure.observe((performance.now() - t0) / 1000);
      const now = (this.deps.wallClock?.() ?? new Date()).toISOString();
      for (const d of decisions) if (this.isApplied(d.address) !== d.announce || !this.since.has(d.address)) this.since.set(d.address, now);
      this.applied = decisions;
      this.dirty = false;
      if (this.birdError !== null) this.deps.logger.info('birdc configure succeeded again');
      this.birdError = null;
      for (const v of this.deps.config().vips) this.m.announced.set({ vip: v.address }, this.isApplied(v.address) ? 1 : 0);
      this.deps.onApplied?.();
    } catch (err) {
      this.dirty = true;
      this.m.configureFailures.inc();
      const msg = (err as Error).message;
      if (this.birdError !== msg) this.deps.logger.error({ err, initial }, 'cannot update BIRD; retrying at the next poll');
      this.birdError = msg;
      // a withdraw whose configure failed: the route may still be out there; nothing safer to do than retry
    }
  }

  private async poll(): Promise<void> {
    try {
      const [protocols, sessions] = await Promise.all([this.deps.bird.protocols(), this.deps.bird.bfdSessions()]);
      this.protocols = protocols;
      this.sessions = sessions;
      this.m.birdUp.set(1);
      this.m.bgpUp.reset();
      for (const p of protocols) if (p.proto === 'BGP') this.m.bgpUp.set({ protocol: p.name }, bgpUp(p) ? 1 : 0);
      this.m.bfdUp.reset();
      for (const s of sessions) this.m.bfdUp.set({ address: s.address, interface: s.interface }, s.state === 'Up' ? 1 : 0);
    } catch (err) {
      this.m.birdUp.set(0);
      this.protocols = [];
      this.sessions = [];
      this.deps.logger.debug({ err }, 'cannot read BIRD state');
    }
    if (!this.closed && (this.dirty || this.state.dataplaneReady !== this.deps.dataplaneReady())) void this.request();
  }

  /** Puts the config's VIPs (/32, /128) on the VIP interface and removes the ones gone (undefined: all). */
  private async syncInterface(config: Config | undefined): Promise<void> {
    const want = new Map<string, VipSpec>();
    for (const v of config?.vips ?? []) {
      want.set(canonicalIp(v.address), { address: v.address, prefix: v.address.includes(':') ? 128 : 32, interface: config?.cluster.ecmp.vip_interface ?? 'lo' });
    }
    for (const [k, spec] of this.onInterface) {
      const w = want.get(k);
      if (w && w.interface === spec.interface) continue;
      try {
        await this.deps.vipPort.del(spec);
        this.onInterface.delete(k);
      } catch (err) {
        this.deps.logger.error({ err, vip: spec.address }, 'cannot remove the VIP from its interface');
      }
    }
    for (const [k, spec] of want) {
      if (this.onInterface.has(k)) continue;
      try {
        await this.deps.vipPort.add(spec);
        this.onInterface.set(k, spec);
      } catch (err) {
        this.deps.logger.error({ err, vip: spec.address, interface: spec.interface }, 'cannot put the VIP on its interface');
      }
    }
  }
}
