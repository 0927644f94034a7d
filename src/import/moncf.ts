/**
 * mon.cf: `key = value` globals, `hostgroup <name> <host>...` (more hosts may follow on
 * the next lines), `watch <group>` with `service <name>` blocks holding `interval`,
 * `monitor <script> [args] [;;]`, `description`, `depend`, ... and `period [label:]
 * <spec>` blocks holding `alert`, `upalert`, `alertevery`, `alertafter`, ...
 * A trailing backslash continues a line; `#` starts a comment line. A `watch` whose
 * group is not a hostgroup watches the single host of that name, as mon does. As in mon,
 * a blank line ends a hostgroup or watch record: lines after it that start no record are
 * ignored by mon (reported), and a watch line with no blank line after a hostgroup is
 * read by mon as more hosts (an error line).
 */
import { Ledger, splitLines, type SourceLine } from './ledger.js';

export interface MonAlert {
  kind: string;
  command: string;
  args: string[];
  src: SourceLine;
}

export interface MonPeriod {
  spec: string;
  src: SourceLine;
  alerts: MonAlert[];
  alertafter?: { count: number; src: SourceLine };
  /** alertevery, numalerts, ...: meaningful only to mon's alert scheduling. */
  options: SourceLine[];
}

export interface MonMonitor {
  command: string;
  args: string[];
  /** false when the line ends in `;;` (mon does not append the hosts). */
  appendHosts: boolean;
  src: SourceLine;
}

export interface MonService {
  name: string;
  src: SourceLine;
  interval?: { ms: number; src: SourceLine };
  monitor?: MonMonitor;
  description?: { text: string; src: SourceLine };
  periods: MonPeriod[];
  /** Service options with no vigil counterpart (depend, traptimeout, ...). */
  options: SourceLine[];
}

export interface MonWatch {
  group: string;
  src: SourceLine;
  services: MonService[];
}

export interface MonCf {
  hostgroups: Map<string, { hosts: string[]; src: SourceLine[] }>;
  watches: MonWatch[];
  /** The first directory of `mondir`, where monitors are found. */
  mondir?: string;
  maxprocs?: { value: number; src: SourceLine };
  /** Global settings, for the builder to judge. */
  globals: { key: string; value: string; src: SourceLine }[];
}

/** mon's durations: `30` or `30s`, `5m`, `1h`, `1d`. */
export function monMs(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)([smhd]?)$/i.exec(s.trim());
  if (!m) return undefined;
  const mult = { '': 1000, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] as string).toLowerCase()] as number;
  return Math.round(Number(m[1]) * mult);
}

export const PERIOD_KEYS = new Set(['alert', 'upalert', 'startupalert', 'alertevery', 'alertafter', 'numalerts', 'upalertafter', 'comp_alerts', 'no_comp_alerts', 'ackalert', 'disablealert']);
export const SERVICE_KEYS = new Set([
  'interval', 'monitor', 'description', 'period', 'depend', 'dep', 'dep_behavior', 'dep_memory', 'hostdepend', 'allow_empty_group',
  'traptimeout', 'trapduration', 'randskew', 'exclude_hosts', 'exclude_period', 'failure_interval', 'redistribute', 'unack_summary',
  'monitor_timeout',
]);

/** Words that start a watch's lines; after a hostgroup line without a blank line, mon reads them as hosts. */
const MON_RECORD_WORDS = new Set(['watch', 'service', 'interval', 'monitor', 'period', 'alert', 'upalert', 'description']);

export function parseMonCf(text: string, file: string, ledger: Ledger): MonCf {
  const lines = splitLines(text, file, { comment: 'leading', continuation: true });
  ledger.register(lines);
  const out: MonCf = { hostgroups: new Map(), watches: [], globals: [] };
  let group: { hosts: string[]; src: SourceLine[] } | undefined;
  let watch: MonWatch | undefined;
  let service: MonService | undefined;
  let period: MonPeriod | undefined;
  // mon ends a hostgroup or watch record at a blank line (comment lines do not count)
  const physical = text.split(/\r?\n/);
  let prevEnd = 0;
  let outside = false;
  /** A hostgroup whose record swallowed a watch or service line (mon reads them as hosts). */
  let swallowing: string | undefined;
  for (const src of lines) {
    const [word = '', ...rest] = src.text.split(/\s+/);
    const key = word.toLowerCase();
    const global = /^([A-Za-z_]+)\s*=\s*(.*)$/.exec(src.text);
    const blankBefore = physical.slice(prevEnd, src.line - 1).some((l) => l.trim() === '');
    prevEnd = src.lines[src.lines.length - 1] as number;
    if (blankBefore) {
      if (watch || group) outside = true;
      group = undefined;
      watch = undefined;
      service = undefined;
      period = undefined;
      swallowing = undefined;
    }
    if (swallowing !== undefined && key !== 'hostgroup') {
      ledger.skip(src, `mon reads this line as more hosts of hostgroup ${swallowing} (see the error above)`);
      continue;
    }
    if (group && !watch && key !== 'hostgroup' && !global && MON_RECORD_WORDS.has(key)) {
      const name = [...out.hostgroups].find(([, g]) => g === group)?.[0] ?? '';
      ledger.error(src, `mon reads this line as more hosts of hostgroup ${name}: a hostgroup record runs until a blank line, so this ${key} is not one; add a blank line before it`);
      for (const l of group.src) ledger.skip(l, `this hostgroup swallows the ${key} line ${src.line} as hosts, so mon watches nothing with it`);
      out.hostgroups.delete(name);
      swallowing = name;
      group = undefined;
      continue;
    }
    if (global && !watch) {
      group = undefined;
      const k = (global[1] as string).toLowerCase();
      const v = (global[2] as string).trim();
      if (k === 'mondir') out.mondir = v.split(':')[0];
      if (k === 'maxprocs' && /^\d+$/.test(v)) out.maxprocs = { value: Number(v), src };
      out.globals.push({ key: k, value: v, src });
      continue;
    }
    if (key === 'hostgroup') {
      watch = undefined;
      service = undefined;
      period = undefined;
      const [name, ...hosts] = rest;
      if (name === undefined) {
        ledger.skip(src, 'hostgroup needs a name');
        continue;
      }
      group = { hosts, src: [src] };
      out.hostgroups.set(name, group);
      continue;
    }
    if (key === 'watch') {
      group = undefined;
      service = undefined;
      period = undefined;
      const [name] = rest;
      if (name === undefined) {
        ledger.skip(src, 'watch needs a hostgroup');
        watch = undefined;
        continue;
      }
      watch = { group: name, src, services: [] };
      out.watches.push(watch);
      continue;
    }
    if (group && !watch) {
      // more hosts of the hostgroup above
      group.hosts.push(word, ...rest);
      group.src.push(src);
      continue;
    }
    if (!watch) {
      ledger.skip(src, outside ? 'mon ignores this line: a blank line ended the hostgroup or watch record above it (mon’s records end at a blank line)' : 'outside any hostgroup or watch');
      continue;
    }
    if (key === 'service') {
      period = undefined;
      const name = rest.join(' ');
      if (name === '') {
        ledger.skip(src, 'service needs a name');
        service = undefined;
        continue;
      }
      service = { name, src, periods: [], options: [] };
      watch.services.push(service);
      continue;
    }
    if (!service) {
      ledger.skip(src, 'inside a watch but before any service');
      continue;
    }
    if (PERIOD_KEYS.has(key) && period) {
      if (key === 'alertafter') {
        const n = Number(rest[0]);
        if (Number.isInteger(n) && n > 0) period.alertafter = { count: n, src };
        else period.options.push(src);
      } else if (key === 'alert' || key === 'upalert' || key === 'startupalert' || key === 'ackalert' || key === 'disablealert') {
        const [command, ...args] = rest;
        if (command === undefined) ledger.skip(src, `${key} needs a script`);
        else period.alerts.push({ kind: key, command, args, src });
      } else period.options.push(src);
      continue;
    }
    if (key === 'period') {
      period = { spec: rest.join(' '), src, alerts: [], options: [] };
      service.periods.push(period);
      continue;
    }
    period = undefined;
    if (key === 'interval') {
      const ms = monMs(rest[0] ?? '');
      if (ms === undefined || ms < 1) ledger.skip(src, `"${rest.join(' ')}" is not a duration (10s, 5m, 1h)`);
      else service.interval = { ms, src };
    } else if (key === 'monitor') {
      let args = [...rest];
      let appendHosts = true;
      if (args[args.length - 1] === ';;') {
        appendHosts = false;
        args = args.slice(0, -1);
      } else if (args[args.length - 1]?.endsWith(';;')) {
        appendHosts = false;
        args[args.length - 1] = (args[args.length - 1] as string).slice(0, -2);
      }
      const [command, ...margs] = args;
      if (command === undefined) ledger.skip(src, 'monitor needs a script');
      else service.monitor = { command, args: margs, appendHosts, src };
    } else if (key === 'description') {
      service.description = { text: rest.join(' '), src };
    } else if (SERVICE_KEYS.has(key)) {
      service.options.push(src);
    } else {
      ledger.skip(src, `"${word}" is not a mon service or period keyword`);
    }
  }
  return out;
}

/** The options of an `lvs.alert` line: `-P -t -V vip:port -R real[:port] -W weight -F dr`. */
export interface LvsAlertArgs {
  protocol?: 'tcp' | 'udp' | 'fwmark';
  virtual?: string;
  real?: string;
  weight?: number;
  forward?: 'dr' | 'tun' | 'nat';
}

export function isLvsAlert(command: string): boolean {
  return /(^|\/)(lvs|ipvs)[._-]?alert$/i.test(command) || /(^|\/)lvs[._-]?alert\.\w+$/i.test(command);
}

export function parseLvsAlertArgs(args: string[]): LvsAlertArgs {
  const out: LvsAlertArgs = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    const v = args[i + 1];
    if (a === '-P' && v !== undefined) {
      const p = v.replace(/^-+/, '').toLowerCase();
      out.protocol = p === 'u' || p === 'udp' ? 'udp' : p === 'f' || p === 'fwm' || p === 'fwmark' ? 'fwmark' : 'tcp';
      i++;
    } else if (a === '-V' && v !== undefined) {
      out.virtual = v;
      i++;
    } else if (a === '-R' && v !== undefined) {
      out.real = v;
      i++;
    } else if (a === '-W' && v !== undefined) {
      if (/^\d+$/.test(v)) out.weight = Number(v);
      i++;
    } else if (a === '-F' && v !== undefined) {
      const f = v.toLowerCase();
      out.forward = f === 'nat' || f === 'masq' || f === 'm' ? 'nat' : f === 'tun' || f === 'ipip' || f === 'i' ? 'tun' : 'dr';
      i++;
    }
  }
  return out;
}
