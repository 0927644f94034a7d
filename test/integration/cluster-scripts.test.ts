/**
 * src/proc.ts runScript with real child processes, and the cluster's resource/notify
 * runner on top of it: classification, process-group kill on timeout, bounded output,
 * order of start/stop, notify arguments.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { ScriptRunner } from '../../src/cluster/scripts.js';
import { createMetrics } from '../../src/metrics.js';
import { describeResult, runScript } from '../../src/proc.js';

const dir = mkdtempSync(join(tmpdir(), 'vigil-scripts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function script(name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('runScript', () => {
  it('classifies exit codes and keeps the first line of output', async () => {
    const ok = await runScript(script('ok', 'echo; echo "  all good  "; echo second'), [], { timeoutMs: 2000 });
    expect(ok).toMatchObject({ kind: 'exited', code: 0, signal: null, firstLine: 'all good' });
    const bad = await runScript(script('bad', 'echo "down: refused" >&2; exit 3'), [], { timeoutMs: 2000 });
    expect(bad).toMatchObject({ kind: 'exited', code: 3, firstLine: 'down: refused' });
    expect(describeResult(bad)).toBe('exit 3');
  });

  it('passes arguments and environment', async () => {
    const r = await runScript(script('args', 'echo "$1|$2|$VIGIL_X"'), ['a b', 'c'], { timeoutMs: 2000, env: { VIGIL_X: 'y' } });
    expect(r.firstLine).toBe('a b|c|y');
  });

  it('reports a script killed by a signal', async () => {
    const r = await runScript(script('segv', 'kill -SEGV $$'), [], { timeoutMs: 2000 });
    expect(r).toMatchObject({ kind: 'signalled', signal: 'SIGSEGV', code: null });
  });

  it('on timeout kills the whole process group, children included (TERM, then KILL)', async () => {
    const pidFile = join(dir, 'child.pid');
    // the child ignores TERM, so only the KILL after the grace ends it
    const p = script('hang', `sh -c 'trap "" TERM; sleep 30' & echo $! > ${pidFile}; sleep 30`);
    const r = await runScript(p, [], { timeoutMs: 200, killGraceMs: 100 });
    expect(r.kind).toBe('timeout');
    expect(r.durationMs).toBeGreaterThanOrEqual(200);
    expect(r.durationMs).toBeLessThan(2000);
    const child = Number(readFileSync(pidFile, 'utf8'));
    const deadline = performance.now() + 2000;
    while (alive(child) && performance.now() < deadline) await new Promise((res) => setTimeout(res, 20));
    expect(alive(child)).toBe(false);
  });

  it('bounds the output it keeps and still drains the rest', async () => {
    const r = await runScript(script('chatty', 'head -c 200000 /dev/zero | tr "\\0" x; echo; exit 0'), [], { timeoutMs: 5000, outputLimit: 100 });
    expect(r).toMatchObject({ kind: 'exited', code: 0 });
    expect(r.output.length).toBe(100);
  });

  it('reports a missing or non-executable file as an error, without throwing', async () => {
    const r = await runScript(join(dir, 'nope'), [], { timeoutMs: 1000 });
    expect(r).toMatchObject({ kind: 'error', code: null });
    expect(r.firstLine).toContain('ENOENT');
    const p = join(dir, 'noexec');
    writeFileSync(p, 'echo');
    const r2 = await runScript(p, [], { timeoutMs: 1000 });
    expect(r2.kind).toBe('error');
    expect(r2.firstLine).toContain('EACCES');
  });
});

describe('resource and notify scripts', () => {
  it('runs start in order, stop in reverse order, notify with new role, old role, reason; counts results', async () => {
    const log = join(dir, 'order.log');
    const mk = (n: string) => script(n, `echo "${n} $*" >> ${log}`);
    const slow = script('slow', 'sleep 5');
    const metrics = createMetrics({ defaults: false });
    const r = new ScriptRunner({ logger: pino({ level: 'silent' }), metrics, node: 'lvs1', killGraceMs: 50 });
    const resources = [mk('r1'), mk('r2'), slow].map((path) => ({ path, timeout_ms: path === slow ? 100 : 2000 }));
    await r.start(resources, 'election');
    await r.stop(resources, 'shutdown');
    await r.notify({ path: mk('notify'), timeout_ms: 2000 }, 'active', 'standby', 'peer-dead');
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual(['r1 start', 'r2 start', 'r2 stop', 'r1 stop', 'notify active standby peer-dead']);
    const runs = await metrics.scriptRuns.get();
    const get = (script: string, action: string) => runs.values.find((v) => v.labels.script === script && v.labels.action === action);
    expect(get('slow', 'start')).toMatchObject({ value: 1, labels: { result: 'timeout' } });
    expect(get('r1', 'stop')).toMatchObject({ value: 1, labels: { result: 'ok' } });
  });
});

describe('resource scripts at shutdown', () => {
  it('stop scripts share a budget: a hanging one is cut short so the VIPs can go within the 2 s stop', async () => {
    const slow = script('hang-stop', 'sleep 30');
    const metrics = createMetrics({ defaults: false });
    const r = new ScriptRunner({ logger: pino({ level: 'silent' }), metrics, node: 'lvs1', killGraceMs: 50 });
    const t0 = performance.now();
    await r.stop([{ path: slow, timeout_ms: 10_000 }], 'shutdown', 200);
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(200);
    expect(took).toBeLessThan(1500);
    const runs = await metrics.scriptRuns.get();
    expect(runs.values.find((v) => v.labels.script === 'hang-stop')).toMatchObject({ value: 1, labels: { action: 'stop', result: 'timeout' } });
  });
});
