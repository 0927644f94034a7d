/**
 * ha.cf, as Heartbeat reads it: `#` starts a comment anywhere on a line; a line is a
 * directive name and its values. Most directives take a list of values separated by
 * blanks or commas, each applied on its own (`node a b` is two nodes, `bcast eth0 eth1`
 * two media); `ucast`, `mcast`, `ping_group`, `stonith`, `stonith_host`, `apiauth` and
 * `respawn` take the rest of the line. Times are seconds unless they end in `ms` (or
 * `us`). There is no line continuation in ha.cf. `udp` is the old name of `bcast`.
 */
import { isIP } from 'node:net';
import { Ledger, splitLines, type SourceLine } from './ledger.js';

export interface HaMedium {
  kind: 'ucast' | 'bcast' | 'mcast';
  iface: string;
  /** ucast: the peer's address; mcast: the group. */
  address?: string;
  /** mcast: the UDP port given on the line. */
  port?: number;
  src: SourceLine;
}

export interface HaTimer {
  ms: number;
  src: SourceLine;
}

export interface HaCf {
  nodes: { name: string; src: SourceLine }[];
  media: HaMedium[];
  keepalive?: HaTimer;
  deadtime?: HaTimer;
  warntime?: HaTimer;
  initdead?: HaTimer;
  deadping?: HaTimer;
  autoFailback?: { value: 'on' | 'off' | 'legacy'; src: SourceLine };
  udpport?: { port: number; src: SourceLine };
  pings: { target: string; src: SourceLine }[];
  pingGroups: { name: string; targets: string[]; src: SourceLine }[];
  /** `respawn <user> .../ipfail`: Heartbeat's ping nodes only move resources with ipfail. */
  ipfail?: SourceLine;
}

const WHOLE_LINE = new Set(['ucast', 'mcast', 'ping_group', 'stonith', 'stonith_host', 'apiauth', 'respawn']);

/**
 * What each ha.cf directive vigil translates becomes (the others are in NO_EQUIVALENT);
 * docs/import-hacf.md is generated from these two tables.
 */
export const HACF_DIRECTIVES: Record<string, string> = {
  node: '`cluster.nodes[]` (`node:` is `--node`, else this host, else the preferred node in haresources)',
  ucast: 'link IFACE on the peer with address PEER; a node’s own address from `--address`, this machine’s interfaces, or the other node’s ucast line',
  bcast: 'unicast link IFACE (adjusted: every node’s address is needed)',
  udp: 'old name of `bcast`',
  mcast: 'unicast link IFACE (adjusted: group, ttl and loop are not used; a port other than udpport reported)',
  keepalive: '`cluster.interval_ms` (default 1 s; at least 5 ms)',
  deadtime: '`cluster.deadtime_ms` (default 30 s; at least 2 × keepalive)',
  warntime: '`cluster.warntime_ms` (default deadtime / 2; between keepalive and deadtime)',
  initdead: '`cluster.initdead_ms` (default from deadtime, Heartbeat’s rule)',
  udpport: '`cluster.port`',
  auto_failback: '`cluster.preempt`: on/legacy (the default) true, off false',
  ping: '`cluster.tracks[]` `{type: ping, weight: 50}`',
  ping_group: 'one ping track per member, the weight split (Heartbeat counted the group up while any member answered)',
  deadping: 'the ping tracks’ `fall` (deadping in 1 s probes)',
  respawn: '`respawn … ipfail`: done by the ping tracks; any other program is reported (run it as its own unit)',
};

/** Directives vigil has no counterpart for, with the reason given in the report. */
export const NO_EQUIVALENT: Record<string, string> = {
  logfacility: 'vigil logs JSON lines on stdout (journald or the service manager keeps them); there is no syslog facility to set',
  logfile: 'vigil logs on stdout; redirect it or let journald keep it',
  debugfile: 'vigil logs on stdout; set logging.level: debug for more detail',
  use_logd: 'vigil logs on stdout; there is no logging daemon',
  conn_logd_time: 'vigil logs on stdout; there is no logging daemon',
  debug: 'set logging.level (debug, trace) instead',
  serial: 'vigil heartbeats are UDP only; a serial link has no equivalent (use a second network link)',
  baud: 'vigil heartbeats are UDP only; there are no serial links',
  stonith: 'vigil does not fence nodes; it heals split brain by handing over (see docs/ARCHITECTURE.md)',
  stonith_host: 'vigil does not fence nodes; it heals split brain by handing over (see docs/ARCHITECTURE.md)',
  watchdog: 'vigil does not drive a watchdog device; run it under systemd with WatchdogSec if wanted',
  hopfudge: 'vigil heartbeats are not relayed, so there is no hop count',
  hbgenmethod: 'vigil uses a fresh incarnation number per start, not a stored generation',
  realtime: 'vigil runs as a normal process; its timers measure and tolerate their own lateness',
  rtprio: 'vigil runs as a normal process; its timers measure and tolerate their own lateness',
  apiauth: 'vigil’s control API uses a bearer token (api.token_file) instead of uid/gid lists',
  msgfmt: 'vigil has its own authenticated binary frame format',
  compression: 'vigil frames are small and never compressed',
  compression_threshold: 'vigil frames are small and never compressed',
  traditional_compression: 'vigil frames are small and never compressed',
  crm: 'vigil replaces Heartbeat’s resource managers (haresources and the CRM); translate the CIB by hand',
  autojoin: 'vigil’s cluster members are listed in cluster.nodes; nodes do not join on their own',
  uuidfrom: 'vigil identifies nodes by name',
  coredumps: 'core dumps are the service manager’s business (systemd LimitCORE)',
  coreroot: 'core dumps are the service manager’s business (systemd LimitCORE)',
  max_rexmit_delay: 'vigil does not retransmit heartbeats; each is a fresh frame',
  hbaping: 'vigil tracks ping targets and interfaces, not Fibre Channel HBAs',
  memreserve: 'not needed by vigil',
  badpack: 'vigil always counts bad frames by reason in a metric and logs them rate-limited',
  register_to_apphbd: 'vigil runs under the service manager; there is no apphbd',
  env: 'set environment variables in the systemd unit',
  normalpoll: 'not needed by vigil',
  release2: 'vigil replaces Heartbeat’s resource managers',
  record_config_changes: 'vigil has no CIB',
  record_pengine_inputs: 'vigil has no CIB',
  enable_config_writes: 'vigil has no CIB',
  nice_failback: 'use auto_failback (vigil: cluster.preempt); nice_failback on is auto_failback off',
};

/** `2` → 2000, `1500ms` → 1500, `1.5` → 1500, `500000us` → 500. */
export function heartbeatMs(s: string): number | undefined {
  const m = /^(\d+(?:\.\d*)?|\.\d+)\s*(ms|us|s)?$/i.exec(s.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = (m[2] ?? 's').toLowerCase();
  const ms = unit === 'ms' ? n : unit === 'us' ? n / 1000 : n * 1000;
  return Math.round(ms);
}

/** Heartbeat's booleans (case-insensitive): true, on, yes, y, 1 / false, off, no, n, 0. */
export function heartbeatBool(s: string): boolean | undefined {
  const v = s.toLowerCase();
  if (['true', 'on', 'yes', 'y', '1'].includes(v)) return true;
  if (['false', 'off', 'no', 'n', '0'].includes(v)) return false;
  return undefined;
}

export function parseHaCf(text: string, file: string, ledger: Ledger): HaCf {
  const lines = splitLines(text, file, { comment: 'anywhere' });
  ledger.register(lines);
  const out: HaCf = { nodes: [], media: [], pings: [], pingGroups: [] };
  for (const src of lines) {
    const m = /^(\S+)\s*(.*)$/.exec(src.text);
    if (!m) continue;
    let directive = (m[1] as string).toLowerCase();
    const rest = (m[2] as string).trim();
    if (directive === 'udp') directive = 'bcast';
    const values = WHOLE_LINE.has(directive) ? [rest] : rest.split(/[\s,]+/).filter((v) => v !== '');
    if (values.length === 0 || values[0] === '') {
      ledger.skip(src, `"${directive}" needs a value`);
      continue;
    }
    const timer = (key: 'keepalive' | 'deadtime' | 'warntime' | 'initdead' | 'deadping'): void => {
      const ms = heartbeatMs(values[0] as string);
      if (ms === undefined || values.length > 1) ledger.skip(src, `"${rest}" is not a time (seconds, or with ms)`);
      else {
        out[key] = { ms, src };
        ledger.ok(src);
      }
    };
    switch (directive) {
      case 'node':
        for (const v of values) out.nodes.push({ name: v, src });
        ledger.ok(src);
        break;
      case 'keepalive':
      case 'deadtime':
      case 'warntime':
      case 'initdead':
      case 'deadping':
        timer(directive);
        break;
      case 'udpport': {
        const p = Number(values[0]);
        if (!Number.isInteger(p) || p < 1 || p > 65535 || values.length > 1) ledger.skip(src, `"${rest}" is not a UDP port`);
        else {
          out.udpport = { port: p, src };
          ledger.ok(src);
        }
        break;
      }
      case 'auto_failback': {
        const v = (values[0] as string).toLowerCase();
        const b = heartbeatBool(v);
        if (v === 'legacy') out.autoFailback = { value: 'legacy', src };
        else if (b !== undefined) out.autoFailback = { value: b ? 'on' : 'off', src };
        else {
          ledger.skip(src, 'auto_failback must be on, off or legacy');
          break;
        }
        ledger.ok(src);
        break;
      }
      case 'bcast':
        for (const v of values) out.media.push({ kind: 'bcast', iface: v, src });
        ledger.ok(src);
        break;
      case 'ucast': {
        const [iface, peer, ...more] = rest.split(/\s+/);
        if (iface === undefined || peer === undefined || more.length > 0) ledger.skip(src, 'expected "ucast <interface> <peer-address>"');
        else {
          out.media.push({ kind: 'ucast', iface, address: peer, src });
          ledger.ok(src);
        }
        break;
      }
      case 'mcast': {
        const [iface, group, port] = rest.split(/\s+/);
        if (iface === undefined || group === undefined || isIP(group) === 0) ledger.skip(src, 'expected "mcast <interface> <group> <port> <ttl> <loop>"');
        else {
          out.media.push({ kind: 'mcast', iface, address: group, port: port !== undefined && /^\d+$/.test(port) ? Number(port) : undefined, src });
          ledger.ok(src);
        }
        break;
      }
      case 'ping':
        for (const v of values) out.pings.push({ target: v, src });
        ledger.ok(src);
        break;
      case 'ping_group': {
        const [name, ...targets] = rest.split(/[\s,]+/);
        if (name === undefined || targets.length === 0) ledger.skip(src, 'expected "ping_group <name> <address>..."');
        else {
          out.pingGroups.push({ name, targets, src });
          ledger.ok(src);
        }
        break;
      }
      case 'respawn':
        if (/(^|\/)ipfail(\s|$)/.test(rest)) {
          out.ipfail = src;
          ledger.ok(src);
        } else {
          ledger.skip(src, 'vigil does not supervise other programs; run them as their own systemd units');
        }
        break;
      default: {
        const why = NO_EQUIVALENT[directive];
        // stonith lines carry device passwords: the report never shows their parameters
        const shown = directive === 'stonith' || directive === 'stonith_host' ? { ...src, text: `${m[1] as string} <parameters not shown>` } : src;
        ledger.skip(shown, why ?? `"${directive}" is not a Heartbeat directive vigil knows`);
      }
    }
  }
  return out;
}
