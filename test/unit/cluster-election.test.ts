import { describe, expect, it } from 'vitest';
import {
  effectivePriority,
  handoverGraceLeftMs,
  initialState,
  step,
  type Action,
  type Command,
  type ElectionConfig,
  type ElectionEvent,
  type ElectionState,
} from '../../src/cluster/election.js';

/**
 * A simulated cluster on a fake clock: every node runs the pure election; heartbeats are
 * delivered instantly over each link unless the link is cut between two nodes. Actions are
 * performed as the runner would (send → deliver now, drain → tick again drained,
 * acquire/release → VIP ownership).
 */
interface SimNode {
  name: string;
  state: ElectionState;
  running: boolean;
  owns: boolean;
  offset: number;
  actions: { t: number; a: Action; seq?: number }[];
}

/** A global order of every action in a sim (ties on the fake clock are common). */
let actionSeq = 0;

const LINKS = ['heartbeat', 'lan'];

class Sim {
  t = 0;
  readonly nodes = new Map<string, SimNode>();
  private readonly cuts = new Set<string>();
  private readonly queue: { to: string; ev: ElectionEvent }[] = [];

  constructor(
    private readonly specs: { name: string; priority: number }[],
    readonly opts: Partial<Omit<ElectionConfig, 'self' | 'priority' | 'peers'>> = {},
  ) {}

  cfg(name: string, priority?: number): ElectionConfig {
    const spec = this.specs.find((s) => s.name === name)!;
    return {
      self: name,
      priority: priority ?? spec.priority,
      peers: this.specs.filter((s) => s.name !== name).map((s) => ({ name: s.name, links: [...LINKS] })),
      intervalMs: 100,
      deadtimeMs: 600,
      warntimeMs: 300,
      initdeadMs: 2000,
      preempt: false,
      ...this.opts,
    };
  }

  get interval(): number {
    return this.opts.intervalMs ?? 100;
  }

  /** Starts a node now (its ticks are offset so nodes do not tick in lockstep). */
  start(name: string, offset = 0): void {
    this.nodes.set(name, { name, state: initialState(this.cfg(name), this.t), running: true, owns: false, offset: (this.t + offset) % this.interval, actions: [] });
  }

  kill(name: string): void {
    this.node(name).running = false;
  }

  /** SIGTERM: release if active, then a leaving frame on every link. */
  stop(name: string): void {
    const n = this.node(name);
    n.owns = false;
    this.broadcast(name, true);
    n.running = false; // a closing node reads nothing more
    this.flush();
  }

  node(name: string): SimNode {
    return this.nodes.get(name)!;
  }

  role(name: string): string {
    return this.node(name).state.role;
  }

  cut(a: string, b: string, link: string): void {
    this.cuts.add([a, b].sort().join('|') + `|${link}`);
  }

  heal(a: string, b: string, link: string): void {
    this.cuts.delete([a, b].sort().join('|') + `|${link}`);
  }

  private linked(a: string, b: string, link: string): boolean {
    return !this.cuts.has([a, b].sort().join('|') + `|${link}`);
  }

  private broadcast(from: string, leaving = false): void {
    const n = this.node(from);
    const s = n.state;
    for (const peer of this.nodes.values()) {
      if (peer.name === from || !peer.running) continue;
      for (const link of LINKS) {
        if (!this.linked(from, peer.name, link)) continue;
        this.queue.push({
          to: peer.name,
          ev: {
            type: 'frame',
            peer: from,
            link,
            role: s.role,
            priority: effectivePriority(s),
            releasing: s.handover !== null,
            leaving,
            takeover: s.takeover,
            yielding: s.yielding,
          },
        });
      }
    }
  }

  /** Feeds one event to a node and performs its actions; returns them. */
  send(name: string, ev: ElectionEvent): Action[] {
    const n = this.node(name);
    if (!n.running) return [];
    const { state, actions } = step(n.state, ev, this.t);
    n.state = state;
    for (const a of actions) {
      n.actions.push({ t: this.t, a, seq: actionSeq++ });
      if (a.type === 'send') this.broadcast(name);
      if (a.type === 'acquire') n.owns = true;
      if (a.type === 'release') n.owns = false;
      if (a.type === 'drain') this.queue.push({ to: name, ev: { type: 'tick', lateness: 0, drained: true } });
    }
    return actions;
  }

  private flush(): void {
    for (let i = 0; i < 10_000 && this.queue.length > 0; i++) {
      const { to, ev } = this.queue.shift()!;
      this.send(to, ev);
    }
    expect(this.queue.length).toBe(0);
  }

  command(name: string, command: Command): { ok: boolean; message: string } {
    const actions = this.send(name, { type: 'command', command });
    this.flush();
    const r = actions.find((a) => a.type === 'reply');
    return r && r.type === 'reply' ? { ok: r.ok, message: r.message } : { ok: false, message: 'no reply' };
  }

  event(name: string, ev: ElectionEvent): Action[] {
    const a = this.send(name, ev);
    this.flush();
    return a;
  }

  /** Advances the clock by ms, 1 ms at a time: each node sends and ticks on its own phase. */
  run(ms: number): void {
    const end = this.t + ms;
    while (this.t < end) {
      this.t += 1;
      for (const n of this.nodes.values()) {
        if (!n.running || this.t % this.interval !== n.offset) continue;
        this.broadcast(n.name);
        this.queue.push({ to: n.name, ev: { type: 'tick', lateness: 0, drained: false } });
      }
      this.flush();
    }
  }

  /** Runs until pred holds; returns the time it took. */
  until(pred: () => boolean, maxMs = 10_000): number {
    const t0 = this.t;
    while (!pred()) {
      if (this.t - t0 > maxMs) throw new Error(`condition not reached within ${maxMs} ms`);
      this.run(1);
    }
    return this.t - t0;
  }

  actives(): string[] {
    return [...this.nodes.values()].filter((n) => n.running && n.state.role === 'active').map((n) => n.name);
  }

  owners(): string[] {
    return [...this.nodes.values()].filter((n) => n.running && n.owns).map((n) => n.name);
  }

  transitions(name: string): { t: number; from: string; to: string; reason: string; failover: boolean }[] {
    return this.node(name).actions.flatMap(({ t, a }) => (a.type === 'transition' ? [{ t, from: a.from, to: a.to, reason: a.reason, failover: a.failover }] : []));
  }

  all(name: string, type: Action['type']): { t: number; a: Action }[] {
    return this.node(name).actions.filter((x) => x.a.type === type);
  }
}

/** A pair already settled: lvs1 (150) active, lvs2 (100) standby. */
function settledPair(opts: ConstructorParameters<typeof Sim>[1] = {}): Sim {
  const sim = new Sim(
    [
      { name: 'lvs1', priority: 150 },
      { name: 'lvs2', priority: 100 },
    ],
    opts,
  );
  sim.start('lvs1', 0);
  sim.start('lvs2', 37);
  sim.run(500);
  expect(sim.actives()).toEqual(['lvs1']);
  expect(sim.role('lvs2')).toBe('standby');
  return sim;
}

describe('election: start', () => {
  it('a node started alone waits initdead, then becomes active', () => {
    const sim = new Sim([
      { name: 'lvs1', priority: 150 },
      { name: 'lvs2', priority: 100 },
    ]);
    sim.start('lvs2');
    sim.run(1999);
    expect(sim.role('lvs2')).toBe('init');
    const took = sim.until(() => sim.role('lvs2') === 'active');
    expect(sim.t).toBeGreaterThanOrEqual(2000);
    expect(took).toBeLessThanOrEqual(100);
    expect(sim.transitions('lvs2')).toEqual([{ t: sim.t, from: 'init', to: 'active', reason: 'initdead', failover: false }]);
    expect(sim.owners()).toEqual(['lvs2']);
    expect(sim.node('lvs2').state.elected).toBe(true);
  });

  it('nodes started together elect the best at once, without waiting initdead', () => {
    const sim = new Sim([
      { name: 'lvs1', priority: 150 },
      { name: 'lvs2', priority: 100 },
    ]);
    sim.start('lvs2', 0);
    sim.start('lvs1', 50);
    sim.run(300);
    expect(sim.actives()).toEqual(['lvs1']);
    expect(sim.role('lvs2')).toBe('standby');
    expect(sim.owners()).toEqual(['lvs1']);
    expect(sim.transitions('lvs1')[0]).toMatchObject({ to: 'active', reason: 'election' });
  });

  it('a node that starts while another is active becomes standby (no preempt)', () => {
    const sim = new Sim([
      { name: 'lvs1', priority: 150 },
      { name: 'lvs2', priority: 100 },
    ]);
    sim.start('lvs2');
    sim.run(2100);
    sim.start('lvs1', 13);
    sim.run(1000);
    expect(sim.actives()).toEqual(['lvs2']);
    expect(sim.transitions('lvs1')).toEqual([expect.objectContaining({ from: 'init', to: 'standby', reason: 'peer-active' })]);
  });

  it.each([
    ['alpha', 'bravo'],
    ['bravo', 'alpha'],
  ])('equal priorities: the lower name wins, whoever starts first (%s first)', (first, second) => {
    const sim = new Sim([
      { name: 'alpha', priority: 100 },
      { name: 'bravo', priority: 100 },
    ]);
    sim.start(first, 0);
    sim.start(second, 10);
    sim.run(500);
    expect(sim.actives()).toEqual(['alpha']);
  });
});

describe('election: failures', () => {
  it('the standby takes over when the active dies, after deadtime', () => {
    const sim = settledPair();
    sim.kill('lvs1');
    const took = sim.until(() => sim.role('lvs2') === 'active');
    expect(took).toBeGreaterThanOrEqual(600 - 100);
    expect(took).toBeLessThanOrEqual(600 + 100);
    expect(sim.transitions('lvs2').at(-1)).toMatchObject({ from: 'standby', to: 'active', reason: 'peer-dead', failover: true });
    expect(sim.owners()).toEqual(['lvs2']);
  });

  it('the dedicated link dies but the LAN lives: the link goes down, no failover', () => {
    const sim = settledPair();
    sim.cut('lvs1', 'lvs2', 'heartbeat');
    sim.run(5000);
    expect(sim.actives()).toEqual(['lvs1']);
    expect(sim.role('lvs2')).toBe('standby');
    const downs = sim.all('lvs2', 'link').map((x) => x.a);
    expect(downs).toContainEqual({ type: 'link', peer: 'lvs1', link: 'heartbeat', up: false });
    expect(sim.node('lvs2').state.peers.lvs1!.alive).toBe(true);
    expect(sim.all('lvs2', 'peer').filter((x) => x.a.type === 'peer' && !x.a.alive)).toEqual([]);
  });

  it('both links die: the standby takes over; when they heal the worse one releases within one interval', () => {
    const sim = settledPair();
    sim.cut('lvs1', 'lvs2', 'heartbeat');
    sim.cut('lvs1', 'lvs2', 'lan');
    sim.until(() => sim.role('lvs2') === 'active');
    expect(sim.actives().sort()).toEqual(['lvs1', 'lvs2']); // split brain while partitioned
    sim.heal('lvs1', 'lvs2', 'lan');
    const healedAt = sim.t;
    const took = sim.until(() => sim.actives().length === 1);
    expect(took).toBeLessThanOrEqual(100);
    expect(sim.actives()).toEqual(['lvs1']);
    expect(sim.owners()).toEqual(['lvs1']);
    expect(sim.transitions('lvs2').at(-1)).toMatchObject({ from: 'active', to: 'standby', reason: 'split-brain' });
    // the winner re-sends GARP and re-runs notify
    expect(sim.all('lvs1', 'regarp').filter((x) => x.t >= healedAt)).toHaveLength(1);
    expect(sim.all('lvs1', 'renotify').filter((x) => x.t >= healedAt)).toHaveLength(1);
    sim.run(2000);
    expect(sim.actives()).toEqual(['lvs1']);
  });

  it('a crashed standby that comes back (INIT) gets the active\'s GARP refresh but no split-brain notify', () => {
    const sim = settledPair();
    sim.kill('lvs2');
    sim.run(1000); // past deadtime: lvs1 declares it dead
    expect(sim.node('lvs1').state.peers.lvs2!.alive).toBe(false);
    const before = sim.t;
    sim.start('lvs2', 37);
    sim.run(3000);
    expect(sim.role('lvs2')).toBe('standby');
    expect(sim.actives()).toEqual(['lvs1']);
    const regarps = sim.all('lvs1', 'regarp').filter((x) => x.t >= before).map((x) => x.a);
    expect(regarps).toEqual([{ type: 'regarp', reason: 'peer-returned' }]);
    expect(sim.all('lvs1', 'renotify').filter((x) => x.t >= before), 'no split brain: notify is not re-run').toEqual([]);
  });

  it('a graceful stop (leaving frame) hands over at once, without deadtime', () => {
    const sim = settledPair();
    sim.stop('lvs1');
    expect(sim.role('lvs2')).toBe('active');
    expect(sim.transitions('lvs2').at(-1)).toMatchObject({ reason: 'peer-left', failover: true });
  });
});

describe('election: own lateness', () => {
  it('a tick that fired late defers the verdict by one interval, and queued frames then keep the peer alive', () => {
    const sim = settledPair();
    // lvs2 stalls for 900 ms: it neither ticks nor reads; lvs1's frames wait in its socket
    const n2 = sim.node('lvs2');
    n2.running = false;
    sim.run(900);
    n2.running = true;
    // the timer fires first (900 ms late) ...
    const a = sim.event('lvs2', { type: 'tick', lateness: 900, drained: false });
    expect(a).toContainEqual({ type: 'deferred', latenessMs: 900 });
    expect(sim.role('lvs2')).toBe('standby');
    // ... a drained tick inside the hold still decides nothing
    sim.event('lvs2', { type: 'tick', lateness: 0, drained: true });
    expect(sim.role('lvs2')).toBe('standby');
    // ... then the poll phase reads the frames queued meanwhile
    sim.event('lvs2', { type: 'frame', peer: 'lvs1', link: 'lan', role: 'active', priority: 150, releasing: false, leaving: false, takeover: false, yielding: false });
    sim.run(3000);
    expect(sim.role('lvs2')).toBe('standby');
    expect(sim.transitions('lvs2').filter((t) => t.to === 'active')).toEqual([]);
  });

  it('a verdict waits until the queued frames are read (drain), even without lateness', () => {
    const sim = settledPair();
    sim.node('lvs2').running = false;
    sim.run(700);
    sim.node('lvs2').running = true;
    const first = step(sim.node('lvs2').state, { type: 'tick', lateness: 0, drained: false }, sim.t);
    expect(first.actions).toEqual([{ type: 'drain' }]);
    expect(first.state.role).toBe('standby');
    // nothing was queued: the drained tick declares the peer dead and takes over
    const second = step(first.state, { type: 'tick', lateness: 0, drained: true }, sim.t);
    expect(second.state.role).toBe('active');
    expect(second.actions).toContainEqual(expect.objectContaining({ type: 'transition', reason: 'peer-dead' }));
  });

  it('initdead is not taken as over by a stalled tick either', () => {
    const s0 = initialState(new Sim([{ name: 'a', priority: 100 }, { name: 'b', priority: 100 }]).cfg('a'), 0);
    const r = step(s0, { type: 'tick', lateness: 2500, drained: false }, 2500);
    expect(r.state.role).toBe('init');
    expect(r.actions).toEqual([{ type: 'deferred', latenessMs: 2500 }]);
    const r2 = step(r.state, { type: 'tick', lateness: 0, drained: true }, 2601);
    expect(r2.state.role).toBe('init'); // and not before its timers were on time for a deadtime
    const r3 = step(r2.state, { type: 'tick', lateness: 0, drained: true }, 3101);
    expect(r3.state.role).toBe('active');
  });
});

describe('election: preempt', () => {
  const restartBetter = (preempt: boolean): Sim => {
    const sim = settledPair({ preempt });
    sim.kill('lvs1');
    sim.until(() => sim.role('lvs2') === 'active');
    sim.start('lvs1', 3);
    return sim;
  };

  it('preempt on: the better node takes the role back by a handover, not after deadtime', () => {
    const sim = restartBetter(true);
    const took = sim.until(() => sim.role('lvs1') === 'active');
    expect(took).toBeLessThanOrEqual(200); // initdead is skipped: it heard every peer
    expect(sim.actives()).toEqual(['lvs1']);
    expect(sim.owners()).toEqual(['lvs1']);
    expect(sim.transitions('lvs2').at(-1)).toMatchObject({ from: 'active', to: 'standby', reason: 'preempt' });
    // lvs2 yielded to lvs1's very first frame, so lvs1 never saw it active: an election for it
    expect(sim.transitions('lvs1').at(-1)).toMatchObject({ to: 'active' });
    expect(['handover', 'election']).toContain(sim.transitions('lvs1').at(-1)!.reason);
  });

  it('preempt off: the active stays where it is', () => {
    const sim = restartBetter(false);
    sim.run(5000);
    expect(sim.actives()).toEqual(['lvs2']);
    expect(sim.role('lvs1')).toBe('standby');
  });
});

describe('election: tracks, maintenance, commands', () => {
  it('a failed gateway track lowers the effective priority and hands over at once', () => {
    const sim = settledPair();
    sim.event('lvs1', { type: 'track', penalty: 60 });
    expect(effectivePriority(sim.node('lvs1').state)).toBe(90);
    expect(sim.actives()).toEqual(['lvs2']);
    expect(sim.owners()).toEqual(['lvs2']);
    expect(sim.transitions('lvs1').at(-1)).toMatchObject({ from: 'active', to: 'standby', reason: 'degraded' });
    // recovery does not move it back without preempt
    sim.event('lvs1', { type: 'track', penalty: 0 });
    sim.run(2000);
    expect(sim.actives()).toEqual(['lvs2']);
  });

  it('a node whose tracks all failed (priority 0) is never active', () => {
    const sim = settledPair();
    sim.event('lvs2', { type: 'track', penalty: 200 });
    sim.kill('lvs1');
    sim.run(3000);
    expect(sim.actives()).toEqual([]);
    expect(sim.role('lvs2')).toBe('standby');
  });

  it('maintenance releases at once, stays out of elections, and comes back as standby', () => {
    const sim = settledPair();
    expect(sim.command('lvs1', 'maintenance-on').ok).toBe(true);
    expect(sim.role('lvs1')).toBe('maintenance');
    expect(sim.actives()).toEqual(['lvs2']);
    sim.kill('lvs2');
    sim.run(3000);
    expect(sim.role('lvs1')).toBe('maintenance');
    expect(sim.command('lvs1', 'maintenance-off').ok).toBe(true);
    expect(sim.role('lvs1')).toBe('active'); // the peer is dead: it is the only candidate
  });

  it('standby hands over to the peer at once and takeover takes it back', () => {
    const sim = settledPair();
    const r = sim.command('lvs1', 'standby');
    expect(r.ok).toBe(true);
    expect(sim.actives()).toEqual(['lvs2']);
    expect(sim.owners()).toEqual(['lvs2']);
    expect(sim.transitions('lvs2').at(-1)).toMatchObject({ reason: 'handover', failover: true });
    sim.run(3000);
    expect(sim.actives()).toEqual(['lvs2']); // yielding: it does not come back by itself
    const t = sim.command('lvs1', 'takeover');
    expect(t.ok).toBe(true);
    expect(sim.actives()).toEqual(['lvs1']);
    expect(sim.transitions('lvs1').at(-1)).toMatchObject({ to: 'active', reason: 'takeover' });
    expect(sim.transitions('lvs2').at(-1)).toMatchObject({ to: 'standby', reason: 'takeover-requested' });
  });

  it('takeover on the worse node pins the role there, even with preempt', () => {
    const sim = settledPair({ preempt: true });
    expect(sim.command('lvs2', 'takeover').ok).toBe(true);
    sim.run(3000);
    expect(sim.actives()).toEqual(['lvs2']);
  });

  it('standby is refused when no peer could take over', () => {
    const sim = settledPair();
    sim.kill('lvs2');
    sim.run(1000);
    const r = sim.command('lvs1', 'standby');
    expect(r.ok).toBe(false);
    expect(r.message).toMatch(/no eligible peer/);
    expect(sim.actives()).toEqual(['lvs1']);
  });

  it('takeover is refused in maintenance', () => {
    const sim = settledPair();
    sim.command('lvs2', 'maintenance-on');
    expect(sim.command('lvs2', 'takeover')).toMatchObject({ ok: false });
  });
});

describe('election: config changes', () => {
  it('a reload with new timers does not move the role', () => {
    const sim = settledPair();
    for (const n of ['lvs1', 'lvs2']) sim.event(n, { type: 'config', cfg: { ...sim.cfg(n), intervalMs: 50, deadtimeMs: 300, warntimeMs: 150 } });
    expect(sim.actives()).toEqual(['lvs1']);
    expect(sim.transitions('lvs1')).toHaveLength(1);
  });

  it('a reload that makes the peer better moves the role only with preempt', () => {
    const sim = settledPair();
    sim.event('lvs2', { type: 'config', cfg: sim.cfg('lvs2', 200) });
    sim.run(1000);
    expect(sim.actives()).toEqual(['lvs1']);
    sim.event('lvs1', { type: 'config', cfg: { ...sim.cfg('lvs1'), preempt: true } });
    expect(sim.actives()).toEqual(['lvs2']);
    expect(sim.transitions('lvs1').at(-1)).toMatchObject({ reason: 'preempt' });
  });
});

describe('election: three nodes', () => {
  const trio = (): Sim => {
    const sim = new Sim([
      { name: 'a', priority: 150 },
      { name: 'b', priority: 120 },
      { name: 'c', priority: 100 },
    ]);
    sim.start('c', 0);
    sim.start('b', 20);
    sim.start('a', 40);
    sim.run(500);
    return sim;
  };

  it('elects the best, and the next best takes over when it dies', () => {
    const sim = trio();
    expect(sim.actives()).toEqual(['a']);
    sim.kill('a');
    sim.until(() => sim.actives().length === 1 && sim.actives()[0] === 'b', 2000);
    sim.run(3000);
    expect(sim.actives()).toEqual(['b']);
    expect(sim.role('c')).toBe('standby');
    expect(sim.owners()).toEqual(['b']);
  });

  it('a node cut off from the others becomes active alone and yields when it is back', () => {
    const sim = trio();
    for (const l of LINKS) {
      sim.cut('a', 'b', l);
      sim.cut('a', 'c', l);
    }
    sim.run(1500);
    expect(sim.actives().sort()).toEqual(['a', 'b']);
    for (const l of LINKS) {
      sim.heal('a', 'b', l);
      sim.heal('a', 'c', l);
    }
    sim.run(100);
    expect(sim.actives()).toEqual(['a']);
  });
});

describe('election: repeated standby commands', () => {
  it('standby on each node in turn always hands over (an older yield gives way to a newer one)', () => {
    const sim = settledPair();
    expect(sim.command('lvs1', 'standby').ok).toBe(true);
    expect(sim.actives()).toEqual(['lvs2']);
    expect(sim.command('lvs2', 'standby').ok).toBe(true);
    expect(sim.actives()).toEqual(['lvs1']);
    const r = sim.command('lvs1', 'standby');
    expect(r).toMatchObject({ ok: true });
    expect(sim.actives()).toEqual(['lvs2']);
    sim.run(3000);
    expect(sim.actives()).toEqual(['lvs2']);
    expect(sim.owners()).toEqual(['lvs2']);
  });
});

describe('election: a node that stalls while starting', () => {
  it('does not leave INIT until its timers were on time for a deadtime', () => {
    const cfg = new Sim([{ name: 'a', priority: 150 }, { name: 'b', priority: 100 }]).cfg('a');
    let s = initialState(cfg, 0);
    s = step(s, { type: 'tick', lateness: 150, drained: false }, 150).state; // warming up: late
    const frame = { type: 'frame', peer: 'b', link: 'lan', role: 'init', priority: 100, releasing: false, leaving: false, takeover: false, yielding: false } as const;
    s = step(s, frame, 160).state; // every peer heard, but this node is not calm yet
    expect(s.role).toBe('init');
    s = step(s, { type: 'tick', lateness: 0, drained: false }, 700).state;
    expect(s.role).toBe('init');
    s = step(s, { type: 'tick', lateness: 0, drained: false }, 750).state; // 600 ms on time
    expect(s.role).toBe('active');
  });

  it('goes on after 2 × initdead even if it keeps stalling', () => {
    const cfg = new Sim([{ name: 'a', priority: 150 }, { name: 'b', priority: 100 }]).cfg('a');
    let s = initialState(cfg, 0);
    for (let t = 100; t < 4000; t += 100) s = step(s, { type: 'tick', lateness: 60, drained: true }, t).state;
    expect(s.role).toBe('init');
    s = step(s, { type: 'tick', lateness: 60, drained: true }, 4000).state;
    expect(s.role).toBe('active');
  });
});

describe('election: the active restarts before its death is noticed', () => {
  it('the standby takes over at once instead of waiting for the restarted node to leave INIT', () => {
    const sim = settledPair();
    const t0 = sim.t;
    sim.kill('lvs1');
    sim.run(50); // well within deadtime
    sim.start('lvs1', 7);
    // warm-up stalls keep the restarted node in INIT for a while
    sim.event('lvs1', { type: 'tick', lateness: 200, drained: false });
    sim.until(() => sim.role('lvs2') === 'active', 1000);
    expect(sim.t - t0).toBeLessThan(300);
    expect(sim.transitions('lvs2').at(-1)).toMatchObject({ from: 'standby', to: 'active', reason: 'handover' });
    sim.run(3000);
    expect(sim.actives()).toEqual(['lvs2']);
    expect(sim.role('lvs1')).toBe('standby');
  });
});

describe('election: stale frames flushed from a neighbour queue', () => {
  // The kernel queues datagrams to a neighbour that does not answer ARP and sends them
  // when it does: a node that restarts reads the peer's seconds-old frames first.
  const frame = (peer: string, role: 'standby' | 'active', link = 'heartbeat'): ElectionEvent => ({
    type: 'frame',
    peer,
    link,
    role,
    priority: 100,
    releasing: false,
    leaving: false,
    takeover: false,
    yielding: false,
  });

  it('a restarting better node does not seize the VIPs on a stale "standby" from the active peer', () => {
    const sim = new Sim([
      { name: 'lvs1', priority: 150 },
      { name: 'lvs2', priority: 100 },
    ]);
    sim.start('lvs2');
    sim.run(2100);
    expect(sim.actives()).toEqual(['lvs2']);
    sim.start('lvs1', 37);
    // the first frames lvs1 reads were queued while lvs2 was still standby
    sim.event('lvs1', frame('lvs2', 'standby'));
    sim.event('lvs1', frame('lvs2', 'standby', 'lan'));
    expect(sim.role('lvs1')).toBe('init');
    sim.run(1000);
    expect(sim.actives()).toEqual(['lvs2']);
    expect(sim.transitions('lvs1')).toEqual([expect.objectContaining({ from: 'init', to: 'standby', reason: 'peer-active' })]);
    expect(sim.transitions('lvs2').filter((t) => t.t > 2100)).toEqual([]);
  });

  it('a peer that really is standby is believed once its current frame confirms it (one interval)', () => {
    const sim = new Sim([
      { name: 'lvs1', priority: 150 },
      { name: 'lvs2', priority: 100 },
    ]);
    sim.start('lvs1');
    sim.start('lvs2', 10);
    const took = sim.until(() => sim.actives().length === 1);
    expect(sim.actives()).toEqual(['lvs1']);
    expect(took).toBeLessThanOrEqual(2 * sim.interval + 10);
  });
});

describe('election: staggered start with a node that never comes', () => {
  it('the node that left INIT first waits for the better one still in INIT', () => {
    const sim = new Sim([
      { name: 'lvs1', priority: 150 },
      { name: 'lvs2', priority: 100 },
      { name: 'lvs9', priority: 1 }, // configured, never started: nobody leaves INIT before initdead
    ]);
    sim.start('lvs2', 0);
    sim.run(350);
    sim.start('lvs1', 13);
    sim.run(4000);
    expect(sim.actives()).toEqual(['lvs1']);
    expect(sim.transitions('lvs2').filter((t) => t.to === 'active')).toEqual([]);
  });
});

/** The order in which the nodes' acquire and release actions ran, across the whole sim. */
function ownershipLog(sim: Sim): { t: number; node: string; op: 'acquire' | 'release'; seq: number }[] {
  const out: { t: number; node: string; op: 'acquire' | 'release'; seq: number }[] = [];
  for (const n of sim.nodes.values()) {
    for (const { t, a, seq } of n.actions) {
      if (a.type === 'acquire' || a.type === 'release') out.push({ t, node: n.name, op: a.type, seq: seq ?? 0 });
    }
  }
  return out.sort((a, b) => a.seq - b.seq);
}

describe('election: make-before-break hand-over', () => {
  it('standby: the successor acquires before the old active releases, and the release waits a grace', () => {
    const sim = settledPair();
    const before = sim.all('lvs1', 'release').length;
    expect(sim.command('lvs1', 'standby').ok).toBe(true);
    expect(sim.actives()).toEqual(['lvs2']);
    const rel = sim.all('lvs1', 'release').slice(before);
    expect(rel).toHaveLength(1);
    expect(rel[0]!.a).toMatchObject({ type: 'release', reason: 'standby-command', graceMs: 100 });
    // lvs1 said releasing (handover start) before lvs2 acquired; lvs2 acquired before lvs1 released
    const start = sim.all('lvs1', 'handover').at(-1)!;
    expect(start.a).toMatchObject({ phase: 'start', reason: 'standby-command' });
    const acq = sim.all('lvs2', 'acquire').at(-1)!;
    expect(sim.node('lvs2').actions.indexOf(acq)).toBeGreaterThanOrEqual(0);
    const lvs1Actions = sim.node('lvs1').actions.map((x) => x.a.type);
    expect(lvs1Actions.lastIndexOf('handover')).toBeLessThan(lvs1Actions.lastIndexOf('release'));
    // in the simulated log the acquire of lvs2 happens while lvs1 still owns: both own for a moment
    const log = ownershipLog(sim).filter((e) => e.t === start.t);
    expect(log.map((e) => `${e.node}:${e.op}`)).toEqual(['lvs2:acquire', 'lvs1:release']);
  });

  it('preempt on: the returning better node takes the VIPs before the survivor lets go', () => {
    const sim = settledPair({ preempt: true });
    sim.kill('lvs1');
    sim.until(() => sim.role('lvs2') === 'active');
    sim.start('lvs1', 3);
    sim.until(() => sim.role('lvs1') === 'active');
    sim.run(1);
    expect(sim.actives()).toEqual(['lvs1']);
    const ho = sim.all('lvs2', 'handover').at(-1)!;
    expect(ho.a).toMatchObject({ phase: 'start', reason: 'preempt' });
    const acqAt = sim.all('lvs1', 'acquire').at(-1)!.t;
    const relAt = sim.all('lvs2', 'release').at(-1)!.t;
    expect(acqAt).toBeLessThanOrEqual(relAt);
    expect(sim.transitions('lvs2').at(-1)).toMatchObject({ from: 'active', to: 'standby', reason: 'preempt' });
    expect(sim.transitions('lvs1').at(-1)).toMatchObject({ to: 'active', reason: 'handover', failover: true });
  });

  it('a hand-over nobody completes is cancelled after deadtime: the node stays active', () => {
    const sim2 = settledPair();
    // a standby command starts a hand-over; the peer dies before answering
    sim2.kill('lvs2');
    const before = sim2.all('lvs1', 'handover').length;
    sim2.send('lvs1', { type: 'command', command: 'standby' }); // the peer still counts as alive
    sim2.run(1000);
    const hs = sim2.all('lvs1', 'handover').slice(before).map((x) => x.a);
    expect(hs).toEqual([
      { type: 'handover', phase: 'start', reason: 'standby-command' },
      { type: 'handover', phase: 'cancel', reason: 'standby-command' },
    ]);
    expect(sim2.role('lvs1')).toBe('active');
    expect(sim2.owners()).toEqual(['lvs1']);
  });

  it('maintenance hands over when a peer can take the VIPs, and releases at once when none can', () => {
    const sim = settledPair();
    expect(sim.command('lvs1', 'maintenance-on').ok).toBe(true);
    expect(sim.role('lvs1')).toBe('maintenance');
    expect(sim.actives()).toEqual(['lvs2']);
    expect(sim.all('lvs1', 'handover').at(-1)!.a).toMatchObject({ phase: 'start', reason: 'maintenance' });
    const alone = settledPair();
    alone.kill('lvs2');
    alone.run(1000);
    expect(alone.command('lvs1', 'maintenance-on').ok).toBe(true);
    expect(alone.role('lvs1')).toBe('maintenance');
    expect(alone.owners()).toEqual([]);
  });

  it('a node that must go (maintenance) releases after deadtime even if the successor never answers', () => {
    const sim = settledPair();
    sim.kill('lvs2');
    sim.send('lvs1', { type: 'command', command: 'maintenance-on' }); // lvs2 not yet noticed dead
    expect(sim.role('lvs1')).toBe('active');
    sim.run(700);
    expect(sim.role('lvs1')).toBe('maintenance');
    expect(sim.owners()).toEqual([]);
  });
});

describe('election: the operator\'s word survives stalls', () => {
  it('a node that stepped down with `standby` and then stalled past deadtime loses the split brain that follows', () => {
    const sim = settledPair();
    expect(sim.command('lvs1', 'standby').ok).toBe(true);
    expect(sim.actives()).toEqual(['lvs2']);
    // lvs1 stalls: it hears nothing for longer than deadtime and then ticks on time
    sim.cut('lvs1', 'lvs2', 'heartbeat');
    sim.cut('lvs1', 'lvs2', 'lan');
    sim.until(() => sim.role('lvs1') === 'active');
    expect(sim.node('lvs1').state.yielding).toBe(true);
    sim.heal('lvs1', 'lvs2', 'heartbeat');
    sim.heal('lvs1', 'lvs2', 'lan');
    sim.run(300);
    expect(sim.actives()).toEqual(['lvs2']); // the command's intent won
    expect(sim.transitions('lvs1').at(-1)).toMatchObject({ from: 'active', to: 'standby', reason: 'split-brain' });
  });
});

describe('election: the daemon\'s lease (serving)', () => {
  it('an active node whose daemon cannot serve hands the VIPs to a peer that can, make-before-break', () => {
    const sim = settledPair();
    sim.event('lvs1', { type: 'serving', ok: false });
    expect(effectivePriority(sim.node('lvs1').state)).toBe(0);
    expect(sim.actives()).toEqual(['lvs2']);
    expect(sim.owners()).toEqual(['lvs2']);
    expect(sim.all('lvs1', 'handover').at(-1)!.a).toMatchObject({ phase: 'start', reason: 'not-serving' });
    expect(sim.transitions('lvs1').at(-1)).toMatchObject({ from: 'active', to: 'standby', reason: 'not-serving' });
    // serving again: eligible, but no preempt: lvs2 keeps the role
    sim.event('lvs1', { type: 'serving', ok: true });
    sim.run(2000);
    expect(sim.actives()).toEqual(['lvs2']);
    expect(effectivePriority(sim.node('lvs1').state)).toBe(150);
  });

  it('keeps the VIPs when no peer could serve them (serving nobody is no better)', () => {
    const sim = settledPair();
    sim.kill('lvs2');
    sim.run(1000);
    sim.event('lvs1', { type: 'serving', ok: false });
    sim.run(2000);
    expect(sim.actives()).toEqual(['lvs1']);
    expect(sim.owners()).toEqual(['lvs1']);
  });

  it('a standby whose daemon cannot serve never takes over', () => {
    const sim = settledPair();
    sim.event('lvs2', { type: 'serving', ok: false });
    sim.kill('lvs1');
    sim.run(3000);
    expect(sim.actives()).toEqual([]);
    expect(sim.role('lvs2')).toBe('standby');
    sim.event('lvs2', { type: 'serving', ok: true });
    expect(sim.actives()).toEqual(['lvs2']);
  });

  it('two nodes that both lose their lease do not pass the VIPs back and forth', () => {
    const sim = settledPair();
    sim.event('lvs1', { type: 'serving', ok: false });
    expect(sim.actives()).toEqual(['lvs2']);
    // lvs2 loses its lease while lvs1 still cannot serve: lvs2 keeps the VIPs
    sim.event('lvs2', { type: 'serving', ok: false });
    sim.run(2000);
    expect(sim.actives()).toEqual(['lvs2']);
    expect(sim.transitions('lvs2').filter((t) => t.to === 'standby' && t.from === 'active')).toEqual([]);
  });
});


/** The two-node config (a 150, b 100) and a frame from b, for the direct step() tests below. */
const pairCfg = (): ElectionConfig => new Sim([{ name: 'a', priority: 150 }, { name: 'b', priority: 100 }]).cfg('a');
const fromB = (role: 'standby' | 'active', sentUs?: number, link = 'lan'): ElectionEvent => ({
  type: 'frame', peer: 'b', link, role, priority: 100, releasing: false, leaving: false, takeover: false, yielding: false, ...(sentUs === undefined ? {} : { sentUs }),
});

describe('election: the hand-over grace is counted in the successor\'s clock', () => {
  const cfg = pairCfg();
  const fr = (role: 'standby' | 'active', sentUs: number, link = 'lan'): ElectionEvent => fromB(role, sentUs, link);
  /** a active, b standby and heard; then a's daemon stops serving: a hands over. */
  function handingOver(): ElectionState {
    let s = initialState(cfg, 0);
    s = step(s, fr('standby', 100_000), 100).state;
    for (let t = 200; s.role !== 'active'; t += 100) s = step(s, { type: 'tick', lateness: 0, drained: false }, t).state;
    s = step(s, fr('standby', 5_000_000), 5000).state;
    const r = step(s, { type: 'serving', ok: false }, 5010);
    expect(r.actions).toContainEqual(expect.objectContaining({ type: 'handover', phase: 'start' }));
    return r.state;
  }
  const release = (r: { actions: Action[] }) => r.actions.find((a) => a.type === 'release');

  it('a successor that just became active gets the whole grace (one interval)', () => {
    const r = step(handingOver(), fr('active', 5_020_000), 5020);
    expect(release(r)).toMatchObject({ type: 'release', reason: 'not-serving', graceMs: 100 });
    expect(handoverGraceLeftMs(r.state)).toBe(100);
    // its next frame, an interval later in its own clock: nothing is left to wait
    expect(handoverGraceLeftMs(step(r.state, fr('active', 5_120_000), 5050).state)).toBe(0);
    // 40 ms later in its clock: 60 left
    expect(handoverGraceLeftMs(step(r.state, fr('active', 5_060_000, 'heartbeat'), 5030).state)).toBe(60);
  });

  it('frames queued while this node stalled count as time gone: the release waits nothing', () => {
    // b took over 800 ms ago (in its clock) while a was frozen; a reads the queue in one go
    let s = handingOver();
    let r = step(s, fr('active', 4_200_000), 5020);
    expect(release(r)).toMatchObject({ graceMs: 100 });
    s = r.state;
    r = step(s, fr('active', 4_600_000), 5020);
    expect(handoverGraceLeftMs(r.state)).toBe(0);
    // an older frame read late (another link) neither shrinks nor breaks the run
    r = step(r.state, fr('active', 4_100_000, 'heartbeat'), 5021);
    expect(handoverGraceLeftMs(r.state)).toBe(0);
    expect(r.state.peers.b?.activeRun).toEqual({ firstUs: 4_200_000, spanUs: 400_000 });
  });

  it('a run starts again when the peer stops being active, and across the µs wrap', () => {
    let s = handingOver();
    s = step(s, fr('active', 2 ** 32 - 30_000), 5020).state;
    s = step(s, fr('active', 50_000), 5040).state; // 80 ms later, past the wrap
    expect(s.peers.b?.activeRun?.spanUs).toBe(80_000);
    expect(handoverGraceLeftMs(s)).toBe(20);
    s = step(s, fr('standby', 60_000), 5050).state;
    expect(s.peers.b?.activeRun).toBeNull();
  });

  it('a frame without a send time (an older caller) keeps the whole grace', () => {
    const { sentUs: _unused, ...noTime } = fr('active', 0) as Extract<ElectionEvent, { type: 'frame' }>;
    const r = step(handingOver(), noTime, 5020);
    expect(release(r)).toMatchObject({ graceMs: 100 });
  });
});

describe('election: a daemon inside the lease hysteresis is a last resort', () => {
  const cfg = pairCfg();
  const fr = (role: 'standby' | 'active'): ElectionEvent => fromB(role);
  /** a standby behind an active b, its daemon's lease lapsed (not serving). */
  function standbyNotServing(): ElectionState {
    let s = initialState(cfg, 0);
    s = step(s, fr('active'), 100).state;
    for (let t = 200; s.role === 'init'; t += 100) s = step(s, { type: 'tick', lateness: 0, drained: false }, t).state;
    expect(s.role).toBe('standby');
    s = step(s, { type: 'serving', ok: false }, 3000).state;
    expect(effectivePriority(s)).toBe(0);
    return s;
  }
  const killB = (s: ElectionState, at: number): ElectionState => {
    for (let t = at; t <= at + 1000; t += 100) s = step(s, { type: 'tick', lateness: 0, drained: true }, t).state;
    return s;
  };

  it('the active peer dies: a node whose daemon is merely recovering takes the VIPs', () => {
    let s = standbyNotServing();
    const r = step(s, { type: 'serving', ok: false, recovering: true }, 3050);
    expect(r.state.recovering).toBe(true);
    expect(r.state.role).toBe('standby'); // b still holds them
    s = killB(r.state, 3100);
    expect(s.peers.b?.alive).toBe(false);
    expect(s.role).toBe('active');
    expect(effectivePriority(s)).toBe(0); // it still announces itself as not eligible
  });

  it('a daemon that still cannot serve (lapsed, or the dataplane down) does not', () => {
    const s = killB(standbyNotServing(), 3100);
    expect(s.peers.b?.alive).toBe(false);
    expect(s.role).toBe('standby');
  });

  it('an eligible peer comes first: recovering is not enough while a peer could take them', () => {
    let s = standbyNotServing();
    s = step(s, { type: 'serving', ok: false, recovering: true }, 3050).state;
    // b steps down to standby but stays eligible: a stays standby too (b is the candidate)
    s = step(s, fr('standby'), 3100).state;
    expect(s.role).toBe('standby');
    // the hysteresis ends: a is eligible again and, being better, becomes active
    s = step(s, { type: 'serving', ok: true }, 3200).state;
    expect(s.recovering).toBe(false);
    expect(s.role).toBe('active');
  });
});

describe('election: an active node inside the lease hysteresis keeps its VIPs', () => {
  const cfg = pairCfg();
  const fr = (role: 'standby' | 'active'): ElectionEvent => fromB(role);
  function active(): ElectionState {
    let s = initialState(cfg, 0);
    s = step(s, fr('standby'), 100).state;
    for (let t = 200; s.role !== 'active'; t += 100) s = step(s, { type: 'tick', lateness: 0, drained: false }, t).state;
    return step(s, fr('standby'), 3000).state;
  }

  it('a lapsed lease hands over to a peer that can serve', () => {
    const r = step(active(), { type: 'serving', ok: false }, 3010);
    expect(r.actions).toContainEqual(expect.objectContaining({ type: 'handover', phase: 'start', reason: 'not-serving' }));
  });

  it('recovering (lease fresh again, only the hysteresis left): no hand-over, the VIPs stay', () => {
    const r = step(active(), { type: 'serving', ok: false, recovering: true }, 3010);
    expect(r.actions.filter((a) => a.type === 'handover' || a.type === 'release')).toEqual([]);
    expect(r.state.role).toBe('active');
    expect(effectivePriority(r.state)).toBe(0); // a peer still does not see it as a candidate
    // a frame from the peer changes nothing
    const r2 = step(r.state, fr('standby'), 3100);
    expect(r2.state.role).toBe('active');
    expect(r2.actions.filter((a) => a.type === 'handover' || a.type === 'release')).toEqual([]);
  });
});
