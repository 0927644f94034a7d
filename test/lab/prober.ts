/**
 * The lab's client: connects to HOST:PORT every INTERVAL_MS (default 5) and reads the
 * answering director's name; each attempt gives up after TIMEOUT_MS (default 100) so a
 * dead owner never stalls the timeline. Runs in the client namespace:
 *
 *   ip netns exec NS node test/lab/ts-run.mjs test/lab/prober.ts HOST PORT [INTERVAL_MS] [TIMEOUT_MS]
 *
 * Output, one line per attempt, times in epoch milliseconds with microseconds
 * (performance.timeOrigin + performance.now(), comparable across processes):
 *   ready
 *   a <answered-at> <started-at> <name>      an answer
 *   e <failed-at> <started-at> <code>        timeout, ECONNREFUSED, EHOSTUNREACH, ...
 * Attempts overlap (at most 256 in flight). Exits on SIGTERM/SIGINT or when stdin closes.
 */
import { connect } from 'node:net';

const [host, portArg, intervalArg, timeoutArg] = process.argv.slice(2);
const port = Number(portArg);
const intervalMs = Number(intervalArg ?? 5);
const timeoutMs = Number(timeoutArg ?? 100);
if (!host || !Number.isInteger(port) || !(intervalMs > 0) || !(timeoutMs > 0)) {
  process.stderr.write('usage: prober.ts HOST PORT [INTERVAL_MS] [TIMEOUT_MS]\n');
  process.exit(2);
}
const MAX_IN_FLIGHT = 256;
const now = (): number => performance.timeOrigin + performance.now();
const out: string[] = [];
let inFlight = 0;

function emit(line: string): void {
  out.push(line);
}

function attempt(): void {
  if (inFlight >= MAX_IN_FLIGHT) return;
  inFlight += 1;
  const started = now();
  let data = '';
  let done = false;
  const sock = connect({ host, port, noDelay: true });
  const finish = (line: string): void => {
    if (done) return;
    done = true;
    inFlight -= 1;
    clearTimeout(timer);
    sock.destroy();
    emit(line);
  };
  const timer = setTimeout(() => finish(`e ${now().toFixed(3)} ${started.toFixed(3)} timeout`), timeoutMs);
  sock.setEncoding('utf8');
  sock.on('data', (chunk: string) => {
    data += chunk;
    const nl = data.indexOf('\n');
    if (nl >= 0) finish(`a ${now().toFixed(3)} ${started.toFixed(3)} ${data.slice(0, nl).trim() || '?'}`);
  });
  sock.on('end', () => finish(data.trim() ? `a ${now().toFixed(3)} ${started.toFixed(3)} ${data.trim()}` : `e ${now().toFixed(3)} ${started.toFixed(3)} empty`));
  sock.on('error', (err: NodeJS.ErrnoException) => finish(`e ${now().toFixed(3)} ${started.toFixed(3)} ${err.code ?? 'error'}`));
}

// Self-correcting schedule: one attempt per interval, no burst to catch up after a stall.
let next = now();
function tick(): void {
  attempt();
  next += intervalMs;
  const t = now();
  if (next < t) next = t + intervalMs;
  setTimeout(tick, Math.max(0, next - t));
}
// Output is batched every 20 ms: one write per batch keeps the pipe cheap.
setInterval(() => {
  if (out.length === 0) return;
  process.stdout.write(`${out.join('\n')}\n`);
  out.length = 0;
}, 20);
const stop = (): void => {
  if (out.length > 0) process.stdout.write(`${out.join('\n')}\n`);
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
process.stdout.write('ready\n');
tick();
