/**
 * Per real server figures that need memory, the ones HAProxy's stats page shows beside
 * the counters: failed checks, time in the current state, total downtime, and the highest
 * connection rate seen. Health events and probe runs step it; /status reads it. Time is
 * the injected monotonic clock, so the unit test drives it by hand.
 *
 *   realServerUp/Down(atMs) ──► state, since, downtime
 *   probeRun(!ok)            ──► failedChecks + 1
 *   read(healthy, cps)       ──► { inStateS, downtimeS, failedChecks, cpsMax }
 */
export interface RealServerFigures {
  /** Probe runs that failed since the daemon started (HAProxy "Chk"). */
  failedChecks: number;
  /** Seconds in the current up/down state (HAProxy "LastChk" / status duration). */
  inStateS: number;
  /** Seconds spent down since the daemon started (HAProxy "Dwntme"). */
  downtimeS: number;
  /** Highest connection rate (per second) seen at a counters read (HAProxy "Rate Max"). */
  cpsMax: number;
}

interface Entry {
  healthy: boolean;
  since: number;
  downMs: number;
  failedChecks: number;
  cpsMax: number;
}

const keyOf = (service: string, address: string, port: number): string => `${service}\u0000${address}\u0000${port}`;

export class FiguresBook {
  private readonly entries = new Map<string, Entry>();

  /** `startedAt`: when the daemon started; a real server seen first later was in its state since then. */
  constructor(
    private readonly now: () => number,
    private readonly startedAt: number,
  ) {}

  private entry(service: string, address: string, port: number, healthy: boolean): Entry {
    const k = keyOf(service, address, port);
    let e = this.entries.get(k);
    if (e === undefined) this.entries.set(k, (e = { healthy, since: this.startedAt, downMs: 0, failedChecks: 0, cpsMax: 0 }));
    return e;
  }

  /** The health verdict changed at `atMs`. */
  changed(service: string, address: string, port: number, healthy: boolean, atMs: number): void {
    const e = this.entry(service, address, port, !healthy);
    if (e.healthy === healthy) return;
    if (!e.healthy) e.downMs += Math.max(0, atMs - e.since);
    e.healthy = healthy;
    e.since = atMs;
  }

  checkFailed(service: string, address: string, port: number): void {
    this.entry(service, address, port, true).failedChecks += 1;
  }

  /** The figures now; `healthy` is health's verdict now (a missed change is taken as of now). */
  read(service: string, address: string, port: number, healthy: boolean, cps: number | undefined): RealServerFigures {
    const now = this.now();
    const e = this.entry(service, address, port, healthy);
    if (e.healthy !== healthy) this.changed(service, address, port, healthy, now);
    if (cps !== undefined && cps > e.cpsMax) e.cpsMax = cps;
    const down = e.downMs + (e.healthy ? 0 : Math.max(0, now - e.since));
    return { failedChecks: e.failedChecks, inStateS: Math.round(Math.max(0, now - e.since) / 1000), downtimeS: Math.round(down / 1000), cpsMax: e.cpsMax };
  }

  /** Forgets real servers no longer configured (after a reload). */
  retain(keep: { service: string; address: string; port: number }[]): void {
    const live = new Set(keep.map((k) => keyOf(k.service, k.address, k.port)));
    for (const k of this.entries.keys()) if (!live.has(k)) this.entries.delete(k);
  }
}
