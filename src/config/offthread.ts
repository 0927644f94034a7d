/**
 * Loading a config in a worker thread (a reload): reading, parsing and validating the
 * largest accepted file takes hundreds of milliseconds of CPU (seconds on a loaded
 * machine) that must not be taken from the daemon's event loop. The worker
 * (load-worker.ts) runs loadConfig with a bounded heap; the validated config comes back
 * as plain data in parts (services in batches) and is assembled here; a refused config
 * comes back as the same ConfigError loadConfig throws. A worker that dies (out of its
 * heap, a crash) is a refused config too, so a reload can never take the daemon with it.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { resolve } from 'node:path';
import { ConfigError, type ConfigProblem, type LoadedConfig } from './load.js';
import type { Config, ServiceConfig } from './schema.js';
import { VigilError } from '../errors.js';

/** Heap of the parsing worker (MB): twice what the largest accepted config needs. */
export const LOAD_WORKER_HEAP_MB = 1024;

export type FromWorker =
  | { type: 'services'; services: ServiceConfig[] }
  | { type: 'done'; file: string; rest: Config; parseMs: number }
  | { type: 'refused'; file: string; problems: ConfigProblem[] }
  | { type: 'failed'; message: string };
export type ToWorker = 'ack';

/** The worker entry: beside this module when built, else the built copy in dist/ (tests run src/). */
export function loadWorkerEntry(): string {
  const here = fileURLToPath(new URL('./load-worker.js', import.meta.url));
  if (existsSync(here)) return here;
  const built = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'dist', 'config', 'load-worker.js');
  if (existsSync(built)) return built;
  throw new VigilError('VIGIL_CONFIG_WORKER_MISSING', `config worker not found at ${here} or ${built}; run npm run build`);
}

export interface OffThreadLoaded extends LoadedConfig {
  /** Time the worker spent reading, parsing and validating. */
  parseMs: number;
}

/** loadConfig in a worker thread; rejects with ConfigError exactly as loadConfig throws it. */
export function loadConfigInWorker(file: string, env: NodeJS.ProcessEnv = process.env): Promise<OffThreadLoaded> {
  const abs = resolve(file);
  return new Promise((res, rej) => {
    const worker = new Worker(loadWorkerEntry(), {
      workerData: { file: abs, env: { VIGIL_NODE: env.VIGIL_NODE } },
      resourceLimits: { maxOldGenerationSizeMb: LOAD_WORKER_HEAP_MB },
      stdout: false,
      stderr: false,
    });
    const services: ServiceConfig[] = [];
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      fn();
      void worker.terminate();
    };
    const refuse = (message: string): void => settle(() => rej(new ConfigError(abs, [{ file: abs, path: [], message }])));
    worker.on('message', (m: FromWorker) => {
      switch (m.type) {
        case 'services':
          for (const s of m.services) services.push(s);
          worker.postMessage('ack' satisfies ToWorker);
          return;
        case 'done':
          m.rest.services = services;
          settle(() => res({ config: m.rest, file: m.file, parseMs: m.parseMs }));
          return;
        case 'refused':
          settle(() => rej(new ConfigError(m.file, m.problems)));
          return;
        case 'failed':
          refuse(`could not be loaded: ${m.message.split('\n')[0] ?? ''}`);
      }
    });
    worker.on('error', (err: Error & { code?: string }) =>
      refuse(
        err.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? `could not be parsed within the parser's heap of ${LOAD_WORKER_HEAP_MB} MB (${err.message})`
          : `could not be loaded: ${err.message}`,
      ),
    );
    worker.on('exit', (code) => refuse(`the config parser exited (code ${code}) before it finished`));
  });
}
