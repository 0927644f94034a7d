/**
 * A real server of the ECMP lab (cluster.mode ecmp): says who it is and which director
 * carried the flow. The built-in forwarder is a full proxy, so the peer address a real
 * server sees IS the director's LAN address; the client maps it back to the director.
 *
 *   ip netns exec NS node test/lab/ts-run.mjs test/lab/ecmp-server.ts NAME PORT [UDP_ADDR]
 *
 * TCP: on connect writes `NAME PEER\n`, then echoes every line (long-lived connections).
 * UDP: answers each datagram `X` with `NAME PEER X`. With IPVS direct routing the reply goes
 * straight to the client, which only accepts it from the VIP: UDP_ADDR (the VIP, on this
 * server's lo) binds the UDP socket there so replies leave from it; a socket bound to
 * 0.0.0.0 would answer from the server's own address and the client would drop it.
 * Prints `ready` once both listen; exits on SIGTERM/SIGINT.
 */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

const [name, portArg, udpAddr] = process.argv.slice(2);
const port = Number(portArg);
if (!name || !Number.isInteger(port) || port < 1 || port > 65535) {
  process.stderr.write('usage: ecmp-server.ts NAME PORT [UDP_ADDR]\n');
  process.exit(2);
}
const tcp = createServer({ noDelay: true }, (sock) => {
  sock.on('error', () => undefined);
  sock.write(`${name} ${sock.remoteAddress ?? '?'}\n`);
  sock.pipe(sock);
});
const udp = createSocket('udp4');
udp.on('message', (msg, rinfo) => udp.send(`${name} ${rinfo.address} ${msg.toString()}`, rinfo.port, rinfo.address));
let up = 0;
const ready = (): void => {
  up += 1;
  if (up === 2) process.stdout.write('ready\n');
};
for (const s of [tcp, udp]) s.on('error', (err: Error) => {
  process.stderr.write(`ecmp-server ${name}: ${err.message}\n`);
  process.exit(1);
});
tcp.listen({ host: '0.0.0.0', port, backlog: 1024 }, ready);
udp.bind(port, udpAddr ?? '0.0.0.0', ready);
const stop = (): void => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
