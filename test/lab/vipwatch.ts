/**
 * Who owns the VIP, over time: one `ip -ts -o -4 monitor address` per director namespace,
 * each event stamped by `ip` itself when it reads the kernel's netlink message
 * (microseconds, wall clock, comparable with Date.now()). `ip` stamps on reading, not
 * the kernel on sending, so the monitor runs SCHED_FIFO 50 (above the cluster process's
 * SCHED_RR 10 and every hog): at nice -10 under stress-ng its stamps lagged 17–42 ms,
 * differently per namespace, and a clean hand-over (leaving frame sent after the VIP
 * was removed) showed as 4 ms of two owners. It wakes only for address events. A snapshot
 * (`ip -o -4 addr show`) at start and at the end checks the monitor missed nothing.
 */
import type { ChildProcess } from 'node:child_process';
import type { Lab } from './lab.js';
import type { OwnershipChange } from './invariants.js';

export interface AddrEvent {
  at: number;
  deleted: boolean;
  ifname: string;
  address: string;
}

/**
 * Parses one line of `ip -ts -o monitor address`:
 * `[2026-12-04T16:44:23.573949] [Deleted ]3: l1ab2c    inet 10.9.0.100/24 ...`.
 * The stamp is local time, as `ip` prints it. Null for anything else (IPv6, other lines).
 */
export function parseAddrMonitorLine(line: string): AddrEvent | null {
  const m = /^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?\]\s+(Deleted\s+)?\d+:\s+(\S+)\s+inet\s+([0-9.]+)\//.exec(line);
  if (!m) return null;
  const base = new Date(m[1] as string).getTime();
  if (!Number.isFinite(base)) return null;
  const frac = m[2] ? Number(m[2]) * 1000 : 0;
  return { at: base + frac, deleted: m[3] !== undefined, ifname: m[4] as string, address: m[5] as string };
}

/** VIP owners at time t from a list of changes (the last change at or before t per node). */
export function ownersAt(changes: readonly OwnershipChange[], t: number): string[] {
  const state = new Map<string, { at: number; owned: boolean }>();
  for (const c of changes) {
    if (c.at > t) continue;
    const prev = state.get(c.node);
    if (!prev || c.at >= prev.at) state.set(c.node, { at: c.at, owned: c.owned });
  }
  return [...state].filter(([, s]) => s.owned).map(([n]) => n).sort();
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class VipWatch {
  readonly changes: OwnershipChange[] = [];
  private readonly monitors: ChildProcess[] = [];

  constructor(private readonly lab: Lab) {}

  private async snapshot(name: string): Promise<boolean> {
    const d = this.lab.director(name);
    const r = await this.lab.exec(d.ns, ['ip', '-o', '-4', 'addr', 'show', 'dev', d.lanIf], { allowFail: true });
    return r.stdout.includes(` ${this.lab.vip}/`);
  }

  async start(): Promise<void> {
    for (const d of this.lab.directors) {
      const child = this.lab.spawn(d.ns, ['chrt', '-f', '50', 'ip', '-ts', '-o', '-4', 'monitor', 'address']);
      this.monitors.push(child);
      let partial = '';
      child.stdout?.on('data', (b: Buffer) => {
        const lines = (partial + b.toString()).split('\n');
        partial = lines.pop() ?? '';
        for (const l of lines) {
          const e = parseAddrMonitorLine(l);
          if (e && e.address === this.lab.vip && e.ifname === d.lanIf) this.changes.push({ node: d.name, at: e.at, owned: !e.deleted });
        }
      });
    }
    await sleep(300); // let the monitors subscribe before the snapshot
    const at = Date.now();
    const owned = await Promise.all(this.lab.directors.map((d) => this.snapshot(d.name)));
    this.lab.directors.forEach((d, i) => this.changes.push({ node: d.name, at, owned: owned[i] as boolean }));
  }

  /** Waits until one director alone has held the VIP for `stableMs`; false after `timeoutMs`. */
  async waitSingleOwner(stableMs: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const now = Date.now();
      const owners = this.owners();
      const lastChange = this.changes.reduce((m, c) => (c.at <= now ? Math.max(m, c.at) : m), 0);
      if (owners.length === 1 && now - lastChange >= stableMs) return true;
      await sleep(100);
    }
    return false;
  }

  /** Owners now according to the monitor. */
  owners(): string[] {
    return ownersAt(this.changes, Infinity);
  }

  /**
   * Stops the monitors; returns the directors where the monitor's last state disagrees
   * with `ip addr show` (an event lost: the timeline cannot be trusted there).
   */
  async stop(): Promise<string[]> {
    await sleep(200); // the last events in flight
    const fromMonitor = this.owners();
    const actual = await Promise.all(this.lab.directors.map((d) => this.snapshot(d.name)));
    for (const m of this.monitors) m.kill('SIGKILL');
    return this.lab.directors.filter((d, i) => (actual[i] as boolean) !== fromMonitor.includes(d.name)).map((d) => d.name);
  }
}

/** VIP acquisitions (a director going from not owning to owning) in (from, to], from a list of changes. */
export function acquisitions(changes: readonly OwnershipChange[], from: number, to: number): OwnershipChange[] {
  const out: OwnershipChange[] = [];
  const state = new Map<string, boolean>();
  for (const c of [...changes].sort((a, b) => a.at - b.at)) {
    const was = state.get(c.node) ?? false;
    state.set(c.node, c.owned);
    if (c.owned && !was && c.at > from && c.at <= to) out.push(c);
  }
  return out;
}
