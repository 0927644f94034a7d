/**
 * The probe spawner processes (src/health/spawner.ts): exec probes run in helpers, the
 * helpers restart after a crash, and a daemon that dies (SIGKILL) leaves no probe behind.
 * Uses the compiled helper in dist/ (npm test builds first).
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ProbeSpawner } from '../../src/health/spawner.js';

const dir = mkdtempSync(join(tmpdir(), 'vigil-spawner-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function script(name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/bash\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

function processesWith(marker: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${d}/stat`, 'utf8'))) continue;
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(marker)) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

const until = async (fn: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error('condition not met');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('ProbeSpawner', () => {
  it('runs scripts in helper processes with the same classification as runScript', async () => {
    const sp = new ProbeSpawner(2);
    await sp.warm();
    expect(sp.pids).toHaveLength(2);
    expect(sp.pids).not.toContain(process.pid);
    const [ok, bad, slow] = await Promise.all([
      sp.run(script('ok', 'echo "fine $1"; exit 0'), ['x'], { timeoutMs: 2000, killLeftovers: true }),
      sp.run(script('bad', 'echo nope >&2; exit 3'), [], { timeoutMs: 2000, killLeftovers: true }),
      sp.run(script('slow', 'echo started; sleep 5'), [], { timeoutMs: 200, killGraceMs: 50, killLeftovers: true }),
    ]);
    expect(ok).toMatchObject({ kind: 'exited', code: 0, firstLine: 'fine x' });
    expect(bad).toMatchObject({ kind: 'exited', code: 3, firstLine: 'nope' });
    expect(slow).toMatchObject({ kind: 'timeout', firstLine: 'started' });
    await sp.close();
    expect(sp.pids).toEqual([]);
    expect(await sp.run(script('late', 'exit 0'), [], { timeoutMs: 100 })).toMatchObject({ kind: 'error', firstLine: 'probe spawner closed' });
  });

  it('aborts a run in the helper, and restarts a helper that died', async () => {
    const marker = `vigil-spawner-abort-${process.pid}-${Date.now()}`;
    const sp = new ProbeSpawner(1);
    const ac = new AbortController();
    const hung = sp.run(script('hung', `(exec -a ${marker} sleep 1000) &\nwait`), [], { timeoutMs: 10_000, killGraceMs: 50, signal: ac.signal, killLeftovers: true });
    await until(() => processesWith(marker).length > 0);
    ac.abort();
    expect((await hung).kind).toBe('timeout');
    await until(() => processesWith(marker).length === 0);

    const pending = sp.run(script('wait', 'sleep 5'), [], { timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 200));
    process.kill(sp.pids[0] as number, 'SIGKILL');
    expect(await pending).toMatchObject({ kind: 'error', firstLine: 'probe spawner exited (SIGKILL)' });
    expect(await sp.run(script('again', 'echo back; exit 0'), [], { timeoutMs: 2000 })).toMatchObject({ kind: 'exited', code: 0, firstLine: 'back' });
    await sp.close();
  });

  it('a run that waited in a busy helper past its deadline is not started (no verdict), not a timeout of the server', async () => {
    const sp = new ProbeSpawner(1);
    await sp.warm();
    const pid = sp.pids[0] as number;
    process.kill(pid, 'SIGSTOP'); // the helper is busy (as when it spawns at full tilt)
    const late = sp.run(script('never', 'echo ran; exit 0'), [], { timeoutMs: 100 });
    await new Promise((r) => setTimeout(r, 300));
    process.kill(pid, 'SIGCONT');
    expect(await late).toMatchObject({ kind: 'timeout', notStarted: 'not started: the probe spawner was busy until the deadline' });
    expect(await sp.run(script('now', 'echo ran; exit 0'), [], { timeoutMs: 2000 })).toMatchObject({ kind: 'exited', code: 0, firstLine: 'ran' });
    await sp.close();
  });

  it('when the daemon is killed, its helpers stop every probe in flight and exit', async () => {
    const marker = `vigil-spawner-orphan-${process.pid}-${Date.now()}`;
    const hung = script('orphan', `trap '' TERM\n(trap '' TERM; exec -a ${marker} sleep 1000) &\nwait`);
    const spawnerJs = resolve(import.meta.dirname, '..', '..', 'dist', 'health', 'spawner.js');
    const daemon = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { ProbeSpawner } from ${JSON.stringify(spawnerJs)};
         const sp = new ProbeSpawner(1);
         await sp.warm();
         console.log(sp.pids[0]);
         sp.run(${JSON.stringify(hung)}, [], { timeoutMs: 60000, killGraceMs: 100, killLeftovers: true });
         setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const helperPid = await new Promise<number>((res) => daemon.stdout.once('data', (d: Buffer) => res(Number(d.toString().trim()))));
    await until(() => processesWith(marker).length > 0);
    daemon.kill('SIGKILL');
    await until(() => processesWith(marker).length === 0, 5000);
    await until(() => {
      try {
        return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${helperPid}/stat`, 'utf8'));
      } catch {
        return true;
      }
    });
  });
});
