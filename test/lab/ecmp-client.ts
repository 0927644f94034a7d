/**
 * The clients of the ECMP lab, behind the router: a stream of new TCP connections, a set
 * of UDP flows (fixed source ports, so each is one 5-tuple the router hashes to one
 * director) and a set of long-lived TCP connections. Runs in the client namespace until
 * SIGTERM or stdin closes, then prints one JSON report (see ClientReport) and exits.
 *
 *   node test/lab/ts-run.mjs test/lab/ecmp-client.ts HOST PORT STREAM_MS UDP_FLOWS UDP_MS LONG LONG_MS [SILENT_MS [CONNECT_MS]]
 *
 * STREAM_MS 0 = no stream; each new connection reads the greeting `RS DIRECTOR` and
 * closes; one without its greeting after CONNECT_MS (default 3000) failed. A UDP flow sends every UDP_MS and records each answer's director
 * and the gaps. A long-lived connection sends a line every LONG_MS and expects it back;
 * an error, close or SILENT_MS (default 3000) of silence breaks it. Prints `ready` when every long-lived
 * connection and UDP flow had its first answer, after a line `long-ports [...]` (the
 * local port of each long-lived connection). Times are epoch ms (comparable across
 * processes). While some are still waiting for their first answer, says which on stderr
 * every 10 s.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import type { ClientReport, FlowResult, LongResult } from './ecmp.js';

const [host, portArg, streamArg, flowsArg, udpMsArg, longArg, longMsArg, silentArg, connectArg] = process.argv.slice(2);
const port = Number(portArg);
const streamMs = Number(streamArg ?? 10);
const flows = Number(flowsArg ?? 0);
const udpMs = Number(udpMsArg ?? 10);
const longs = Number(longArg ?? 0);
const longMs = Number(longMsArg ?? 50);
const silentMs = Number(silentArg ?? 3000);
const connectMs = Number(connectArg ?? 3000);
if (!host || !(port > 0) || !(streamMs >= 0) || !(flows >= 0) || !(udpMs > 0) || !(longs >= 0) || !(longMs > 0) || !(silentMs > 0) || !(connectMs > 0)) {
  process.stderr.write('usage: ecmp-client.ts HOST PORT STREAM_MS UDP_FLOWS UDP_MS LONG LONG_MS [SILENT_MS [CONNECT_MS]]\n');
  process.exit(2);
}
const now = (): number => performance.timeOrigin + performance.now();

/**
 * Time this client was awake to read answers (ms). A stall of the whole machine (a qemu
 * TCG guest freezes for seconds) counts as one tick at most: after it, libuv runs the
 * timers before it reads the sockets, so a timeout judged on the wall clock fired on
 * every connection whose answer was already waiting (seen in the IPVS VM: 158 new
 * connections "failed" and long-lived ones turned "silent" on directors no event
 * touched). Timeouts and silence count awake time only.
 */
let awake = 0;
let lastTick = performance.now();
const connectsPending = new Set<{ since: number; fail: () => void }>();
setInterval(() => {
  const t = performance.now();
  awake += Math.min(t - lastTick, 100);
  lastTick = t;
  for (const c of connectsPending) if (awake - c.since > connectMs) c.fail();
}, 25).unref();

const report: ClientReport = { stream: [], flows: [], long: [] };
let pendingReady = flows + longs;
const waiting = setInterval(() => {
  const udp = report.flows.filter((f) => f.answers.length === 0).map((f) => f.id);
  const long = report.long.filter((l) => l.director === '' && l.brokenAt === null).map((l) => `${l.id}${l.port ? `:${l.port}` : ' (connecting)'}`);
  process.stderr.write(`still waiting for a first answer: UDP flows [${udp.join(' ')}], long-lived [${long.join(' ')}]\n`);
}, 10_000);
const readyOne = (): void => {
  pendingReady -= 1;
  if (pendingReady === 0) {
    clearInterval(waiting);
    // the local port of each long-lived connection, by id (to find it in IPVS tables)
    process.stdout.write(`long-ports ${JSON.stringify(report.long.map((l) => l.port))}\n`);
    process.stdout.write('ready\n');
  }
};
if (pendingReady === 0) {
  clearInterval(waiting);
  process.stdout.write('ready\n');
}

// ---- stream of new connections
let streamTimer: NodeJS.Timeout | undefined;
if (streamMs > 0) {
  streamTimer = setInterval(() => {
    const at = now();
    let buf = '';
    let done = false;
    const sock = connect({ host, port, noDelay: true });
    const finish = (ok: boolean, error?: string): void => {
      if (done) return;
      done = true;
      connectsPending.delete(pending);
      sock.destroy();
      const director = ok ? (buf.split('\n')[0]?.split(' ')[1] ?? '?') : '';
      const end = now();
      report.stream.push(error ? { at, end, ok, director, error } : { at, end, ok, director });
    };
    const pending = { since: awake, fail: () => finish(false, 'timeout') };
    connectsPending.add(pending);
    sock.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('\n')) finish(true);
    });
    sock.on('error', (e: NodeJS.ErrnoException) => finish(false, e.code ?? e.message));
    sock.on('close', () => finish(false, 'closed'));
  }, streamMs);
}

// ---- UDP flows
const udpSockets: UdpSocket[] = [];
const udpTimers: NodeJS.Timeout[] = [];
for (let i = 0; i < flows; i++) {
  const flow: FlowResult = { id: i, answers: [] };
  report.flows.push(flow);
  const s = createSocket('udp4');
  udpSockets.push(s);
  let first = true;
  s.on('message', (m) => {
    flow.answers.push([now(), m.toString().split(' ')[1] ?? '?']);
    if (first) {
      first = false;
      readyOne();
    }
  });
  s.on('error', () => undefined);
  s.connect(port, host, () => {
    udpTimers.push(setInterval(() => s.send(String(i), () => undefined), udpMs));
  });
}

// ---- long-lived connections
const longSockets: Socket[] = [];
for (let i = 0; i < longs; i++) {
  const r: LongResult = { id: i, director: '', port: 0, brokenAt: null, error: null };
  report.long.push(r);
  const sock = connect({ host, port, noDelay: true });
  longSockets.push(sock);
  let buf = '';
  let lastAnswer = awake;
  let greeted = false;
  let timer: NodeJS.Timeout | undefined;
  const brk = (error: string): void => {
    if (r.brokenAt !== null || stopping) return;
    r.brokenAt = now();
    r.error = error;
    if (timer) clearInterval(timer);
    if (!greeted) readyOne();
    sock.destroy();
  };
  sock.on('connect', () => (r.port = sock.localPort ?? 0));
  sock.on('data', (d) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      lastAnswer = awake;
      if (!greeted) {
        greeted = true;
        r.director = line.split(' ')[1] ?? '?';
        readyOne();
        timer = setInterval(() => {
          if (awake - lastAnswer > silentMs) return brk('silent');
          sock.write('p\n');
        }, longMs);
      }
    }
  });
  sock.on('error', (e: NodeJS.ErrnoException) => brk(e.code ?? e.message));
  sock.on('close', () => brk('closed'));
}

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  if (streamTimer) clearInterval(streamTimer);
  for (const t of udpTimers) clearInterval(t);
  // answers already on their way are still counted
  setTimeout(() => {
    for (const s of udpSockets) s.close();
    for (const s of longSockets) s.destroy();
    process.stdout.write(`${JSON.stringify(report)}\n`, () => process.exit(0));
  }, 300);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
