/**
 * A forwarder worker process (a `cluster` worker): runs one Engine, follows the state the
 * main process sends, and reports counters and events back. Listening sockets are shared
 * through the cluster module with SCHED_NONE: the main process binds each VIP:port once
 * and every worker accepts on the same socket itself (no funnelling through main).
 */
import type { SendHandle } from 'node:child_process';
import { Engine, type EngineSettings } from './engine.js';
import type { FromWorker, ToWorker } from './protocol.js';
import type { ListenHandle } from './tcp-raw.js';

const send = (m: FromWorker, handle?: ListenHandle): void => {
  if (process.connected) process.send?.(m, handle as SendHandle | undefined);
};

const initial: EngineSettings = { connectTimeoutMs: 2000, connectRetries: 2, tcpIdleTimeoutMs: 900_000, udpIdleTimeoutMs: 300_000, maxAccept: 1 };

const engine = new Engine(initial, {
  connectFailure: (key, address, port, reason) => send({ t: 'connectFailure', key, address, port, reason }),
  listenError: (key, message, copy) => send({ t: 'listenError', key, message, ...(copy === true ? { copy } : {}) }),
  template: (key, client, dest) => send({ t: 'template', key, client, dest }),
  // The daemon sends copies of the listening socket back (acceptHandle below).
  acceptHandles: (key, gen, listener, count) => send({ t: 'acceptHandles', key, gen, count }, listener),
});
engine.start();

process.on('message', (m: ToWorker, handle: unknown) => {
  switch (m.t) {
    case 'state':
      engine.settings = m.settings;
      // Acknowledged once the listeners it asks for listen (or failed once and retry).
      void Promise.all([engine.setTable(m.table), engine.setListening(m.listen, m.udpOwner)]).then(() => send({ t: 'ack', seq: m.seq }));
      break;
    case 'snapshot':
      send({ t: 'snapshot', id: m.id, services: engine.snapshot() });
      break;
    case 'template':
      engine.adoptTemplate(m.key, m.client, m.dest);
      break;
    case 'acceptHandle':
      if (handle !== undefined && handle !== null) engine.addAcceptHandle(m.key, m.gen, handle as ListenHandle);
      break;
  }
});

// The main process is gone (stopped or crashed): stop accepting, let nothing linger.
process.on('disconnect', () => {
  engine.close();
  process.exit(0);
});
process.on('SIGTERM', () => {
  engine.close();
  process.exit(0);
});

send({ t: 'ready' });
