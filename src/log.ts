/** pino JSON logs on stdout; the level comes from the config unless `$VIGIL_LOG_LEVEL` is set. */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, env: NodeJS.ProcessEnv = process.env, node?: string): Logger {
  return pino({
    level: env.VIGIL_LOG_LEVEL ?? level,
    base: node ? { node } : {},
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
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
