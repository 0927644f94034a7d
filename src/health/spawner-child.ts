/**
 * The probe spawner process (see spawner.ts): runs exec probes for the daemon through
 * src/proc.ts, so fork/exec happens here and never blocks the daemon's event loop.
 *
 * Messages in:  { t: 'run', id, command, args, opts } | { t: 'abort', id }
 * Messages out: { t: 'ready' } | { t: 'done', id, result }
 *
 * When the daemon goes away (the IPC channel closes, whatever the reason) every probe in
 * flight is stopped, process groups and all, and this process exits. It ignores SIGINT
 * and SIGTERM: a Ctrl-C in the daemon's terminal reaches the whole foreground group, and
 * the probes must be stopped by this process, not orphaned by its death.
 */
import { runScript, type RunScriptOptions, type ScriptResult } from '../proc.js';

type In =
  | { t: 'run'; id: number; command: string; args: string[]; opts: Omit<RunScriptOptions, 'signal'>; deadline: number }
  | { t: 'abort'; id: number };

const runs = new Map<number, AbortController>();
let leaving = false;

function send(msg: { t: 'ready' } | { t: 'done'; id: number; result: ScriptResult & { notStarted?: string } }): void {
  if (process.connected) process.send?.(msg);
}

process.on('message', (m: In) => {
  if (m.t === 'run') {
    // time spent waiting here (this process busy spawning others) counts against the timeout
    const remaining = m.deadline - Date.now();
    if (remaining <= 0) {
      const why = 'not started: the probe spawner was busy until the deadline';
      send({ t: 'done', id: m.id, result: { kind: 'timeout', code: null, signal: null, firstLine: why, output: '', durationMs: 0, notStarted: why } });
      return;
    }
    const ac = new AbortController();
    runs.set(m.id, ac);
    if (leaving) ac.abort();
    void runScript(m.command, m.args, { ...m.opts, timeoutMs: Math.min(m.opts.timeoutMs, remaining), signal: ac.signal }).then((result) => {
      runs.delete(m.id);
      send({ t: 'done', id: m.id, result });
      if (leaving && runs.size === 0) process.exit(0);
    });
  } else if (m.t === 'abort') {
    runs.get(m.id)?.abort();
  }
});

process.on('disconnect', () => {
  leaving = true;
  for (const ac of runs.values()) ac.abort();
  if (runs.size === 0) process.exit(0);
});

process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => undefined);

send({ t: 'ready' });
