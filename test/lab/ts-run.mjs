#!/usr/bin/env node
/**
 * Runs a TypeScript entry point of the lab or a benchmark: `node test/lab/ts-run.mjs
 * FILE.ts [args...]`. Node 20 cannot strip types and the project has no TS runner
 * dependency, so this goes through vite's module runner (vite comes with vitest), the
 * same transform the tests run under. `process.argv[1]` becomes FILE, so the entry sees
 * its own arguments as usual.
 */
import { resolve } from 'node:path';
import { runnerImport } from 'vite';

const [file, ...rest] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: node test/lab/ts-run.mjs FILE.ts [args...]\n');
  process.exit(2);
}
const entry = resolve(file);
process.argv = [process.argv[0] ?? 'node', entry, ...rest];
await runnerImport(entry, { configFile: false, logLevel: 'error' });
