/**
 * pino JSON logs on stdout; the level comes from the config unless `$VIGIL_LOG_LEVEL` is set.
 *
 * Under systemd, stdout is the journal. When `$JOURNAL_STREAM` names our own stdout (its
 * `device:inode`, as sd-daemon(3) says to check), every line starts with a syslog
 * priority `<N>` that journald takes as the entry's priority and strips, so
 * `journalctl -u vigil -p warning` shows warnings and worse.
 */
import { fstatSync } from 'node:fs';
import { pino, type Logger } from 'pino';

export type { Logger };

/** pino level → syslog priority (sd-daemon(3) prefixes): fatal crit, error err, warn warning, info info, debug/trace debug. */
export const SYSLOG_PRIORITY: Record<string, number> = { fatal: 2, error: 3, warn: 4, info: 6, debug: 7, trace: 7 };

/** True when `$JOURNAL_STREAM` is set and matches `fd` (so a redirected stdout gets no prefixes). */
export function stdoutIsJournal(env: NodeJS.ProcessEnv, fd = 1): boolean {
  const js = env.JOURNAL_STREAM;
  if (!js) return false;
  const m = /^(\d+):(\d+)$/.exec(js);
  if (!m) return false;
  try {
    const st = fstatSync(fd, { bigint: true });
    return st.dev === BigInt(m[1] as string) && st.ino === BigInt(m[2] as string);
  } catch {
    return false;
  }
}

/** `{"level":"warn",...}` → `<4>{"level":"warn",...}` (pino writes the level first). */
export function withPriority(line: string): string {
  const m = /^\{"level":"(\w+)"/.exec(line);
  return `<${(m && SYSLOG_PRIORITY[m[1] as string]) ?? 6}>${line}`;
}

export function createLogger(level: string, env: NodeJS.ProcessEnv = process.env, node?: string): Logger {
  return pino({
    level: env.VIGIL_LOG_LEVEL ?? level,
    base: node ? { node } : {},
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    ...(stdoutIsJournal(env) ? { hooks: { streamWrite: withPriority } } : {}),
  });
}

/** Logs at most `perWindow` lines per key and window; the rest are counted and summarised. */
export function rateLimited(log: Logger, windowMs = 10_000, perWindow = 5) {
  const seen = new Map<string, { n: number; since: number }>();
  return (key: string, obj: object, msg: string): void => {
    const now = performance.now();
    let s = seen.get(key);
    if (!s || now - s.since > windowMs) {
      if (s && s.n > perWindow) log.warn({ key, suppressed: s.n - perWindow }, 'suppressed repeated log lines');
      s = { n: 0, since: now };
      seen.set(key, s);
    }
    s.n += 1;
    if (s.n <= perWindow) log.warn(obj, msg);
  };
}
