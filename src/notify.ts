/**
 * sd_notify(3) for `Type=notify`: READY=1 once the daemon has started, STOPPING=1 when
 * it begins to stop, STATUS= lines for `systemctl status`.
 *
 * Node cannot open a unix datagram socket, so a child process sends the datagram. That
 * child is perl (perl-base is Essential in Debian, so always there), not systemd-notify:
 * systemd attributes a notification to a unit by the sender's cgroup, which it looks up
 * through the sender's PID, and systemd-notify (252, Debian 12) exits the moment it has
 * sent; when PID 1 reads the datagram after that, the PID is gone and the message is
 * dropped ("Cannot find unit for notify message", systemd issue #2737 and the race
 * documented in sd_notify(3)). The perl sender keeps its PID alive for HOLD_S seconds
 * after sending. The unit needs `NotifyAccess=all`, since the sender is not the main PID.
 */
import { spawn } from 'node:child_process';

/** How long the sender stays alive after sending, so PID 1 can still resolve its cgroup. */
export const HOLD_S = 5;

const SENDER = `use IO::Socket::UNIX; use Socket;
my ($path, $msg, $hold) = @ARGV;
$path =~ s/^@/\\0/;
my $s = IO::Socket::UNIX->new(Type => SOCK_DGRAM, Peer => $path) or die "sd_notify: cannot reach $ARGV[0]: $!\\n";
defined $s->send($msg) or die "sd_notify: send to $ARGV[0]: $!\\n";
close STDOUT; close STDERR; sleep $hold;`;

export interface Notifier {
  /** Sends `READY=1`, `STOPPING=1`, `STATUS=...` (newline-separated); a no-op outside systemd. */
  notify(state: string): void;
}

/** A notifier for `$NOTIFY_SOCKET`; without it (not under systemd) it does nothing. */
export function createNotifier(env: NodeJS.ProcessEnv, onError: (why: string) => void = () => undefined): Notifier {
  const socket = env.NOTIFY_SOCKET;
  if (!socket) return { notify: () => undefined };
  return {
    notify(state: string): void {
      const child = spawn('perl', ['-e', SENDER, socket, state, String(HOLD_S)], { stdio: ['ignore', 'ignore', 'pipe'], detached: false });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('error', (e) => onError(`cannot run perl to notify systemd: ${e.message}`));
      child.on('exit', (code) => {
        if (code !== 0 && code !== null) onError(err.trim() || `perl exited ${code}`);
      });
      child.unref();
    },
  };
}
