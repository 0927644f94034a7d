/**
 * `vigil import`: reads the old files, writes vigil.yaml (and the key file, and wrapper
 * scripts for resources with arguments), validates the result with the real loader and
 * prints the report. Exit 0 when the output validates and no line is an error (ambiguous or
 * unresolvable input; `--partial` accepts a result without those parts), else 1.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { parse, UsageError, type CommandContext } from '../cli/context.js';
import { ConfigError, formatPath, parseConfig } from '../config/load.js';
import { buildConfig, type ImportInputs, type InputFile } from './build.js';
import { formatReport, type ReportEntry } from './ledger.js';
import { localHost, systemResolver } from './resolve.js';
import { renderYaml } from './yaml.js';

export async function runImport({ argv, out, err }: CommandContext): Promise<number> {
  const { values } = parse(argv, {
    'ha-cf': { type: 'string' },
    haresources: { type: 'string' },
    authkeys: { type: 'string' },
    'mon-cf': { type: 'string' },
    'ipvsadm-save': { type: 'string' },
    ldirectord: { type: 'string' },
    node: { type: 'string' },
    address: { type: 'string', multiple: true },
    'vip-interface': { type: 'string' },
    'key-file': { type: 'string' },
    report: { type: 'string' },
    output: { type: 'string', short: 'o' },
    /** Accept a result without the parts reported as errors (ambiguous or unresolvable input). */
    partial: { type: 'boolean' },
  });
  const read = (f: string | undefined): InputFile | undefined => {
    if (f === undefined) return undefined;
    try {
      return { file: f, text: readFileSync(f, 'utf8') };
    } catch (e) {
      throw new Error(`cannot read ${f}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
  };
  const inputs: ImportInputs = {};
  const haCf = read(values['ha-cf']);
  if (haCf) inputs.haCf = haCf;
  const haresources = read(values.haresources);
  if (haresources) inputs.haresources = haresources;
  const authkeys = read(values.authkeys);
  if (authkeys) inputs.authkeys = authkeys;
  const monCf = read(values['mon-cf']);
  if (monCf) inputs.monCf = monCf;
  const ipvsadm = read(values['ipvsadm-save']);
  if (ipvsadm) inputs.ipvsadm = ipvsadm;
  const ld = read(values.ldirectord);
  if (ld) inputs.ldirectord = ld;
  if (Object.keys(inputs).length === 0) throw new UsageError('give at least one input file');

  const addresses = (values.address ?? []).map((a) => {
    const m = /^(?:([^:=]+):)?([^:=]+)=(.+)$/.exec(a);
    if (!m) throw new UsageError(`--address ${a}: expected [NODE:]IFACE=IP`);
    const entry: { node?: string; iface: string; address: string } = { iface: m[2] as string, address: m[3] as string };
    if (m[1] !== undefined) entry.node = m[1];
    return entry;
  });

  const outFile = values.output !== undefined ? resolve(values.output) : resolve('vigil.yaml');
  const outDir = dirname(outFile);
  const keyFile = values['key-file'] !== undefined ? resolve(values['key-file']) : resolve(outDir, 'vigil.key');
  const asWritten = (p: string): string => {
    const rel = relative(outDir, p);
    return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : p;
  };

  const host = hostname();
  const short = host.split('.')[0] as string;
  const onNode = values.node === undefined || values.node === host || values.node === short;
  const result = await buildConfig(inputs, {
    ...(values.node !== undefined ? { node: values.node } : {}),
    hostname: host,
    addresses,
    ...(values['vip-interface'] !== undefined ? { vipInterface: values['vip-interface'] } : {}),
    ...(onNode ? { local: localHost() } : {}),
    resolver: systemResolver(),
    exists: (p) => existsSync(p),
    keyFile: asWritten(keyFile),
    wrapperDir: 'resources',
  });

  const report: ReportEntry[] = [...result.report];
  const header = [
    `Written by vigil import from ${result.sources.join(', ')}.`,
    `Every input line that was not translated, or was translated with a change, is in the import report.`,
    `Check it with: vigil validate ${values.output ?? '<this file>'}`,
  ];
  // validate before writing, so the report can say what is missing
  let yamlText = renderYaml(result.config, result.comments, header, report);
  let valid = true;
  try {
    parseConfig(yamlText, outFile, {});
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    valid = false;
    for (const p of e.problems) {
      report.push({ file: values.output ?? '(output)', line: 0, text: '', kind: 'untranslated', reason: `does not validate: ${p.path.length > 0 ? formatPath(p.path) : '(top level)'}: ${p.message}` });
    }
    yamlText = renderYaml(result.config, result.comments, header, report);
  }

  const written: string[] = [];
  if (result.key !== undefined) {
    if (existsSync(keyFile) && readFileSync(keyFile, 'utf8') !== result.key) {
      report.push({ file: keyFile, line: 0, text: '', kind: 'untranslated', reason: 'exists with a different key; not overwritten (remove it or pass --key-file)' });
      valid = false;
    } else {
      mkdirSync(dirname(keyFile), { recursive: true });
      writeFileSync(keyFile, result.key, { mode: 0o600 });
      chmodSync(keyFile, 0o600);
      written.push(`${keyFile} (mode 0600)`);
    }
  }
  for (const w of result.wrappers) {
    const p = resolve(outDir, w.path);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, w.content, { mode: 0o755 });
    chmodSync(p, 0o755);
    written.push(p);
  }
  if (values.output !== undefined) {
    mkdirSync(outDir, { recursive: true });
    writeFileSync(outFile, yamlText);
    written.unshift(outFile);
  } else {
    out(yamlText.replace(/\n$/, ''));
  }

  const counts = { untranslated: 0, adjusted: 0, note: 0, error: 0 };
  for (const e of report) counts[e.kind] += 1;
  const partial = values.partial === true;
  const lines = [
    ...formatReport(report),
    `vigil import: ${counts.error} errors, ${counts.untranslated} untranslated, ${counts.adjusted} adjusted, ${counts.note} notes; ${valid ? 'the output validates' : 'the output does NOT validate'}${written.length > 0 ? `; wrote ${written.join(', ')}` : ''}`,
  ];
  if (counts.error > 0) {
    lines.push(
      partial
        ? `vigil import: ${counts.error} errors accepted with --partial: those parts are left out`
        : `vigil import: ${counts.error} errors: the output does not do what the input did; fix them, or rerun with --partial to accept the result without them`,
    );
  }
  if (values.report !== undefined) writeFileSync(values.report, `${lines.join('\n')}\n`);
  else for (const l of lines) err(l);
  return valid && (counts.error === 0 || partial) ? 0 : 1;
}
