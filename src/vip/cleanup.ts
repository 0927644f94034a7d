/**
 * `vigil cleanup`: removes the managed VIPs of a config from this node. The unit runs it
 * after the daemon stopped or died (ExecStopPost), the last line of defence behind the
 * cluster process releasing on its own and the daemon removing the VIPs of a cluster
 * process that died: a stale VIP on a live interface answers ARP for the peer's traffic.
 */
import { ConfigError, loadConfig } from '../config/load.js';
import { vipSpec } from './manager.js';
import { IpVipPort, type VipPort } from './port.js';

export async function cleanupVips(file: string, env: NodeJS.ProcessEnv, out: (l: string) => void, err: (l: string) => void, port: VipPort = new IpVipPort()): Promise<number> {
  let vips;
  try {
    vips = loadConfig(file, env).config.vips;
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    for (const line of e.message.split('\n')) err(line);
    return 1;
  }
  let failed = 0;
  let removed = 0;
  for (const v of vips) {
    if (!v.managed) continue;
    const spec = vipSpec(v);
    try {
      if (!(await port.has(spec))) continue;
      await port.del(spec);
      removed += 1;
      out(`removed ${v.address}/${v.prefix} from ${v.interface}`);
    } catch (e) {
      failed += 1;
      err(`cannot remove ${v.address}/${v.prefix} from ${v.interface}: ${(e as Error).message}`);
    }
  }
  if (removed === 0 && failed === 0) out('no VIP of this config is configured here');
  return failed === 0 ? 0 : 1;
}
