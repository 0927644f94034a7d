/**
 * Cross-section rules of cluster.mode ecmp (called from config/validate.ts crossCheck, on
 * the parsed config or the raw YAML, so written defensively like the rules there).
 *
 * - A VIP in ecmp mode sits on cluster.ecmp.vip_interface (lo or a dummy) on every
 *   director; a VIP naming another interface would be a silent guess, so it is refused.
 * - The announcer writes cluster.ecmp.include_file; it must be an absolute path.
 * - A VIP prefix other than the host route (/32, /128) is refused: each director
 *   announces exactly the VIP's host route.
 */
import type { Problem } from '../config/validate.js';

type Loose = Record<string, unknown>;
const obj = (v: unknown): Loose | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Loose) : undefined);

export function ecmpProblems(root: Loose): Problem[] {
  const cluster = obj(root.cluster);
  if (cluster?.mode !== 'ecmp') return [];
  const problems: Problem[] = [];
  const ecmp = obj(cluster.ecmp);
  const vipIf = typeof ecmp?.vip_interface === 'string' ? ecmp.vip_interface : 'lo';
  const include = ecmp?.include_file;
  if (typeof include === 'string' && !include.startsWith('/')) {
    problems.push({ path: ['cluster', 'ecmp', 'include_file'], message: `"${include}" must be an absolute path (BIRD's include resolves relative paths against its own working directory)` });
  }
  const vips = Array.isArray(root.vips) ? root.vips : [];
  vips.forEach((v, i) => {
    const vip = obj(v);
    if (!vip) return;
    if (typeof vip.interface === 'string' && vip.interface !== vipIf) {
      problems.push({
        path: ['vips', i, 'interface'],
        message: `is "${vip.interface}", but in cluster.mode ecmp every VIP sits on cluster.ecmp.vip_interface ("${vipIf}", without ARP); set it to "${vipIf}"`,
      });
    }
    const address = typeof vip.address === 'string' ? vip.address : '';
    const host = address.includes(':') ? 128 : 32;
    if (typeof vip.prefix === 'number' && vip.prefix !== host) {
      problems.push({ path: ['vips', i, 'prefix'], message: `is ${vip.prefix}, but in cluster.mode ecmp a VIP is announced as a host route: use ${host}` });
    }
  });
  return problems;
}
