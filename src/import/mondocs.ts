/**
 * docs/import-mon.md, generated from the data the mon import uses (the monitor table in
 * monitors.ts, the reasons in monchecks.ts, the keywords moncf.ts knows), so the docs
 * cannot drift from the code: test/unit/import-mon-docs.test.ts compares the file with
 * this text (`VIGIL_WRITE_DOCS=1` rewrites it).
 */
import { MON_GLOBALS, MON_SERVICE_OPTIONS } from './monchecks.js';
import { PERIOD_KEYS, SERVICE_KEYS } from './moncf.js';
import { monitorTable } from './monitors.js';

/** The records and the directives the mapper acts on, in mon.cf's order. */
const RECORDS: [string, string][] = [
  ['`hostgroup NAME HOST...` (more hosts on the next lines, up to a blank line)', 'the watched hosts (names resolved, as mon’s monitors resolve them); an unresolvable host is an **error**'],
  ['a `watch` line with no blank line after a hostgroup', '**error**: mon reads it (and the lines after it, up to a blank line) as more hosts, so it watches nothing'],
  ['a blank line', 'ends the hostgroup or watch record, as in mon; later lines that start no record are ignored by mon and reported'],
  ['`watch GROUP` (GROUP not a hostgroup: one host of that name)', 'its services'],
  ['`service NAME`', 'a check on the real servers it probes: the real servers at the watched hosts whose protocol and port are the monitor’s (table below); a port no service has is reported, not attached elsewhere'],
  ['`interval 5s/5m/1h`', '`interval_ms`; without one mon never runs the monitor, so the service is reported'],
  ['`monitor SCRIPT ARGS` (`;;`: no hosts appended)', '`check` as in the monitor table; a monitor whose target cannot be told is an **error** unless lvs.alert binds it'],
  ['`description`', 'kept in the report only'],
  ['`period SPEC`', 'with lvs.alert: always (adjusted when SPEC is not all week); without: reported'],
  ['`alert`/`upalert lvs.alert -P -t\\|-u\\|-f -V VIP:PORT -R RS[:PORT] -W W -F dr\\|tun\\|nat`', 'binds the check to that service and real server (created when no ipvsadm rules do); a group of several hosts: the monitor runs on all of them, as mon ran it; unresolvable -V/-R is an **error**'],
  ['`alertafter N` in a period with lvs.alert', '`fall: N` (a time window is reported)'],
  ['two lvs.alert-bound monitors with different checks on one real server', '**error**: vigil runs one check per real server'],
  ['other `alert`/`upalert` scripts (mail.alert, ...)', 'reported: vigil’s verdicts are in /status and `vigil_real_server_healthy`'],
  ['`maxprocs`', '`health.concurrency`'],
  ['`mondir`', 'where relative monitor names are found (the first directory)'],
];

export function monDocs(): string {
  const periodOptions = [...PERIOD_KEYS].filter((k) => !['alert', 'upalert', 'alertafter'].includes(k)).sort();
  const serviceOptions = [...SERVICE_KEYS].filter((k) => MON_SERVICE_OPTIONS[k] !== undefined).sort();
  const lines = [
    '<!-- Generated from src/import/mondocs.ts; test/unit/import-mon-docs.test.ts keeps it in step. Do not edit. -->',
    '# Importing mon.cf (`vigil import --mon-cf`)',
    '',
    'Every line of mon.cf is translated, translated with a change (`adjusted`), `untranslated`',
    'with a reason, or an `error`: input that is ambiguous or cannot be resolved, so the',
    'output would not do what mon did. Errors make `vigil import` exit 1; `--partial`',
    'accepts the result without those parts.',
    '',
    '## Records and directives',
    '',
    '| mon.cf | vigil |',
    '| --- | --- |',
    ...RECORDS.map(([a, b]) => `| ${a} | ${b} |`),
    ...serviceOptions.map((k) => `| \`${k}\` | reported: ${MON_SERVICE_OPTIONS[k] as string} |`),
    `| ${periodOptions.map((k) => `\`${k}\``).join(', ')} | reported: they pace mon’s alerts (with lvs.alert: the reconciler acts once per change) |`,
    ...Object.entries(MON_GLOBALS)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, why]) => `| \`${k} = ...\` | reported: ${why} |`),
    '| any other global | reported: a mon server setting with no vigil counterpart |',
    '',
    '## Monitors',
    '',
    'What each monitor in Debian’s /usr/lib/mon/mon.d probes and when it says up, read from',
    'its source. A built-in probe replaces a monitor only where it reaches the same verdict;',
    'otherwise the monitor runs unchanged as an exec check (`args_style: mon` appends the',
    'real server’s address as mon appends the host; a host named by name is appended as',
    'written). The timeout is the monitor’s own (its option, else its default; an exec check',
    'gets one second more so the monitor reports its own failure), kept below the interval:',
    'where it is not, the cap is reported. mon runs a monitor only when its interval is',
    'set and never two at once; vigil does the same per real server.',
    '',
    ...monitorTable(),
    '',
  ];
  return `${lines.join('\n')}\n`;
}
