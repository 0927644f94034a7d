/**
 * Starting the lab's responders (one per director, answering with its name) and the
 * client's prober, and collecting the prober's timeline.
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Lab } from './lab.js';
import { LabError } from './netns.js';
import { lastAnswer, parseProbeLine, type ProbeEvent } from './timeline.js';

const TS_RUN = fileURLToPath(new URL('./ts-run.mjs', import.meta.url));
const RESPONDER = fileURLToPath(new URL('./responder.ts', import.meta.url));
const PROBER = fileURLToPath(new URL('./prober.ts', import.meta.url));

/**
 * The prober and the responders are the measuring instrument (on real networks they run on
 * other machines): they run at nice -10 so a busy, shared machine delays them less than it
 * delays the system under test. vigil itself runs at the default priority, as deployed.
 */
const INSTRUMENT = ['nice', '-n', '-10'];

/** TCP port the responders listen on and the prober connects to. */
export const SERVICE_PORT = 7070;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves when the child prints `ready`; rejects when it exits first or takes longer than `ms`. */
function waitReady(child: ChildProcess, what: string, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = '';
    let err = '';
    const timer = setTimeout(() => fail(new LabError('LAB_START', `${what} not ready after ${ms} ms: ${err.trim()}`)), ms);
    const onData = (d: Buffer): void => {
      buf += d.toString();
      if (/^ready$/m.test(buf)) {
        cleanup();
        resolve();
      }
    };
    const onErr = (d: Buffer): void => {
      err += d.toString();
    };
    const onExit = (code: number | null, sig: string | null): void => fail(new LabError('LAB_START', `${what} exited (${code ?? sig}) before ready: ${err.trim()}`));
    const fail = (e: Error): void => {
      cleanup();
      reject(e);
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onErr);
      child.off('exit', onExit);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onErr);
    child.once('exit', onExit);
  });
}

const responders = new WeakMap<Lab, Map<string, ChildProcess>>();

async function startResponder(lab: Lab, name: string, port: number): Promise<ChildProcess> {
  const ns = lab.nsOf(name);
  const child = lab.spawn(ns, [...INSTRUMENT, 'node', TS_RUN, RESPONDER, name, String(port)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let map = responders.get(lab);
  if (!map) responders.set(lab, (map = new Map()));
  map.set(name, child);
  await waitReady(child, `responder in ${ns}`, 20_000);
  return child;
}

/** Starts the name responder in every director (and real server) namespace. */
export async function startResponders(lab: Lab, port = SERVICE_PORT): Promise<ChildProcess[]> {
  return Promise.all([...lab.directors, ...lab.realServers].map((h) => startResponder(lab, h.name, port)));
}

/**
 * Restarts one host's responder: its TCP connections (and whatever state the kernel kept
 * for them) are gone, as after a reboot.
 */
export async function restartResponder(lab: Lab, name: string, port = SERVICE_PORT): Promise<void> {
  const old = responders.get(lab)?.get(name);
  if (old && old.exitCode === null && old.signalCode === null) {
    const gone = new Promise<void>((r) => old.once('exit', () => r()));
    old.kill('SIGKILL');
    await gone;
  }
  await startResponder(lab, name, port);
}

export interface ProberOptions {
  host?: string;
  port?: number;
  intervalMs?: number;
  timeoutMs?: number;
}

/** The client's prober: connects to the VIP every few ms; `events` is its timeline so far. */
export class Prober {
  readonly events: ProbeEvent[] = [];
  private child: ChildProcess | undefined;
  private partial = '';
  private waiters: Array<() => void> = [];

  constructor(
    private readonly lab: Lab,
    private readonly opts: ProberOptions = {},
  ) {}

  async start(): Promise<void> {
    if (this.child) return;
    const o = this.opts;
    const argv = [...INSTRUMENT, 'node', TS_RUN, PROBER, o.host ?? this.lab.vip, String(o.port ?? SERVICE_PORT), String(o.intervalMs ?? 5), String(o.timeoutMs ?? 100)];
    const child = this.lab.spawn(this.lab.client.ns, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout?.on('data', (d: Buffer) => this.onData(d.toString()));
    await waitReady(child, 'prober', 20_000);
  }

  private onData(s: string): void {
    const text = this.partial + s;
    const lines = text.split('\n');
    this.partial = lines.pop() ?? '';
    for (const l of lines) {
      const e = parseProbeLine(l);
      if (e) this.events.push(e);
    }
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Drops the timeline collected so far (between benchmark runs). */
  clear(): void {
    this.events.length = 0;
  }

  /** The director that answered last. */
  lastName(): string | undefined {
    return lastAnswer(this.events)?.name;
  }

  /**
   * Waits until the timeline holds `n` answers from `name` after `since` (epoch ms), in a
   * row at the end of the timeline; resolves with the first of them, rejects after `ms`.
   */
  async waitForAnswers(name: string, opts: { since?: number; count?: number; timeoutMs?: number } = {}): Promise<number> {
    const since = opts.since ?? 0;
    const count = opts.count ?? 3;
    const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
    for (;;) {
      const tail = this.events.filter((e) => e.kind === 'answer' && e.at >= since);
      let run = 0;
      for (let i = tail.length - 1; i >= 0 && (tail[i] as Extract<ProbeEvent, { kind: 'answer' }>).name === name; i--) run += 1;
      if (run >= count) return (tail[tail.length - run] as ProbeEvent).at;
      const left = deadline - Date.now();
      if (left <= 0) {
        const seen = [...new Set(tail.map((e) => (e.kind === 'answer' ? e.name : '')))].join(', ') || 'no answers';
        throw new LabError('LAB_TIMEOUT', `client did not reach ${name} on ${this.opts.host ?? this.lab.vip} within ${opts.timeoutMs ?? 10_000} ms (saw: ${seen}; last: ${this.lastName() ?? 'none'})`);
      }
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), sleep(Math.min(left, 50))]);
    }
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (!c) return;
    this.child = undefined;
    if (c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGTERM');
    await Promise.race([exited, sleep(2000)]);
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
}
