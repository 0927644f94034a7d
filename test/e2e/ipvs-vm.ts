/**
 * Helpers for the tests that drive the real kernel IPVS inside ../shared/ipvs-vm: one VM
 * boot per scenario file; the scenario (a TypeScript file under test/e2e/guest/) runs in
 * the guest against the built dist/ and prints one JSON object per line.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

export const ROOT = resolve(import.meta.dirname, '../..');
export const RUN_IN_VM = resolve(ROOT, '../shared/ipvs-vm/run-in-vm.sh');

/** Why the VM tests cannot run here, or undefined when they can. */
export function vmUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root (the IPVS VM needs root)';
  if (!existsSync(RUN_IN_VM)) return `${RUN_IN_VM} is missing`;
  try {
    execFileSync('sh', ['-c', 'command -v qemu-system-x86_64 && command -v ipvsadm'], { stdio: 'ignore' });
  } catch {
    return 'qemu-system-x86_64 or ipvsadm is not installed (.ci/run installs them)';
  }
  const dir = process.env.IPVS_VM_DIR ?? '/tmp/ipvs-vm';
  if (!existsSync(join(dir, 'initrd.img')) && !existsSync(join(RUN_IN_VM, '../build.sh'))) return `no VM artifacts in ${dir}`;
  if (!existsSync(join(ROOT, 'dist/reconcile/reconciler.js'))) return 'dist/ is not built (npm test builds it; or run npm run build)';
  return undefined;
}

/**
 * Compiles a guest script (a path relative to the project) to plain JS in a temp dir,
 * its relative imports of `src/` pointing at the built dist/ (the guest runs node on
 * this machine's files).
 */
export function compileGuest(relPath: string): string {
  const path = join(ROOT, relPath);
  const src = readFileSync(path, 'utf8');
  const out = ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
  const js = out.replaceAll(/from '(\.\.?\/[^']+)'/g, (whole, spec: string) => {
    const abs = resolve(dirname(path), spec);
    return abs.startsWith(`${ROOT}/src/`) ? `from '${ROOT}/dist/${abs.slice(ROOT.length + 5)}'` : whole;
  });
  const dir = mkdtempSync(join(tmpdir(), 'vigil-ipvs-'));
  const file = join(dir, basename(path).replace(/\.ts$/, '.mjs'));
  writeFileSync(file, js);
  return file;
}

export interface GuestTree {
  /** The compiled entry point (node runs it in the guest). */
  entry: string;
  /** Remove it when done. */
  dir: string;
}

/**
 * Compiles guest scripts that import other TypeScript modules of the project (the lab,
 * test/lab/*.ts) to plain JS: each file and, recursively, every relative import it makes
 * of a .ts file go to a tree under dist/ that mirrors the project's layout (so bare
 * imports such as 'yaml' find the project's node_modules); imports of src/ point at the
 * built dist/. `extra` are files the tree needs without importing them (processes the lab
 * spawns). The first path is the entry.
 */
export function compileGuestTree(relPaths: string[]): GuestTree {
  mkdirSync(join(ROOT, 'dist'), { recursive: true });
  const dir = mkdtempSync(join(ROOT, 'dist', '.guest-'));
  const todo = relPaths.map((p) => join(ROOT, p));
  const done = new Set<string>();
  while (todo.length > 0) {
    const path = todo.pop() as string;
    if (done.has(path)) continue;
    done.add(path);
    let src: string;
    try {
      src = readFileSync(path, 'utf8');
    } catch (err) {
      throw new Error(`compileGuestTree: cannot read ${path}: ${(err as Error).message}`);
    }
    const out = ts.transpileModule(src, { fileName: path, compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
    const js = out.replaceAll(/(from |import\()'(\.\.?\/[^']+)'/g, (whole, lead: string, spec: string) => {
      const abs = resolve(dirname(path), spec);
      if (abs.startsWith(`${ROOT}/src/`)) return `${lead}'${ROOT}/dist/${abs.slice(ROOT.length + 5)}'`;
      const tsFile = abs.replace(/\.js$/, '.ts');
      if (spec.endsWith('.js') && existsSync(tsFile)) todo.push(tsFile);
      return whole;
    });
    const target = join(dir, relative(ROOT, path)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, js);
  }
  return { entry: join(dir, (relPaths[0] as string).replace(/\.ts$/, '.js')), dir };
}

/** Removes a tree compileGuestTree made. */
export function removeGuestTree(t: GuestTree | undefined): void {
  if (t) rmSync(t.dir, { recursive: true, force: true });
}

export interface VmRun {
  code: number | null;
  output: string;
  /** Every stdout line that parsed as a JSON object. */
  records: Record<string, unknown>[];
  wallMs: number;
}

/** Boots the VM once and runs `command` in the guest (cwd: the project). */
export function runInVm(command: string, timeoutS = 300): Promise<VmRun> {
  const t0 = performance.now();
  return new Promise((done) => {
    const child = spawn(RUN_IN_VM, [command], { cwd: ROOT, env: { ...process.env, IPVS_VM_TIMEOUT: String(timeoutS) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('close', (code) => {
      const records: Record<string, unknown>[] = [];
      for (const line of output.split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          records.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          // a log line that only looks like JSON
        }
      }
      done({ code, output, records, wallMs: performance.now() - t0 });
    });
  });
}
