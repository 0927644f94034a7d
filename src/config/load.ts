/**
 * Loading a config: YAML → schema (defaults filled) → cross-section rules → paths made
 * absolute. Every problem is reported at once, each as `<file>: <path>: <message>`
 * with the YAML line where it can be found.
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineCounter, isNode, type Document } from 'yaml';
import { z } from 'zod';
import { configSchema, type Config } from './schema.js';
import { crossCheck, type Problem } from './validate.js';
import { checkCounts, checkExpandedSize, checkTextSize, LimitExceeded, parseYamlBounded, readConfigFile } from './limits.js';

/** The folder vigil is installed in (holds checks/ and config/). */
export const INSTALL_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Where an installed director keeps its config (the checkout's demo is config/vigil.yaml). */
export const DEFAULT_CONFIG = '/etc/vigil/vigil.yaml';
export const DEFAULT_CHECKS_DIR = resolve(INSTALL_DIR, 'checks');

export interface LoadedConfig {
  config: Config;
  /** Absolute path of the file it came from. */
  file: string;
}

export class ConfigError extends Error {
  readonly code = 'VIGIL_CONFIG_INVALID';
  constructor(
    readonly file: string,
    readonly problems: ConfigProblem[],
  ) {
    super(`${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${problems.map(formatProblem).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export interface ConfigProblem extends Problem {
  file: string;
  line?: number;
}

export function formatProblem(p: ConfigProblem): string {
  const where = p.path.length > 0 ? formatPath(p.path) : '(top level)';
  return `${p.file}: ${where}: ${p.message}${p.line !== undefined ? ` (line ${p.line})` : ''}`;
}

/** `['services', 1, 'real_servers', 0, 'port']` → `services[1].real_servers[0].port`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const k of path) {
    if (typeof k === 'number') out += `[${k}]`;
    else out += out === '' ? String(k) : `.${String(k)}`;
  }
  return out;
}

/** Reads and validates a config file; throws ConfigError listing every problem. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const abs = resolve(file);
  let text: string;
  try {
    text = readConfigFile(abs); // refuses an oversized file before reading it (limits.ts)
  } catch (err) {
    if (err instanceof LimitExceeded) throw new ConfigError(abs, [{ ...err.problem, file: abs }]);
    throw new ConfigError(abs, [{ file: abs, path: [], message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }]);
  }
  return parseConfig(text, abs, env);
}

export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const lines = new LineCounter();
  let doc: Document.Parsed;
  try {
    // size, YAML nodes and nesting are bounded before the whole document exists (limits.ts)
    checkTextSize(text);
    doc = parseYamlBounded(text, lines);
  } catch (err) {
    if (err instanceof LimitExceeded) throw new ConfigError(file, [{ ...err.problem, file }]);
    throw err;
  }
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => ({
        file,
        path: [],
        message: `YAML: ${e.message.split('\n')[0]}`,
        line: lines.linePos(e.pos[0]).line,
      })),
    );
  }
  try {
    checkExpandedSize(doc);
  } catch (err) {
    if (err instanceof LimitExceeded) throw new ConfigError(file, [{ ...err.problem, file }]);
    throw err;
  }
  // aliases are bounded by checkExpandedSize (yaml's own maxAliasCount would refuse a
  // shared anchor referenced from more than 100 services)
  const raw: unknown = doc.toJS({ maxAliasCount: -1 }) ?? {};
  const tooMany = checkCounts(raw);
  if (tooMany.length > 0) throw new ConfigError(file, tooMany.map((p) => ({ ...p, file, line: lineOf(doc, lines, p.path) })));
  if (env.VIGIL_NODE && typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
    (raw as Record<string, unknown>).node = env.VIGIL_NODE;
  }
  const parsed = configSchema.safeParse(raw);
  const problems: Problem[] = parsed.success ? [] : parsed.error.issues.flatMap(issueToProblems);
  // Cross-section rules run on whatever parsed, so one broken field does not hide them.
  problems.push(...crossCheck(parsed.success ? parsed.data : raw));
  if (problems.length > 0) {
    const located = dedupe(problems).map((p) => ({ ...p, file, line: lineOf(doc, lines, p.path) }));
    // in file order, so the list reads top to bottom like the file
    located.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    throw new ConfigError(file, located);
  }
  const config = parsed.data as Config;
  resolvePaths(config, dirname(file));
  return { config, file };
}

function issueToProblems(issue: z.core.$ZodIssue): Problem[] {
  const path = issue.path.filter((k): k is string | number => typeof k !== 'symbol');
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => ({ path: [...path, k], message: `unknown key "${k}"${suggest(k)}` }));
  }
  if (issue.code === 'invalid_type' && issue.message.includes('received undefined')) {
    return [{ path, message: 'is required' }];
  }
  if (issue.code === 'invalid_value' && 'values' in issue) {
    return [{ path, message: `must be one of ${issue.values.map(String).join(', ')}` }];
  }
  if (issue.code === 'invalid_union' && issue.errors.length > 0) {
    // discriminated union with a valid discriminator reports the branch's own issues
    const inner = issue.errors.flat();
    if (inner.length > 0) return inner.flatMap((i) => issueToProblems({ ...i, path: [...path, ...i.path] } as z.core.$ZodIssue));
  }
  return [{ path, message: issue.message.replace(/^Invalid input: /, '') }];
}

const KNOWN_KEYS = [
  'node', 'cluster', 'vips', 'services', 'health', 'dataplane', 'api', 'logging', 'id', 'port', 'interval_ms', 'deadtime_ms',
  'warntime_ms', 'initdead_ms', 'preempt', 'key_file', 'state_file', 'nodes', 'tracks', 'resources', 'notify', 'name', 'priority', 'links',
  'address', 'prefix', 'interface', 'label', 'garp', 'count', 'repeat_after_ms', 'refresh_ms', 'managed', 'protocol', 'vip',
  'fwmark', 'scheduler', 'persistence', 'timeout_s', 'netmask', 'forward', 'quiescent', 'sorry_server', 'check', 'real_servers',
  'weight', 'type', 'timeout_ms', 'rise', 'fall', 'initial', 'path', 'host', 'method', 'expect_status', 'body_regex', 'insecure',
  'command', 'args', 'args_style', 'target', 'mode', 'reconcile_interval_ms', 'ipvs', 'forwarder', 'ipvsadm', 'sync_daemon',
  'sync_id', 'workers', 'connect_timeout_ms', 'connect_retries', 'tcp_idle_timeout_ms', 'udp_idle_timeout_ms', 'max_accept', 'listen',
  'token_file', 'level', 'checks_dir', 'concurrency', 'kill_grace_ms', 'output_limit_bytes',
];

function suggest(key: string): string {
  let best: string | undefined;
  let bestD = 3;
  for (const k of KNOWN_KEYS) {
    const d = editDistance(key.toLowerCase(), k);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best ? ` (did you mean "${best}"?)` : '';
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0] as number;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j] as number;
      dp[j] = Math.min((dp[j] as number) + 1, (dp[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length] as number;
}

function dedupe(problems: Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const k = `${formatPath(p.path)}\0${p.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** The line of the deepest YAML node on the path that exists. */
function lineOf(doc: Document, lines: LineCounter, path: readonly (string | number)[]): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    if (isNode(node) && node.range) return lines.linePos(node.range[0]).line;
    if (n === path.length && n > 0) {
      // an unknown key: find the key's own position in its parent map
      const parent = n === 1 ? doc.contents : doc.getIn(path.slice(0, n - 1), true);
      const key = path[n - 1];
      if (parent && typeof parent === 'object' && 'items' in parent && Array.isArray(parent.items)) {
        for (const item of parent.items as { key?: { value?: unknown; range?: [number, number, number] } }[]) {
          const k = item.key;
          if (k && k.value === key && k.range) return lines.linePos(k.range[0]).line;
        }
      }
    }
  }
  return undefined;
}

function resolvePaths(config: Config, dir: string): void {
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(dir, p));
  if (config.cluster.key_file) config.cluster.key_file = abs(config.cluster.key_file);
  if (config.cluster.state_file) config.cluster.state_file = abs(config.cluster.state_file);
  for (const r of config.cluster.resources) r.path = abs(r.path);
  if (config.cluster.notify) config.cluster.notify.path = abs(config.cluster.notify.path);
  if (config.api.token_file) config.api.token_file = abs(config.api.token_file);
  config.health.checks_dir = config.health.checks_dir ? abs(config.health.checks_dir) : DEFAULT_CHECKS_DIR;
}
