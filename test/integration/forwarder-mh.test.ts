/**
 * The forwarder's mh scheduler with real sockets: the engine hashes each connection's
 * real client address and port (mh-port), so the real server that answers is the one
 * the Maglev model predicts for that flow from a table of the same real servers listed
 * in another order (another director, another config order).
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { foldAddress } from '../../src/forwarder/address.js';
import { Engine, type EngineSettings, type TcpMode } from '../../src/forwarder/engine.js';
import { MaglevScheduler } from '../../src/forwarder/schedulers.js';
import { rawAvailable } from '../../src/forwarder/tcp-raw.js';
import { freePort, nameServer, rs, service, until } from './forwarder-helpers.js';

const settings: EngineSettings = { connectTimeoutMs: 2000, connectRetries: 2, tcpIdleTimeoutMs: 60_000, udpIdleTimeoutMs: 60_000, maxAccept: 1 };
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Connects from a chosen loopback source address; resolves with the greeting and the local port. */
function greetFrom(vport: number, localAddress: string): Promise<{ name: string; port: number }> {
  return new Promise((res, rej) => {
    const sock = net.connect({ port: vport, host: '127.0.0.1', localAddress });
    let buf = '';
    sock.on('error', rej);
    sock.on('data', (d) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        res({ name: buf.slice(0, nl), port: sock.localPort as number });
        sock.destroy();
      }
    });
  });
}

const modes: TcpMode[] = rawAvailable ? ['raw', 'stream'] : ['stream'];

describe.each(modes)('mh in the forwarder (%s mode)', (mode) => {
  it('each connection goes to the real server the model predicts for its address and port, whatever the list order', async () => {
    const names = ['A', 'B', 'C', 'D', 'E'];
    const servers = [];
    for (const n of names) {
      const s = await nameServer(n);
      cleanups.push(s.close);
      servers.push(s);
    }
    const vport = await freePort();
    const engine = new Engine(settings, { connectFailure: () => undefined, listenError: () => undefined }, mode);
    engine.start();
    cleanups.push(() => engine.close());
    const table = [service(vport, servers.map((s, i) => rs(s.port, i + 1)), { scheduler: 'mh', flags: ['mh-port'] })];
    engine.setTable(table);
    engine.setListening(table.map((t) => t.key));
    await until(() => engine.addresses().size === 1, 3000, 'listener');

    // the model: the same real servers in reverse order (another director's config)
    const dests = servers.map((s, i) => ({ address: '127.0.0.1', port: s.port, weight: i + 1, active: 0, inactive: 0, name: names[i] as string })).reverse();
    const model = new MaglevScheduler(['mh-port']);
    model.changed(dests);
    const seen = new Set<string>();
    for (let i = 0; i < 60; i++) {
      const from = `127.0.2.${1 + (i % 6)}`;
      const { name, port } = await greetFrom(vport, from);
      const k = model.pick(dests, { source: foldAddress(from), destination: 0, sourcePort: port });
      expect(name, `${from}:${port}`).toBe(dests[k]?.name);
      seen.add(name);
    }
    expect(seen.size).toBeGreaterThanOrEqual(4); // mh-port spreads one client's connections
  });
});
