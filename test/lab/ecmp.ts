/**
 * The ECMP lab (VIGIL_LAB_MODE=ecmp, test/e2e/ecmp-*.test.ts, bench:ecmp): three active
 * directors behind a router that spreads flows over them by ECMP, each director running
 * vigil (cluster.mode ecmp, the built-in forwarder) and its own BIRD 2.
 *
 *   ns <p><id>-cl: client 10.X.200.2 ── veth ── 10.X.200.1 ┐
 *   ns <p><id>-c:  the ROUTER: BIRD (BGP AS 65000 to every director, BFD 50 ms × 3,
 *                  kernel protocol `merge paths on`), ip_forward=1,
 *                  fib_multipath_hash_policy=1 (L4 hash), LAN 10.X.0.10
 *   LAN bridge 10.X.0.0/24 (test/lab/lab.ts):
 *   ns <p><id>-d1..d3: director, LAN 10.X.0.N, default via the router; VIP 10.X.100.1/32 on
 *                  lo (put there by vigil); BIRD AS 65001 exports vigil's include file
 *   ns <p><id>-r1..rN: real servers 10.X.0.21+ (ecmp-server.ts)
 *
 * The router's route to the VIP is a multipath route with one next hop per director that
 * announces it. `crash(d)` freezes a director the way a dead machine looks to the router
 * (every packet in and out dropped by nft, then vigil and BIRD killed), so only BFD can
 * tell; `restart(d)` brings it back.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { renderInclude } from '../../src/ecmp/bird.js';
import { Lab, type Director } from './lab.js';
import { deleteNamespaceSync, LabError, nsSpawn, run } from './netns.js';
import { API_PORT, sumMetric, VigilNode, type Timers } from './vigil.js';
import type { EcmpStatus } from '../../src/api/types.js';

export interface EcmpStatusLite { node: string; ecmp: EcmpStatus }

const TS_RUN = fileURLToPath(new URL('./ts-run.mjs', import.meta.url));
/**
 * Compiled to plain JS (the IPVS VM runs the lab from a tree compileGuestTree made,
 * test/e2e/ipvs-vm.ts): start the server and client .js with node itself, not through
 * vite's runner, which costs tens of seconds per process under qemu TCG.
 */
const COMPILED = import.meta.url.endsWith('.js');
const SERVER = fileURLToPath(new URL(`./ecmp-server.${COMPILED ? 'js' : 'ts'}`, import.meta.url));
const CLIENT = fileURLToPath(new URL(`./ecmp-client.${COMPILED ? 'js' : 'ts'}`, import.meta.url));
const nodeArgv = (file: string): string[] => (COMPILED ? ['node', file] : ['node', TS_RUN, file]);
export const ECMP_PORT = 7080;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** True when bird2's binaries are installed (tests skip with a reason otherwise). */
export function haveBird(): boolean {
  try {
    execFileSync('bird', ['--version'], { stdio: 'ignore' });
    execFileSync('which', ['birdc'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export interface EcmpLabOptions {
  prefix?: string;
  realServers?: number;
  /** cluster.ecmp.withdraw_wait_ms (default 500). */
  withdrawWaitMs?: number;
  /** Health check interval of the real servers (default 1000 ms, timeout 80 %, fall 3). */
  checkIntervalMs?: number;
  timers?: Timers;
  /** api.listen on every address (a Prometheus in the router's namespace scrapes the LAN address); default loopback. */
  apiOnLan?: boolean;
  /**
   * The directors' dataplane (default forwarder). `ipvs` needs the kernel's IPVS (the
   * IPVS VM): services in DR mode, `mh` + mh-port, sloppy_tcp set by vigil; the real
   * servers hold the VIP on lo (arp_ignore=1, arp_announce=2) and answer the client
   * through the router, so only the client → server half crosses a director.
   */
  dataplane?: 'forwarder' | 'ipvs';
  /** BFD timers of every session (default 50 ms × 3). */
  bfd?: { intervalMs: number; multiplier: number };
}

export class EcmpLab {
  readonly clientNs: string;
  readonly clientIf: string;
  readonly routerIf: string;
  readonly clientAddr: string;
  readonly routerClientAddr: string;
  readonly vip: string;
  readonly nodes: VigilNode[];
  readonly dataplane: 'forwarder' | 'ipvs';
  private readonly birds = new Map<string, ChildProcess>();
  private readonly clientChildren = new Set<ChildProcess>();
  private destroyed = false;

  private constructor(
    readonly lab: Lab,
    private readonly opts: EcmpLabOptions,
  ) {
    this.clientNs = `${lab.prefix}${lab.id}-cl`;
    this.clientIf = `k${lab.id}`;
    this.routerIf = `k${lab.id}`;
    this.clientAddr = lab.addr(200, 2);
    this.routerClientAddr = lab.addr(200, 1);
    this.vip = lab.addr(100, 1);
    this.dataplane = opts.dataplane ?? 'forwarder';
    this.nodes = lab.directors.map((d) => new VigilNode(lab, d, this.configFile(d)));
  }

  get router(): string {
    return this.lab.client.ns;
  }

  /** Builds everything and starts the router's BIRD, the real servers, every director's BIRD and vigil. */
  static async create(opts: EcmpLabOptions = {}): Promise<EcmpLab> {
    const lab = await Lab.create({ directors: 3, realServers: opts.realServers ?? 3, prefix: opts.prefix ?? 'vle' });
    const e = new EcmpLab(lab, opts);
    try {
      await e.build();
    } catch (err) {
      await e.destroy();
      throw err;
    }
    return e;
  }

  private async build(): Promise<void> {
    const { lab } = this;
    // the client behind the router
    await run(['ip', 'netns', 'add', this.clientNs]);
    await run(['ip', '-n', this.clientNs, 'link', 'set', 'lo', 'up']);
    await run(['ip', 'link', 'add', this.routerIf, 'netns', this.router, 'type', 'veth', 'peer', 'name', this.clientIf, 'netns', this.clientNs]);
    await run(['ip', '-n', this.router, 'addr', 'add', `${this.routerClientAddr}/24`, 'dev', this.routerIf]);
    await run(['ip', '-n', this.router, 'link', 'set', this.routerIf, 'up']);
    await run(['ip', '-n', this.clientNs, 'addr', 'add', `${this.clientAddr}/24`, 'dev', this.clientIf]);
    await run(['ip', '-n', this.clientNs, 'link', 'set', this.clientIf, 'up']);
    await run(['ip', '-n', this.clientNs, 'route', 'add', 'default', 'via', this.routerClientAddr]);
    // the router: forwarding, L4 multipath hash, BIRD with ECMP and BFD
    await lab.exec(this.router, ['sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv4.fib_multipath_hash_policy=1']);
    writeFileSync(join(lab.dir, 'router-bird.conf'), this.routerBirdConf());
    this.startBird(this.router, 'router');
    // directors: route back to the client, no ARP for the VIP on lo, their own BIRD
    for (const d of lab.directors) {
      await lab.exec(d.ns, ['ip', 'route', 'add', 'default', 'via', lab.client.lanAddr]);
      await lab.exec(d.ns, ['sysctl', '-qw', 'net.ipv4.conf.all.arp_ignore=1', 'net.ipv4.conf.all.arp_announce=2']);
      writeFileSync(join(lab.dir, `${d.name}-bird.conf`), this.directorBirdConf(d));
      writeFileSync(this.includeFile(d), renderInclude('vigil_vips', []));
      writeFileSync(this.configFile(d), this.vigilConfig(d));
    }
    if (this.dataplane === 'ipvs') {
      // direct routing: the real servers accept the VIP (on lo, never answering ARP for
      // it) and send their answers to the client through the router, not the director
      for (const r of lab.realServers) {
        await lab.exec(r.ns, ['sysctl', '-qw', 'net.ipv4.conf.all.arp_ignore=1', 'net.ipv4.conf.all.arp_announce=2']);
        await lab.exec(r.ns, ['ip', 'addr', 'add', `${this.vip}/32`, 'dev', 'lo']);
        await lab.exec(r.ns, ['ip', 'route', 'add', 'default', 'via', lab.client.lanAddr]);
      }
    }
    await Promise.all(lab.realServers.map((r) => this.startServer(r.name)));
  }

  private bfdLine(ifname: string): string {
    const b = this.opts.bfd ?? { intervalMs: 50, multiplier: 3 };
    return `protocol bfd { interface "${ifname}" { min rx interval ${b.intervalMs} ms; min tx interval ${b.intervalMs} ms; multiplier ${b.multiplier}; }; }`;
  }

  includeFile(d: Director): string {
    return join(this.lab.dir, `${d.name}-vips.conf`);
  }
  birdSocket(name: string): string {
    return join(this.lab.dir, `${name}-bird.ctl`);
  }
  configFile(d: Director): string {
    return join(this.lab.dir, `${d.name}-vigil.yaml`);
  }

  private routerBirdConf(): string {
    const l = this.lab;
    return `# ECMP lab router (test/lab/ecmp.ts)
router id ${l.client.lanAddr};
log "${join(l.dir, 'router-bird.log')}" all;
protocol device { scan time 10; }
protocol direct { ipv4; interface "${l.client.lanIf}"; }
protocol kernel {
  ipv4 { import none; export where source = RTS_BGP; };
  merge paths on;        # one multipath route, a next hop per director
}
${this.bfdLine(l.client.lanIf)}
template bgp director {
  local ${l.client.lanAddr} as 65000;
  ipv4 { import where net ~ [ ${l.addr(100, 0)}/24{32,32} ]; export none; };
  bfd on;
  hold time 9;
  connect retry time 1;
  error wait time 1, 2;
}
${l.directors.map((d) => `protocol bgp ${d.name} from director { neighbor ${d.lanAddr} as 65001; }`).join('\n')}
`;
  }

  private directorBirdConf(d: Director): string {
    return `# ECMP lab director ${d.name} (test/lab/ecmp.ts; deploy/bird/director.conf is the annotated example)
router id ${d.lanAddr};
log "${join(this.lab.dir, `${d.name}-bird.log`)}" all;
protocol device { scan time 10; }
include "${this.includeFile(d)}";
${this.bfdLine(d.lanIf)}
protocol bgp uplink {
  local ${d.lanAddr} as 65001;
  neighbor ${this.lab.client.lanAddr} as 65000;
  ipv4 { import none; export where proto = "vigil_vips"; };
  bfd on;
  hold time 9;
  connect retry time 1;
  error wait time 1, 2;
}
`;
  }

  private vigilConfig(d: Director): string {
    const l = this.lab;
    const interval = this.opts.checkIntervalMs ?? 1000;
    const check = { type: 'tcp', interval_ms: interval, timeout_ms: Math.round(interval * 0.8), rise: 1, fall: 3 };
    const config = {
      node: d.name,
      cluster: {
        mode: 'ecmp',
        ecmp: {
          bird_socket: this.birdSocket(d.name),
          include_file: this.includeFile(d),
          vip_interface: 'lo',
          withdraw_wait_ms: this.opts.withdrawWaitMs ?? 500,
        },
        id: `ecmp-${l.id}`,
        ...(this.opts.timers ?? {}),
        key_file: join(l.dir, 'authkey'),
        nodes: l.directors.map((x) => ({ name: x.name, links: [{ name: 'lan', address: x.lanAddr }] })),
      },
      vips: [{ address: this.vip, prefix: 32, interface: 'lo' }],
      services: ['tcp', 'udp'].map((protocol) => ({
        name: `echo-${protocol}`,
        protocol,
        vip: this.vip,
        port: ECMP_PORT,
        scheduler: 'mh',
        scheduler_flags: ['mh-port'],
        forward: this.dataplane === 'ipvs' ? 'dr' : 'nat',
        ...(protocol === 'tcp' ? { check } : {}),
        real_servers: l.realServers.map((r) => ({ address: r.lanAddr, port: ECMP_PORT, ...(protocol === 'udp' ? { check: { ...check, type: 'tcp' } } : {}) })),
      })),
      dataplane: this.dataplane === 'ipvs' ? { mode: 'ipvs' } : { mode: 'forwarder', forwarder: { workers: 1 } },
      api: { listen: `${this.opts.apiOnLan ? '0.0.0.0' : '127.0.0.1'}:${API_PORT}`, token_file: join(l.dir, 'api-token') },
      logging: { level: 'info' },
    };
    return `# ECMP lab ${l.id}, director ${d.name}: written by test/lab/ecmp.ts\n${stringify(config)}`;
  }

  private startBird(ns: string, name: string): void {
    const fd = openSync(join(this.lab.dir, `${name}-bird.out`), 'a');
    // -f: foreground, so the lab owns the process and destroy() kills it
    // BIRD runs with a real-time priority, as a routing daemon should: on this shared,
    // loaded machine a starved BIRD misses 50 ms BFD packets and the sessions flap
    const child = this.lab.spawn(ns, ['chrt', '-f', '10', 'bird', '-f', '-c', join(this.lab.dir, `${name}-bird.conf`), '-s', this.birdSocket(name), '-P', join(this.lab.dir, `${name}-bird.pid`)], { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    this.birds.set(name, child);
  }

  private async startServer(name: string): Promise<void> {
    // direct routing: UDP answers must leave from the VIP (on the server's lo), see ecmp-server.ts
    const udpAddr = this.dataplane === 'ipvs' ? [this.vip] : [];
    const child = this.lab.spawn(name, [...nodeArgv(SERVER), name, String(ECMP_PORT), ...udpAddr], { stdio: ['ignore', 'pipe', 'pipe'] });
    await waitLine(child, /^ready$/m, `ecmp-server on ${name}`, 120_000);
  }

  /** Starts BIRD and vigil on every director (or the named ones) and waits until the router has every next hop. */
  async start(names: string[] = this.lab.directors.map((d) => d.name)): Promise<void> {
    const key = join(this.lab.dir, 'authkey');
    const token = join(this.lab.dir, 'api-token');
    if (!existsSync(key)) writeFileSync(key, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    if (!existsSync(token)) writeFileSync(token, `${randomBytes(16).toString('hex')}\n`, { mode: 0o600 });
    for (const n of names) this.startBird(this.lab.director(n).ns, n);
    // in the VM (ipvs) a daemon takes minutes to load under qemu TCG: poll its API
    // rarely, each poll being an `ip netns exec curl` that competes for the same CPUs
    // rarely, and one daemon after the other: six node processes (three daemons and
    // their cluster processes) loading at once starve each other past the cluster
    // process's 30 s start timeout
    if (this.dataplane === 'ipvs') for (const n of names) await this.node(n).start({ waitApiMs: 300_000, apiTimeoutS: 20, pollMs: 2000 });
    else await Promise.all(names.map((n) => this.node(n).start({ waitApiMs: 240_000, apiTimeoutS: 20 })));
  }

  /** The last `bytes` of every log in the lab directory (vigil, BIRD), for a failure report. */
  logTails(bytes = 1500): Record<string, string> {
    const out: Record<string, string> = {};
    for (const f of readdirSync(this.lab.dir)) {
      if (!/\.(log|out)$/.test(f)) continue;
      try {
        const text = readFileSync(join(this.lab.dir, f), 'utf8');
        out[f] = text.slice(-bytes);
      } catch {
        // gone
      }
    }
    return out;
  }

  node(name: string): VigilNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new LabError('LAB_NO_HOST', `no director ${name}`);
    return n;
  }

  /**
   * A control request to a director's API from inside its namespace (what `vigil
   * maintenance on|off`, `standby`, `takeover` send), with the token of api.token_file.
   * curl rather than the CLI: starting node takes tens of seconds on a loaded machine.
   */
  async control(name: string, path: '/v1/maintenance' | '/v1/standby' | '/v1/takeover', body: unknown = {}): Promise<string> {
    const d = this.lab.director(name);
    const token = readFileSync(join(this.lab.dir, 'api-token'), 'utf8').trim();
    const argv = ['curl', '-s', '-m', '90', '-X', 'POST', '-H', `authorization: Bearer ${token}`, '-H', 'content-type: application/json', '-d', JSON.stringify(body), '-w', '\n%{http_code}', `http://127.0.0.1:${API_PORT}${path}`];
    const r = await this.lab.exec(d.ns, argv, { allowFail: true, timeoutMs: 120_000 });
    const [text, code] = [r.stdout.slice(0, r.stdout.lastIndexOf('\n')), r.stdout.slice(r.stdout.lastIndexOf('\n') + 1)];
    if (r.exitCode !== 0 || code !== '200') throw new LabError('LAB_CONTROL', `POST ${path} on ${name} failed (curl exit ${r.exitCode}, HTTP ${code}): ${text || r.stderr}`);
    return (JSON.parse(text) as { message: string }).message;
  }

  /** `vigil maintenance on|off` on a director (POST /v1/maintenance). */
  maintenance(name: string, on: boolean): Promise<string> {
    return this.control(name, '/v1/maintenance', { on });
  }

  /** A director's /status (a generous timeout: the lab runs on loaded machines); null when it does not answer. */
  async status(name: string): Promise<EcmpStatusLite | null> {
    const s = await this.node(name).get('/status', 20);
    return s === null ? null : (JSON.parse(s) as EcmpStatusLite);
  }

  /** Sum of a metric's samples on a director. */
  async metric(name: string, metric: string): Promise<number | null> {
    const text = await this.node(name).get('/metrics', 20);
    return text === null ? null : sumMetric(text, metric);
  }

  /** The router's next hops for the VIP (director LAN addresses), from the kernel's FIB. */
  async nextHops(): Promise<string[]> {
    const r = await this.lab.exec(this.router, ['ip', '-4', 'route', 'show', `${this.vip}/32`], { allowFail: true });
    return [...r.stdout.matchAll(/via (\S+)/g)].map((m) => m[1] as string).sort();
  }

  /** Director name for a LAN address (what the real servers report as peer). */
  directorOf(addr: string): string {
    return this.lab.directors.find((d) => d.lanAddr === addr)?.name ?? `?${addr}`;
  }

  /** Waits until the router's route to the VIP has exactly these directors as next hops. */
  async waitNextHops(names: string[], timeoutMs = 30_000): Promise<number> {
    const want = names.map((n) => this.lab.director(n).lanAddr).sort().join(',');
    const deadline = Date.now() + timeoutMs;
    let got = '';
    for (;;) {
      got = (await this.nextHops()).join(',');
      if (got === want) return Date.now();
      if (Date.now() > deadline) throw new LabError('LAB_TIMEOUT', `router next hops for ${this.vip} are [${got}], not [${want}] after ${timeoutMs} ms; see ${this.lab.dir}`);
      // in the VM each `ip` costs ~100 ms of an emulated CPU the lab needs
      await sleep(this.dataplane === 'ipvs' ? 100 : 20);
    }
  }

  /**
   * ipvs: the client address:port of every TCP connection a director's IPVS holds in
   * state ESTABLISHED (`ipvsadm -L -n -c` in its namespace; IPVS is per namespace). With
   * DR the real server sees the client, not the director: this is how the lab tells
   * which director carries a connection.
   */
  async ipvsConnections(name: string): Promise<Set<string>> {
    const r = await this.lab.exec(this.lab.director(name).ns, ['ipvsadm', '-L', '-n', '-c'], { allowFail: true, timeoutMs: 60_000 });
    if (r.exitCode !== 0) throw new LabError('LAB_IPVS', `ipvsadm -L -n -c on ${name} failed: ${r.stderr.trim()}`);
    const out = new Set<string>();
    // "TCP  14:59  ESTABLISHED 10.76.200.2:40001 10.76.100.1:7080 10.76.0.21:7080"
    for (const line of r.stdout.split('\n')) {
      const t = line.trim().split(/\s+/);
      if (t[0] === 'TCP' && t[2] === 'ESTABLISHED' && t[3]) out.add(t[3]);
    }
    return out;
  }

  /** birdc against one BIRD of the lab (router or a director). */
  async birdc(name: string, args: string[]): Promise<string> {
    const r = await run(['birdc', '-s', this.birdSocket(name), ...args], { allowFail: true });
    return r.stdout;
  }

  /**
   * A director dies as a machine does: nft drops every packet in and out (the router
   * hears nothing more, not even a TCP reset), then vigil and BIRD are killed. Only BFD
   * (or the hold timer) tells the router.
   */
  async crash(name: string): Promise<void> {
    const d = this.lab.director(name);
    // ipvs (in the VM): every link down in one `ip -batch`, as the pair lab's crash does;
    // the kernel's IPVS table stays, but no packet reaches it any more
    if (this.dataplane === 'ipvs') await this.lab.isolate(name);
    else {
      await this.lab.exec(d.ns, ['nft', '-f', '-'], {
        input: 'table inet vigil_lab_crash {\n  chain i { type filter hook input priority -300; policy drop; }\n  chain o { type filter hook output priority -300; policy drop; }\n}\n',
      });
    }
    await this.node(name).signal('SIGKILL');
    const b = this.birds.get(name);
    if (b && b.exitCode === null && b.signalCode === null) {
      const gone = new Promise<void>((r) => b.once('exit', () => r()));
      b.kill('SIGKILL');
      await gone;
    }
    // the forwarder's workers are children of vigil; kill whatever is left in the namespace (a dead machine)
    const pids = (await run(['ip', 'netns', 'pids', d.ns], { allowFail: true })).stdout.split(/\s+/).filter((p) => /^\d+$/.test(p));
    for (const p of pids) {
      try {
        process.kill(Number(p), 'SIGKILL');
      } catch {
        // gone
      }
    }
  }

  /** The crashed director boots again: network back, BIRD and vigil started. */
  async restart(name: string): Promise<void> {
    const d = this.lab.director(name);
    if (this.dataplane === 'ipvs') {
      await this.lab.reconnect(name);
      // the default route went with the link
      await this.lab.exec(d.ns, ['ip', 'route', 'replace', 'default', 'via', this.lab.client.lanAddr]);
      await this.lab.exec(d.ns, ['ipvsadm', '-C'], { allowFail: true });
    } else await this.lab.exec(d.ns, ['nft', 'delete', 'table', 'inet', 'vigil_lab_crash'], { allowFail: true });
    await this.lab.exec(d.ns, ['ip', 'addr', 'flush', 'dev', 'lo', 'scope', 'global'], { allowFail: true });
    writeFileSync(this.includeFile(d), renderInclude('vigil_vips', []));
    await this.start([name]);
  }

  /** Starts the clients (see ecmp-client.ts); resolves once every flow had its first answer. */
  /**
   * silentMs: a long-lived connection that hears nothing for this long counts as broken
   * (default 3000); connectMs: a new connection without its greeting this long failed
   * (default 3000).
   */
  async clients(o: { streamMs?: number; udpFlows?: number; udpMs?: number; long?: number; longMs?: number; silentMs?: number; connectMs?: number } = {}): Promise<EcmpClients> {
    const argv = [
      ...nodeArgv(CLIENT),
      this.vip,
      String(ECMP_PORT),
      String(o.streamMs ?? 10),
      String(o.udpFlows ?? 0),
      String(o.udpMs ?? 10),
      String(o.long ?? 0),
      String(o.longMs ?? 50),
      String(o.silentMs ?? 3000),
      String(o.connectMs ?? 3000),
    ];
    const child = nsSpawn(this.clientNs, ['nice', '-n', '-10', ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.clientChildren.add(child);
    child.once('exit', () => this.clientChildren.delete(child));
    const c = new EcmpClients(child);
    await waitLine(child, /^ready$/m, 'ecmp clients', 180_000);
    return c;
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const c of this.clientChildren) c.kill('SIGKILL');
    await Promise.all(this.nodes.map((n) => n.signal('SIGKILL').catch(() => undefined)));
    deleteNamespaceSync(this.clientNs);
    await this.lab.destroy();
  }
}

/** One new connection: started at, ended at (answer or failure), epoch ms. */
export interface StreamResult { at: number; end: number; ok: boolean; director: string; error?: string }
export interface FlowResult { id: number; answers: Array<[number, string]> }
/** director: from the greeting (the forwarder's address as the real server saw it; with IPVS DR, the client's own); port: the client's local port. */
export interface LongResult { id: number; director: string; port: number; brokenAt: number | null; error: string | null }
export interface ClientReport { stream: StreamResult[]; flows: FlowResult[]; long: LongResult[] }

/** A running ecmp-client.ts; stop() returns its report. */
export class EcmpClients {
  private out = '';
  constructor(private readonly child: ChildProcess) {
    child.stdout?.on('data', (d: Buffer) => (this.out += d.toString()));
  }
  /** The local port of each long-lived connection (by id), known once the clients are ready. */
  longPorts(): number[] {
    const line = this.out.split('\n').find((l) => l.startsWith('long-ports '));
    if (!line) throw new LabError('LAB_CLIENT', 'ecmp clients printed no long-ports line');
    return JSON.parse(line.slice('long-ports '.length)) as number[];
  }
  async stop(): Promise<ClientReport> {
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.kill('SIGTERM');
    await Promise.race([exited, sleep(10_000)]);
    const line = this.out.split('\n').find((l) => l.startsWith('{'));
    if (!line) throw new LabError('LAB_CLIENT', `ecmp clients gave no report: ${this.out.slice(0, 300)}`);
    return JSON.parse(line) as ClientReport;
  }
}

function waitLine(child: ChildProcess, re: RegExp, what: string, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = '';
    let err = '';
    const timer = setTimeout(() => done(new LabError('LAB_START', `${what} not ready after ${ms} ms: ${err.trim().slice(-2000)}`)), ms);
    const onData = (d: Buffer): void => {
      buf += d.toString();
      if (re.test(buf)) done();
    };
    const onErr = (d: Buffer): void => void (err += d.toString());
    const onExit = (code: number | null, sig: string | null): void => done(new LabError('LAB_START', `${what} exited (${code ?? sig}): ${err.trim()}`));
    const done = (e?: Error): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onErr);
      child.off('exit', onExit);
      if (e) reject(e);
      else resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onErr);
    child.once('exit', onExit);
  });
}

/** What the clients saw around one event (a crash or a withdraw at `at`, epoch ms). */
export interface EventFigures {
  /** Per affected UDP flow: its longest gap between answers spanning or following the event (only gaps > gapMs). */
  outages: number[];
  flows: number;
  longBroken: number;
  longTotal: number;
  /** Errors of the broken long-lived connections (ECONNRESET, silent, closed...), counted. */
  longErrors: Record<string, number>;
  streamFailed: number;
  streamTotal: number;
  /** New connections that failed or took ≥ 1 s (a lost SYN costs one retransmission timeout). */
  streamDisturbed: number;
  /** From the event to the end of the last disturbed new connection (0: none was). */
  streamOutageMs: number;
  /**
   * Where the disturbed UDP flows were (given the address of the director that went):
   * on that director, moved by the router between two live directors, or on a live
   * director that kept them (a gap with no move: noise, not the event).
   */
  disturbedWhere: { onGone: number; moved: number; stayed: number };
  /** Each disturbed flow's longest gap: its start after the event (ms, negative: before), its length, the answering director before and after it. */
  gaps: Array<{ flow: number; startMs: number; ms: number; from: string; to: string }>;
}

/** The figures bench:ecmp and the IPVS VM scenario print for an event. */
export function analyseEvent(r: ClientReport, at: number, gapMs: number, goneAddr?: string): EventFigures {
  const outages: number[] = [];
  const disturbedWhere = { onGone: 0, moved: 0, stayed: 0 };
  const gaps: EventFigures['gaps'] = [];
  for (const f of r.flows) {
    const last = f.answers.filter(([t]) => t <= at).at(-1);
    if (last === undefined) continue;
    const [before, from] = last;
    const after = f.answers.filter(([t]) => t > at);
    // the first answer after the event may simply be the next request: only a gap counts
    let maxGap = (after[0]?.[0] ?? Infinity) - before;
    let gap = { startMs: before - at, from, to: after[0]?.[1] ?? '-' };
    let prev: [number, string] = [before, from];
    for (const a of after) {
      if (a[0] - prev[0] > maxGap) {
        maxGap = a[0] - prev[0];
        gap = { startMs: prev[0] - at, from: prev[1], to: a[1] };
      }
      prev = a;
    }
    if (maxGap > gapMs) {
      outages.push(maxGap);
      gaps.push({ flow: f.id, ms: maxGap, ...gap });
      const to = after.at(-1)?.[1];
      if (from === goneAddr) disturbedWhere.onGone += 1;
      else if (to !== undefined && to !== from) disturbedWhere.moved += 1;
      else disturbedWhere.stayed += 1;
    }
  }
  const broken = r.long.filter((l) => l.brokenAt !== null);
  const longErrors: Record<string, number> = {};
  for (const l of broken) longErrors[l.error ?? '?'] = (longErrors[l.error ?? '?'] ?? 0) + 1;
  const disturbed = r.stream.filter((s) => s.end > at && (!s.ok || s.end - s.at >= 1000));
  return {
    outages,
    flows: r.flows.length,
    longBroken: broken.length,
    longTotal: r.long.length,
    longErrors,
    streamFailed: r.stream.filter((s) => !s.ok).length,
    streamTotal: r.stream.length,
    streamDisturbed: disturbed.length,
    streamOutageMs: disturbed.length === 0 ? 0 : Math.max(...disturbed.map((s) => s.end)) - at,
    disturbedWhere,
    gaps,
  };
}

/** The p-quantile (nearest rank) of xs; NaN when empty. */
export const quantile = (xs: number[], p: number): number => (xs.length === 0 ? NaN : ([...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))] as number));
