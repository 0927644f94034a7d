/**
 * src/proc.ts as health probes use it (killLeftovers, abort), for real: hung, forking,
 * noisy and crashing scripts. Leftover processes are counted from the pids the scripts
 * record and from the process group itself.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runScript, type RunScriptOptions } from '../../src/proc.js';

const runChild = (o: RunScriptOptions & { command: string; args?: string[] }) => runScript(o.command, o.args ?? [], { killLeftovers: true, ...o });

/** Live (non-zombie) members of a process group, from /proc. */
function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] !== 'Z' && Number(fields[2]) === pgid) out.push(Number(d));
    } catch {
      // gone while reading
    }
  }
  return out;
}

const dir = mkdtempSync(join(tmpdir(), 'vigil-proc-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function script(name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

/** A pid counts as alive unless it is gone or a zombie waiting for its reaper. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

function pidsIn(file: string): number[] {
  return readFileSync(file, 'utf8').split(/\s+/).filter(Boolean).map(Number);
}

describe('runScript for probes', () => {
  it('classifies a clean exit and keeps the first line', async () => {
    const r = await runChild({ command: script('ok', 'echo "  all good  "; echo second; exit 0'), timeoutMs: 2000 });
    expect(r).toMatchObject({ kind: 'exited', code: 0, firstLine: 'all good' });
  });

  it('classifies a non-zero exit, takes the reason from stderr and passes args and env', async () => {
    const r = await runChild({
      command: script('fail', 'echo "$1 $2 $VIGIL_X" >&2; exit 3'),
      args: ['10.0.0.5', '80'],
      env: { VIGIL_X: 'x' },
      timeoutMs: 2000,
    });
    expect(r).toMatchObject({ kind: 'exited', code: 3, firstLine: '10.0.0.5 80 x' });
  });

  it('classifies a script killed by a signal', async () => {
    const r = await runChild({ command: script('segv', 'kill -SEGV $$'), timeoutMs: 2000 });
    expect(r).toMatchObject({ kind: 'signalled', signal: 'SIGSEGV' });
  });

  it('reports a missing or non-executable command as an error, not a crash', async () => {
    const r = await runChild({ command: join(dir, 'nope'), timeoutMs: 1000 });
    expect(r.kind).toBe('error');
    expect(r.firstLine).toContain('ENOENT');
    const plain = join(dir, 'plain');
    writeFileSync(plain, 'exit 0\n');
    const r2 = await runChild({ command: plain, timeoutMs: 1000 });
    expect(r2.kind).toBe('error');
    expect(r2.firstLine).toContain('EACCES');
  });

  it('times out a script that ignores TERM, and its forked children: TERM, then KILL to the group', async () => {
    const pidfile = join(dir, 'hung.pids');
    const cmd = script('hung', `trap '' TERM\nsleep 1000 & echo $! >> ${pidfile}\n(trap '' TERM; sleep 1000) & echo $! >> ${pidfile}\necho $$ >> ${pidfile}\necho started\nwait`);
    const t0 = performance.now();
    const r = await runChild({ command: cmd, timeoutMs: 300, killGraceMs: 100 });
    const took = performance.now() - t0;
    expect(r.kind).toBe('timeout');
    expect(r.firstLine).toBe('started');
    expect(took).toBeGreaterThanOrEqual(300);
    expect(took).toBeLessThan(1500);
    const pids = pidsIn(pidfile);
    expect(pids).toHaveLength(3);
    await new Promise((res) => setTimeout(res, 50));
    expect(pids.filter(alive)).toEqual([]);
    expect(groupMembers(pids[2] as number)).toEqual([]);
  });

  it('a script that exits 0 but leaves `sleep 1000 &` behind ends at once and leaves nothing', async () => {
    const pidfile = join(dir, 'fork.pids');
    const cmd = script('fork', `sleep 1000 & echo $! > ${pidfile}\necho $$ >> ${pidfile}\necho forked\nexit 0`);
    const t0 = performance.now();
    const r = await runChild({ command: cmd, timeoutMs: 3000 });
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(r).toMatchObject({ kind: 'exited', code: 0, firstLine: 'forked' });
    await new Promise((res) => setTimeout(res, 50));
    const pids = pidsIn(pidfile);
    expect(pids.filter(alive)).toEqual([]);
    expect(groupMembers(pids[1] as number)).toEqual([]);
  });

  it('bounds the output of a script printing 100 MB and still sees its exit', async () => {
    const cmd = script('noisy', 'echo "first line"; head -c 100000000 /dev/zero | tr "\\0" x; exit 4');
    const rssBefore = process.memoryUsage().rss;
    const r = await runChild({ command: cmd, timeoutMs: 20000, outputLimit: 1024 });
    expect(r).toMatchObject({ kind: 'exited', code: 4, firstLine: 'first line' });
    expect(r.output.length).toBe(1024);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(50 * 1024 * 1024);
  });

  it('stops a run when aborted, group and all', async () => {
    const pidfile = join(dir, 'long.pids');
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const r = await runChild({ command: script('long', `sleep 1000 & echo $! > ${pidfile}\nwait`), timeoutMs: 5000, signal: ac.signal, killGraceMs: 50 });
    expect(r.kind).toBe('timeout');
    expect(r.durationMs).toBeLessThan(1000);
    await new Promise((res) => setTimeout(res, 50));
    expect(pidsIn(pidfile).filter(alive)).toEqual([]);
  });
});
