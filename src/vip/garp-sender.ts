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
import { LineCoProcess } from './co-process.js';

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

const IFNAME = /^[A-Za-z0-9_.:@-]{1,15}$/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export class GarpSender extends LineCoProcess<void> {
  private ready = false;
  /** Why the last helper could not run or ended (for logs and tests). */
  lastError: string | undefined;

  /**
   * `pre`: the command and arguments before `perl` (e.g. `ip netns exec NS` in tests);
   * `onState` is told when the helper becomes usable or stops being so.
   */
  constructor(
    perl: string,
    pre: readonly string[],
    timeoutMs: number,
    private readonly onState: (usable: boolean) => void = () => undefined,
  ) {
    super('garp helper', [...pre, perl, '-e', SCRIPT], 'stdout', timeoutMs);
  }

  /** Whether the helper runs and holds its packet socket. */
  get usable(): boolean {
    return this.ready && this.running;
  }

  /** Sends one gratuitous ARP for an IPv4 address on an interface; rejects when the helper cannot. */
  send(mode: 'U' | 'A', ifname: string, address: string): Promise<void> {
    if (!this.usable) return Promise.reject(new Error('garp helper not running'));
    if (!IFNAME.test(ifname) || ifname.includes('/')) return Promise.reject(new Error(`garp helper: bad interface name ${JSON.stringify(ifname)}`));
    const m = IPV4.exec(address);
    if (!m || m.slice(1).some((o) => Number(o) > 255)) return Promise.reject(new Error(`garp helper: ${JSON.stringify(address)} is not an IPv4 address`));
    return this.request((id) => `${id} ${mode} ${ifname} ${address}\n`);
  }

  protected override onSpawn(): void {
    this.ready = false;
  }

  protected override onGone(why: string, closing: boolean): void {
    const was = this.ready;
    this.ready = false;
    if (!closing) this.lastError ??= why;
    if (was) this.onState(false);
  }

  protected onLine(line: string): void {
    if (line === 'ready') {
      this.ready = true;
      this.lastError = undefined;
      this.onState(true);
      return;
    }
    if (line.startsWith('fatal ')) {
      this.lastError = line.slice(6);
      return;
    }
    const m = /^(ok|err) (\d+)(?: (.*))?$/.exec(line);
    if (!m) return;
    // no one waits: the answer of a request that already failed (timeout)
    this.settle(Number(m[2]), m[1] === 'ok' ? { ok: true, value: undefined } : { ok: false, error: new Error(m[3] ?? 'failed') });
  }
}
