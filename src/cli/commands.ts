/**
 * The control commands' entries for the command table in src/cli.ts: usage and help
 * here, the code in control.ts, loaded only when one of them runs.
 */
import type { CommandContext } from './context.js';

const COMMON = `  --api URL           the daemon's API (default: api.listen from the config, else http://127.0.0.1:9694)
  -c, --config FILE   config file to read api.listen and api.token_file from
                      (default $VIGIL_CONFIG or /etc/vigil/vigil.yaml)`;
const TOKEN = `The bearer token is $VIGIL_API_TOKEN, else the contents of api.token_file.`;
const EXITS = `Exit status: 0 done; 1 the daemon refused (the message says why); 2 usage;
3 the daemon is not reachable; 4 no token, or the daemon refused it.`;

const load = () => import('./control.js');

export const controlCommands = {
  status: {
    summary: 'cluster, VIPs and the forwarding table with health (like ipvsadm -L -n)',
    usage: 'vigil status [--json] [--events N] [--api URL] [--config FILE]',
    help: `Asks the local daemon for /status and prints this node's role, the peers with the
state and round-trip time of each link, the VIPs and their owners, then every virtual
service with its real servers: forward method, weight, ActiveConn, InActConn, health
and the last check result; then the last N events (default 5).
Options:
  --json              print the /status document as JSON (schema: docs/api.md)
  --events N          how many recent events to show (0 for none)
${COMMON}
Exit status (like Heartbeat's cl_status; when several hold, the lowest number):
  0 all well; 6 no director is active; 7 split brain (two active); 8 a peer is dead;
  9 no standby (peers alive, none could take over); 10 a real server is down or a
  service has no healthy real server; 11 (cluster.mode ecmp) a peer's forwarding table
  has differed from this director's for longer than the grace; 2 usage; 3 the daemon
  is not reachable.
The same conditions are the "!" lines under the first line.`,
    run: async (ctx: CommandContext) => (await load()).statusCommand(ctx),
  },
  takeover: {
    summary: 'make this director active (like hb_takeover)',
    usage: 'vigil takeover [--api URL] [--config FILE]',
    help: `Asks this node to become active; the active peer hands over without waiting for
deadtime.
${COMMON}
${TOKEN}
${EXITS}`,
    run: async (ctx: CommandContext) => (await load()).simpleCommand('takeover')(ctx),
  },
  standby: {
    summary: 'hand the VIPs to the peer and stay standby (like hb_standby)',
    usage: 'vigil standby [--api URL] [--config FILE]',
    help: `Asks this node to release: it drops its VIPs and tells the peer at once, so the peer
takes over within about one round-trip.
${COMMON}
${TOKEN}
${EXITS}`,
    run: async (ctx: CommandContext) => (await load()).simpleCommand('standby')(ctx),
  },
  maintenance: {
    summary: 'maintenance on: release and never become active; off: eligible again',
    usage: 'vigil maintenance on|off [--api URL] [--config FILE]',
    help: `"on" releases the VIPs (when active) and keeps this node out of elections, e.g. for a
kernel upgrade; "off" makes it eligible again (it takes over only if no peer is
active, or with preempt).
${COMMON}
${TOKEN}
${EXITS}`,
    run: async (ctx: CommandContext) => (await load()).maintenanceCommand(ctx),
  },
  drain: {
    summary: 'weight 0 for a real server, wait for its connections to end',
    usage: 'vigil drain <service> <address:port> [--deadline 30s] [--api URL] [--config FILE]',
    help: `Sets the real server's weight to 0 (no new connections), then waits until its
connections end or the deadline passes, and reports which. The real server stays at
weight 0 until "vigil enable".
Options:
  --deadline D        how long to wait: 500ms, 30s, 5m (default 30s; 0 = do not wait)
${COMMON}
${TOKEN}
${EXITS}
5 the deadline passed with connections left (the weight stays 0).`,
    run: async (ctx: CommandContext) => (await load()).drainCommand(ctx),
  },
  enable: {
    summary: 'undo a drain: restore the configured weight',
    usage: 'vigil enable <service> <address:port> [--api URL] [--config FILE]',
    help: `Restores the configured weight of a drained real server (it still has to pass its
health check to take traffic).
${COMMON}
${TOKEN}
${EXITS}`,
    run: async (ctx: CommandContext) => (await load()).enableCommand(ctx),
  },
  reload: {
    summary: 'apply the config file again without a failover (like SIGHUP)',
    usage: 'vigil reload [--api URL] [--config FILE]',
    help: `Asks the daemon to re-read its config file. A valid config is applied in place (the
role does not move); an invalid one is rejected with every problem listed and the
running config kept.
${COMMON}
${TOKEN}
${EXITS}`,
    run: async (ctx: CommandContext) => (await load()).simpleCommand('reload')(ctx),
  },
};
