/**
 * The worker-thread side of loadConfigInWorker (offthread.ts): read, parse and validate
 * one config file, then hand the validated config back in parts — the services in
 * batches of about REAL_SERVERS_PER_PART real servers, each sent only after the main
 * thread acknowledged the one before, so no single message costs the main event loop
 * more than a few milliseconds to deserialize — and finally the rest of the config.
 * A config that is refused comes back as its problems.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ConfigError, loadConfig } from './load.js';
import type { ServiceConfig } from './schema.js';
import type { FromWorker, ToWorker } from './offthread.js';

const REAL_SERVERS_PER_PART = 500;

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('load-worker.js runs in a worker thread only');
  const { file, env } = workerData as { file: string; env: NodeJS.ProcessEnv };
  const send = (m: FromWorker): void => port.postMessage(m);
  const acked = (): Promise<void> => new Promise((res) => port.once('message', (m: ToWorker) => m === 'ack' && res()));
  const t0 = performance.now();
  let loaded;
  try {
    loaded = loadConfig(file, env);
  } catch (err) {
    if (err instanceof ConfigError) send({ type: 'refused', file: err.file, problems: err.problems });
    else send({ type: 'failed', message: (err as Error).stack ?? String(err) });
    port.close();
    return;
  }
  const parseMs = performance.now() - t0;
  const services = loaded.config.services;
  const rest = { ...loaded.config, services: [] }; // keeps the keys' order; filled in on the main thread
  let part: ServiceConfig[] = [];
  let weight = 0;
  for (const s of services) {
    part.push(s);
    weight += 1 + s.real_servers.length;
    if (weight >= REAL_SERVERS_PER_PART) {
      const ack = acked();
      send({ type: 'services', services: part });
      await ack;
      part = [];
      weight = 0;
    }
  }
  if (part.length > 0) {
    const ack = acked();
    send({ type: 'services', services: part });
    await ack;
  }
  send({ type: 'done', file: loaded.file, rest, parseMs });
  port.close();
}

void main();
