/**
 * What each of mon's monitors (Debian's /usr/lib/mon/mon.d) probes, read from its source:
 * the protocol and port it connects to on every host mon appends, its own timeout when
 * `-t` is absent, and whether vigil has a built-in probe with the same up/down verdict.
 * The import attaches a monitor's check only to the service it probes; the table in
 * docs/import-mon.md is generated from this file (test/unit/import-mon-docs.test.ts).
 */
import type { Check } from './model.js';

/** The options a monitor was given, parsed its own way (getopts or GetOptions). */
export interface MonitorArgs {
  values: Map<string, string>;
  flags: Set<string>;
  /** Words that are not options (a monitor given hosts of its own). */
  rest: string[];
}

/** What a monitor probes on each appended host. */
export type MonitorProbe =
  | { kind: 'port'; protocol: 'tcp' | 'udp'; port: number }
  /** ICMP: the host, no service's port. */
  | { kind: 'host' };

/** A built-in probe with the monitor's exact verdict, or why there is none. */
export type Builtin = { check: Check; dropped: { option: string; why: string }[] } | { refused: string };

export interface MonitorSpec {
  name: string;
  /** `getopts "p:t:"` letters (a trailing `:` takes a value) or GetOptions names (`port=i`). */
  style: 'getopts' | 'long';
  options: string[];
  /** What it probes, from its options; a string says why it cannot be told. */
  probe: (a: MonitorArgs) => MonitorProbe | string;
  /** The option that sets the port, and the one that sets the timeout (seconds). */
  portOption?: string;
  timeoutOption?: string;
  /** The monitor's own timeout when the option is absent; undefined: none of its own. */
  defaultTimeoutS?: number;
  /** What counts as up, in the monitor's own terms (for the docs). */
  up: string;
  builtin?: (a: MonitorArgs, port: number, hostName: string | undefined) => Builtin;
  /** On Debian 12 it dies in Sys::Hostname before probing anything (a Debian bug). */
  debianHostnameBug?: boolean;
}

const tcpPort = (opt: string, dflt: number) => (a: MonitorArgs): MonitorProbe | string => {
  const v = a.values.get(opt);
  if (v === undefined) return { kind: 'port', protocol: 'tcp', port: dflt };
  return /^\d+$/.test(v) && Number(v) >= 1 && Number(v) <= 65535 ? { kind: 'port', protocol: 'tcp', port: Number(v) } : `-${opt} ${v} is not a port number`;
};

/** http.monitor's verdict: the response starts `HTTP/x.y 200|301|302|401`. */
export const HTTP_MONITOR_STATUS = [200, 301, 302, 401];

export const MONITORS: MonitorSpec[] = [
  {
    name: 'tcp.monitor',
    style: 'getopts',
    options: ['p:', 't:'],
    probe: tcpPort('p', 23),
    portOption: 'p',
    timeoutOption: 't',
    defaultTimeoutS: 10,
    up: 'the TCP connection is established (port 23 without -p)',
    builtin: () => ({ check: { type: 'tcp' }, dropped: [] }),
  },
  {
    name: 'http.monitor',
    style: 'getopts',
    options: ['p:', 't:', 'u:', 'a:', 'm:', 'o'],
    probe: tcpPort('p', 80),
    portOption: 'p',
    timeoutOption: 't',
    defaultTimeoutS: 30,
    up: `GET -u (/) answers HTTP ${HTTP_MONITOR_STATUS.join(', ')}; with -m, the regex matches headers and body whatever the status`,
    builtin: (a, _port, hostName) => {
      if (a.values.has('m')) return { refused: '-m matches a Perl regex against headers and body whatever the status' };
      if (a.values.has('a')) return { refused: '-a sends its own User-Agent' };
      const check: Check = { type: 'http', expect_status: [...HTTP_MONITOR_STATUS] };
      const u = a.values.get('u');
      if (u !== undefined) {
        if (!u.startsWith('/')) return { refused: `-u ${u} does not start with "/" (http.monitor sends it as is)` };
        check.path = u;
      }
      // http.monitor sends "Host: <the host as mon names it>", without a port
      if (hostName !== undefined) check.host = hostName;
      const dropped = a.flags.has('o') ? [{ option: '-o', why: 'only shortens the monitor’s output; no effect on the verdict' }] : [];
      return { check, dropped };
    },
  },
  {
    name: 'ftp.monitor',
    style: 'getopts',
    options: ['p:', 't:'],
    probe: tcpPort('p', 21),
    portOption: 'p',
    timeoutOption: 't',
    defaultTimeoutS: 30,
    up: 'a "220 " greeting, then "221" after QUIT',
  },
  {
    name: 'smtp.monitor',
    style: 'getopts',
    options: ['p:', 't:'],
    probe: tcpPort('p', 25),
    portOption: 'p',
    timeoutOption: 't',
    defaultTimeoutS: 30,
    up: 'a 220 greeting, HELO and QUIT answered',
    debianHostnameBug: true,
  },
  {
    name: 'pop3.monitor',
    style: 'getopts',
    options: ['p:', 't:'],
    probe: tcpPort('p', 110),
    portOption: 'p',
    timeoutOption: 't',
    defaultTimeoutS: 30,
    up: 'a +OK greeting and QUIT answered',
    debianHostnameBug: true,
  },
  {
    name: 'imap.monitor',
    style: 'getopts',
    options: ['m:', 'p:', 't:'],
    probe: tcpPort('p', 143),
    portOption: 'p',
    timeoutOption: 't',
    defaultTimeoutS: 30,
    up: 'an OK greeting and LOGOUT answered',
    debianHostnameBug: true,
  },
  {
    name: 'nntp.monitor',
    style: 'getopts',
    options: ['f', 'g:', 'p:', 't:', 'd:', 'u:', 'a:'],
    probe: tcpPort('p', 119),
    portOption: 'p',
    timeoutOption: 't',
    defaultTimeoutS: 30,
    up: 'a greeting, MODE READER and GROUP answered',
  },
  {
    name: 'telnet.monitor',
    style: 'getopts',
    options: ['l:', 'p:', 't:'],
    probe: tcpPort('p', 23),
    portOption: 'p',
    timeoutOption: 't',
    defaultTimeoutS: 10,
    up: 'a login prompt (-l, /ogin:/i)',
  },
  {
    name: 'dns.monitor',
    style: 'long',
    options: ['master=s', 'zone=s', 'serial_threshold=s', 'caching_only', 'tcp', 'query=s', 'retry=i', 'retransmit=i', 'timeout=i', 'debug', 'failsingle'],
    probe: (a) => ({ kind: 'port', protocol: a.flags.has('tcp') ? 'tcp' : 'udp', port: 53 }),
    timeoutOption: 'timeout',
    up: 'the zones (-zone/-master) or queries (-caching_only -query) answer as expected; UDP unless -tcp',
  },
  {
    name: 'dns-query.monitor',
    style: 'getopts',
    options: ['t:', 'n:'],
    probe: () => ({ kind: 'port', protocol: 'udp', port: 53 }),
    timeoutOption: 't',
    defaultTimeoutS: 5,
    up: 'a search for -n (mailhost) returns an answer',
  },
  {
    name: 'ping.monitor',
    style: 'getopts',
    options: ['c:', '6'],
    probe: () => ({ kind: 'host' }),
    up: 'the host answers ICMP echo',
  },
  {
    name: 'fping.monitor',
    style: 'getopts',
    options: ['a', 'h', 'r:', 's:', 't:', 'T'],
    probe: () => ({ kind: 'host' }),
    up: 'fping reaches the host',
  },
];

export function monitorSpec(base: string): MonitorSpec | undefined {
  return MONITORS.find((m) => m.name === base);
}

/** Parses a monitor's arguments its own way; a string says what it would reject. */
export function parseMonitorArgs(spec: MonitorSpec, args: string[]): MonitorArgs | string {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  const rest: string[] = [];
  if (spec.style === 'getopts') {
    const takes = new Map(spec.options.map((o) => [o[0] as string, o.endsWith(':')]));
    let i = 0;
    for (; i < args.length; i++) {
      const a = args[i] as string;
      if (a === '--') {
        i++;
        break;
      }
      if (!/^-./.test(a)) break;
      for (let j = 1; j < a.length; j++) {
        const c = a[j] as string;
        const hasValue = takes.get(c);
        if (hasValue === undefined) return `-${c} is not an option of ${spec.name}`;
        if (!hasValue) {
          flags.add(c);
          continue;
        }
        const v = j + 1 < a.length ? a.slice(j + 1) : args[++i];
        if (v === undefined) return `-${c} needs a value`;
        values.set(c, v);
        break;
      }
    }
    rest.push(...args.slice(i));
    return { values, flags, rest };
  }
  const known = new Map(spec.options.map((o) => { const [n, t] = o.split('='); return [n as string, t !== undefined] as const; }));
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    const m = /^--?([A-Za-z_]+)(?:=(.*))?$/.exec(a);
    if (!m) {
      rest.push(a);
      continue;
    }
    const name = m[1] as string;
    const hasValue = known.get(name);
    if (hasValue === undefined) return `${a} is not an option of ${spec.name}`;
    if (!hasValue) flags.add(name);
    else {
      const v = m[2] ?? args[++i];
      if (v === undefined) return `${a} needs a value`;
      values.set(name, v);
    }
  }
  return { values, flags, rest };
}

/** The monitor's own timeout in seconds: its option, else its default. */
export function monitorTimeoutS(spec: MonitorSpec, a: MonitorArgs): number | undefined | string {
  const v = spec.timeoutOption === undefined ? undefined : a.values.get(spec.timeoutOption);
  if (v === undefined) return spec.defaultTimeoutS;
  return /^\d+$/.test(v) && Number(v) > 0 ? Number(v) : `-${spec.timeoutOption} ${v} is not a number of seconds`;
}

/** The docs table (docs/import-mon.md), from the same data the mapper uses. */
export function monitorTable(): string[] {
  const rows = MONITORS.map((m) => {
    const probe = m.probe({ values: new Map(), flags: new Set(), rest: [] });
    const probes =
      typeof probe === 'string' ? probe : probe.kind === 'host' ? 'the host (ICMP); no service' : `${probe.protocol} ${probe.port}${m.portOption !== undefined ? ` (-${m.portOption})` : ''}${m.name === 'dns.monitor' ? ' (tcp with -tcp)' : ''}`;
    const timeout = m.timeoutOption === undefined ? '—' : `-${m.timeoutOption}${m.defaultTimeoutS !== undefined ? `, else ${m.defaultTimeoutS} s` : ', else none of its own'}`;
    const becomes = m.builtin
      ? m.name === 'http.monitor'
        ? `\`{type: http, expect_status: [${HTTP_MONITOR_STATUS.join(', ')}], path: -u, host: the mon host name}\`; with -m or -a: exec, unchanged`
        : '`{type: tcp}`'
      : probe !== undefined && typeof probe !== 'string' && probe.kind === 'host'
        ? 'exec, unchanged — only where lvs.alert binds it (it probes no service)'
        : 'exec, unchanged';
    const bug = m.debianHostnameBug === true ? ' ⚠ dies in Sys::Hostname on Debian 12: warned' : '';
    return `| \`${m.name}\` | ${probes} | ${timeout} | ${m.up} | ${becomes}${bug} |`;
  });
  return [
    '| monitor | probes on each host | timeout (s) | up when | becomes |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    '| any other monitor, or one ending in `;;` | unknown | — | exit 0 | exec, unchanged — only where lvs.alert binds it; otherwise an error (which service it probes cannot be told) |',
  ];
}
