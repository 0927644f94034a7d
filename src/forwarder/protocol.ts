/** Messages between the forwarder's main process (the dataplane) and its workers (IPC, JSON). */
import type { TableService } from '../reconcile/table.js';
import type { EngineSettings, ServiceSnapshot } from './engine.js';

export type ToWorker =
  | {
      t: 'state';
      seq: number;
      settings: EngineSettings;
      table: TableService[];
      /** Service keys to listen on (empty unless the node is active). */
      listen: string[];
      /** This worker serves the UDP services (a UDP socket cannot be shared without splitting flows). */
      udpOwner: boolean;
    }
  | { t: 'snapshot'; id: number }
  | { t: 'template'; key: string; client: string; dest: string }
  /** Carries a copy of the listening socket the worker asked for (acceptHandles). */
  | { t: 'acceptHandle'; key: string; gen: number };

export type FromWorker =
  | { t: 'ready' }
  | { t: 'ack'; seq: number }
  | { t: 'snapshot'; id: number; services: ServiceSnapshot[] }
  | { t: 'connectFailure'; key: string; address: string; port: number; reason: string }
  /** copy: a max_accept copy could not be polled (the listener itself is up; not retried). */
  | { t: 'listenError'; key: string; message: string; copy?: boolean }
  /** Carries the worker's listening handle: send `count` copies of it back (max_accept). */
  | { t: 'acceptHandles'; key: string; gen: number; count: number }
  | { t: 'template'; key: string; client: string; dest: string };
