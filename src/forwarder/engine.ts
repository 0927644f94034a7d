/**
 * The forwarding engine: what one worker process runs (tests also run it in-process).
 * It holds the virtual services of the table, listens on their VIP:port when told to,
 * and proxies:
 *
 *   TCP  client ─accept (paused)─► schedule ─► connect real server ─┬─ ok ─► splice both ways
 *                                     ▲                              └─ refused / timeout / reset
 *                                     └──────── retry on another real server (≤ connect_retries)
 *        data: 'data' → write; a full write buffer pauses the reader until 'drain' (backpressure)
 *        FIN from either side → end() on the other (half-close passes through at once)
 *        RST / error on either side → the other is reset; idle timeout closes both
 *
 *   UDP  datagram from a new client address:port ─► schedule ─► flow (a connected socket to
 *        the real server); replies go back to the client from the VIP:port socket; flows
 *        idle for udp_idle_timeout_ms end; a flow whose real server left the table is
 *        re-scheduled on its next datagram.
 *
 * Connection states for accounting follow IPVS: a TCP connection is active from
 * scheduling until the first FIN, inactive while half-closed; UDP flows are inactive
 * (IPVS never marks UDP connections active). The hot path allocates nothing per chunk:
 * the handlers are shared functions that find their connection on the socket.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { getSystemErrorName } from 'node:util';
import type { TableService } from '../reconcile/table.js';
import { realServerId } from '../reconcile/table.js';
import { foldAddress, persistenceMasker, unmapV4 } from './address.js';
import { PersistenceTable, type Template } from './persistence.js';
import { createScheduler, hashesSource, type PickContext, type SchedDest, type Scheduler } from './schedulers.js';
import type { SchedulerFlag } from '../config/schema.js';
import type { DestCounters } from './stats.js';
import { adoptListener, ConnectQueue, ConnList, rawAvailable, serverHandle, sweepIdle, type ListenHandle, type RawHost } from './tcp-raw.js';

export interface EngineSettings {
  connectTimeoutMs: number;
  connectRetries: number;
  tcpIdleTimeoutMs: number;
  udpIdleTimeoutMs: number;
  /**
   * Descriptors of each TCP listening socket a worker polls (dataplane.forwarder.max_accept):
   * libuv accepts one connection per descriptor and event-loop turn, so this is how many
   * connections a turn can take. 1: the listener's own descriptor only.
   */
  maxAccept: number;
}

/** The listen(2) backlog of the forwarder's TCP sockets. */
const LISTEN_BACKLOG = 4096;

export interface EngineEvents {
  /** A connect to a real server failed (refused, timed out, reset before it was up). */
  connectFailure(serviceKey: string, address: string, port: number, reason: string): void;
  /**
   * A listener could not be opened (it is retried every second while wanted), or, with
   * `copy`, a max_accept copy of an open one could not be polled (not retried: the
   * listener serves on its own descriptor and the others).
   */
  listenError(serviceKey: string, message: string, copy?: boolean): void;
  /** A persistence template was made (the dataplane shares it with the other workers). */
  template?(serviceKey: string, client: string, destId: string): void;
  /**
   * Wants `count` more descriptors of this listening socket (see EngineSettings.maxAccept).
   * A worker sends the handle to the daemon, which sends copies back; each one arrives at
   * addAcceptHandle() with the same generation. Without this event (an engine run
   * in-process) the listener's own descriptor is the only one.
   */
  acceptHandles?(serviceKey: string, generation: number, listener: ListenHandle, count: number): void;
}

/** A real server of a virtual service, with its counters. */
export class Dest implements SchedDest, DestCounters {
  active = 0;
  inactive = 0;
  connections = 0;
  bytesIn = 0;
  bytesOut = 0;
  packetsIn = 0;
  packetsOut = 0;
  connectFailures = 0;
  overloaded = false;
  excluded = false;
  /** mh: the weight a weight-0 real server keeps its Maglev slots with (table.ts). */
  configuredWeight = 0;
  /** False once removed from the table: no new connections; open ones continue. */
  inTable = true;
  readonly v6: boolean;
  constructor(
    readonly id: string,
    readonly address: string,
    readonly port: number,
    public weight: number,
  ) {
    this.v6 = net.isIPv6(address);
  }
}

export class Service {
  scheduler: Scheduler;
  dests: Dest[] = [];
  /** Every real server with connections or in the table, by id (a re-added one keeps its counts). */
  readonly all = new Map<string, Dest>();
  persistence: PersistenceTable<Dest> | null = null;
  masker: (address: string) => string = (a) => a;
  vipFold = 0;
  retries = 0;
  noRealServer = 0;
  tcp: net.Server | null = null;
  /** More descriptors of tcp's socket, each adopted like the listener's own (raw mode). */
  acceptExtra: ListenHandle[] = [];
  /** Descriptors asked for and not arrived yet. */
  acceptPending = 0;
  /** Counts the listeners opened: a descriptor asked for by an earlier one is closed on arrival. */
  listenGen = 0;
  udp: UdpListener | null = null;
  listenWanted = false;
  listenRetry: NodeJS.Timeout | null = null;
  constructor(public def: TableService) {
    this.scheduler = newScheduler(def);
  }
}

function newScheduler(def: TableService): Scheduler {
  return createScheduler(def.scheduler, (def.flags ?? []) as SchedulerFlag[]);
}

const flagsOf = (def: TableService): string => (def.flags ?? []).join(',');

// ---------------------------------------------------------------- TCP

const kConn = Symbol('vigil.forwarder.conn');
type ConnSocket = net.Socket & { [kConn]: TcpConn };

const ST_CONNECTING = 0;
const ST_ESTABLISHED = 1;
const ST_HALF_CLOSED = 2;
const ST_DONE = 3;

class TcpConn {
  backend: net.Socket | null = null;
  dest: Dest | null = null;
  template: Template<Dest> | null = null;
  tried: Dest[] | null = null;
  state = ST_CONNECTING;
  clientClosed = false;
  backendClosed = false;
  constructor(
    readonly engine: Engine,
    readonly svc: Service,
    readonly client: net.Socket,
    readonly clientKey: string | null,
    readonly ctx: PickContext,
  ) {}
}

function noop(): void {}

/** Aborts a socket with a TCP RST when it is connected (so the peer sees the reset), else destroys it. */
function reset(s: net.Socket): void {
  const h = (s as unknown as { _handle: unknown })._handle;
  if (h !== null && h !== undefined && !s.connecting) s.resetAndDestroy();
  else s.destroy();
}

function onClientData(this: ConnSocket, chunk: Buffer): void {
  const c = this[kConn];
  (c.dest as Dest).bytesIn += chunk.length;
  if (!(c.backend as net.Socket).write(chunk)) this.pause();
}

function onBackendData(this: ConnSocket, chunk: Buffer): void {
  const c = this[kConn];
  (c.dest as Dest).bytesOut += chunk.length;
  if (!c.client.write(chunk)) this.pause();
}

function onClientDrain(this: ConnSocket): void {
  const b = this[kConn].backend;
  if (b !== null && b.isPaused()) b.resume();
}

function onBackendDrain(this: ConnSocket): void {
  const c = this[kConn];
  if (c.backend === this && c.client.isPaused()) c.client.resume();
}

function halfClose(c: TcpConn): void {
  if (c.state === ST_ESTABLISHED) {
    c.state = ST_HALF_CLOSED;
    const d = c.dest as Dest;
    d.active -= 1;
    d.inactive += 1;
  }
}

function onClientEnd(this: ConnSocket): void {
  const c = this[kConn];
  halfClose(c);
  c.backend?.end();
}

function onBackendEnd(this: ConnSocket): void {
  const c = this[kConn];
  if (c.backend !== this) return;
  halfClose(c);
  c.client.end();
}

function onClientTimeout(this: ConnSocket): void {
  const c = this[kConn];
  if (c.backend !== null) reset(c.backend);
  reset(c.client);
}

function onClientClose(this: ConnSocket, hadError: boolean): void {
  const c = this[kConn];
  c.clientClosed = true;
  const b = c.backend;
  if (c.state === ST_CONNECTING) {
    // The client went away before a real server answered: abandon the attempt.
    if (b !== null) {
      c.backend = null;
      b.destroy();
      c.backendClosed = true;
    }
    finish(c);
    return;
  }
  // A clean close means both FINs passed already; the real server side finishes on its own.
  if (b !== null && !b.destroyed && (hadError || c.state === ST_ESTABLISHED)) reset(b);
  if (c.backendClosed) finish(c);
}

function onBackendError(this: ConnSocket, err: NodeJS.ErrnoException): void {
  const c = this[kConn];
  if (c.backend !== this) return;
  if (c.state === ST_CONNECTING) connectFailed(c, err.code ?? err.message);
}

function onBackendTimeout(this: ConnSocket): void {
  const c = this[kConn];
  // Decided after this loop turn's I/O (see tcp-raw.ts: a stalled loop runs timers first).
  if (c.backend === this && c.state === ST_CONNECTING) setImmediate(timeoutIfStillConnecting, c, this);
}

function timeoutIfStillConnecting(c: TcpConn, b: net.Socket): void {
  if (c.backend === b && c.state === ST_CONNECTING) connectFailed(c, 'connect timeout');
}

function onBackendClose(this: ConnSocket, hadError: boolean): void {
  const c = this[kConn];
  if (c.backend !== this) return;
  if (c.state === ST_CONNECTING) {
    connectFailed(c, 'closed during connect');
    return;
  }
  c.backendClosed = true;
  if (!c.clientClosed && !c.client.destroyed && (hadError || c.state === ST_ESTABLISHED)) reset(c.client);
  if (c.clientClosed) finish(c);
}

function onBackendConnect(this: ConnSocket): void {
  const c = this[kConn];
  if (c.backend !== this || c.clientClosed) return;
  c.state = ST_ESTABLISHED;
  const client = c.client as ConnSocket;
  this.setTimeout(0);
  this.removeListener('timeout', onBackendTimeout);
  client.setTimeout(c.engine.settings.tcpIdleTimeoutMs);
  client.on('timeout', onClientTimeout);
  client.on('data', onClientData);
  this.on('data', onBackendData);
  client.on('end', onClientEnd);
  this.on('end', onBackendEnd);
  client.on('drain', onClientDrain);
  this.on('drain', onBackendDrain);
  client.resume();
}

/** The attempt on c.dest failed: report it, then retry elsewhere or give up. */
function connectFailed(c: TcpConn, reason: string): void {
  const dest = c.dest as Dest;
  const b = c.backend;
  c.backend = null;
  b?.destroy();
  dest.active -= 1;
  dest.connectFailures += 1;
  const e = c.engine;
  const svc = c.svc;
  e.events.connectFailure(svc.def.key, dest.address, dest.port, reason);
  if (c.template !== null && svc.persistence !== null && c.clientKey !== null) {
    svc.persistence.drop(c.clientKey);
    c.template = null;
  }
  (c.tried ??= []).push(dest);
  if (c.clientClosed) {
    c.backendClosed = true;
    finish(c);
    return;
  }
  if (c.tried.length <= e.settings.connectRetries) {
    svc.retries += 1;
    if (e.connectTo(c)) return;
  }
  c.state = ST_DONE;
  c.backendClosed = true;
  reset(c.client);
}

/** Both sides are closed: give back the connection's place in the counts. */
function finish(c: TcpConn): void {
  if (c.state === ST_DONE && c.dest === null) return;
  const d = c.dest;
  if (d !== null) {
    if (c.state === ST_ESTABLISHED) d.active -= 1;
    else if (c.state === ST_HALF_CLOSED) d.inactive -= 1;
    else if (c.state === ST_CONNECTING && c.backend === null && c.tried?.includes(d) !== true) d.active -= 1;
  }
  c.state = ST_DONE;
  c.dest = null;
  if (c.template !== null && c.svc.persistence !== null) c.svc.persistence.release(c.template, performance.now());
  c.template = null;
}

// ---------------------------------------------------------------- UDP

interface Flow {
  address: string;
  port: number;
  dest: Dest;
  sock: dgram.Socket;
  lastSeen: number;
  template: Template<Dest> | null;
}

const kFlow = Symbol('vigil.forwarder.flow');
type FlowSocket = dgram.Socket & { [kFlow]: Flow; [kListener]: UdpListener };
const kListener = Symbol('vigil.forwarder.listener');

class UdpListener {
  readonly flows = new Map<string, Flow>();
  constructor(
    readonly engine: Engine,
    readonly svc: Service,
    readonly sock: dgram.Socket,
  ) {}

  onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const k = `${rinfo.address} ${rinfo.port}`;
    let flow = this.flows.get(k);
    const now = performance.now();
    if (flow !== undefined && !flow.dest.inTable) {
      this.closeFlow(k, flow, now); // its real server left the table: schedule again
      flow = undefined;
    }
    if (flow === undefined) {
      const created = this.newFlow(k, rinfo, now);
      if (created === null) return;
      flow = created;
    }
    flow.lastSeen = now;
    flow.dest.packetsIn += 1;
    flow.dest.bytesIn += msg.length;
    flow.sock.send(msg, flow.dest.port, flow.dest.address);
  }

  private newFlow(k: string, rinfo: dgram.RemoteInfo, now: number): Flow | null {
    const svc = this.svc;
    const e = this.engine;
    const clientKey = svc.persistence !== null ? svc.masker(rinfo.address) : null;
    const dest = e.schedule(svc, clientKey, e.pickContext(svc, rinfo.address, rinfo.port), null, now);
    if (dest === null) {
      svc.noRealServer += 1;
      return null;
    }
    const template = e.scheduledTemplate;
    const sock = dgram.createSocket(net.isIPv6(dest.address) ? 'udp6' : 'udp4') as FlowSocket;
    const flow: Flow = { address: rinfo.address, port: rinfo.port, dest, sock, lastSeen: now, template };
    sock[kFlow] = flow;
    sock[kListener] = this;
    sock.on('message', onFlowReply);
    sock.on('error', onFlowError);
    // Unconnected (a connect() would not be done before the first send); replies are
    // accepted only from the real server.
    dest.connections += 1;
    dest.inactive += 1;
    this.flows.set(k, flow);
    return flow;
  }

  closeFlow(k: string, flow: Flow, now: number): void {
    if (this.flows.get(k) !== flow) return;
    this.flows.delete(k);
    flow.dest.inactive -= 1;
    if (flow.template !== null && this.svc.persistence !== null) this.svc.persistence.release(flow.template, now);
    try {
      flow.sock.close();
    } catch {
      // already closed
    }
  }

  sweep(now: number, idleMs: number): void {
    for (const [k, f] of this.flows) if (now - f.lastSeen >= idleMs) this.closeFlow(k, f, now);
  }

  close(): void {
    const now = performance.now();
    for (const [k, f] of this.flows) this.closeFlow(k, f, now);
    try {
      this.sock.close();
    } catch {
      // already closed
    }
  }
}

function onFlowReply(this: FlowSocket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
  const f = this[kFlow];
  if (rinfo.port !== f.dest.port || unmapV4(rinfo.address) !== f.dest.address) return;
  f.lastSeen = performance.now();
  f.dest.packetsOut += 1;
  f.dest.bytesOut += msg.length;
  this[kListener].sock.send(msg, f.port, f.address);
}

function onFlowError(this: FlowSocket, err: NodeJS.ErrnoException): void {
  const f = this[kFlow];
  const l = this[kListener];
  f.dest.connectFailures += 1;
  l.engine.events.connectFailure(l.svc.def.key, f.dest.address, f.dest.port, err.code ?? err.message);
  l.closeFlow(`${f.address} ${f.port}`, f, performance.now());
}

// ---------------------------------------------------------------- the engine

export interface ServiceSnapshot {
  key: string;
  retries: number;
  noRealServer: number;
  dests: [string, DestCounters][];
}

/** raw: libuv handles directly (tcp-raw.ts, the fast path); stream: net.Socket (the fallback). */
export type TcpMode = 'raw' | 'stream';

export function defaultTcpMode(env: NodeJS.ProcessEnv = process.env): TcpMode {
  return rawAvailable && env.VIGIL_FORWARDER_TCP !== 'stream' ? 'raw' : 'stream';
}

export class Engine implements RawHost<Dest, Service> {
  readonly services = new Map<string, Service>();
  readonly rawConns = new ConnList();
  readonly connecting = new ConnectQueue();
  private listenKeys = new Set<string>();
  private udpOwner = true;
  private sweepTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    public settings: EngineSettings,
    readonly events: EngineEvents,
    readonly tcpMode: TcpMode = defaultTcpMode(),
  ) {}

  // ---- RawHost (the fast path calls back into scheduling and accounting)

  /** The persistence template of the last schedule() (a field, not a tuple: one allocation less per connection). */
  scheduledTemplate: Template<Dest> | null = null;

  scheduleFor(svc: Service, clientKey: string | null, ctx: PickContext, tried: Dest[] | null): Dest | null {
    // the clock is read only for persistence templates (a native call per connection otherwise)
    return this.schedule(svc, clientKey, ctx, tried, svc.persistence !== null && clientKey !== null ? performance.now() : 0);
  }

  connectFailed(svc: Service, dest: Dest, reason: string, clientKey: string | null, hadTemplate: boolean): void {
    dest.connectFailures += 1;
    if (hadTemplate && clientKey !== null) svc.persistence?.drop(clientKey);
    this.events.connectFailure(svc.def.key, dest.address, dest.port, reason);
  }

  countRetry(svc: Service): void {
    svc.retries += 1;
  }

  countUnschedulable(svc: Service): void {
    svc.noRealServer += 1;
  }

  release(svc: Service, t: Template<Dest>): void {
    svc.persistence?.release(t, performance.now());
  }

  /**
   * Replaces the table. Existing connections keep their real server whatever changes.
   * Resolves once every listener it opened is listening (or failed its first attempt).
   */
  setTable(table: readonly TableService[]): Promise<void> {
    const keep = new Set<string>();
    for (const def of table) {
      if (def.vip === undefined || def.port === undefined) continue; // fwmark: refused by the dataplane
      keep.add(def.key);
      let svc = this.services.get(def.key);
      if (svc === undefined) {
        svc = new Service(def);
        this.services.set(def.key, svc);
      } else if (svc.def.scheduler !== def.scheduler || flagsOf(svc.def) !== flagsOf(def)) svc.scheduler = newScheduler(def);
      svc.def = def;
      svc.vipFold = foldAddress(def.vip);
      if (def.persistence !== undefined) {
        const ms = def.persistence.timeoutS * 1000;
        if (svc.persistence === null || svc.def.persistence?.netmask !== def.persistence.netmask) svc.persistence = new PersistenceTable<Dest>(ms);
        svc.persistence.timeoutMs = ms;
        svc.masker = persistenceMasker(def.persistence.netmask);
      } else svc.persistence = null;
      const next: Dest[] = [];
      const inTable = new Set<string>();
      for (const r of def.realServers) {
        const id = realServerId(r.address, r.port);
        inTable.add(id);
        let d = svc.all.get(id);
        if (d === undefined) {
          d = new Dest(id, r.address, r.port, r.weight);
          svc.all.set(id, d);
        }
        d.weight = r.weight;
        d.configuredWeight = r.configuredWeight ?? 0;
        d.inTable = true;
        next.push(d);
      }
      for (const [id, d] of svc.all) {
        if (inTable.has(id)) continue;
        d.inTable = false;
        if (d.active + d.inactive === 0) svc.all.delete(id);
      }
      svc.dests = next;
      svc.scheduler.changed(next);
    }
    for (const [key, svc] of this.services) {
      if (keep.has(key)) continue;
      this.services.delete(key);
      svc.listenWanted = false;
      this.stopListening(svc);
      for (const d of svc.all.values()) d.inTable = false;
    }
    return this.syncListeners();
  }

  /** Listens on exactly these services (by key); UDP only when udpOwner (one worker owns UDP). */
  setListening(keys: Iterable<string>, udpOwner = this.udpOwner): Promise<void> {
    this.listenKeys = new Set(keys);
    this.udpOwner = udpOwner;
    return this.syncListeners();
  }

  start(): void {
    if (this.sweepTimer !== null || this.closed) return;
    const every = Math.max(50, Math.min(1000, Math.floor(this.settings.udpIdleTimeoutMs / 4)));
    this.sweepTimer = setInterval(() => this.sweep(performance.now()), every);
    this.sweepTimer.unref();
  }

  /** Stops listening; established connections are left to finish. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    for (const svc of this.services.values()) {
      svc.listenWanted = false;
      this.stopListening(svc);
    }
  }

  sweep(now: number): void {
    sweepIdle(this);
    for (const svc of this.services.values()) {
      svc.udp?.sweep(now, this.settings.udpIdleTimeoutMs);
      svc.persistence?.sweep(now);
      for (const [id, d] of svc.all) if (!d.inTable && d.active + d.inactive === 0) svc.all.delete(id);
    }
  }

  snapshot(): ServiceSnapshot[] {
    const out: ServiceSnapshot[] = [];
    for (const svc of this.services.values()) {
      const dests: [string, DestCounters][] = [];
      for (const d of svc.all.values()) {
        dests.push([
          d.id,
          {
            active: d.active,
            inactive: d.inactive,
            connections: d.connections,
            bytesIn: d.bytesIn,
            bytesOut: d.bytesOut,
            packetsIn: d.packetsIn,
            packetsOut: d.packetsOut,
            connectFailures: d.connectFailures,
          },
        ]);
      }
      out.push({ key: svc.def.key, retries: svc.retries, noRealServer: svc.noRealServer, dests });
    }
    return out;
  }

  /** A template made by another worker. */
  adoptTemplate(key: string, client: string, destId: string): void {
    const svc = this.services.get(key);
    const d = svc?.all.get(destId);
    if (svc?.persistence && d !== undefined && d.inTable) svc.persistence.adopt(client, d, performance.now());
  }

  // ---- scheduling

  pickContext(svc: Service, clientAddress: string, clientPort: number): PickContext {
    return { source: hashesSource(svc.scheduler) ? foldAddress(clientAddress) : 0, destination: svc.vipFold, sourcePort: clientPort };
  }

  /** Picks a real server (persistence first), skipping `tried`; null when none can take it. Its template: scheduledTemplate. */
  schedule(svc: Service, clientKey: string | null, ctx: PickContext, tried: Dest[] | null, now: number): Dest | null {
    const p = svc.persistence;
    if (p !== null && clientKey !== null) {
      const t = p.lookup(clientKey, now);
      if (t !== undefined) {
        const d = t.dest;
        if (d.inTable && d.weight > 0 && (tried === null || !tried.includes(d))) {
          this.scheduledTemplate = p.bind(clientKey, d, now);
          return d;
        }
        p.drop(clientKey);
      }
    }
    if (tried !== null) for (const d of tried) d.excluded = true;
    const i = svc.scheduler.pick(svc.dests, ctx);
    if (tried !== null) for (const d of tried) d.excluded = false;
    if (i < 0) return null;
    const dest = svc.dests[i] as Dest;
    if (p !== null && clientKey !== null) {
      this.events.template?.(svc.def.key, clientKey, dest.id);
      this.scheduledTemplate = p.bind(clientKey, dest, now);
      return dest;
    }
    this.scheduledTemplate = null;
    return dest;
  }

  // ---- TCP

  private onConnection(svc: Service, client: net.Socket): void {
    let clientKey: string | null = null;
    let ctx: PickContext = { source: 0, destination: svc.vipFold };
    if (svc.persistence !== null || hashesSource(svc.scheduler)) {
      // Only these need the client's address (getpeername is a system call).
      const addr = client.remoteAddress;
      if (addr === undefined) {
        client.destroy();
        return;
      }
      clientKey = svc.persistence !== null ? svc.masker(addr) : null;
      ctx = this.pickContext(svc, addr, client.remotePort ?? 0);
    }
    const c = new TcpConn(this, svc, client, clientKey, ctx);
    (client as ConnSocket)[kConn] = c;
    client.on('error', noop);
    client.on('close', onClientClose);
    if (!this.connectTo(c)) {
      svc.noRealServer += 1;
      c.state = ST_DONE;
      reset(client);
    }
  }

  /** Schedules c and connects to the real server; false when none is available. */
  connectTo(c: TcpConn): boolean {
    const dest = this.schedule(c.svc, c.clientKey, c.ctx, c.tried, performance.now());
    if (dest === null) return false;
    const template = this.scheduledTemplate;
    c.dest = dest;
    c.template = template;
    c.state = ST_CONNECTING;
    dest.active += 1;
    dest.connections += 1;
    const b = net.connect({ host: dest.address, port: dest.port, allowHalfOpen: true, noDelay: true }) as ConnSocket;
    b[kConn] = c;
    c.backend = b;
    b.setTimeout(this.settings.connectTimeoutMs);
    b.on('timeout', onBackendTimeout);
    b.on('error', onBackendError);
    b.on('close', onBackendClose);
    b.once('connect', onBackendConnect);
    return true;
  }

  // ---- listeners

  private syncListeners(): Promise<void> {
    if (this.closed) return Promise.resolve();
    const opening: Promise<void>[] = [];
    for (const svc of this.services.values()) {
      const want = this.listenKeys.has(svc.def.key) && (svc.def.protocol === 'tcp' || this.udpOwner);
      svc.listenWanted = want;
      if (want) {
        opening.push(this.startListening(svc));
        this.fillAcceptHandles(svc); // max_accept may have changed
      } else this.stopListening(svc);
    }
    return Promise.all(opening).then(() => undefined);
  }

  /** Accepts svc's connections on h through the raw path. */
  private adopt(svc: Service, h: ListenHandle): boolean {
    return adoptListener(
      h,
      this,
      svc,
      () => svc.persistence !== null || hashesSource(svc.scheduler),
      (a) => (svc.persistence !== null ? svc.masker(a) : null),
      (a, port) => this.pickContext(svc, a, port),
    );
  }

  /** Asks for the descriptors svc's listener lacks (maxAccept), or closes those over it. */
  private fillAcceptHandles(svc: Service): void {
    const server = svc.tcp;
    if (server === null || !server.listening || this.tcpMode !== 'raw' || this.events.acceptHandles === undefined) return;
    const want = Math.max(0, this.settings.maxAccept - 1);
    while (svc.acceptExtra.length > want) svc.acceptExtra.pop()?.close();
    const need = want - svc.acceptExtra.length - svc.acceptPending;
    const h = serverHandle(server);
    if (need <= 0 || h === null) return;
    svc.acceptPending += need;
    this.events.acceptHandles(svc.def.key, svc.listenGen, h, need);
  }

  /**
   * One more descriptor of a service's listening socket (from the daemon, asked for by
   * fillAcceptHandles): polled and accepted on like the listener's own. One that comes
   * too late (the listener closed or reopened since, or no longer wanted) is closed.
   */
  addAcceptHandle(key: string, generation: number, h: ListenHandle): void {
    const svc = this.services.get(key);
    if (svc === undefined || svc.listenGen !== generation || svc.tcp === null || !svc.tcp.listening || this.closed) {
      h.close();
      return;
    }
    svc.acceptPending = Math.max(0, svc.acceptPending - 1);
    if (svc.acceptExtra.length >= this.settings.maxAccept - 1 || !this.adopt(svc, h)) {
      h.close();
      return;
    }
    const err = h.listen(LISTEN_BACKLOG);
    if (err !== 0) {
      h.close();
      this.events.listenError(key, `cannot poll another descriptor of the listening socket: ${getSystemErrorName(err)}`, true);
      return;
    }
    svc.acceptExtra.push(h);
  }

  /** Opens svc's listener; resolves when it listens or failed (failures are retried every second). */
  private startListening(svc: Service): Promise<void> {
    if (svc.tcp !== null || svc.udp !== null || svc.listenRetry !== null) return Promise.resolve();
    let settle: () => void = () => undefined;
    const done = new Promise<void>((r) => (settle = r));
    const { vip, port, key } = svc.def as Required<Pick<TableService, 'vip' | 'port' | 'key'>>;
    const fail = (err: Error): void => {
      settle();
      this.events.listenError(key, err.message);
      svc.tcp = null;
      svc.udp = null;
      if (!svc.listenWanted || this.closed) return;
      svc.listenRetry = setTimeout(() => {
        svc.listenRetry = null;
        if (svc.listenWanted && this.services.get(key) === svc) this.startListening(svc);
      }, 1000);
      svc.listenRetry.unref();
    };
    if (svc.def.protocol === 'tcp') {
      const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true });
      svc.tcp = server;
      server.on('connection', (sock: net.Socket) => this.onConnection(svc, sock));
      server.once('error', (err) => {
        if (svc.tcp === server) fail(err);
      });
      server.once('listening', settle);
      server.once('close', settle);
      if (this.tcpMode === 'raw') {
        server.once('listening', () => {
          const h = serverHandle(server);
          if (h !== null && this.adopt(svc, h)) this.fillAcceptHandles(svc);
        });
      }
      server.listen({ host: vip, port, backlog: LISTEN_BACKLOG });
    } else {
      const sock = dgram.createSocket({ type: net.isIPv6(vip) ? 'udp6' : 'udp4' });
      const l = new UdpListener(this, svc, sock);
      svc.udp = l;
      sock.on('message', (msg, rinfo) => l.onMessage(msg, rinfo));
      sock.once('error', (err) => {
        if (svc.udp === l) {
          l.close();
          fail(err);
        }
      });
      sock.once('listening', settle);
      sock.once('close', settle);
      sock.bind({ address: vip, port, exclusive: true });
    }
    return done;
  }

  private stopListening(svc: Service): void {
    if (svc.listenRetry !== null) clearTimeout(svc.listenRetry);
    svc.listenRetry = null;
    svc.listenGen += 1;
    svc.acceptPending = 0;
    for (const h of svc.acceptExtra.splice(0)) h.close();
    if (svc.tcp !== null) {
      const s = svc.tcp;
      svc.tcp = null;
      s.close();
    }
    if (svc.udp !== null) {
      const u = svc.udp;
      svc.udp = null;
      u.close();
    }
  }

  /** Actual listening addresses (tests listen on port 0). */
  addresses(): Map<string, net.AddressInfo> {
    const out = new Map<string, net.AddressInfo>();
    for (const svc of this.services.values()) {
      try {
        const a = svc.tcp?.address() ?? (svc.udp ? svc.udp.sock.address() : null);
        if (a !== null && a !== undefined && typeof a !== 'string') out.set(svc.def.key, a);
      } catch {
        // not bound yet
      }
    }
    return out;
  }
}
