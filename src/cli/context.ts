/**
 * What every command module needs from the command line, in a module of its own so the
 * commands (src/cli/, src/import/command.ts, src/health/check-command.ts) never import
 * back from src/cli.ts, which imports them.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DEFAULT_CONFIG } from '../config/load.js';

export interface CommandContext {
  argv: string[];
  env: NodeJS.ProcessEnv;
  out: (line: string) => void;
  err: (line: string) => void;
}

/** A mistake on the command line: main() prints it with the usage line, exit 2. */
export class UsageError extends Error {}

/** `$VIGIL_CONFIG`, else the installed director's `/etc/vigil/vigil.yaml`. */
export const defaultConfigPath = (env: NodeJS.ProcessEnv): string => env.VIGIL_CONFIG || DEFAULT_CONFIG;

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}
