/**
 * ArmedCommands (src/vip/armed.ts) with real shells: a command armed ahead runs only when
 * fired, reports its exit code and output, is re-armed after use, never runs when
 * disarmed, and never outlives the process that armed it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ArmedCommands } from '../../src/vip/armed.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const dirs: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'vigil-armed-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(20);
  }
  return cond();
}

describe('ArmedCommands', () => {
  it('runs the armed command only when fired, with its exit code, stdout and stderr', async () => {
    const d = tmp();
    const a = new ArmedCommands();
    const line = { file: 'sh', args: ['-c', `touch ${d}/ran; echo out; echo err >&2; exit 3`] };
    a.want([line]);
    expect(a.size).toBe(1);
    await sleep(300);
    expect(existsSync(join(d, 'ran')), 'an armed command must not run before it is fired').toBe(false);
    const run = a.take(line.file, line.args);
    expect(run).toBeDefined();
    const r = await run!.fire('test', 5000);
    expect(r).toEqual({ code: 3, stdout: 'out\n', stderr: 'err' });
    expect(existsSync(join(d, 'ran'))).toBe(true);
    a.close();
  });

  it('answers undefined for a command line it does not hold, and re-arms a used one', async () => {
    const a = new ArmedCommands();
    a.want([{ file: 'true', args: [] }]);
    expect(a.take('true', ['x'])).toBeUndefined();
    const run = a.take('true', []);
    expect(run).toBeDefined();
    expect(a.size).toBe(0);
    expect((await run!.fire('true', 5000)).code).toBe(0);
    expect(await until(() => a.size === 1, 5000), 'the used command is armed again').toBe(true);
    a.close();
    expect(a.size).toBe(0);
  });

  it('a missing program fails like a spawn would: exit 127 and the shell says why', async () => {
    const a = new ArmedCommands();
    a.want([{ file: '/nonexistent/vigil-x', args: [] }]);
    const r = await a.take('/nonexistent/vigil-x', [])!.fire('x', 5000);
    expect(r.code).toBe(127);
    expect(r.stderr).toMatch(/vigil-x/);
    a.close();
  });

  it('a fired command that hangs is killed after the timeout and the call rejects', async () => {
    const a = new ArmedCommands();
    a.want([{ file: 'sleep', args: ['30'] }]);
    const t0 = Date.now();
    await expect(a.take('sleep', ['30'])!.fire('sleep 30', 200)).rejects.toThrow(/sleep 30: timed out after 200 ms/);
    expect(Date.now() - t0).toBeLessThan(5000);
    a.close();
  });

  it('a command line no longer wanted, and everything on close, exits without running', async () => {
    const d = tmp();
    const a = new ArmedCommands();
    const one = { file: 'touch', args: [`${d}/one`] };
    const two = { file: 'touch', args: [`${d}/two`] };
    a.want([one, two]);
    a.want([two]);
    expect(a.size).toBe(1);
    expect(a.take(one.file, one.args)).toBeUndefined();
    a.close();
    a.want([one]); // closed: does nothing
    expect(a.size).toBe(0);
    await sleep(300);
    expect(existsSync(join(d, 'one'))).toBe(false);
    expect(existsSync(join(d, 'two'))).toBe(false);
  });

  it('keeps at most `limit` command lines armed', () => {
    const a = new ArmedCommands(2);
    a.want([1, 2, 3].map((i) => ({ file: 'true', args: [String(i)] })));
    expect(a.size).toBe(2);
    expect(a.take('true', ['3'])).toBeUndefined();
    a.close();
  });

  it('never outlives the process that armed it: its shells exit without running the command', async () => {
    const d = tmp();
    // the compiled module (npm test builds before it runs the tests)
    const mod = JSON.stringify(pathToFileURL(resolve(import.meta.dirname, '../../dist/vip/armed.js')).href);
    // a child process arms a command and exits without firing or disarming it
    const pids = execFileSync(process.execPath, ['--input-type=module', '-e',
      `const { ArmedCommands } = await import(${mod});
       const a = new ArmedCommands(); a.want([{ file: 'touch', args: [${JSON.stringify(`${d}/ran`)}] }]);
       const { execFileSync } = await import('node:child_process');
       process.stdout.write(execFileSync('pgrep', ['-P', String(process.pid), 'sh'], { encoding: 'utf8' }));
       process.exit(0);`], { encoding: 'utf8' }).trim().split('\n').map(Number);
    expect(pids.length).toBe(1);
    const alive = (pid: number): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    expect(await until(() => !pids.some(alive), 5000), `armed shells ${pids.join(' ')} still alive after their owner exited`).toBe(true);
    expect(existsSync(join(d, 'ran'))).toBe(false);
  });
});
