/**
 * Runs INSIDE the IPVS VM (test/e2e/import-ipvs-vm.test.ts compiles and boots it once).
 *
 * For each case of the manifest (argv[2]): applies the rules with the real ipvsadm (a
 * script's lines one command at a time, recording which ones the kernel refuses; a rules
 * file with `ipvsadm -R`), saves `ipvsadm -S -n`, clears the table, then loads the config
 * `vigil import` made from the same file into the real vigil daemon (`node dist/cli.js
 * run`, started once, reloaded with SIGHUP per case) and waits until its table equals the
 * saved one. Prints one JSON object per line: {case, kernel, refused, vigil?, ok?, ms?}.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';

interface Case {
  name: string;
  /** The corpus file. */
  rules: string;
  /** `restore`: a rules file for ipvsadm -R; `script`: one ipvsadm command per line. */
  form: 'restore' | 'script';
  /** The imported config; absent when the import (rightly) failed. */
  yaml?: string;
}

const emit = (o: Record<string, unknown>): void => void process.stdout.write(JSON.stringify(o) + '\n');
const ipvsadm = (args: string[], input?: string): { code: number; out: string } => {
  const r = spawnSync('ipvsadm', args, { encoding: 'utf8', ...(input !== undefined ? { input } : {}) });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
};
/** The table as a sorted list of lines (IPVS lists in hash order). */
const table = (): string[] =>
  ipvsadm(['-S', '-n'])
    .out.split('\n')
    .filter((l) => l.trim() !== '')
    .sort();

/** Shell-like split: the corpus has no quoting. */
const words = (line: string): string[] => line.trim().split(/\s+/);

/** Polls until the kernel's table equals `want` (or the daemon exits, or time is up). */
async function until(want: string[], timeoutMs: number): Promise<{ ok: boolean; got: string[]; ms: number }> {
  const t0 = performance.now();
  let got: string[] = [];
  while (performance.now() - t0 < timeoutMs && daemon.exitCode === null) {
    got = table();
    if (got.join('\n') === want.join('\n')) return { ok: true, got, ms: Math.round(performance.now() - t0) };
    await new Promise((r) => setTimeout(r, 250));
  }
  return { ok: false, got, ms: Math.round(performance.now() - t0) };
}

const { current, empty, cases } = JSON.parse(readFileSync(process.argv[2] as string, 'utf8')) as { current: string; empty: string; cases: Case[] };
ipvsadm(['-C']);
// ONE daemon for the whole corpus: it starts with no services, and each case's imported
// config is loaded with SIGHUP (node startup under emulation on a busy host takes tens of s)
copyFileSync(empty, current);
const daemon = spawn('node', ['dist/cli.js', 'run', '--config', current], { stdio: ['ignore', 'pipe', 'pipe'] });
let log = '';
daemon.stdout.on('data', (d: Buffer) => (log += d.toString()));
daemon.stderr.on('data', (d: Buffer) => (log += d.toString()));
const tail = (): string => log.split('\n').slice(-10).join('\n');
const t0 = performance.now();
while (!/"role":"active"|became active|"to":"active"/.test(log) && daemon.exitCode === null && performance.now() - t0 < 300_000) {
  await new Promise((r) => setTimeout(r, 250));
}
emit({ step: 'daemon', startMs: Math.round(performance.now() - t0), running: daemon.exitCode === null, log: tail() });

for (const c of cases) {
  // the daemon gives up its services before ipvsadm builds the reference table
  copyFileSync(empty, current);
  daemon.kill('SIGHUP');
  const cleared = await until([], 60_000);
  ipvsadm(['-C']);
  const refused: { line: number; message: string }[] = [];
  const text = readFileSync(c.rules, 'utf8');
  if (c.form === 'restore') {
    const body = text
      .split('\n')
      .filter((l) => !l.trim().startsWith('#'))
      .join('\n');
    const r = ipvsadm(['-R'], body);
    if (r.out.trim() !== '') refused.push({ line: 0, message: r.out.trim() });
  } else {
    text.split('\n').forEach((line, i) => {
      if (line.trim() === '' || line.trim().startsWith('#')) return;
      const [cmd, ...args] = words(line);
      if (cmd !== 'ipvsadm') throw new Error(`${c.rules}:${i + 1}: not an ipvsadm command`);
      const r = ipvsadm(args);
      if (r.code !== 0) refused.push({ line: i + 1, message: r.out.trim() });
    });
  }
  const kernel = table();
  // ipvsadm -S does not print connection thresholds; the listing does
  const thresholds = ipvsadm(['-L', '-n', '--thresholds']).out;
  ipvsadm(['-C']);
  if (c.yaml === undefined) {
    emit({ case: c.name, kernel, thresholds, refused });
    continue;
  }
  copyFileSync(c.yaml, current);
  daemon.kill('SIGHUP');
  const v = await until(kernel, 90_000);
  emit({ case: c.name, kernel, refused, cleared: cleared.ok, vigil: v.got, ok: v.ok, ms: v.ms, ...(v.ok ? {} : { log: tail() }) });
}
daemon.kill('SIGTERM');
await new Promise((r) => (daemon.exitCode !== null ? r(undefined) : daemon.once('exit', r)));
ipvsadm(['-C']);
emit({ done: true });
