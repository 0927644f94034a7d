/**
 * Gratuitous ARP without a process start: one long-lived helper that opened an
 * AF_PACKET socket when it started and, on a line naming an interface and an address,
 * writes the ARP frame `arping -U` (or `-A`) would send and answers. A takeover's first
 * GARP then costs a pipe write and a sendto(), not an exec of arping (about 4 ms of
 * exec on a director like the lab's, plus arping's own start: docs/ARCHITECTURE.md has
 * the figures). Node has no raw sockets, so the helper is Perl: `perl-base` is Essential
 * in Debian (always installed), starts in a few milliseconds at prepare time, and its
 * core `socket`/`send` are the system calls themselves. Where perl is missing or the
 * helper dies, `usable` is false and the port falls back to arping (armed, then
 * spawned); the helper is started again a second later.
 *
 * The frame is the one iputils arping sends: broadcast Ethernet, ARP over IPv4, sender =
 * target = the VIP, sender hardware = the interface's MAC; a request (-U) carries the
 * broadcast address as target hardware, a reply (-A) the interface's MAC. The helper
 * reads the interface's index and MAC from /sys at each request, so a re-created
 * interface is found. Requests are `ID U|A IFNAME ADDRESS`, answers `ok ID` or
 * `err ID reason`, in order.
 */
import { spawn, type ChildProcess } from 'node:child_process';

const SCRIPT = String.raw`
use strict; use warnings;
$| = 1;
socket(my $s, 17, 3, 0) or do { print "fatal cannot open a packet socket: $!\n"; exit 1 };
print "ready\n";
my $bc = "\xff" x 6;
sub one {
  my ($op, $if, $ip) = @_;
  open(my $f, '<', "/sys/class/net/$if/ifindex") or die "no interface $if\n";
  my $ifi = <$f>; close $f;
  open($f, '<', "/sys/class/net/$if/address") or die "$if: no hardware address\n";
  my $m = <$f>; close $f;
  $m =~ s/[:\s]//g;
  die "$if: no Ethernet address\n" unless length($m) == 12;
  my $mac = pack('H12', $m);
  my $a = pack('C4', split(/\./, $ip));
  my $reply = $op eq 'A';
  my $frame = $bc . $mac . pack('n', 0x0806) . pack('nnCCn', 1, 0x0800, 6, 4, $reply ? 2 : 1) . $mac . $a . ($reply ? $mac : $bc) . $a;
  my $to = pack('SniSCCa8', 17, 0x0806, $ifi + 0, 1, 0, 6, $bc);
  defined(send($s, $frame, 0, $to)) or die "send on $if: $!\n";
}
while (my $l = <STDIN>) {
  chomp $l;
  my ($id, $op, $if, $ip) = split(/ /, $l);
  next unless defined $ip;
  if (eval { one($op, $if, $ip); 1 }) { print "ok $id\n" } else { my $e = $@; $e =~ s/\s+$//; $e =~ s/\n/ /g; print "err $id $e\n" }
}
`;

const RESTART_MS = 1000;
const IFNAME = /^[A-Za-z0-9_.:@-]{1,15}$/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

interface Pending {
  id: number;
  resolve: () => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class GarpSender {
  private child: ChildProcess | undefined;
  private ready = false;
  private pending: Pending[] = [];
  private partial = '';
  private next = 1;
  private closed = false;
  private restartTimer: NodeJS.Timeout | undefined;
  /** Why the last helper could not run or ended (for logs and tests). */
  lastError: string | undefined;

  /**
   * `pre`: the command and arguments before `perl` (e.g. `ip netns exec NS` in tests);
   * `onState` is told when the helper becomes usable or stops being so.
   */
  constructor(
    private readonly perl: string,
    private readonly pre: readonly string[],
    private readonly timeoutMs: number,
    private readonly onState: (usable: boolean) => void = () => undefined,
  ) {}

  /** Starts the helper (idempotent). */
  start(): void {
    if (this.closed || this.child) return;
    const argv = [...this.pre, this.perl, '-e', SCRIPT];
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['pipe', 'pipe', 'ignore'] });
    this.child = child;
    this.ready = false;
    this.partial = '';
    child.stdin?.on('error', () => undefined); // EPIPE after it died: 'exit' tells
    child.stdout?.on('data', (d: Buffer) => this.onStdout(child, d));
    const gone = (why: string): void => {
      if (this.child !== child) return;
      const was = this.ready;
      this.child = undefined;
      this.ready = false;
      this.lastError ??= why;
      this.failAll(new Error(`garp helper ${why}`));
      if (was) this.onState(false);
      if (!this.closed) {
        this.restartTimer = setTimeout(() => {
          this.restartTimer = undefined;
          this.start();
        }, RESTART_MS);
        this.restartTimer.unref();
      }
    };
    child.once('error', (e: NodeJS.ErrnoException) => gone(`cannot run ${this.perl}: ${e.code ?? e.message}`));
    child.once('exit', (code, signal) => gone(`exited (${signal ?? code})`));
    // it waits for work that may never come: it must not keep a process alive
    child.unref();
    for (const s of [child.stdin, child.stdout]) (s as unknown as { unref?: () => void } | null)?.unref?.();
  }

  /** The helper's pid while it is usable. */
  get pid(): number | undefined {
    return this.usable ? this.child?.pid : undefined;
  }

  /** Whether the helper runs and holds its packet socket. */
  get usable(): boolean {
    const c = this.child;
    return this.ready && c !== undefined && c.exitCode === null && c.signalCode === null && !this.closed;
  }

  /** Sends one gratuitous ARP for an IPv4 address on an interface; rejects when the helper cannot. */
  send(mode: 'U' | 'A', ifname: string, address: string): Promise<void> {
    const child = this.child;
    if (!this.usable || !child?.stdin) return Promise.reject(new Error('garp helper not running'));
    if (!IFNAME.test(ifname) || ifname.includes('/')) return Promise.reject(new Error(`garp helper: bad interface name ${JSON.stringify(ifname)}`));
    const m = IPV4.exec(address);
    if (!m || m.slice(1).some((o) => Number(o) > 255)) return Promise.reject(new Error(`garp helper: ${JSON.stringify(address)} is not an IPv4 address`));
    const id = this.next++;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        // stuck: kill it; every waiting request fails and goes the ordinary way
        child.kill('SIGKILL');
        this.failAll(new Error(`garp helper: no answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.push({ id, resolve, reject, timer });
      child.stdin!.write(`${id} ${mode} ${ifname} ${address}\n`);
    });
  }

  /** Ends the helper; waiting requests reject. Idempotent. */
  close(): void {
    this.closed = true;
    clearTimeout(this.restartTimer);
    const c = this.child;
    const was = this.ready;
    this.child = undefined;
    this.ready = false;
    this.failAll(new Error('garp helper closed'));
    c?.stdin?.end();
    if (was) this.onState(false);
  }

  private onStdout(child: ChildProcess, d: Buffer): void {
    if (this.child !== child) return;
    const parts = (this.partial + d.toString('utf8')).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) {
      if (line === 'ready') {
        this.ready = true;
        this.lastError = undefined;
        this.onState(true);
        continue;
      }
      if (line.startsWith('fatal ')) {
        this.lastError = line.slice(6);
        continue;
      }
      const m = /^(ok|err) (\d+)(?: (.*))?$/.exec(line);
      if (!m) continue;
      const i = this.pending.findIndex((p) => p.id === Number(m[2]));
      if (i < 0) continue; // the answer of a request already failed (timeout)
      const [p] = this.pending.splice(i, 1) as [Pending];
      clearTimeout(p.timer);
      if (m[1] === 'ok') p.resolve();
      else p.reject(new Error(m[3] ?? 'failed'));
    }
  }

  private failAll(err: Error): void {
    const waiting = this.pending;
    this.pending = [];
    for (const p of waiting) {
      clearTimeout(p.timer);
      p.reject(err);
    }
  }
}
