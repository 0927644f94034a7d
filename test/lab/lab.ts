/**
 * The network-namespace lab: a LAN switch, a client, two or three LVS directors and
 * optional real servers, plus a dedicated heartbeat veth between director 1 and 2.
 *
 *   ns <p><id>-sw:  bridge b<id> ── s<id>c ── s<id>d1 ── s<id>d2 [── s<id>d3] [── s<id>r1 ...]
 *                                    │         │          │           │            │
 *   ns <p><id>-c:   l<id> 10.X.0.10  │         │          │           │            │
 *   ns <p><id>-d1:  l<id> 10.X.0.1 ──┘─────────┘          │           │            │
 *                   h<id> 10.X.1.1/30 ═══ dedicated heartbeat veth ═══╗            │
 *   ns <p><id>-d2:  l<id> 10.X.0.2                        h<id> 10.X.1.2/30        │
 *   ns <p><id>-d3:  l<id> 10.X.0.3 (optional)                                      │
 *   ns <p><id>-r1:  l<id> 10.X.0.21 ... (optional real servers) ───────────────────┘
 *
 *   VIP 10.X.0.100/24 (managed by vigil on l<id> of the active director)
 *
 * Every namespace and interface name carries the run id, so parallel runs (other
 * tests, other people) never collide; the bridge lives in its own namespace, so
 * nothing is attached to the root namespace. `destroy()` kills what runs inside and
 * deletes every namespace; it is registered on exit, SIGINT and SIGTERM, and a new lab
 * sweeps namespaces a crashed earlier run left behind.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { deleteNamespaceSync, LabError, nsRun, nsSpawn, run, runDir, sweepStaleNamespaces, type ExecResult } from './netns.js';

export interface LabOptions {
  /** Directors on the LAN (2 or 3); director 1 and 2 also share the heartbeat veth. */
  directors?: 2 | 3;
  /** Real servers on the LAN (default 0). */
  realServers?: number;
  /**
   * Namespace name prefix (default `$VIGIL_LAB_PREFIX`, else `vl`): namespaces are
   * `<prefix><id>-<host>`. A letter, then up to 4 letters or digits; give parallel
   * runners (several people on one machine) different prefixes.
   */
  prefix?: string;
}

export interface Host {
  /** Short role name: `c`, `d1`, `d2`, `d3`, `r1`... */
  name: string;
  ns: string;
  /** LAN interface inside the host's namespace (the same name on every host). */
  lanIf: string;
  lanAddr: string;
}

export interface Director extends Host {
  /** Dedicated heartbeat veth (directors 1 and 2 only). */
  hbIf: string | undefined;
  hbAddr: string | undefined;
}

/** nftables table the lab's loss and partition rules live in (one per namespace). */
const NFT_TABLE = 'vigil_lab';
/** A second table for partitions, so they come and go while the loss rules stay. */
const NFT_PARTITION_TABLE = 'vigil_lab_part';

export class Lab {
  readonly id: string;
  readonly prefix: string;
  /** Per-run directory for configs, keys and logs (deleted by destroy()). */
  readonly dir: string;
  /** Second octet of the run's 10.X.0.0/24 LAN and 10.X.1.0/30 heartbeat subnet. */
  readonly octet: number;
  readonly lanPrefix = 24;
  readonly vip: string;
  readonly switchNs: string;
  readonly bridge: string;
  readonly client: Host;
  readonly directors: Director[];
  readonly realServers: Host[];
  private readonly namespaces: string[] = [];
  private readonly children = new Set<ChildProcess>();
  private destroyed = false;
  private readonly onExit = (): void => this.destroySync();
  private readonly onSignal = (sig: NodeJS.Signals): void => {
    this.destroySync();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  private readonly filtered = new Set<string>();

  private constructor(opts: Required<LabOptions>) {
    this.prefix = opts.prefix;
    this.id = randomBytes(4).readUInt32BE(0).toString(36).padStart(6, '0').slice(-5);
    this.dir = runDir(this.prefix, this.id);
    this.octet = 16 + (randomBytes(1)[0] as number) % 224;
    this.vip = this.addr(0, 100);
    const ns = (h: string): string => `${this.prefix}${this.id}-${h}`;
    const lanIf = `l${this.id}`;
    this.switchNs = ns('sw');
    this.bridge = `b${this.id}`;
    this.client = { name: 'c', ns: ns('c'), lanIf, lanAddr: this.addr(0, 10) };
    this.directors = Array.from({ length: opts.directors }, (_, i) => {
      const name = `d${i + 1}`;
      const hb = i < 2;
      return { name, ns: ns(name), lanIf, lanAddr: this.addr(0, i + 1), hbIf: hb ? `h${this.id}` : undefined, hbAddr: hb ? this.addr(1, i + 1) : undefined };
    });
    this.realServers = Array.from({ length: opts.realServers }, (_, i) => ({ name: `r${i + 1}`, ns: ns(`r${i + 1}`), lanIf, lanAddr: this.addr(0, 21 + i) }));
  }

  /** Builds the topology. Throws LabError (after cleaning up) when a step fails. */
  static async create(options: LabOptions = {}): Promise<Lab> {
    const prefix = options.prefix ?? (process.env.VIGIL_LAB_PREFIX || 'vl');
    const opts: Required<LabOptions> = { directors: options.directors ?? 2, realServers: options.realServers ?? 0, prefix };
    if (opts.directors !== 2 && opts.directors !== 3) throw new LabError('LAB_OPTIONS', `directors must be 2 or 3, not ${String(opts.directors)}`);
    if (!/^[a-z][a-z0-9]{0,4}$/.test(opts.prefix)) {
      throw new LabError('LAB_OPTIONS', `prefix "${opts.prefix}" (VIGIL_LAB_PREFIX or the prefix option) must be a lower-case letter and up to 4 more letters or digits`);
    }
    const startedAt = Date.now();
    const lab = new Lab(opts);
    sweepStaleNamespaces(opts.prefix, startedAt, lab.id);
    mkdirSync(lab.dir, { recursive: true, mode: 0o700 });
    writeFileSync(`${lab.dir}/owner.pid`, `${process.pid}\n`);
    process.once('exit', lab.onExit);
    process.once('SIGINT', lab.onSignal);
    process.once('SIGTERM', lab.onSignal);
    try {
      await lab.build();
    } catch (err) {
      lab.destroySync();
      throw err;
    }
    return lab;
  }

  /** `10.X.<third>.<fourth>` of this run. */
  addr(third: number, fourth: number): string {
    return `10.${this.octet}.${third}.${fourth}`;
  }

  get hosts(): Host[] {
    return [this.client, ...this.directors, ...this.realServers];
  }

  director(name: string): Director {
    const d = this.directors.find((x) => x.name === name);
    if (!d) throw new LabError('LAB_NO_HOST', `no director "${name}" in lab ${this.id} (have ${this.directors.map((x) => x.name).join(', ')})`);
    return d;
  }

  private async addNamespace(ns: string): Promise<void> {
    await run(['ip', 'netns', 'add', ns]);
    this.namespaces.push(ns);
    await run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
  }

  private async build(): Promise<void> {
    await this.addNamespace(this.switchNs);
    await run(['ip', '-n', this.switchNs, 'link', 'add', this.bridge, 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0']);
    await run(['ip', '-n', this.switchNs, 'link', 'set', this.bridge, 'up']);
    for (const h of this.hosts) {
      await this.addNamespace(h.ns);
      const port = `s${this.id}${h.name}`;
      await run(['ip', 'link', 'add', port, 'netns', this.switchNs, 'type', 'veth', 'peer', 'name', h.lanIf, 'netns', h.ns]);
      await run(['ip', '-n', this.switchNs, 'link', 'set', port, 'master', this.bridge]);
      await run(['ip', '-n', this.switchNs, 'link', 'set', port, 'up']);
      await run(['ip', '-n', h.ns, 'addr', 'add', `${h.lanAddr}/${this.lanPrefix}`, 'dev', h.lanIf]);
      await run(['ip', '-n', h.ns, 'link', 'set', h.lanIf, 'up']);
    }
    const [d1, d2] = this.directors as [Director, Director];
    await run(['ip', 'link', 'add', d1.hbIf as string, 'netns', d1.ns, 'type', 'veth', 'peer', 'name', d2.hbIf as string, 'netns', d2.ns]);
    for (const d of [d1, d2]) {
      await run(['ip', '-n', d.ns, 'addr', 'add', `${d.hbAddr as string}/30`, 'dev', d.hbIf as string]);
      await run(['ip', '-n', d.ns, 'link', 'set', d.hbIf as string, 'up']);
    }
  }

  /** Runs a command inside a namespace (a namespace name or a host name like `d1`). */
  exec(where: string, argv: readonly string[], opts: { allowFail?: boolean; input?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
    return nsRun(this.nsOf(where), argv, opts);
  }

  /** Starts a long-running process inside a namespace; destroy() kills it if still running. */
  spawn(where: string, argv: readonly string[], opts: SpawnOptions = {}): ChildProcess {
    const child = nsSpawn(this.nsOf(where), argv, opts);
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  nsOf(where: string): string {
    if (where === 'sw' || where === this.switchNs) return this.switchNs;
    const h = this.hosts.find((x) => x.name === where || x.ns === where);
    if (!h) throw new LabError('LAB_NO_HOST', `no host or namespace "${where}" in lab ${this.id}`);
    return h.ns;
  }

  async linkDown(where: string, ifname: string): Promise<void> {
    await run(['ip', '-n', this.nsOf(where), 'link', 'set', ifname, 'down']);
  }

  async linkUp(where: string, ifname: string): Promise<void> {
    await run(['ip', '-n', this.nsOf(where), 'link', 'set', ifname, 'up']);
  }

  /**
   * Every link of a director down (LAN and heartbeat): the machine is gone from the
   * network. One `ip -batch` process, so both links go down microseconds apart (two `ip`
   * processes in parallel left the heartbeat link up for the tens of ms the second one
   * took to start, and that showed up as failover time).
   */
  async isolate(name: string): Promise<void> {
    const d = this.director(name);
    const lines = [d.lanIf, ...(d.hbIf ? [d.hbIf] : [])].map((i) => `link set ${i} down`);
    await run(['ip', '-n', this.nsOf(d.ns), '-batch', '-'], { input: `${lines.join('\n')}\n` });
  }

  /** Brings a director's links back up. */
  async reconnect(name: string): Promise<void> {
    const d = this.director(name);
    await Promise.all([this.linkUp(d.ns, d.lanIf), d.hbIf ? this.linkUp(d.ns, d.hbIf) : Promise.resolve()]);
  }

  private async nft(where: string, rule: string, table = NFT_TABLE): Promise<void> {
    const ns = this.nsOf(where);
    const key = `${ns} ${table}`;
    if (!this.filtered.has(key)) {
      await nsRun(ns, ['nft', '-f', '-'], {
        input: `table inet ${table} {\n  chain input {\n    type filter hook input priority 0; policy accept;\n  }\n}\n`,
      });
      this.filtered.add(key);
    }
    await nsRun(ns, ['nft', 'add', 'rule', 'inet', table, 'input', ...rule.split(' ')]);
  }

  /**
   * Random loss of incoming heartbeats at `where`: `udp dport <port> numgen random mod
   * 100 < <percent> drop`, on one interface or (without `ifname`) on every link. Apply it
   * on both directors for loss in both directions.
   */
  async heartbeatLoss(where: string, opts: { percent: number; port: number; ifname?: string }): Promise<void> {
    if (!(opts.percent > 0 && opts.percent <= 100)) throw new LabError('LAB_OPTIONS', `loss percent must be in (0, 100], not ${opts.percent}`);
    const iif = opts.ifname ? `iifname ${opts.ifname} ` : '';
    const loss = opts.percent >= 100 ? '' : `numgen random mod 100 < ${Math.round(opts.percent)} `;
    await this.nft(where, `${iif}udp dport ${opts.port} ${loss}counter drop`);
  }

  /** Drops every incoming packet from `fromAddr` at `where` (a partition, one direction). */
  async dropFrom(where: string, fromAddr: string): Promise<void> {
    await this.nft(where, `ip saddr ${fromAddr} counter drop`);
  }

  /** Removes every loss and partition rule in a namespace. */
  async clearFilters(where: string): Promise<void> {
    const ns = this.nsOf(where);
    for (const table of [NFT_TABLE, NFT_PARTITION_TABLE]) {
      if (this.filtered.has(`${ns} ${table}`)) await nsRun(ns, ['nft', 'flush', 'chain', 'inet', table, 'input']);
    }
  }

  /**
   * A partition that can be healed on its own: drops every incoming packet from
   * `fromAddr` at `where`, in a table of its own, so `healPartitions` removes it and
   * leaves the loss rules of `heartbeatLoss` in place.
   */
  async partitionFrom(where: string, fromAddr: string): Promise<void> {
    await this.nft(where, `ip saddr ${fromAddr} counter drop`, NFT_PARTITION_TABLE);
  }

  /** Removes the partition rules (only) in a namespace. */
  async healPartitions(where: string): Promise<void> {
    const ns = this.nsOf(where);
    if (this.filtered.has(`${ns} ${NFT_PARTITION_TABLE}`)) await nsRun(ns, ['nft', 'flush', 'chain', 'inet', NFT_PARTITION_TABLE, 'input']);
  }

  /** Counters of the lab's nft rules in a namespace (for checking that loss is applied). */
  async filterRules(where: string): Promise<string> {
    const ns = this.nsOf(where);
    const out: string[] = [];
    for (const table of [NFT_TABLE, NFT_PARTITION_TABLE]) {
      if (this.filtered.has(`${ns} ${table}`)) out.push((await nsRun(ns, ['nft', 'list', 'chain', 'inet', table, 'input'])).stdout);
    }
    return out.join('\n');
  }

  /** Kills whatever still runs in the lab and deletes every namespace and the run directory. Idempotent. */
  async destroy(): Promise<void> {
    this.destroySync();
  }

  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    process.removeListener('exit', this.onExit);
    process.removeListener('SIGINT', this.onSignal);
    process.removeListener('SIGTERM', this.onSignal);
    for (const c of this.children) {
      try {
        c.kill('SIGKILL');
      } catch {
        // gone
      }
    }
    for (const ns of [...this.namespaces].reverse()) deleteNamespaceSync(ns);
    this.namespaces.length = 0;
    rmSync(this.dir, { recursive: true, force: true });
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }
}
