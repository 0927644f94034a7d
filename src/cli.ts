#!/usr/bin/env node
/**
 * `vigil <command>`: the daemon and the operator's tools. Each command lives in its own
 * module and is loaded only when called, so `vigil validate` does not start fastify.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DEFAULT_CONFIG } from './config/load.js';
import { controlCommands } from './cli/commands.js';
import { VERSION } from './version.js';

export interface CommandContext {
  argv: string[];
  env: NodeJS.ProcessEnv;
  out: (line: string) => void;
  err: (line: string) => void;
}

interface Command {
  summary: string;
  usage: string;
  /** Long help: options and what the exit status means. */
  help: string;
  run: (ctx: CommandContext) => Promise<number>;
}

export const defaultConfigPath = (env: NodeJS.ProcessEnv): string => env.VIGIL_CONFIG ?? DEFAULT_CONFIG;

const commands: Record<string, Command> = {
  run: {
    summary: 'run the daemon in the foreground (logs on stdout)',
    usage: 'vigil run [--config FILE]',
    help: `Options:
  -c, --config FILE   config file (default $VIGIL_CONFIG or config/vigil.yaml)
Signals: SIGTERM/SIGINT stop cleanly (within 2 s), SIGHUP reloads the config.
Exit status: 0 after a clean stop, 1 when the config is invalid or start failed.`,
    run: async ({ argv, env, err }) => {
      const { values } = parse(argv, { config: { type: 'string', short: 'c' } });
      const { runDaemon } = await import('./daemon.js');
      const { ConfigError } = await import('./config/load.js');
      try {
        const code = await runDaemon(values.config ?? defaultConfigPath(env), env);
        process.exit(code); // sockets of closed components may linger a tick; the stop is done
      } catch (e) {
        if (e instanceof ConfigError) {
          for (const line of e.message.split('\n').slice(1)) err(line);
          return 1;
        }
        throw e;
      }
    },
  },
  validate: {
    summary: 'check config files; one line per problem',
    usage: 'vigil validate [FILE...]',
    help: `Checks each file (default $VIGIL_CONFIG or config/vigil.yaml) against the schema and
the cross-field rules, and reports every problem as "<file>: <path>: <message>".
Exit status: 0 when every file is valid, 1 otherwise.`,
    run: async ({ argv, env, out, err }) => {
      const { positionals } = parse(argv, {}, true);
      const { loadConfig, ConfigError, formatProblem } = await import('./config/load.js');
      const files = positionals.length > 0 ? positionals : [defaultConfigPath(env)];
      let bad = 0;
      for (const f of files) {
        try {
          loadConfig(f, { ...env, VIGIL_NODE: undefined });
          out(`${f}: ok`);
        } catch (e) {
          if (!(e instanceof ConfigError)) throw e;
          bad += 1;
          for (const p of e.problems) err(formatProblem({ ...p, file: f }));
        }
      }
      return bad === 0 ? 0 : 1;
    },
  },
  import: {
    summary: 'translate ha.cf, haresources, authkeys, mon.cf, ipvsadm -S, ldirectord.cf into vigil.yaml',
    usage: 'vigil import [--ha-cf F] [--haresources F] [--authkeys F] [--mon-cf F] [--ipvsadm-save F] [--ldirectord F] [--node NAME] [--address [NODE:]IFACE=IP]... [--vip-interface IFACE] [--key-file F] [--report F] [-o out.yaml]',
    help: `Writes a vigil config (stdout, or -o FILE) and reports every input line it did not
translate, or translated with a change, and why (stderr, or --report FILE).
  --address [NODE:]IFACE=IP  a node's address on a heartbeat link (repeatable); ha.cf
                             never holds a node's own address
  --vip-interface IFACE      interface for haresources VIPs that name none
  --key-file F               where the authkeys key goes (mode 0600; default vigil.key
                             beside the output)
Exit status: 0 when the output validates, 1 when it does not, 2 on a usage error.
README: "Migrating from Heartbeat + Mon + ipvsadm".`,
    run: async (ctx) => (await import('./import/command.js')).runImport(ctx),
  },
  check: {
    summary: 'run every health probe once and print the verdicts (a dry run)',
    usage: 'vigil check [--config FILE]',
    help: `Runs each real server's probe once, as the daemon would (same timeouts, concurrency
cap and process-group kill), without touching VIPs or the dataplane, and prints a table:
service, real server, probe, verdict, duration, reason. Real servers without a check are
listed as up.
  -c, --config FILE   config file (default $VIGIL_CONFIG or config/vigil.yaml)
Exit status: 0 when every real server is up, 1 when one is down or the config is invalid.`,
    run: async (ctx) => {
      const { values } = parse(ctx.argv, { config: { type: 'string', short: 'c' } });
      const { runCheck } = await import('./health/check-command.js');
      return runCheck(ctx, values.config ?? defaultConfigPath(ctx.env));
    },
  },
  'ecmp-withdraw': {
    summary: 'cluster.mode ecmp: make the local BIRD announce no VIP (for ExecStopPost after a crash)',
    usage: 'vigil ecmp-withdraw [--config FILE]',
    help: `Writes cluster.ecmp.include_file with nothing announced and runs birdc configure, without
the daemon, so a director whose vigil died stops attracting traffic. The daemon does this
itself on a graceful stop; deploy/vigil-ecmp.conf runs it as the unit's ExecStopPost.
  -c, --config FILE   config file (default $VIGIL_CONFIG or config/vigil.yaml)
Exit status: 0 done (or not in ecmp mode), 1 invalid config or BIRD not reachable.`,
    run: async (ctx) => {
      const { values } = parse(ctx.argv, { config: { type: 'string', short: 'c' } });
      const { runEcmpWithdraw } = await import('./ecmp/withdraw-command.js');
      return runEcmpWithdraw(ctx, values.config ?? defaultConfigPath(ctx.env));
    },
  },
  // control commands (src/cli/): status, takeover, standby, maintenance, drain, enable, reload
  ...controlCommands,
};

export class UsageError extends Error {}

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((k) => k.length));
  return [
    `vigil ${VERSION}: high-availability controller for LVS directors`,
    '',
    'Usage: vigil <command> [options]   (vigil <command> --help for more)',
    '',
    ...Object.entries(commands).map(([k, c]) => `  ${k.padEnd(width)}  ${c.summary}`),
  ].join('\n');
}

export async function main(argv: string[], ctx: Omit<CommandContext, 'argv'>): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    ctx.out(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V') {
    ctx.out(VERSION);
    return 0;
  }
  const cmd = commands[name];
  if (!cmd) {
    ctx.err(`vigil: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    ctx.out(`Usage: ${cmd.usage}\n\n${cmd.summary}\n\n${cmd.help}`);
    return 0;
  }
  try {
    return await cmd.run({ argv: rest, ...ctx });
  } catch (e) {
    if (e instanceof UsageError) {
      ctx.err(`vigil ${name}: ${e.message}\nUsage: ${cmd.usage}`);
      return 2;
    }
    ctx.err(`vigil ${name}: ${(e as Error).message}`);
    return 1;
  }
}

const isMain = process.argv[1] !== undefined && /(?:cli\.[jt]s|vigil(?:\.js)?)$/.test(process.argv[1]);
if (isMain) {
  main(process.argv.slice(2), {
    env: process.env,
    out: (l) => process.stdout.write(`${l}\n`),
    err: (l) => process.stderr.write(`${l}\n`),
  }).then(
    (code) => {
      process.exitCode = code;
      // the daemon's own handles keep running until stop(); other commands end here
    },
    (e: unknown) => {
      process.stderr.write(`vigil: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
