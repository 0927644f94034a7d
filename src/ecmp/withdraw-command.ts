/**
 * `vigil ecmp-withdraw`: writes the include file with nothing announced and runs `birdc
 * configure`, without the daemon. For the unit's ExecStopPost (deploy/vigil-ecmp.conf):
 * when vigil dies without its graceful stop (a crash, SIGKILL, OOM), BIRD must not keep
 * announcing VIPs that nothing serves any more (the forwarder's workers die with vigil).
 */
import type { CommandContext } from '../cli/context.js';
import { BirdControl, renderInclude, writeAtomic } from './bird.js';

export async function runEcmpWithdraw(ctx: CommandContext, file: string): Promise<number> {
  const { loadConfig, ConfigError } = await import('../config/load.js');
  let config;
  try {
    config = loadConfig(file, ctx.env).config;
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    for (const line of e.message.split('\n')) ctx.err(line);
    return 1;
  }
  if (config.cluster.mode !== 'ecmp') {
    ctx.out(`${file}: cluster.mode is ${config.cluster.mode}; nothing to withdraw`);
    return 0;
  }
  const e = config.cluster.ecmp;
  writeAtomic(e.include_file, renderInclude(e.protocol, []));
  try {
    await new BirdControl({ socket: e.bird_socket, birdc: e.birdc, timeoutMs: e.birdc_timeout_ms }).configure();
  } catch (err) {
    ctx.err(`wrote ${e.include_file} (nothing announced) but BIRD was not told: ${(err as Error).message}`);
    return 1;
  }
  ctx.out(`withdrew every VIP: ${e.include_file} announces nothing; birdc configure done`);
  return 0;
}
