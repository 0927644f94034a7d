#!/usr/bin/env node
/**
 * `vigil <command>`: the daemon and the operator's tools. Each command lives in its own
 * module and is loaded only when called, so `vigil validate` does not start fastify.
 */
import { controlCommands } from './cli/commands.js';
import { defaultConfigPath, parse, UsageError, type CommandContext } from './cli/context.js';
import { VERSION } from './version.js';

export type { CommandContext };

interface Command {
  summary: string;
  usage: string;
  /** Long help: options and what the exit status means. */
  help: string;
  run: (ctx: CommandContext) => Promise<number>;
}

/** `vigil run` with an invalid config: sysexits' EX_CONFIG, which the unit does not restart on. */
export const EXIT_CONFIG = 78;

const commands: Record<string, Command> = {
  run: {
    summary: 'run the daemon in the foreground (logs on stdout)',
    usage: 'vigil run [--config FILE]',
    help: `Options:
  -c, --config FILE   config file (default $VIGIL_CONFIG or /etc/vigil/vigil.yaml)
Signals: SIGTERM/SIGINT stop cleanly (within 2 s), SIGHUP reloads the config.
Under systemd (Type=notify) it sends READY=1 once started and STOPPING=1 when it stops;
with $JOURNAL_STREAM naming its stdout, each log line carries its syslog priority.
$VIGIL_CLUSTER_START_TIMEOUT_MS: how long the cluster process may take to start
(milliseconds, default 90000; raise it under emulation or on a starved host).
Exit status: 0 after a clean stop, 78 when the config (or that variable) is invalid
(EX_CONFIG: the unit's RestartPreventExitStatus), 1 when start failed otherwise.`,
    run: async ({ argv, env, err }) => {
      const { values } = parse(argv, { config: { type: 'string', short: 'c' } });
      const { runDaemon } = await import('./daemon.js');
      const { ConfigError } = await import('./config/load.js');
      const { stdoutIsJournal } = await import('./log.js');
      const { clusterStartTimeoutMs } = await import('./cluster/supervisor.js');
      try {
        clusterStartTimeoutMs(env); // the environment is part of the config: refused before anything starts
      } catch (e) {
        err(`${stdoutIsJournal(env, 2) ? '<3>' : ''}vigil run: ${(e as Error).message}`);
        return EXIT_CONFIG;
      }
      try {
        const code = await runDaemon(values.config ?? defaultConfigPath(env), env);
        process.exit(code); // sockets of closed components may linger a tick; the stop is done
      } catch (e) {
        if (e instanceof ConfigError) {
          for (const line of e.message.split('\n').slice(1)) err(line);
          return EXIT_CONFIG;
        }
        throw e;
      }
    },
  },
  validate: {
    summary: 'check config files; one line per problem',
    usage: 'vigil validate [--schema-only] [FILE...]',
    help: `Checks each file (default $VIGIL_CONFIG or /etc/vigil/vigil.yaml) against the size limits,
the schema and the cross-field rules, and reports every problem as "<file>: <path>: <message>";
then checks cluster.key_file as \`run\` reads it (exists, readable, mode 0600, not empty).
  --schema-only   skip the key file (checking a config away from its director, in CI)
Exit status: 0 when every file is valid, 1 otherwise.`,
    run: async ({ argv, env, out, err }) => {
      const { positionals, values } = parse(argv, { 'schema-only': { type: 'boolean' } }, true);
      const { loadConfig, ConfigError, formatProblem } = await import('./config/load.js');
      const { checkKeyFile } = await import('./cli/key-file.js');
      const files = positionals.length > 0 ? positionals : [defaultConfigPath(env)];
      let bad = 0;
      for (const f of files) {
        try {
          const { config } = loadConfig(f, { ...env, VIGIL_NODE: undefined });
          // the key file as `run` reads it: exists, readable, mode 0600, not empty
          const keyProblem = config.cluster.key_file && values['schema-only'] !== true ? await checkKeyFile(config.cluster.key_file) : undefined;
          if (keyProblem !== undefined) {
            bad += 1;
            err(`${f}: ${keyProblem}`);
            continue;
          }
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
    usage: 'vigil import [--ha-cf F] [--haresources F] [--authkeys F] [--mon-cf F] [--ipvsadm-save F] [--ldirectord F] [--node NAME] [--address [NODE:]IFACE=IP]... [--vip-interface IFACE] [--key-file F] [--report F] [--partial] [-o out.yaml]',
    help: `Writes a vigil config (stdout, or -o FILE) and reports every input line it did not
translate, or translated with a change, and why (stderr, or --report FILE).
  --address [NODE:]IFACE=IP  a node's address on a heartbeat link (repeatable); ha.cf
                             never holds a node's own address
  --vip-interface IFACE      interface for haresources VIPs that name none
  --key-file F               where the authkeys key goes (mode 0600; default vigil.key
                             beside the output)
  --ipvsadm-save F           ipvsadm -S output, a rules file, or a script of ipvsadm
                             commands (-A/-E/-D/-a/-e/-d/-C), applied in order
  --partial                  exit 0 despite "error" lines (the output then does not do
                             everything the input did; the report says what)
Exit status: 0 when the output validates and no line is an error, 1 otherwise, 2 on a
usage error.
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
  -c, --config FILE   config file (default $VIGIL_CONFIG or /etc/vigil/vigil.yaml)
Exit status: 0 when every real server is up, 1 when one is down or the config is invalid.`,
    run: async (ctx) => {
      const { values } = parse(ctx.argv, { config: { type: 'string', short: 'c' } });
      const { runCheck } = await import('./health/check-command.js');
      return runCheck(ctx, values.config ?? defaultConfigPath(ctx.env));
    },
  },
  cleanup: {
    summary: 'remove the VIPs this config manages from this node (after the daemon died)',
    usage: 'vigil cleanup [--config FILE]',
    help: `Removes every managed VIP of the config that is configured on this node. The unit
runs it as ExecStopPost, so a daemon that died in any way (SIGKILL of every process,
a crash during shutdown) leaves no VIP on a live interface to answer ARP. Never run it
on a director whose daemon is running and active.
  -c, --config FILE   config file (default $VIGIL_CONFIG or config/vigil.yaml)
Exit status: 0 when no managed VIP is left here, 1 when one could not be removed or the
config is invalid.`,
    run: async ({ argv, env, out, err }) => {
      const { values } = parse(argv, { config: { type: 'string', short: 'c' } });
      const { cleanupVips } = await import('./vip/cleanup.js');
      return cleanupVips(values.config ?? defaultConfigPath(env), env, out, err);
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
  // `vigil status | head -1`: the reader went away; that is the reader's choice, not an error
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  // Under systemd stderr is the journal: each line at priority "err" (an sd-daemon(3)
  // prefix), so `journalctl -u vigil -p err` shows why `run` refused a config or why
  // ExecStopPost's `cleanup` could not remove a VIP (see src/log.ts)
  const errPrefix = process.env.JOURNAL_STREAM !== undefined && (await import('./log.js')).stdoutIsJournal(process.env, 2) ? '<3>' : '';
  main(process.argv.slice(2), {
    env: process.env,
    out: (l) => process.stdout.write(`${l}\n`),
    err: (l) => process.stderr.write(`${errPrefix}${l}\n`),
  }).then(
    (code) => {
      process.exitCode = code;
      // the daemon's own handles keep running until stop(); other commands end here
    },
    (e: unknown) => {
      process.stderr.write(`${errPrefix}vigil: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
