/**
 * The election: a pure state machine. `step(state, event, now)` returns the next state
 * and the actions the runner (cluster.ts) performs: add/remove VIPs, send a heartbeat
 * now, re-send gratuitous ARP, run notify. No I/O, no clock: `now` is the monotonic
 * time in ms, injected, so every scenario runs in a unit test in microseconds.
 *
 *                       initdead passed, or every peer heard, or an active peer heard
 *        ┌──────┐ ─────────────────────────────────────────────────┐
 *        │ INIT │                                                  ▼
 *        └──────┘ ──(no active peer and best)──►┌────────┐◄──(released: split brain lost,
 *                                               │ ACTIVE │    better peer with preempt,
 *        ┌─────────┐ ──(no active peer alive,   └────────┘    takeover request, degraded,
 *        │ STANDBY │    this node the best          │         not eligible, standby command)
 *        └─────────┘ ◄──────────────────────────────┘
 *             ▲  │ maintenance on (any state; an active node releases first)
 *   maint off │  ▼
 *        ┌─────────────┐
 *        │ MAINTENANCE │
 *        └─────────────┘
 *
 * Rules, evaluated after every event (decide()):
 * - Rank: a node pinned by `vigil takeover` beats one that is not; a node yielding after
 *   `vigil standby` loses to one that is not; then higher effective priority; then the
 *   lower name. Yielding lasts until `vigil takeover` (or a newer `standby` on the active
 *   peer): a node that becomes active again while yielding (its peer died, or seemed to
 *   during a stall) still loses the split brain that follows — the operator's word wins
 *   over a transient verdict. Effective priority = configured priority − weights of failed tracks;
 *   0 (or maintenance) = not eligible.
 * - Not active: if no alive peer is active and this node is eligible and ranks above
 *   every alive eligible peer, become active (a better peer in INIT is waited for while
 *   the cluster starts, but not when it restarted).
 * - Active: give way when not eligible; when another node is active and ranks higher
 *   (split brain healed: the worse one releases at once); when an alive eligible peer
 *   ranks higher and preempt is on, or it asked to take over, or this node is degraded by
 *   a track and the peer's priority is strictly higher, or on `vigil standby`.
 * - Giving way is make-before-break (a hand-over): the active keeps the VIPs and says so
 *   with the releasing flag; the best eligible peer takes over on receipt (VIPs added,
 *   first gratuitous ARP out) and announces active; only then does the old active remove
 *   its VIPs. A hand-over nobody completes within deadtime is cancelled (the node stays
 *   active), except when this node must go (not eligible, maintenance): then it releases.
 *   With no eligible peer alive, a node that must go releases at once.
 * - The node that stays active when a second active appears re-sends GARP and re-runs
 *   notify (the loser may have poisoned caches); a peer that comes back in INIT (it
 *   restarted) gets a GARP refresh only (it is no split brain).
 * - Liveness: a peer is alive while some link delivered a valid frame within deadtime;
 *   a `leaving` frame makes it dead at once.
 * - A peer heard again after being dead or unknown is not taken at its word for one
 *   interval before this node becomes active on it: its first frames may be stale ones
 *   the kernel queued while ARP was unresolved (a restart, a link back up).
 * - INIT is left only after this node's own timers were on time for a deadtime (a fresh
 *   daemon stalls while it warms up), or after 2 × initdead in any case.
 * - Own lateness: time-based verdicts (a peer is dead, initdead passed) are taken only
 *   on a tick that ran after the queued frames were read (`drained`), and not before
 *   one interval has passed since a tick that fired more than an interval late.
 */
import type { Role } from '../api/types.js';
import { usDiff } from './wire.js';

export interface ElectionConfig {
  self: string;
  /** Configured priority, 1-255. */
  priority: number;
  /** The other nodes, each with the names of the links it shares with this node. */
  peers: { name: string; links: string[] }[];
  intervalMs: number;
  deadtimeMs: number;
  warntimeMs: number;
  initdeadMs: number;
  preempt: boolean;
}

export interface LinkView {
  up: boolean;
  lastHeard: number | null;
}

export interface PeerView {
  name: string;
  alive: boolean;
  /** Last announced role; 'unknown' until heard. */
  role: Role | 'unknown';
  /** Last announced effective priority (0 = not eligible). */
  priority: number;
  takeover: boolean;
  yielding: boolean;
  /** Last frame had the leaving flag: dead until it speaks without it. */
  left: boolean;
  /** Active but handing over (releasing flag): not counted as an active holder. */
  releasing: boolean;
  /** In INIT again after having been seen in another role: it restarted. */
  restarted: boolean;
  lastHeard: number | null;
  /**
   * When it was last heard after having been dead or unknown. The first frames from such
   * a peer may be stale: the kernel queues datagrams while a neighbour is unresolved and
   * flushes them when it answers ARP, so a node restarting (or a link coming back) can
   * read a peer's seconds-old "standby" before its current "active".
   */
  aliveSince: number | null;
  /**
   * Its current run of "active" frames, in the sender's own clock: the first one's send
   * time and how long the run has lasted since (µs). A hand-over's grace is counted on
   * it (decide): a successor whose "active" frames span the grace already — they were
   * queued while this node stalled — sent its gratuitous ARP that long ago.
   */
  activeRun: { firstUs: number; spanUs: number } | null;
  links: Record<string, LinkView>;
}

export interface ElectionState {
  cfg: ElectionConfig;
  role: Role;
  since: number;
  startedAt: number;
  /** Sum of the weights of failed tracks. */
  penalty: number;
  maintenance: boolean;
  /** Pinned here by `vigil takeover` until `vigil standby`. */
  takeover: boolean;
  /** Yields to any eligible peer after `vigil standby`, until `vigil takeover`. */
  yielding: boolean;
  peers: Record<string, PeerView>;
  /** No time-based verdict before this (own lateness rule). */
  holdUntil: number;
  /** The first election is done (INIT left). */
  elected: boolean;
  /** An active node giving way make-before-break: keeps the VIPs until a peer says active. */
  handover: Handover | null;
  /**
   * The rest of the daemon renews a lease and says whether its dataplane can serve
   * (cluster process isolation): false = announce priority 0, hand the VIPs to a peer.
   */
  serving: boolean;
  /** Not serving only for the lease's hysteresis: a last resort when nobody else can serve. */
  recovering: boolean;
  /** Last tick that fired more than half an interval late (this node stalled). */
  lastStallAt: number;
}

export interface Handover {
  reason: string;
  since: number;
  /** The role after the release (standby, or maintenance). */
  to: Role;
  /** Release even when nobody takes over within deadtime (not eligible, maintenance). */
  must: boolean;
}

export type Command = 'takeover' | 'standby' | 'maintenance-on' | 'maintenance-off';

export type ElectionEvent =
  /** The periodic timer; `lateness` = how late it fired (ms); `drained` = queued frames were read since. */
  | { type: 'tick'; lateness: number; drained: boolean }
  | {
      type: 'frame';
      peer: string;
      link: string;
      role: Role;
      priority: number;
      releasing: boolean;
      leaving: boolean;
      takeover: boolean;
      yielding: boolean;
      /** The sender's monotonic clock at send (µs mod 2^32, wire offset 20); absent in unit tests that do not care. */
      sentUs?: number;
    }
  | { type: 'command'; command: Command }
  /** Tracks changed: the new sum of failed weights. */
  | { type: 'track'; penalty: number }
  /** The daemon's lease: can this node serve the VIPs (dataplane up, daemon alive)? */
  | {
      type: 'serving';
      ok: boolean;
      /**
       * Not ok only because the daemon came back from a lapse too recently (the lease's
       * hysteresis): the node then takes the VIPs as a last resort, when no peer holds them
       * and none could.
       */
      recovering?: boolean;
    }
  | { type: 'config'; cfg: ElectionConfig };

export type Action =
  | { type: 'transition'; from: Role; to: Role; reason: string; failover: boolean }
  /** Add the VIPs, send gratuitous ARP, run resource scripts `start`. */
  | { type: 'acquire'; reason: string }
  /**
   * Run resource scripts `stop` (reverse), remove the VIPs. Performed before the next
   * `send`. After a hand-over, `graceMs` first: the successor's gratuitous ARP (sent by a
   * process it spawned just before announcing active) reaches the clients before this
   * node stops answering.
   */
  | { type: 'release'; reason: string; graceMs?: number }
  /** Send a heartbeat to every peer on every link now. */
  | { type: 'send' }
  /** Stayed active after a split brain, or a peer came back: fresh GARP burst. */
  | { type: 'regarp'; reason: string }
  /** Re-run notify for the current role. */
  | { type: 'renotify'; reason: string }
  | { type: 'peer'; peer: string; alive: boolean; reason: string }
  | { type: 'link'; peer: string; link: string; up: boolean }
  | { type: 'late'; peer: string; link: string; gapMs: number }
  /** A make-before-break hand-over started (frames say releasing) or was cancelled. */
  | { type: 'handover'; phase: 'start' | 'cancel'; reason: string }
  /** Read what is queued in the sockets, then tick again with drained = true. */
  | { type: 'drain' }
  | { type: 'deferred'; latenessMs: number }
  /** The answer to a command. */
  | { type: 'reply'; ok: boolean; message: string };

export interface StepResult {
  state: ElectionState;
  actions: Action[];
}

/** Reasons that count as a failover (vigil_cluster_failovers_total). */
export const FAILOVER_REASONS = new Set(['peer-dead', 'peer-left', 'handover', 'takeover']);

function newPeer(name: string, links: string[]): PeerView {
  return {
    name,
    alive: false,
    role: 'unknown',
    priority: 0,
    takeover: false,
    yielding: false,
    left: false,
    releasing: false,
    restarted: false,
    lastHeard: null,
    aliveSince: null,
    activeRun: null,
    links: Object.fromEntries(links.map((l) => [l, { up: false, lastHeard: null }])),
  };
}

export function initialState(cfg: ElectionConfig, now: number): ElectionState {
  return {
    cfg,
    role: 'init',
    since: now,
    startedAt: now,
    penalty: 0,
    maintenance: false,
    takeover: false,
    yielding: false,
    peers: Object.fromEntries(cfg.peers.map((p) => [p.name, newPeer(p.name, p.links)])),
    holdUntil: -Infinity,
    elected: false,
    lastStallAt: -Infinity,
    handover: null,
    serving: true,
    recovering: false,
  };
}

/** What this node announces: 0 while not eligible (maintenance, tracks failed). */
export function effectivePriority(s: ElectionState): number {
  if (s.maintenance || s.role === 'maintenance' || !s.serving) return 0;
  return Math.max(0, s.cfg.priority - s.penalty);
}

interface Rankable {
  name: string;
  priority: number;
  takeover: boolean;
  yielding: boolean;
}

/** True when a ranks above b. Total and deterministic (names are unique). */
export function better(a: Rankable, b: Rankable): boolean {
  if (a.takeover !== b.takeover) return a.takeover;
  if (a.yielding !== b.yielding) return !a.yielding;
  if (a.priority !== b.priority) return a.priority > b.priority;
  return a.name < b.name;
}

function selfRank(s: ElectionState): Rankable {
  return { name: s.cfg.self, priority: effectivePriority(s), takeover: s.takeover, yielding: s.yielding };
}

const eligiblePeer = (p: PeerView): boolean => p.alive && !p.left && p.role !== 'maintenance' && p.role !== 'unknown' && p.priority > 0;
const activePeer = (p: PeerView): boolean => p.alive && !p.left && p.role === 'active' && !p.releasing;

export function step(prev: ElectionState, ev: ElectionEvent, now: number): StepResult {
  const s = structuredClone(prev);
  const actions: Action[] = [];
  switch (ev.type) {
    case 'tick':
      onTick(s, ev, now, actions);
      break;
    case 'frame':
      onFrame(s, ev, now, actions);
      break;
    case 'command':
      onCommand(s, ev.command, now, actions);
      break;
    case 'track':
      s.penalty = Math.max(0, ev.penalty);
      decide(s, now, 'election', actions);
      break;
    case 'serving': {
      const recovering = !ev.ok && ev.recovering === true;
      if (s.serving === ev.ok && s.recovering === recovering) break;
      const changed = s.serving !== ev.ok;
      s.serving = ev.ok;
      s.recovering = recovering;
      if (changed) actions.push({ type: 'send' });
      decide(s, now, 'election', actions);
      break;
    }
    case 'config':
      onConfig(s, ev.cfg);
      decide(s, now, 'election', actions);
      break;
  }
  return { state: s, actions };
}

/** Marks dead the peers with no link up; returns the cause for a takeover. */
function markDead(s: ElectionState, actions: Action[]): string {
  let cause = 'election';
  for (const p of Object.values(s.peers)) {
    if (p.alive && !Object.values(p.links).some((l) => l.up)) {
      p.alive = false;
      actions.push({ type: 'peer', peer: p.name, alive: false, reason: 'deadtime' });
      if (p.role === 'active') cause = 'peer-dead';
    }
  }
  return cause;
}

function onTick(s: ElectionState, ev: { lateness: number; drained: boolean }, now: number, actions: Action[]): void {
  const dead = s.cfg.deadtimeMs;
  if (ev.lateness > s.cfg.intervalMs / 2) s.lastStallAt = now;
  const expired: [PeerView, string][] = [];
  for (const p of Object.values(s.peers)) {
    for (const [name, l] of Object.entries(p.links)) {
      if (l.up && l.lastHeard !== null && now - l.lastHeard >= dead) expired.push([p, name]);
    }
  }
  const initDue = s.role === 'init' && now - s.startedAt >= s.cfg.initdeadMs;
  if (s.handover && s.role === 'active' && now - s.handover.since >= dead) {
    const h = s.handover;
    if (h.must) return release(s, now, h.reason, actions, h.to);
    s.handover = null;
    actions.push({ type: 'handover', phase: 'cancel', reason: h.reason }, { type: 'send' });
  }
  if (expired.length === 0 && !initDue) {
    // INIT may end on what was heard once this node is calm (no time-based verdict here)
    if (s.role === 'init') decide(s, now, 'election', actions);
    return;
  }
  // A verdict is due: make sure it is not one this node's own stall produced.
  if (ev.lateness > s.cfg.intervalMs) {
    s.holdUntil = Math.max(s.holdUntil, now + s.cfg.intervalMs);
    actions.push({ type: 'deferred', latenessMs: ev.lateness });
    return;
  }
  if (now < s.holdUntil) return;
  if (!ev.drained) {
    actions.push({ type: 'drain' });
    return;
  }
  for (const [p, name] of expired) {
    const l = p.links[name]!;
    l.up = false;
    actions.push({ type: 'link', peer: p.name, link: name, up: false });
  }
  const cause = markDead(s, actions);
  decide(s, now, cause, actions, initDue);
}

function onFrame(s: ElectionState, f: Extract<ElectionEvent, { type: 'frame' }>, now: number, actions: Action[]): void {
  const p = s.peers[f.peer];
  if (!p) return;
  const link = (p.links[f.link] ??= { up: false, lastHeard: null });
  const wasAlive = p.alive;
  const prevRole = p.role;
  let cause = 'election';
  if (f.leaving) {
    if (p.left && !wasAlive) return; // the same goodbye on another link
    p.left = true;
    p.alive = false;
    p.role = f.role;
    p.priority = 0;
    p.lastHeard = null;
    p.activeRun = null;
    for (const [name, l] of Object.entries(p.links)) {
      if (l.up) actions.push({ type: 'link', peer: p.name, link: name, up: false });
      l.up = false;
      l.lastHeard = null;
    }
    if (wasAlive) actions.push({ type: 'peer', peer: p.name, alive: false, reason: 'leaving' });
    if (wasAlive && prevRole === 'active') cause = 'peer-left';
  } else {
    if (p.alive && p.lastHeard !== null && now - p.lastHeard > s.cfg.warntimeMs) {
      actions.push({ type: 'late', peer: p.name, link: f.link, gapMs: now - p.lastHeard });
    }
    link.lastHeard = now;
    if (!link.up) {
      link.up = true;
      actions.push({ type: 'link', peer: p.name, link: f.link, up: true });
    }
    p.lastHeard = now;
    p.left = false;
    if (!wasAlive) p.aliveSince = now;
    p.alive = true;
    if (f.role !== 'init') p.restarted = false;
    else if (prevRole !== 'init' && prevRole !== 'unknown') p.restarted = true;
    const wasReleasing = p.releasing;
    p.role = f.role;
    p.priority = f.priority;
    p.takeover = f.takeover;
    p.yielding = f.yielding;
    p.releasing = f.role === 'active' && f.releasing;
    trackActiveRun(p, f, prevRole === 'active' && wasAlive && !wasReleasing);
    if (!wasAlive) actions.push({ type: 'peer', peer: p.name, alive: true, reason: 'heard' });
    const steppingDown = wasAlive && prevRole === 'active' && (f.role !== 'active' || (p.releasing && !wasReleasing));
    if (steppingDown) {
      cause = 'handover';
      // the active peer stepped down with `vigil standby`: this node's own older yield
      // gives way to the newer one, so the hand-over goes through
      if (f.yielding) s.yielding = false;
    }
    // healed split brain: the better node stays active, and says so again. The peer may
    // have heard us first and released already, so a peer back from the dead counts too.
    const sawActive = f.role === 'active' && (prevRole !== 'active' || !wasAlive);
    // A peer back from the dead in INIT restarted: no split brain and no notify re-run, but
    // it may still have answered ARP for the VIPs (a crashed kernel kept them until vigil's
    // start removed them), so the clients' caches get a fresh GARP. Back in another role
    // (a healed partition whose loser heard us first and released) it was a split brain.
    const cameBack = !wasAlive;
    if (s.role === 'active' && better(selfRank(s), p)) {
      if (sawActive || (cameBack && f.role !== 'init')) actions.push({ type: 'regarp', reason: 'split-brain' }, { type: 'renotify', reason: 'split-brain' }, { type: 'send' });
      else if (cameBack) actions.push({ type: 'regarp', reason: 'peer-returned' }, { type: 'send' });
    }
  }
  decide(s, now, cause, actions);
}

function onCommand(s: ElectionState, cmd: Command, now: number, actions: Action[]): void {
  const reply = (ok: boolean, message: string): void => {
    actions.push({ type: 'reply', ok, message });
  };
  switch (cmd) {
    case 'takeover': {
      if (s.role === 'maintenance') return reply(false, 'in maintenance: leave maintenance first');
      if (effectivePriority(s) === 0) return reply(false, 'not eligible: effective priority is 0 (failed tracks)');
      const wasActive = s.role === 'active';
      s.takeover = true;
      s.yielding = false;
      actions.push({ type: 'send' });
      decide(s, now, 'takeover', actions);
      return reply(true, wasActive ? 'already active (pinned here until `vigil standby`)' : 'taking over: pinned here until `vigil standby`');
    }
    case 'standby': {
      if (s.role === 'maintenance') return reply(false, 'in maintenance: leave maintenance first');
      const before = { takeover: s.takeover, yielding: s.yielding };
      s.takeover = false;
      s.yielding = true;
      if (s.role === 'active') {
        // any eligible peer will do: a peer still yielding from an older `standby` gives
        // way when it sees this node step down (onFrame)
        if (!hasHeir(s)) {
          Object.assign(s, before);
          return reply(false, 'no eligible peer is alive to take over; staying active');
        }
        handOver(s, now, 'standby-command', actions);
        return reply(true, 'handing over: the VIPs stay here until a peer has taken them');
      }
      actions.push({ type: 'send' });
      return reply(true, `already ${s.role}; yielding to any eligible peer until \`vigil takeover\``);
    }
    case 'maintenance-on': {
      if (s.role === 'maintenance') return reply(true, 'already in maintenance');
      s.maintenance = true;
      s.takeover = false;
      if (s.role === 'active') {
        // make-before-break when a peer can take the VIPs; the node must go in any case
        if (hasHeir(s)) handOver(s, now, 'maintenance', actions, 'maintenance', true);
        else release(s, now, 'maintenance', actions, 'maintenance');
        actions.push({ type: 'send' });
        return reply(true, 'in maintenance once the VIPs are handed over: never active until maintenance is turned off');
      }
      transition(s, now, 'maintenance', 'maintenance', false, actions);
      actions.push({ type: 'send' });
      return reply(true, 'in maintenance: never active until maintenance is turned off');
    }
    case 'maintenance-off': {
      if (s.role !== 'maintenance') return reply(true, `not in maintenance (${s.role})`);
      s.maintenance = false;
      transition(s, now, s.elected ? 'standby' : 'init', 'maintenance-off', false, actions);
      actions.push({ type: 'send' });
      decide(s, now, 'election', actions);
      return reply(true, `maintenance off: ${s.role}`);
    }
  }
}

function onConfig(s: ElectionState, cfg: ElectionConfig): void {
  const peers: Record<string, PeerView> = {};
  for (const pc of cfg.peers) {
    const old = s.peers[pc.name];
    const p = old ?? newPeer(pc.name, pc.links);
    const links: Record<string, LinkView> = {};
    for (const l of pc.links) links[l] = p.links[l] ?? { up: false, lastHeard: null };
    p.links = links;
    if (p.alive && !Object.values(links).some((l) => l.up)) p.alive = false;
    peers[pc.name] = p;
  }
  s.peers = peers;
  s.cfg = cfg;
}

function transition(s: ElectionState, now: number, to: Role, reason: string, failover: boolean, actions: Action[]): void {
  if (s.role === to) return;
  if (s.role === 'active') s.handover = null;
  actions.push({ type: 'transition', from: s.role, to, reason, failover });
  if (s.role === 'init') s.elected = true;
  s.role = to;
  s.since = now;
}

function release(s: ElectionState, now: number, reason: string, actions: Action[], to: Role = 'standby', graceMs?: number): void {
  actions.push(graceMs === undefined ? { type: 'release', reason } : { type: 'release', reason, graceMs });
  transition(s, now, to, reason, false, actions);
  actions.push({ type: 'send' });
}

/** How long a node that handed over keeps its VIPs after the successor said active. */
export function handoverGraceMs(cfg: ElectionConfig): number {
  return Math.min(100, Math.max(10, cfg.intervalMs));
}

/**
 * What is left of a hand-over's grace (ms, 0 = none): the grace is for the successor's
 * gratuitous ARP, so it is counted from the successor's first "active" frame in the
 * successor's own clock. Frames that queued while this node stalled (the successor took
 * over meanwhile) therefore count as time gone, and a node that wakes from a stall lets
 * go at once instead of keeping a second owner one interval longer. The executor of a
 * release re-checks this on every frame during its wait (cluster.ts).
 */
export function handoverGraceLeftMs(s: ElectionState): number {
  const ran = Math.max(0, ...Object.values(s.peers).filter(activePeer).map((p) => (p.activeRun?.spanUs ?? 0) / 1000));
  const left = handoverGraceMs(s.cfg) - ran;
  return left >= 1 ? Math.ceil(left) : 0;
}

/**
 * Follows a peer's run of "active" frames (not releasing) in the sender's clock. Frames
 * come over several links and may be read out of order: the span only grows, and a
 * frame older than the run's first is ignored (a difference above 2^31 µs is negative).
 */
function trackActiveRun(p: PeerView, f: { role: Role; releasing: boolean; sentUs?: number }, continuing: boolean): void {
  if (f.role !== 'active' || f.releasing || f.sentUs === undefined) {
    p.activeRun = null;
    return;
  }
  if (!continuing || !p.activeRun) {
    p.activeRun = { firstUs: f.sentUs, spanUs: 0 };
    return;
  }
  const d = usDiff(f.sentUs, p.activeRun.firstUs);
  if (d < 2 ** 31) p.activeRun.spanUs = Math.max(p.activeRun.spanUs, d);
}

/** An eligible peer that could take the VIPs (not still starting). */
function hasHeir(s: ElectionState): boolean {
  return Object.values(s.peers).some((p) => eligiblePeer(p) && p.role !== 'init');
}

/**
 * Make-before-break: keep the VIPs and say releasing; the successor takes over on receipt
 * and this node releases when it hears the successor active (decide: an active peer that
 * ranks higher). Idempotent while a hand-over is running.
 */
function handOver(s: ElectionState, now: number, reason: string, actions: Action[], to: Role = 'standby', must = false): void {
  if (s.handover) {
    if (must && !s.handover.must) s.handover = { ...s.handover, reason, to, must };
    return;
  }
  s.handover = { reason, since: now, to, must };
  actions.push({ type: 'handover', phase: 'start', reason }, { type: 'send' });
}

/** Applies the election rules to the current view. */
function decide(s: ElectionState, now: number, cause: string, actions: Action[], initDue = false): void {
  if (s.role === 'maintenance') return;
  const peers = Object.values(s.peers);
  const me = selfRank(s);
  const eligible = me.priority > 0;
  const actives = peers.filter(activePeer);

  if (s.role === 'active') {
    if (actives.some((p) => better(p, me))) {
      // the successor of a hand-over announced active (its VIPs are up): let go now
      const h = s.handover;
      if (!h) return release(s, now, 'split-brain', actions);
      const grace = handoverGraceLeftMs(s);
      return release(s, now, h.reason, actions, h.to, grace > 0 ? grace : undefined);
    }
    if (!s.serving) {
      // serving again and only inside the lease's hysteresis: keep what this node holds.
      // The hysteresis keeps a flaky daemon from taking the VIPs back, not one that holds
      // them and serves from handing them to a peer for nothing (a chaos run saw exactly
      // that: a last-resort owner handed over to a peer that had just restarted).
      if (s.recovering && !s.maintenance && s.cfg.priority - s.penalty > 0) return;
      // the daemon behind this node cannot serve: a peer that can takes the VIPs. With
      // none, they stay (serving nobody is no better); the hand-over is retried.
      if (hasHeir(s)) handOver(s, now, 'not-serving', actions);
      return;
    }
    if (!eligible) {
      if (hasHeir(s)) return handOver(s, now, 'not-eligible', actions, 'standby', true);
      return release(s, now, 'not-eligible', actions);
    }
    for (const p of peers) {
      // a peer still in INIT is not handed the VIPs: it has not finished starting
      if (!eligiblePeer(p) || p.role === 'active' || p.role === 'init' || !better(p, me)) continue;
      if (p.takeover) return handOver(s, now, 'takeover-requested', actions);
      if (s.cfg.preempt) return handOver(s, now, 'preempt', actions);
      if (me.priority < s.cfg.priority && p.priority > me.priority && !p.yielding) return handOver(s, now, 'degraded', actions);
    }
    return;
  }

  if (s.role === 'init') {
    // A daemon that just started often stalls (JIT, workers starting): it leaves INIT only
    // once its own timers were on time for a deadtime, so it does not win an election and
    // then fall silent. Bounded: after 2 × initdead it goes on regardless.
    const calm = now - s.lastStallAt >= s.cfg.deadtimeMs || now - s.startedAt >= 2 * s.cfg.initdeadMs;
    if (!calm) return;
    const allHeard = peers.length > 0 && peers.every((p) => p.alive);
    if (!(initDue || allHeard || actives.length > 0)) return;
  }
  const reasonFrom = (): string => {
    if (s.takeover && (cause === 'handover' || cause === 'election' || cause === 'takeover')) return 'takeover';
    // a peer handing over (active, releasing) makes this a hand-over even when the frame
    // that said so was heard an interval earlier
    if (cause === 'election' && peers.some((p) => p.alive && p.releasing)) return 'handover';
    if (s.role === 'init' && cause === 'election') return peers.some((p) => p.alive) ? 'election' : 'initdead';
    return cause;
  };
  // A better peer still in INIT is waited for when the cluster is starting (it has only
  // ever been seen in INIT), not when it restarted (say the old active, back before its
  // death was noticed): then it serves nothing and someone must, now.
  const candidate = (p: PeerView): boolean => eligiblePeer(p) && !(p.role === 'init' && p.restarted);
  // A peer heard again less than an interval ago may have spoken from a stale queue (see
  // PeerView.aliveSince): its current frame is at most one interval away, so becoming
  // active on its word waits for that frame instead of seizing the VIPs from it.
  const unconfirmed = peers.some((p) => p.alive && p.aliveSince !== null && now - p.aliveSince < s.cfg.intervalMs);
  // Last resort: a node whose daemon serves again but is still inside the lease's
  // hysteresis takes the VIPs when no peer holds them and none could — the hysteresis
  // keeps two flaky daemons from passing the VIPs back and forth, not a lone one from
  // serving (the chaos bench saw 3 s without an owner from it).
  const lastResort = !eligible && s.recovering && !s.maintenance && s.cfg.priority - s.penalty > 0 && !peers.some(candidate);
  if (actives.length === 0 && (eligible || lastResort) && !peers.some((p) => candidate(p) && better(p, me))) {
    if (unconfirmed) return; // stay as is until the peer's current frame is in
    const reason = reasonFrom();
    transition(s, now, 'active', reason, FAILOVER_REASONS.has(reason), actions);
    actions.push({ type: 'acquire', reason }, { type: 'send' });
    return;
  }
  if (s.role === 'init') {
    transition(s, now, 'standby', actives.length > 0 ? 'peer-active' : peers.some((p) => p.alive) ? 'election' : 'initdead', false, actions);
    actions.push({ type: 'send' });
  }
}
