// A real server for test/e2e/import-mon-diff.test.ts, run inside a network namespace:
// HTTP on :80 (/ answers per mode; /redirect always 302), a plain TCP port :9000, an
// FTP-like banner service on :21, an SMTP-like one on :25, DNS over UDP on :53 (every A
// query answered). Commands on stdin, one per line: `<service> up|down` (listen or
// close), `http 200|302|500` (the status of /). Prints `ready` and `ok <command>`.
import { createSocket } from 'node:dgram';
import { createServer as createHttp } from 'node:http';
import { createServer as createTcp } from 'node:net';
import { createInterface } from 'node:readline';

let httpStatus = 200;
const banner = (greeting, replies) => (sock) => {
  sock.on('error', () => {});
  sock.write(`${greeting}\r\n`);
  let buf = '';
  sock.on('data', (d) => {
    buf += d.toString('latin1');
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      const verb = line.split(/\s+/)[0].toUpperCase();
      const reply = replies[verb] ?? '500 unknown command';
      sock.write(`${reply}\r\n`);
      if (verb === 'QUIT') sock.end();
    }
  });
};

const services = {
  http: {
    port: 80,
    make: () =>
      createHttp((req, res) => {
        if (req.url === '/redirect') {
          res.writeHead(302, { Location: '/' }).end('moved\n');
          return;
        }
        res.writeHead(httpStatus, httpStatus === 302 ? { Location: '/elsewhere' } : {}).end(`status ${httpStatus}\n`);
      }),
  },
  tcp: { port: 9000, make: () => createTcp((s) => s.on('error', () => {}).end('hello\n')) },
  ftp: { port: 21, make: () => createTcp(banner('220 vigil-test FTP ready', { QUIT: '221 Goodbye.', USER: '331 password', PASS: '230 ok' })) },
  smtp: { port: 25, make: () => createTcp(banner('220 vigil-test ESMTP', { HELO: '250 hello', EHLO: '250 hello', QUIT: '221 bye' })) },
};
const running = new Map();

function answer(q) {
  // header: id, flags (QR, RD copied, RA), 1 question, 1 answer
  const id = q.readUInt16BE(0);
  let off = 12;
  while (q[off] !== 0) off += q[off] + 1;
  const question = q.subarray(12, off + 5);
  const qtype = q.readUInt16BE(off + 1);
  const head = Buffer.alloc(12);
  head.writeUInt16BE(id, 0);
  head.writeUInt16BE(0x8180 | (q.readUInt16BE(2) & 0x0100), 2);
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(qtype === 1 ? 1 : 0, 6);
  if (qtype !== 1) return Buffer.concat([head, question]);
  const rr = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 13, 0, 1]);
  return Buffer.concat([head, question, rr]);
}

async function up(name) {
  if (running.has(name)) return;
  if (name === 'dns') {
    const s = createSocket('udp4');
    s.on('message', (m, r) => {
      try {
        s.send(answer(m), r.port, r.address);
      } catch {
        // malformed: no answer
      }
    });
    await new Promise((res) => s.bind(53, '0.0.0.0', res));
    running.set(name, { close: (cb) => s.close(cb) });
    return;
  }
  const spec = services[name];
  const srv = spec.make();
  await new Promise((res, rej) => srv.once('error', rej).listen(spec.port, '0.0.0.0', res));
  running.set(name, {
    close: (cb) => {
      srv.close(cb);
      srv.closeAllConnections?.();
    },
  });
}

async function down(name) {
  const s = running.get(name);
  if (!s) return;
  running.delete(name);
  await new Promise((res) => s.close(() => res()));
}

for (const n of ['http', 'tcp', 'ftp', 'smtp', 'dns']) await up(n);
process.stdout.write('ready\n');
createInterface({ input: process.stdin }).on('line', async (line) => {
  const [name, what] = line.trim().split(/\s+/);
  if (name === 'http' && /^\d+$/.test(what)) httpStatus = Number(what);
  else if (what === 'up') await up(name);
  else if (what === 'down') await down(name);
  process.stdout.write(`ok ${line.trim()}\n`);
}).on('close', () => process.exit(0));
