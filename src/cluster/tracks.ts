/**
 * Tracks lower this node's effective priority while a dependency fails: a ping target
 * (the LAN gateway) that stops answering (rise/fall debounced), an interface whose
 * operstate is not up. The sum of the failed tracks' weights goes to the election.
 */
import { readFile } from 'node:fs/promises';
import type { TrackConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { runScript, succeeded } from '../proc.js';

export const trackName = (t: TrackConfig): string => (t.type === 'ping' ? `ping ${t.target}` : `interface ${t.interface}`);

export interface TrackState {
  name: string;
  up: boolean;
  weight: number;
}

export interface TracksOptions {
  tracks: TrackConfig[];
  logger: Logger;
  metrics: Metrics;
  onChange: (penalty: number) => void;
  /** Where interface state is read (tests point it elsewhere). */
  sysClassNet?: string;
}

interface Running {
  cfg: TrackConfig;
  up: boolean;
  ok: number;
  fail: number;
  busy: boolean;
  timer: NodeJS.Timeout;
}

export async function interfaceUp(sysClassNet: string, iface: string): Promise<boolean> {
  try {
    const s = (await readFile(`${sysClassNet}/${iface}/operstate`, 'utf8')).trim();
    return s === 'up' || s === 'unknown'; // lo and some virtual devices report unknown
  } catch {
    return false;
  }
}

export async function pingOnce(target: string, timeoutMs: number): Promise<boolean> {
  const v6 = target.includes(':');
  const r = await runScript('ping', [...(v6 ? ['-6'] : []), '-n', '-q', '-c', '1', '-W', String(Math.max(1, Math.ceil(timeoutMs / 1000))), target], {
    timeoutMs,
    killGraceMs: 100,
    outputLimit: 256,
  });
  return succeeded(r);
}

export class Tracks {
  private running: Running[] = [];
  private lastPenalty = 0;

  constructor(private readonly opts: TracksOptions) {}

  penalty(): number {
    return this.running.filter((r) => !r.up).reduce((a, r) => a + r.cfg.weight, 0);
  }

  states(): TrackState[] {
    return this.running.map((r) => ({ name: trackName(r.cfg), up: r.up, weight: r.cfg.weight }));
  }

  start(): void {
    if (this.running.length > 0) return;
    for (const cfg of this.opts.tracks) {
      const r: Running = { cfg, up: true, ok: 0, fail: 0, busy: false, timer: setInterval(() => void this.check(r), cfg.interval_ms) };
      r.timer.unref();
      this.running.push(r);
      this.opts.metrics.trackUp.set({ track: trackName(cfg) }, 1);
      void this.check(r);
    }
  }

  close(): void {
    for (const r of this.running) clearInterval(r.timer);
    this.running = [];
  }

  private async check(r: Running): Promise<void> {
    if (r.busy) return;
    r.busy = true;
    try {
      const cfg = r.cfg;
      let ok: boolean;
      let next = r.up;
      if (cfg.type === 'interface') {
        ok = await interfaceUp(this.opts.sysClassNet ?? '/sys/class/net', cfg.interface);
        next = ok;
      } else {
        ok = await pingOnce(cfg.target, cfg.timeout_ms);
        if (ok) {
          r.ok += 1;
          r.fail = 0;
          if (!r.up && r.ok >= cfg.rise) next = true;
        } else {
          r.fail += 1;
          r.ok = 0;
          if (r.up && r.fail >= cfg.fall) next = false;
        }
      }
      if (!this.running.includes(r) || next === r.up) return;
      r.up = next;
      this.opts.metrics.trackUp.set({ track: trackName(cfg) }, next ? 1 : 0);
      this.opts.logger.warn({ track: trackName(cfg), up: next, weight: cfg.weight }, next ? 'track recovered' : 'track failed');
      const p = this.penalty();
      if (p !== this.lastPenalty) {
        this.lastPenalty = p;
        this.opts.onChange(p);
      }
    } finally {
      r.busy = false;
    }
  }
}
