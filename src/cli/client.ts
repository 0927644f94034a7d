/**
 * The control commands' side of the API: where the local daemon listens, which token to
 * send, and one request function that turns every way of failing into a sentence an
 * operator can act on (daemon not running, wrong token, unknown real server, ...).
 */
import { readFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { ConfigError, loadConfig } from '../config/load.js';
import { parseListen } from '../config/schema.js';
import { VERSION } from '../version.js';

export const DEFAULT_API = 'http://127.0.0.1:9694';

/** Exit statuses of the control commands (documented in `vigil <command> --help`). */
export const EXIT = {
  ok: 0,
  /** The daemon answered with an error (unknown real server, not possible now, ...). */
  refused: 1,
  usage: 2,
  /** Nothing answered at the API address. */
  unreachable: 3,
  /** No token, an unreadable token file, or the daemon refused the token. */
  unauthorized: 4,
  /** drain: the deadline passed with connections left (the weight stays 0). */
  deadline: 5,
  // ---- status: what is wrong, most serious first (like Heartbeat's cl_status, a script
  // can branch on it); when several hold, the lowest of these numbers is the answer
  /** status: no director is active (nobody holds the VIPs). */
  noActive: 6,
  /** status: more than one director is active (split brain). */
  splitBrain: 7,
  /** status: a peer is dead. */
  deadPeer: 8,
  /** status: peers are alive but none could take over (maintenance, priority 0). */
  noStandby: 9,
  /** status: a real server is down, or a service has no healthy real server. */
  realServerDown: 10,
  /** status (cluster.mode ecmp): a peer's forwarding table has differed from this director's for longer than the grace. */
  tableMismatch: 11,
} as const;

/** A failure the CLI reports as one line and an exit status. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export interface ApiTarget {
  /** Base URL without a trailing slash. */
  url: string;
  /** Where the URL came from, for messages. */
  urlSource: string;
  /** The token or, when it could not be read, why not. */
  token: { value: string; source: string } | { error: string } | undefined;
  /** The config file read for api.listen / api.token_file, for messages. */
  configFile?: string;
  /** Why that file gave no settings (unreadable, invalid), when it did not. */
  configProblem?: string;
}

/** vigil's API is plain HTTP on loopback; a TLS URL would only get an OpenSSL dump back. */
function refuseTls(url: string, source: string): void {
  if (/^https:\/\//i.test(url)) {
    throw new CliError(`${source} "${url}" is https://, but vigil's API speaks plain HTTP (it listens on loopback): use http://`, EXIT.usage);
  }
}

/** `127.0.0.1:9694` → `http://127.0.0.1:9694`; a wildcard listen address is reached on loopback. */
export function listenToUrl(listen: string): string | undefined {
  const l = parseListen(listen);
  if (!l) return undefined;
  let host = l.host;
  if (host === '0.0.0.0') host = '127.0.0.1';
  if (host === '::') host = '::1';
  return `http://${host.includes(':') ? `[${host}]` : host}:${l.port}`;
}

/**
 * Reads api.listen and api.token_file from the config. A config that does not validate
 * (the operator is in the middle of an edit) still yields these two fields when they are
 * readable, so `vigil status` keeps working.
 */
export function apiSettingsFromConfig(file: string, env: NodeJS.ProcessEnv): { listen?: string; tokenFile?: string; problem?: string } {
  try {
    const { config } = loadConfig(file, env);
    return { listen: config.api.listen, tokenFile: config.api.token_file };
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    try {
      const raw = parseDocument(readFileSync(file, 'utf8')).toJS() as { api?: { listen?: unknown; token_file?: unknown } } | null;
      const api = raw?.api;
      const listen = typeof api?.listen === 'string' ? api.listen : typeof api?.listen === 'number' ? String(api.listen) : undefined;
      let tokenFile = typeof api?.token_file === 'string' ? api.token_file : undefined;
      if (tokenFile !== undefined && !isAbsolute(tokenFile)) tokenFile = resolve(dirname(resolve(file)), tokenFile);
      return { listen, tokenFile, problem: `${e.problems.length} problem(s) in ${file}` };
    } catch (read) {
      return { problem: `cannot read it: ${(read as NodeJS.ErrnoException).code ?? String(read)}` };
    }
  }
}

export function resolveTarget(opts: { api?: string; config: string; env: NodeJS.ProcessEnv; needToken: boolean }): ApiTarget {
  const { env } = opts;
  let url: string | undefined;
  let urlSource = '--api';
  const readConfig = opts.api === undefined || (opts.needToken && !env.VIGIL_API_TOKEN?.trim());
  const fromConfig = readConfig ? apiSettingsFromConfig(opts.config, env) : {};
  if (opts.api !== undefined) {
    refuseTls(opts.api, '--api');
    url = /^http:\/\//i.test(opts.api) ? opts.api : listenToUrl(opts.api);
    if (url === undefined) throw new CliError(`--api "${opts.api}" is not a URL or host:port`, EXIT.usage);
  } else if (fromConfig.listen !== undefined) {
    url = listenToUrl(fromConfig.listen);
    urlSource = `api.listen in ${opts.config}`;
  }
  if (url === undefined) {
    url = DEFAULT_API;
    urlSource = 'the default';
  }
  let token: ApiTarget['token'];
  if (env.VIGIL_API_TOKEN !== undefined && env.VIGIL_API_TOKEN.trim() !== '') {
    token = { value: env.VIGIL_API_TOKEN.trim(), source: '$VIGIL_API_TOKEN' };
  } else if (fromConfig.tokenFile !== undefined) {
    try {
      const value = readFileSync(fromConfig.tokenFile, 'utf8').trim();
      token = value ? { value, source: fromConfig.tokenFile } : { error: `api.token_file ${fromConfig.tokenFile} is empty` };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? String(e);
      token = {
        error: `cannot read api.token_file ${fromConfig.tokenFile} (${code})${code === 'EACCES' ? ': run as root or set $VIGIL_API_TOKEN' : ''}`,
      };
    }
  }
  return { url: url.replace(/\/+$/, ''), urlSource, token, ...(readConfig ? { configFile: opts.config, configProblem: fromConfig.problem } : {}) };
}

/** Who is asking, for the daemon's audit line: `alice@lvs1`, `root (sudo by alice)@lvs1`. */
export function whoAmI(env: NodeJS.ProcessEnv): string {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    user = env.USER ?? 'unknown';
  }
  const sudo = env.SUDO_USER && env.SUDO_USER !== user ? ` (sudo by ${env.SUDO_USER})` : '';
  return `${user}${sudo}@${hostname()}`;
}

const NET_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connect timed out',
  UND_ERR_SOCKET: 'connection closed',
};

interface ErrorBody {
  error?: { code?: string; message?: string };
}

export interface RequestOptions {
  method: 'GET' | 'POST';
  path: string;
  body?: unknown;
  /** Send the bearer token (control requests). */
  auth?: boolean;
  timeoutMs: number;
  env: NodeJS.ProcessEnv;
}

/** One API request; returns the parsed JSON body of a 2xx answer, throws CliError otherwise. */
export async function request<T>(target: ApiTarget, opts: RequestOptions): Promise<T> {
  const headers: Record<string, string> = { 'user-agent': `vigil-cli/${VERSION}`, accept: 'application/json' };
  if (opts.auth) {
    if (target.token === undefined) {
      const where = target.configFile === undefined ? 'the config' : target.configProblem?.startsWith('cannot read') ? `${target.configFile} (${target.configProblem})` : target.configFile;
      throw new CliError(
        `no API token in ${where}: set api.token_file there, or $VIGIL_API_TOKEN, or name another config with --config (the daemon refuses control requests without a token)`,
        EXIT.unauthorized,
      );
    }
    if ('error' in target.token) throw new CliError(target.token.error, EXIT.unauthorized);
    headers.authorization = `Bearer ${target.token.value}`;
    headers['x-vigil-user'] = whoAmI(opts.env);
  }
  let payload: string | undefined;
  if (opts.method === 'POST') {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(opts.body ?? {});
  }
  let res: Response;
  try {
    res = await fetch(`${target.url}${opts.path}`, { method: opts.method, headers, body: payload, signal: AbortSignal.timeout(opts.timeoutMs) });
  } catch (e) {
    const err = e as Error & { cause?: { code?: string; message?: string } };
    let why: string;
    if (err.name === 'TimeoutError' || err.name === 'AbortError') why = `no answer within ${Math.round(opts.timeoutMs / 1000)} s`;
    else {
      const code = err.cause?.code;
      why = (code && NET_ERRORS[code]) ?? err.cause?.message ?? err.message;
    }
    if (why === 'bad port') {
      // WHATWG fetch refuses a fixed list of ports (6000, 6665-6669, 10080, ...)
      throw new CliError(`cannot talk to ${target.url}: fetch refuses that port ("bad port"); give api.listen another port`, EXIT.usage);
    }
    throw new CliError(`vigil daemon not reachable at ${target.url} (${why}): is it running?`, EXIT.unreachable);
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text.length > 0 ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (res.ok) {
    if (json === undefined) throw new CliError(`${target.url}${opts.path} answered ${res.status} without JSON: is this a vigil daemon?`, EXIT.refused);
    return json as T;
  }
  const apiErr = (json as ErrorBody | undefined)?.error;
  if (res.status === 401) {
    if (apiErr?.code === 'VIGIL_NO_TOKEN') {
      throw new CliError('the daemon has control disabled (401): set api.token_file in its config and reload or restart it', EXIT.unauthorized);
    }
    const source = target.token && 'source' in target.token ? ` (token from ${target.token.source})` : '';
    throw new CliError(`the daemon refused the token (401): check api.token_file / $VIGIL_API_TOKEN${source}`, EXIT.unauthorized);
  }
  if (!apiErr) throw new CliError(`${target.url}${opts.path} answered ${res.status} ${res.statusText}: is this a vigil daemon?`, EXIT.refused);
  throw new CliError(`${apiErr.message ?? 'request failed'} (${res.status} ${apiErr.code ?? 'error'})`, EXIT.refused);
}
