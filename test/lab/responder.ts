/**
 * The lab's stand-in for a service on a director: a TCP server on 0.0.0.0:PORT that
 * writes the director's name and closes. Bound to the wildcard address, so it answers
 * on the VIP exactly while the kernel of its namespace owns the VIP; which director the
 * client reaches is decided by ARP alone (vigil's gratuitous ARP).
 *
 *   ip netns exec NS node test/lab/ts-run.mjs test/lab/responder.ts NAME PORT
 *
 * Prints `ready` on stdout once listening; exits on SIGTERM/SIGINT.
 */
import { createServer } from 'node:net';

const [name, portArg] = process.argv.slice(2);
const port = Number(portArg);
if (!name || !Number.isInteger(port) || port < 1 || port > 65535) {
  process.stderr.write('usage: responder.ts NAME PORT\n');
  process.exit(2);
}
const reply = Buffer.from(`${name}\n`);
const server = createServer({ noDelay: true }, (sock) => {
  sock.on('error', () => undefined); // a client that went away is not our problem
  sock.end(reply);
});
server.on('error', (err) => {
  process.stderr.write(`responder ${name}: ${err.message}\n`);
  process.exit(1);
});
server.listen({ host: '0.0.0.0', port, backlog: 1024 }, () => process.stdout.write('ready\n'));
const stop = (): void => {
  server.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
