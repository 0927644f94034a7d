/**
 * Runs INSIDE the IPVS VM (test/e2e/import-ipvs-vm.test.ts compiles and boots it once).
 *
 * For each case of the manifest (argv[2]): applies the rules with the real ipvsadm (a
 * script's lines one command at a time, recording which ones the kernel refuses; a rules
 * file with `ipvsadm -R`), saves `ipvsadm -S -n`, clears the table, then starts the real
 * vigil daemon (`node dist/cli.js run`) with the config `vigil import` made from the same
 * file and waits until its table equals the saved one. Prints one JSON object per line:
 * {case, kernel, refused, vigil?, ok?, ms?}.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

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

async function runVigil(yaml: string, want: string[], timeoutMs: number): Promise<{ ok: boolean; got: string[]; ms: number; log: string }> {
  const t0 = performance.now();
  const child = spawn('node', ['dist/cli.js', 'run', '--config', yaml], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  let got: string[] = [];
  let ok = false;
  while (performance.now() - t0 < timeoutMs && child.exitCode === null) {
    got = table();
    if (got.join('\n') === want.join('\n')) {
      ok = true;
      break;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  const ms = Math.round(performance.now() - t0);
  child.kill('SIGTERM');
  await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
  return { ok, got, ms, log: log.split('\n').slice(-8).join('\n') };
}

const manifest = JSON.parse(readFileSync(process.argv[2] as string, 'utf8')) as Case[];
ipvsadm(['-C']);
for (const c of manifest) {
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
  ipvsadm(['-C']);
  if (c.yaml === undefined) {
    emit({ case: c.name, kernel, refused });
    continue;
  }
  const v = await runVigil(c.yaml, kernel, 60_000);
  emit({ case: c.name, kernel, refused, vigil: v.got, ok: v.ok, ms: v.ms, ...(v.ok ? {} : { log: v.log }) });
  ipvsadm(['-C']);
}
emit({ done: true });
