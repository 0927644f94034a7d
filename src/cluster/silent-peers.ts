/**
 * A peer never heard from since start. The election reports a peer only when its state
 * changes (heard → dead), so a peer that never sent a valid heartbeat — not started,
 * wrong key, links cut since boot — would pass in silence. Once initdead_ms plus
 * deadtime_ms have passed after the start, every peer still unheard on every link is
 * told once: a warning in the log and an event in /status history. Reads only the
 * cluster's public peers(); the daemon wires it (no change in the election).
 */
import type { PeerStatus } from '../api/types.js';

/** The peers no link has ever heard from. Pure. */
export function neverHeardPeers(peers: readonly PeerStatus[]): string[] {
  return peers.filter((p) => !p.alive && p.links.every((l) => l.lastHeardMsAgo === null)).map((p) => p.name);
}

export interface SilentPeerWatchOptions {
  peers: () => readonly PeerStatus[];
  /** initdead_ms + deadtime_ms: by then a peer that is up has been heard. */
  afterMs: number;
  /** Called once per peer never heard from. */
  report: (peer: string, afterMs: number) => void;
  setTimeout?: (fn: () => void, ms: number) => { unref?(): void } | unknown;
  clearTimeout?: (h: unknown) => void;
}

/** Arms the one check; returns a cancel function (the daemon calls it on stop). */
export function watchSilentPeers(o: SilentPeerWatchOptions): () => void {
  const set = o.setTimeout ?? ((fn: () => void, ms: number) => setTimeout(fn, ms));
  const clear = o.clearTimeout ?? ((h: unknown) => clearTimeout(h as NodeJS.Timeout));
  const h = set(() => {
    for (const peer of neverHeardPeers(o.peers())) o.report(peer, o.afterMs);
  }, o.afterMs);
  (h as { unref?(): void } | undefined)?.unref?.();
  return () => clear(h);
}
