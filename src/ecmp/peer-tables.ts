/**
 * Same table everywhere (cluster.mode ecmp): consistent hashing keeps a flow on one real
 * server across directors only when every director holds the same real servers with the
 * same health. Each director carries a digest of its desired forwarding table in its
 * heartbeats (wire.ts, version 3); this module compares the peers' digests with ours and
 * names a peer whose digest has differed for longer than a grace. Pure: the clock is an
 * argument, the state is returned; the cluster runner (cluster.ts) feeds it at every
 * frame and tick and exports the verdict (/status peers[].table, the metric
 * vigil_ecmp_table_digest_mismatch).
 *
 * Per peer:
 *
 *   unknown (no digest of ours yet, peer dead, peer sends none: an older vigil)
 *      │ both digests known
 *      ▼
 *   match ◄──────── equal ──────── differ (since t)
 *      └──────────── differ ───────►  │ now − t > grace
 *                                     ▼
 *                                  mismatched (named)
 *
 * A change from one differing digest to another keeps `since`: the peer has disagreed
 * all along. Any unknown input resets the peer to unknown.
 *
 * The grace: two directors with the same health view can still differ for a while,
 * because each probes on its own schedule — one sees a real server fail up to one probe
 * interval plus one timeout after the other — and a digest reaches the peer one
 * heartbeat later. So: max(5 × cluster.interval_ms, 1 s) + the longest probe
 * interval + timeout of the config.
 */
export interface PeerTableInput {
  name: string;
  alive: boolean;
  /** The digest prefix the peer's last frame carried (undefined: it carried none). */
  digest: string | undefined;
  /** The announced-VIP count of that frame (wire.NOT_ECMP when not known). */
  announced: number | undefined;
}

export interface PeerTableState {
  /** true equal, false different, null unknown. */
  match: boolean | null;
  /** Monotonic ms when `match` took its current value (null while unknown). */
  since: number | null;
}

export type TablesState = Readonly<Record<string, PeerTableState>>;

export interface PeerTableVerdict {
  peer: string;
  digest: string | null;
  announced: number | null;
  match: boolean | null;
  since: number | null;
  /** Differed for longer than the grace: this peer is named. */
  mismatched: boolean;
}

export interface JudgeInput {
  /** This director's digest prefix (undefined before its first reconcile). */
  own: string | undefined;
  peers: readonly PeerTableInput[];
  graceMs: number;
}

/** max(5 × interval, 1 s) + the longest probe interval + timeout (0 without probes). */
interface CheckTiming {
  interval_ms: number;
  timeout_ms: number;
}

export function tableGraceMs(config: {
  cluster: { interval_ms: number };
  services: ReadonlyArray<{ check?: CheckTiming | undefined; real_servers: ReadonlyArray<{ check?: CheckTiming | undefined }> }>;
}): number {
  let probe = 0;
  for (const s of config.services) {
    for (const c of [s.check, ...s.real_servers.map((r) => r.check)]) {
      if (c) probe = Math.max(probe, c.interval_ms + c.timeout_ms);
    }
  }
  return Math.max(5 * config.cluster.interval_ms, 1000) + probe;
}

export function judgeTables(prev: TablesState, input: JudgeInput, now: number): { state: TablesState; verdicts: PeerTableVerdict[] } {
  const state: Record<string, PeerTableState> = {};
  const verdicts: PeerTableVerdict[] = [];
  for (const p of input.peers) {
    const known = p.alive && p.digest !== undefined && input.own !== undefined;
    const match = known ? p.digest === input.own : null;
    const before = prev[p.name];
    const since = match === null ? null : before && before.match === match && before.since !== null ? before.since : now;
    state[p.name] = { match, since };
    verdicts.push({
      peer: p.name,
      digest: p.alive ? (p.digest ?? null) : null,
      announced: p.alive ? (p.announced ?? null) : null,
      match,
      since,
      mismatched: match === false && since !== null && now - since > input.graceMs,
    });
  }
  return { state, verdicts };
}
