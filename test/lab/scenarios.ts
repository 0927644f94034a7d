/**
 * The failover scenarios, shared by the e2e tests (generous bounds) and the benchmark
 * (precise figures). Each takes a settled pair with a running prober, does one thing to
 * the active (or the link), waits for the client to reach the new active, and returns
 * what the client saw. Restoring the pair afterwards is a separate step.
 */
import type { Lab } from './lab.js';
import { LabError } from './netns.js';
import { restartResponder, type Prober } from './probe.js';
import { longestGap, switches, type Switch } from './timeline.js';
import { HEARTBEAT_PORT, waitSettled, type VigilNode } from './vigil.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface Pair {
  lab: Lab;
  nodes: VigilNode[];
  prober: Prober;
}

export interface SwitchResult {
  from: string;
  to: string;
  /** Client-side outage: last answer from the old active → first answer from the new one. */
  outageMs: number;
  /** Every change of answering director seen during the run (1 for a clean failover). */
  switches: Switch[];
  /** When the action was started (epoch ms). */
  actionAt: number;
}

export interface QuietResult {
  /** Changes of answering director during the window (must be 0). */
  switches: Switch[];
  /** vigil_cluster_failovers_total increase, summed over the nodes. */
  failovers: number;
  /** vigil_cluster_transitions_total increase, summed over the nodes. */
  transitions: number;
  /** Longest time without any answer at the VIP during the window. */
  longestGapMs: number;
  windowMs: number;
}

/** The active node and the standby of a settled pair. */
export async function roles(p: Pair, timeoutMs = 15_000): Promise<{ active: VigilNode; standby: VigilNode }> {
  const active = await waitSettled(p.nodes, timeoutMs);
  const standby = p.nodes.find((n) => n !== active && n.running);
  if (!standby) throw new LabError('LAB_STATE', 'no standby running');
  return { active, standby };
}

/**
 * Waits until the client reaches `to`, then reads the switch from the timeline.
 * `cleanFrom` is when the client was known to reach only `from`: an answer from `to`
 * between then and the action means the standby took over before it (a spurious
 * failover, e.g. on an overloaded machine), and the run does not measure the action.
 */
async function observeSwitch(p: Pair, from: string, to: string, actionAt: number, timeoutMs: number, cleanFrom: number): Promise<SwitchResult> {
  await p.prober.waitForAnswers(to, { since: actionAt, count: 5, timeoutMs });
  const early = p.prober.events.find((e) => e.kind === 'answer' && e.name === to && e.at >= cleanFrom && e.at < actionAt);
  if (early) throw new LabError('LAB_SPURIOUS', `${to} answered ${(actionAt - early.at).toFixed(1)} ms before the action: it had taken over on its own (spurious failover), the run is void`);
  const sw = switches(p.prober.events, { from: cleanFrom });
  const main = sw.find((s) => s.from === from && s.to === to);
  if (!main) throw new LabError('LAB_STATE', `client reached ${to} but the timeline shows no switch from ${from}: ${sw.map((s) => `${s.from}->${s.to}`).join(', ') || 'none'}`);
  return { from, to, outageMs: main.outageMs, switches: sw, actionAt };
}

/** Makes sure the client currently reaches `name` (a few answers in a row); returns the first of them. */
async function ensureClientOn(p: Pair, name: string, timeoutMs = 5000): Promise<number> {
  return p.prober.waitForAnswers(name, { since: Date.now(), count: 3, timeoutMs });
}

/**
 * Crash of the active director: the whole director dies (cluster process, daemon and
 * workers SIGKILLed in one tick, so no leaving frame) and every link goes down at the same
 * moment. With `daemonOnly` only the daemon is killed (links stay up): its cluster process
 * notices, releases the VIPs and says leaving.
 */
export async function crashActive(p: Pair, timeoutMs = 10_000, opts: { daemonOnly?: boolean } = {}): Promise<SwitchResult & { crashed: VigilNode }> {
  const { active, standby } = await roles(p);
  const cleanFrom = await ensureClientOn(p, active.name);
  const actionAt = Date.now();
  if (opts.daemonOnly) await active.signal('SIGKILL');
  else {
    // links first: the responder stops answering the client at the same moment the
    // heartbeats stop (killing first would let the client hear the old director for the
    // few ms `ip link set down` takes, and shorten the measured outage); nothing can leave
    // through a link that is down, so the kill that follows cannot send a leaving frame either
    await p.lab.isolate(active.name);
    await active.crash();
  }
  const r = await observeSwitch(p, active.name, standby.name, actionAt, timeoutMs, cleanFrom);
  return { ...r, crashed: active };
}

/**
 * Brings a crashed director back: its responder restarted (no TCP state left from before
 * the crash), links up, then vigil started again; it must come back as standby. With
 * `reboot` the VIP is removed first, as a reboot would; without it vigil finds the stale
 * VIP at start and must remove it itself.
 */
export async function recoverCrashed(p: Pair, node: VigilNode, opts: { reboot?: boolean; timeoutMs?: number } = {}): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const d = node.director;
  if (opts.reboot) await p.lab.exec(d.ns, ['ip', 'addr', 'del', `${p.lab.vip}/${p.lab.lanPrefix}`, 'dev', d.lanIf], { allowFail: true });
  await restartResponder(p.lab, node.name);
  await p.lab.reconnect(node.name);
  await node.start();
  await node.waitRole('standby', timeoutMs);
  await Promise.all(p.nodes.filter((n) => n.running).map((n) => n.waitPeerLinks(timeoutMs)));
}

/** Graceful stop of the active director (SIGTERM): it hands over before it exits. */
export async function stopActive(p: Pair, timeoutMs = 10_000): Promise<SwitchResult & { stopped: VigilNode }> {
  const { active, standby } = await roles(p);
  const cleanFrom = await ensureClientOn(p, active.name);
  const actionAt = Date.now();
  const stopping = active.signal('SIGTERM');
  const r = await observeSwitch(p, active.name, standby.name, actionAt, timeoutMs, cleanFrom);
  await stopping;
  return { ...r, stopped: active };
}

/** Starts a stopped director again and waits until it is standby with every link up. */
export async function restartStopped(p: Pair, node: VigilNode, timeoutMs = 20_000): Promise<void> {
  await node.start();
  await node.waitRole('standby', timeoutMs);
  await Promise.all(p.nodes.filter((n) => n.running).map((n) => n.waitPeerLinks(timeoutMs)));
}

/**
 * `vigil standby` on `node`. When `node` is not active it is made active first with
 * `vigil takeover` (not measured), so every run is the same handover from `node`.
 */
export async function standbyFrom(p: Pair, node: VigilNode, timeoutMs = 10_000): Promise<SwitchResult> {
  let { active, standby } = await roles(p);
  if (active !== node) {
    await node.takeover();
    await node.waitRole('active', timeoutMs);
    ({ active, standby } = await roles(p));
    await Promise.all(p.nodes.map((n) => n.waitPeerLinks(timeoutMs)));
  }
  const cleanFrom = await ensureClientOn(p, active.name);
  const actionAt = Date.now();
  // the command's outcome is read after the switch; keep a failure from going unhandled meanwhile
  const cmd = active.standby().then(
    () => null,
    (err: unknown) => err as Error,
  );
  let r: SwitchResult;
  try {
    r = await observeSwitch(p, active.name, standby.name, actionAt, timeoutMs, cleanFrom);
  } catch (err) {
    const cmdErr = await cmd;
    throw cmdErr ?? err;
  }
  const cmdErr = await cmd;
  if (cmdErr) throw cmdErr;
  return r;
}

/**
 * Preempting return of the better node (`preempt: true`): the better node `better` is
 * stopped gracefully, the other takes over, then `better` starts again and takes the
 * VIP back by handover. The result is the switch back.
 */
export async function preemptingReturn(p: Pair, better: VigilNode, timeoutMs = 20_000): Promise<SwitchResult> {
  const { active } = await roles(p);
  if (active !== better) throw new LabError('LAB_STATE', `preempt scenario expects ${better.name} active, not ${active.name}`);
  const other = p.nodes.find((n) => n !== better && n.running);
  if (!other) throw new LabError('LAB_STATE', 'no other node running');
  await stopActive(p, timeoutMs);
  await other.waitRole('active', timeoutMs);
  const cleanFrom = await ensureClientOn(p, other.name);
  const actionAt = Date.now();
  await better.start();
  const r = await observeSwitch(p, other.name, better.name, actionAt, timeoutMs, cleanFrom);
  await better.waitRole('active', timeoutMs);
  await other.waitRole('standby', timeoutMs);
  await Promise.all(p.nodes.map((n) => n.waitPeerLinks(timeoutMs)));
  return r;
}

async function counters(nodes: readonly VigilNode[]): Promise<{ failovers: number; transitions: number }> {
  const f = await Promise.all(nodes.map((n) => n.metric('vigil_cluster_failovers_total')));
  const t = await Promise.all(nodes.map((n) => n.metric('vigil_cluster_transitions_total')));
  return { failovers: f.reduce<number>((a, b) => a + (b ?? 0), 0), transitions: t.reduce<number>((a, b) => a + (b ?? 0), 0) };
}

/** Watches the pair for `windowMs` while `during` holds; counts client-visible switches and vigil's failovers. */
async function quietWindow(p: Pair, windowMs: number, apply: () => Promise<void>, undo: () => Promise<void>): Promise<QuietResult> {
  const { active } = await roles(p);
  await ensureClientOn(p, active.name);
  const before = await counters(p.nodes);
  const from = Date.now();
  await apply();
  try {
    await sleep(windowMs);
  } finally {
    await undo();
  }
  const to = Date.now();
  const after = await counters(p.nodes);
  return {
    switches: switches(p.prober.events, { from: from - 50, to }),
    failovers: after.failovers - before.failovers,
    transitions: after.transitions - before.transitions,
    longestGapMs: longestGap(p.prober.events, from, to),
    windowMs: to - from,
  };
}

/** The dedicated heartbeat link cut alone (link down on d1's side) for `windowMs`: must cause no failover. */
export async function cutDedicatedLink(p: Pair, windowMs: number): Promise<QuietResult> {
  const d1 = p.lab.director('d1');
  const r = await quietWindow(
    p,
    windowMs,
    () => p.lab.linkDown(d1.ns, d1.hbIf as string),
    () => p.lab.linkUp(d1.ns, d1.hbIf as string),
  );
  await Promise.all(p.nodes.map((n) => n.waitPeerLinks(15_000)));
  return r;
}

/** `percent`% random loss of heartbeats on both links in both directions for `windowMs`, `during` running alongside. */
export async function heartbeatLossWindow(p: Pair, windowMs: number, percent: number): Promise<QuietResult> {
  const names = p.lab.directors.map((d) => d.name);
  return quietWindow(
    p,
    windowMs,
    async () => {
      await Promise.all(names.map((n) => p.lab.heartbeatLoss(n, { percent, port: HEARTBEAT_PORT })));
    },
    async () => {
      await Promise.all(names.map((n) => p.lab.clearFilters(n)));
    },
  );
}

/**
 * Split brain and its end: every heartbeat dropped on both directors until both are
 * active, then the partition healed. Returns how long after the heal both were still
 * active (until the first VIP release, seen by `ip monitor address` in each director)
 * and who kept the VIP.
 */
export async function splitBrainHeal(p: Pair, timeoutMs = 10_000): Promise<{ healedToReleaseMs: number; released: string; kept: string }> {
  await roles(p);
  const names = p.lab.directors.slice(0, 2).map((d) => d.name);
  await Promise.all(names.map((n) => p.lab.heartbeatLoss(n, { percent: 100, port: HEARTBEAT_PORT })));
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const rs = await Promise.all(p.nodes.map((n) => n.role()));
      if (rs.every((r) => r === 'active')) break;
      if (Date.now() > deadline) throw new LabError('LAB_TIMEOUT', `partition: not both active after ${timeoutMs} ms (${rs.join(', ')})`);
      await sleep(20);
    }
  } catch (err) {
    await Promise.all(names.map((n) => p.lab.clearFilters(n)));
    throw err;
  }
  const monitors = p.nodes.map((n) => ({ node: n, child: p.lab.spawn(n.director.ns, ['ip', '-o', '-4', 'monitor', 'address']) }));
  const released = new Promise<{ name: string; at: number }>((resolve) => {
    for (const m of monitors) {
      let buf = '';
      m.child.stdout?.on('data', (d: Buffer) => {
        const at = Date.now();
        buf += d.toString();
        if (buf.split('\n').some((l) => l.startsWith('Deleted') && l.includes(` ${p.lab.vip}/`))) resolve({ name: m.node.name, at });
      });
    }
  });
  await sleep(100); // let the monitors subscribe
  // the heal is timed when the rule removal starts: an upper bound of the split's end by
  // the few ms `ip netns exec nft` takes
  const healedAt = Date.now();
  await Promise.all(names.map((n) => p.lab.clearFilters(n)));
  try {
    const rel = await Promise.race([released, sleep(timeoutMs).then(() => null)]);
    if (!rel) throw new LabError('LAB_TIMEOUT', `split brain not over ${timeoutMs} ms after the heal (nobody released the VIP)`);
    const kept = p.nodes.find((n) => n.name !== rel.name);
    await roles(p, timeoutMs);
    return { healedToReleaseMs: rel.at - healedAt, released: rel.name, kept: kept?.name ?? '?' };
  } finally {
    for (const m of monitors) m.child.kill('SIGKILL');
  }
}

/** What the client's neighbour cache and the directors' addresses look like now (for a failed run's log). */
export async function diagnose(lab: Lab): Promise<string> {
  const lines: string[] = [];
  const neigh = await lab.exec(lab.client.ns, ['ip', 'neigh', 'show', lab.vip], { allowFail: true });
  lines.push(`client neigh ${lab.vip}: ${neigh.stdout.trim() || '(none)'}`);
  for (const d of lab.directors) {
    const link = await lab.exec(d.ns, ['ip', '-br', 'link', 'show', d.lanIf], { allowFail: true });
    const addr = await lab.exec(d.ns, ['ip', '-br', '-4', 'addr', 'show', d.lanIf], { allowFail: true });
    lines.push(`${d.name}: ${link.stdout.trim().replace(/\s+/g, ' ')} | ${addr.stdout.trim().replace(/\s+/g, ' ')}`);
  }
  return lines.join('\n');
}
