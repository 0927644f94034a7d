/**
 * The fast TCP path: the proxy drives libuv's TCP handles directly (node's `tcp_wrap`
 * and `stream_wrap` bindings, the layer under net.Socket) instead of two net.Socket
 * streams per connection. Per connection that saves two Duplex streams, their state
 * objects, a dozen listeners and the stream machinery on every chunk; a chunk read is
 * handed to writeBuffer() on the other handle as is. A write that completes at once
 * (the usual case) allocates nothing: the request object is reused until libuv has to
 * queue one.
 *
 *   accept ─► schedule ─► connect ─ok─► readStart both ─► onread → writeBuffer (other side)
 *                ▲            └─fail─► report, retry (≤ connect_retries) or RST the client
 *                └────────────────────┘
 *   queued bytes on one side > HIGH_WATER → readStop the other until they are written
 *   EOF from one side → shutdown() of the other once its writes are out (half-close)
 *   both EOFs passed → close both; an error or the idle timeout → RST both
 *
 * engine.ts falls back to net.Socket (stream mode) when the bindings are unavailable.
 */
import { getSystemErrorName } from 'node:util';
import type { PickContext } from './schedulers.js';
import type { Template } from './persistence.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
interface TcpHandle {
  onread: (ab?: ArrayBuffer) => unknown;
  useUserBuffer(buf: Uint8Array): void;
  onconnection: ((err: number, h: TcpHandle) => void) | null;
  readStart(): number;
  readStop(): number;
  writeBuffer(req: WriteReq, buf: Uint8Array): number;
  shutdown(req: ShutdownReq): number;
  close(cb?: () => void): void;
  reset(cb?: () => void): number;
  setNoDelay(on: boolean): number;
  connect(req: unknown, address: string, port: number): number;
  connect6(req: unknown, address: string, port: number): number;
  getpeername(out: { address?: string; port?: number; family?: string }): number;
  listen(backlog: number): number;
  writeQueueSize: number;
  [kConn]?: RawConn;
}
interface WriteReq {
  handle: TcpHandle;
  oncomplete: (this: WriteReq, status: number) => void;
  async: boolean;
  buffer: Uint8Array | null;
  conn: RawConn | null;
  /** The handle whose reads fed this write (paused while the write queue is long). */
  src: TcpHandle | null;
}
interface ShutdownReq {
  handle: TcpHandle;
  oncomplete: (this: ShutdownReq, status: number) => void;
  conn: RawConn | null;
}

interface Bindings {
  TCP: new (type: number) => TcpHandle;
  TCPConnectWrap: new () => { oncomplete: unknown };
  SOCKET: number;
  WriteWrap: new () => WriteReq;
  ShutdownWrap: new () => ShutdownReq;
  state: Int32Array;
  kReadBytesOrError: number;
  kArrayBufferOffset: number;
  kLastWriteWasAsync: number;
}

function loadBindings(): Bindings | null {
  try {
    const binding = (process as any).binding as (name: string) => any;
    const tcp = binding('tcp_wrap');
    const stream = binding('stream_wrap');
    if (typeof tcp.TCP !== 'function' || !(stream.streamBaseState instanceof Int32Array)) return null;
    if (typeof tcp.TCP.prototype.reset !== 'function' || typeof stream.WriteWrap !== 'function') return null;
    return {
      TCP: tcp.TCP,
      TCPConnectWrap: tcp.TCPConnectWrap,
      SOCKET: tcp.constants.SOCKET,
      WriteWrap: stream.WriteWrap,
      ShutdownWrap: stream.ShutdownWrap,
      state: stream.streamBaseState,
      kReadBytesOrError: stream.kReadBytesOrError,
      kArrayBufferOffset: stream.kArrayBufferOffset,
      kLastWriteWasAsync: stream.kLastWriteWasAsync,
    };
  } catch {
    return null;
  }
}

const B = loadBindings();
export const rawAvailable = B !== null;

/**
 * The connect callback, on the request class's prototype rather than on each request (a
 * property store and a backing store per connection less). net.Socket, the fallback path,
 * sets its own `oncomplete` on each request, which shadows this one.
 */
function installConnectCallback(b: Bindings): void {
  const proto = b.TCPConnectWrap.prototype as { oncomplete?: unknown };
  if (proto.oncomplete === undefined) Object.defineProperty(proto, 'oncomplete', { value: afterConnect, writable: true, configurable: true });
}

const UV_EOF = -4095;
/**
 * Per-side read buffer: 16 KiB (HAProxy's default tune.bufsize), grown to 64 KiB for a
 * side whose reads fill it (a bulk transfer: 4× fewer reads and writes per byte).
 */
const READ_BUFFER = 16 * 1024;
const BULK_BUFFER = 64 * 1024;
/** Read buffers of closed connections, reused (short connections would otherwise allocate 32 KiB each). */
const bufferPool: Buffer[] = [];
const POOL_MAX = 1024;
function takeBuffer(): Buffer {
  return bufferPool.pop() ?? Buffer.allocUnsafeSlow(READ_BUFFER);
}
function giveBuffer(b: Buffer | null): void {
  if (b !== null && b.length === READ_BUFFER && bufferPool.length < POOL_MAX) bufferPool.push(b);
}

/** The buffer for the next read: a fresh one if the last write kept it, a bigger one when it was full. */
function nextBuffer(queued: boolean, buf: Buffer, n: number): Buffer | undefined {
  if (n === buf.length && buf.length < BULK_BUFFER) {
    if (!queued) giveBuffer(buf);
    return Buffer.allocUnsafeSlow(BULK_BUFFER);
  }
  if (!queued) return undefined;
  return buf.length === READ_BUFFER ? takeBuffer() : Buffer.allocUnsafeSlow(buf.length);
}
/** Bytes queued on one side before reading from the other side stops. */
const HIGH_WATER = 256 * 1024;

const kConn = Symbol('vigil.forwarder.raw');

/** What the raw path needs from a real server (engine.ts's Dest). */
export interface RawDest {
  readonly address: string;
  readonly port: number;
  /** The address is IPv6 (connect6). */
  readonly v6: boolean;
  active: number;
  inactive: number;
  connections: number;
  bytesIn: number;
  bytesOut: number;
  connectFailures: number;
}

/** What the raw path needs from the engine. */
export interface RawHost<D extends RawDest, S> {
  settings: { connectTimeoutMs: number; connectRetries: number; tcpIdleTimeoutMs: number };
  readonly rawConns: ConnList;
  /** Connects in flight, oldest first (one timeout for all, so also soonest deadline first). */
  readonly connecting: ConnectQueue;
  /** Schedules (persistence first); null when no real server can take the connection. Its template: scheduledTemplate. */
  scheduleFor(svc: S, clientKey: string | null, ctx: PickContext, tried: D[] | null): D | null;
  readonly scheduledTemplate: Template<D> | null;
  connectFailed(svc: S, dest: D, reason: string, clientKey: string | null, hadTemplate: boolean): void;
  countRetry(svc: S): void;
  countUnschedulable(svc: S): void;
  release(svc: S, t: Template<D>): void;
}

const ST_CONNECTING = 0;
const ST_ESTABLISHED = 1;
const ST_HALF_CLOSED = 2;
const ST_DONE = 3;

/** Coarse monotonic clock for idle timeouts (one shared timer; reads never call the clock). */
let coarseNow = performance.now();
let coarseTimer: NodeJS.Timeout | null = null;
function startCoarseClock(): void {
  if (coarseTimer !== null) return;
  coarseTimer = setInterval(() => {
    coarseNow = performance.now();
  }, 250);
  coarseTimer.unref();
}

/**
 * Connect timeouts without a timer per connection: connects are queued in start order,
 * which is deadline order, and one timer is armed for the oldest. A connect that finishes
 * empties its slot at once (remove()), so the queue holds only connects in flight.
 */
export class ConnectQueue {
  private items: (RawConn | null)[] = [];
  private head = 0;
  /** The absolute position of items[0] (slots are absolute, so compaction keeps them valid). */
  private base = 0;
  private timer: NodeJS.Timeout | null = null;

  add(c: RawConn, now: number, timeoutMs: number): void {
    c.deadline = now + timeoutMs;
    c.queued = true;
    c.attempt += 1;
    c.queueSlot = this.base + this.items.length;
    this.items.push(c);
    if (this.timer === null) this.arm(timeoutMs);
  }

  /**
   * The connect finished (or the connection closed): drop the queue's reference now. Left
   * until its deadline came up, every connection of the last connect_timeout_ms stayed
   * reachable, survived two scavenges and went to the old space, to be freed by
   * mark-compacts (measured: the old space grew ~4 MB per scavenge under new-connection load).
   */
  remove(c: RawConn): void {
    if (!c.queued) return;
    c.queued = false;
    const i = c.queueSlot - this.base;
    if (i >= this.head && i < this.items.length && this.items[i] === c) this.items[i] = null;
  }

  /** Connects still referenced by the queue (for tests; walks the queue). */
  get waiting(): number {
    let n = 0;
    for (let i = this.head; i < this.items.length; i++) if (this.items[i] != null) n += 1;
    return n;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.expire(), Math.max(1, ms));
    this.timer.unref();
  }

  private expire(): void {
    this.timer = null;
    const now = performance.now();
    while (this.head < this.items.length) {
      const c = this.items[this.head];
      // a filled slot is the connection's current attempt: a finished or failed connect
      // empties its slot (remove(), or this loop) before a retry takes a new one
      if (c !== null && c !== undefined && c.queued) {
        if (c.deadline > now) break;
        // Decide after this loop turn's I/O: when the event loop was stalled, the connect
        // may have completed and only waits to be seen (timers run before the poll phase).
        setImmediate(timeoutIfStillConnecting, c, c.attempt);
      }
      this.items[this.head] = null;
      this.head += 1;
    }
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.base += this.head;
      this.head = 0;
    }
    if (this.head >= this.items.length) {
      this.base += this.items.length;
      this.items.length = 0;
      this.head = 0;
      return;
    }
    this.arm((this.items[this.head] as RawConn).deadline - now);
  }

  close(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.base += this.items.length;
    this.items = [];
    this.head = 0;
  }
}

function timeoutIfStillConnecting(c: RawConn, attempt: number): void {
  if (c.queued && c.attempt === attempt && c.state === ST_CONNECTING && !c.closed) {
    c.queued = false;
    connectFailed(c, 'connect timeout');
  }
}

/**
 * The open connections, as a list threaded through the connections themselves: adding
 * and removing one allocates nothing (a Set rehashes as the count moves up and down).
 */
export class ConnList {
  head: RawConn | null = null;

  add(c: RawConn): void {
    c.prev = null;
    c.next = this.head;
    if (this.head !== null) this.head.prev = c;
    this.head = c;
  }

  delete(c: RawConn): void {
    if (c.prev === null && this.head !== c) return; // not in the list
    if (c.prev !== null) c.prev.next = c.next;
    else this.head = c.next;
    if (c.next !== null) c.next.prev = c.prev;
    c.prev = c.next = null;
  }
}

export class RawConn {
  prev: RawConn | null = null;
  next: RawConn | null = null;
  backend: TcpHandle | null = null;
  dest: RawDest | null = null;
  template: Template<any> | null = null;
  tried: RawDest[] | null = null;
  state = ST_CONNECTING;
  /** An immediate connect error, reported on the next tick. */
  timer: NodeJS.Timeout | null = null;
  /** In the host's connect queue (cleared when the connect completes). */
  queued = false;
  /** Its slot in the connect queue while queued. */
  queueSlot = 0;
  deadline = 0;
  attempt = 0;
  lastActive = coarseNow;
  clientEof = false;
  backendEof = false;
  clientShut = false;
  backendShut = false;
  /** Bytes queued (async writes) towards the client / the backend. */
  toClient = 0;
  toBackend = 0;
  closed = false;
  /** The buffers libuv reads into (one per side); replaced when a write still holds one. */
  clientBuf: Buffer | null = null;
  backendBuf: Buffer | null = null;
  /**
   * The last view handed to a write and the buffer it is of: request/response traffic
   * repeats sizes, and a write that completed at once leaves the view free to reuse (a
   * queued write took the buffer along, and the next read is into another one).
   */
  clientView: Buffer | null = null;
  clientViewOf: Buffer | null = null;
  backendView: Buffer | null = null;
  backendViewOf: Buffer | null = null;
  constructor(
    readonly host: RawHost<any, any>,
    readonly svc: unknown,
    readonly client: TcpHandle,
    readonly clientKey: string | null,
    readonly ctx: PickContext,
  ) {}
}

let spareWrite: WriteReq | null = null;
function takeWriteReq(): WriteReq {
  const b = B as Bindings;
  if (spareWrite !== null) return spareWrite;
  const r = new b.WriteWrap();
  r.oncomplete = afterWrite;
  r.async = false;
  r.buffer = null;
  r.conn = null;
  r.src = null;
  spareWrite = r;
  return r;
}

function noop(): void {}

/**
 * Writes buf to dst; pauses src when dst's queue grows past the high-water mark.
 * True when libuv queued (part of) it: buf is then still in use.
 */
function write(c: RawConn, dst: TcpHandle, src: TcpHandle, buf: Uint8Array): boolean {
  const b = B as Bindings;
  const req = takeWriteReq();
  req.handle = dst;
  const err = dst.writeBuffer(req, buf);
  if (err !== 0) {
    abort(c);
    return false;
  }
  if (b.state[b.kLastWriteWasAsync] !== 0) {
    // libuv queued (part of) it: the request now belongs to this write.
    spareWrite = null;
    req.buffer = buf;
    req.conn = c;
    req.src = src;
    const n = buf.byteLength;
    if (dst === c.client) c.toClient += n;
    else c.toBackend += n;
    (req as WriteReq & { bytes: number }).bytes = n;
    if (dst.writeQueueSize > HIGH_WATER) src.readStop();
    return true;
  }
  return false;
}

function afterWrite(this: WriteReq, status: number): void {
  const c = this.conn as RawConn;
  const dst = this.handle;
  const n = (this as WriteReq & { bytes: number }).bytes;
  this.buffer = null;
  this.conn = null;
  if (dst === c.client) c.toClient -= n;
  else c.toBackend -= n;
  if (c.closed) return;
  if (status < 0) {
    abort(c);
    return;
  }
  const src = this.src;
  this.src = null;
  // Resume the reader once the queue is well down (and it has not reached EOF).
  if (src !== null && dst.writeQueueSize <= HIGH_WATER / 2) {
    const srcEof = src === c.client ? c.clientEof : c.backendEof;
    if (!srcEof) src.readStart();
  }
}

function shutdown(c: RawConn, h: TcpHandle): void {
  const b = B as Bindings;
  const req = new b.ShutdownWrap();
  req.handle = h;
  req.conn = c;
  req.oncomplete = afterShutdown;
  if (h.shutdown(req) !== 0) abort(c);
}

function afterShutdown(this: ShutdownReq, status: number): void {
  const c = this.conn as RawConn;
  this.conn = null;
  if (c.closed) return;
  if (status < 0 && status !== -107 /* ENOTCONN: the peer is gone already */) {
    abort(c);
    return;
  }
  if (this.handle === c.client) c.clientShut = true;
  else c.backendShut = true;
  if (c.clientShut && c.backendShut) closeBoth(c, false);
}

function halfClose(c: RawConn): void {
  if (c.state === ST_ESTABLISHED) {
    c.state = ST_HALF_CLOSED;
    const d = c.dest as RawDest;
    d.active -= 1;
    d.inactive += 1;
  }
}

/*
 * Reads land in the connection's own buffer (useUserBuffer): no allocation per read. When
 * the write of a chunk had to be queued, the buffer belongs to that write now, and onread
 * returns a fresh one for libuv to read into next.
 */
function onClientRead(this: TcpHandle): Buffer | undefined {
  const c = this[kConn] as RawConn;
  const b = B as Bindings;
  const n = b.state[b.kReadBytesOrError] as number;
  if (n > 0) {
    c.lastActive = coarseNow;
    (c.dest as RawDest).bytesIn += n;
    const buf = c.clientBuf as Buffer;
    let view = c.clientView;
    if (view === null || view.length !== n || c.clientViewOf !== buf) {
      view = c.clientView = buf.subarray(0, n);
      c.clientViewOf = buf;
    }
    const queued = write(c, c.backend as TcpHandle, this, view);
    if (c.closed) return undefined;
    const next = nextBuffer(queued, buf, n);
    if (next !== undefined) c.clientBuf = next;
    return next;
  }
  if (n === 0) return undefined;
  if (n === UV_EOF) {
    c.clientEof = true;
    halfClose(c);
    finishSide(c, c.backend as TcpHandle);
    return undefined;
  }
  abort(c);
  return undefined;
}

/** One side sent its FIN: pass it on, or close at once when both FINs passed and nothing is queued. */
function finishSide(c: RawConn, other: TcpHandle): void {
  if (c.clientEof && c.backendEof && c.client.writeQueueSize === 0 && (c.backend as TcpHandle).writeQueueSize === 0) closeBoth(c, false);
  else shutdown(c, other);
}

function onBackendRead(this: TcpHandle): Buffer | undefined {
  const c = this[kConn] as RawConn;
  const b = B as Bindings;
  const n = b.state[b.kReadBytesOrError] as number;
  if (n > 0) {
    c.lastActive = coarseNow;
    (c.dest as RawDest).bytesOut += n;
    const buf = c.backendBuf as Buffer;
    let view = c.backendView;
    if (view === null || view.length !== n || c.backendViewOf !== buf) {
      view = c.backendView = buf.subarray(0, n);
      c.backendViewOf = buf;
    }
    const queued = write(c, c.client, this, view);
    if (c.closed) return undefined;
    const next = nextBuffer(queued, buf, n);
    if (next !== undefined) c.backendBuf = next;
    return next;
  }
  if (n === 0) return undefined;
  if (n === UV_EOF) {
    c.backendEof = true;
    halfClose(c);
    finishSide(c, c.client);
    return undefined;
  }
  abort(c);
  return undefined;
}

/** Both directions are finished: close both handles. reset: RST instead of a clean close. */
function closeBoth(c: RawConn, reset: boolean): void {
  if (c.closed) return;
  c.closed = true;
  c.host.connecting.remove(c);
  if (c.timer !== null) clearTimeout(c.timer);
  c.timer = null;
  c.host.rawConns.delete(c);
  const cl = c.client;
  if (reset) cl.reset();
  else cl.close();
  const be = c.backend;
  if (be !== null) {
    c.backend = null;
    if (reset && c.state !== ST_CONNECTING) be.reset();
    else be.close();
  }
  const d = c.dest;
  if (d !== null) {
    if (c.state === ST_ESTABLISHED || c.state === ST_CONNECTING) d.active -= 1;
    else if (c.state === ST_HALF_CLOSED) d.inactive -= 1;
  }
  c.dest = null;
  c.state = ST_DONE;
  // libuv reads into these no more (the handles are closing) and no queued write holds
  // them (a write that queued took its buffer along and left a fresh one here).
  giveBuffer(c.clientBuf);
  giveBuffer(c.backendBuf);
  c.clientBuf = null;
  c.backendBuf = null;
  c.clientView = c.clientViewOf = c.backendView = c.backendViewOf = null;
  if (c.template !== null) c.host.release(c.svc, c.template);
  c.template = null;
}

/** An error on either side (or the idle timeout): reset both, as IPVS passes an RST on. */
function abort(c: RawConn): void {
  closeBoth(c, true);
}

/** The idle sweep: resets connections without traffic for tcp_idle_timeout_ms. */
export function sweepIdle(host: RawHost<any, any>): void {
  startCoarseClock();
  const limit = coarseNow - host.settings.tcpIdleTimeoutMs;
  for (let c = host.rawConns.head; c !== null; ) {
    const next = c.next; // abort() unlinks c
    if (c.state !== ST_CONNECTING && c.lastActive < limit) abort(c);
    c = next;
  }
}

function afterConnect(status: number, handle: TcpHandle): void {
  const c = handle[kConn] as RawConn;
  if (c.backend !== handle || c.closed) return; // a retry replaced it, or the client went away
  c.host.connecting.remove(c);
  if (status < 0) {
    connectFailed(c, getSystemErrorName(status));
    return;
  }
  c.state = ST_ESTABLISHED;
  c.lastActive = coarseNow;
  c.clientBuf = takeBuffer();
  c.client.useUserBuffer(c.clientBuf);
  c.client.onread = onClientRead;
  if (c.client.readStart() !== 0) abort(c);
}

function connectFailed(c: RawConn, reason: string): void {
  const dest = c.dest as RawDest;
  const be = c.backend;
  c.backend = null;
  if (be !== null) {
    be.close();
  }
  dest.active -= 1;
  c.dest = null;
  const hadTemplate = c.template !== null;
  if (c.template !== null) c.host.release(c.svc, c.template);
  c.template = null;
  c.host.connectFailed(c.svc, dest, reason, c.clientKey, hadTemplate);
  (c.tried ??= []).push(dest);
  if (c.tried.length <= c.host.settings.connectRetries) {
    c.host.countRetry(c.svc);
    if (connect(c)) return;
  }
  c.state = ST_DONE;
  closeBoth(c, true);
}

/**
 * Schedules c and starts the connect; false when no real server can take it.
 *
 * The backend's reading starts with the connect, not after it: libuv then registers the
 * socket once for writable and readable and only narrows it when the connect completes.
 * Started afterwards, the socket (still in epoll from the connect) was re-added, refused
 * with EEXIST, then modified: one wasted epoll_ctl per connection. libuv reports the
 * connect before any read, so nothing is read from a backend before afterConnect.
 */
function connect(c: RawConn): boolean {
  const b = B as Bindings;
  const host = c.host;
  const dest = host.scheduleFor(c.svc, c.clientKey, c.ctx, c.tried) as RawDest | null;
  if (dest === null) return false;
  c.dest = dest;
  c.template = host.scheduledTemplate;
  c.state = ST_CONNECTING;
  dest.active += 1;
  dest.connections += 1;
  const h = new b.TCP(b.SOCKET);
  h[kConn] = c;
  c.backend = h;
  const err = dest.v6 ? h.connect6(new b.TCPConnectWrap(), dest.address, dest.port) : h.connect(new b.TCPConnectWrap(), dest.address, dest.port);
  if (err !== 0) {
    // Report on the next tick, as a refused connect would be.
    c.timer = setTimeout(failSoon, 0, c, getSystemErrorName(err));
    return true;
  }
  h.setNoDelay(true);
  c.backendBuf ??= takeBuffer();
  h.useUserBuffer(c.backendBuf);
  h.onread = onBackendRead;
  if (h.readStart() !== 0) {
    c.timer = setTimeout(failSoon, 0, c, 'read start failed');
    return true;
  }
  host.connecting.add(c, performance.now(), host.settings.connectTimeoutMs);
  return true;
}

function failSoon(c: RawConn, reason: string): void {
  c.timer = null;
  if (!c.closed && c.state === ST_CONNECTING) connectFailed(c, reason);
}

/** A listening TCP handle as the raw path sees it (a net.Server's `_handle`, or one received over IPC). */
export interface ListenHandle {
  listen(backlog: number): number;
  close(cb?: () => void): void;
}

/** The listening handle under a net.Server, when the raw path can drive it. */
export function serverHandle(server: object): ListenHandle | null {
  const h = (server as { _handle?: ListenHandle | null })._handle;
  return B !== null && h !== null && h !== undefined ? h : null;
}

/**
 * Takes over accepting on a listening handle: connections arrive as raw handles.
 * `needAddress`: whether scheduling needs the client's address (sh, persistence).
 */
export function adoptListener<S>(
  listener: ListenHandle,
  host: RawHost<any, S>,
  svc: S,
  needAddress: () => boolean,
  clientKeyOf: (address: string) => string | null,
  contextOf: (address: string, port: number) => PickContext,
): boolean {
  const handle = listener as unknown as TcpHandle;
  if (B === null) return false;
  startCoarseClock();
  installConnectCallback(B);
  // Accepted sockets inherit TCP_NODELAY from the listening socket (Linux copies the
  // option at accept): set once here instead of one setsockopt per connection.
  handle.setNoDelay(true);
  const peer: { address?: string; port?: number; family?: string } = {};
  const noAddressCtx = contextOf('0.0.0.0', 0);
  handle.onconnection = (err: number, h: TcpHandle): void => {
    if (err !== 0 || h === undefined) return;
    let clientKey: string | null = null;
    let ctx = noAddressCtx;
    if (needAddress()) {
      peer.address = undefined;
      peer.port = undefined;
      h.getpeername(peer);
      const a = peer.address;
      if (a === undefined) {
        h.close();
        return;
      }
      clientKey = clientKeyOf(a);
      ctx = contextOf(a, peer.port ?? 0);
    }
    const c = new RawConn(host, svc, h, clientKey, ctx);
    h[kConn] = c;
    host.rawConns.add(c);
    if (!connect(c)) {
      host.countUnschedulable(svc);
      c.state = ST_DONE;
      closeBoth(c, true);
    }
  };
  return true;
}
