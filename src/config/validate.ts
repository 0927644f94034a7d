/**
 * Rules that span sections. They run on the parsed config when the schema passed and on
 * the raw YAML when it did not, so they are written defensively: a field of the wrong
 * type is skipped here (the schema already reported it).
 */
import { isIP } from 'node:net';
import { ecmpProblems } from '../ecmp/config.js';

export interface Problem {
  path: (string | number)[];
  message: string;
}

type Loose = Record<string, unknown>;
const obj = (v: unknown): Loose | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Loose) : undefined);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);

/**
 * An address the way ipvsadm prints it: IPv4 as is, IPv6 lower case and compressed
 * (`2001:db8::10`), so every spelling of one address is one key.
 */
export function canonicalIp(address: string): string {
  if (isIP(address) !== 6) return address;
  try {
    return new URL(`http://[${address}]/`).hostname.slice(1, -1);
  } catch {
    return address.toLowerCase(); // a zone index (fe80::1%eth0) is not URL syntax
  }
}

/**
 * Service identity as ipvsadm knows it: `tcp 10.0.0.1:80`, `udp [2001:db8::1]:53`,
 * `fwmark 7`. IPv6 is written the way ipvsadm prints it (lower case, compressed), and an
 * fwmark service has no protocol in its key because IPVS matches the mark alone.
 */
export function serviceKey(s: { protocol?: unknown; vip?: unknown; port?: unknown; fwmark?: unknown }): string | undefined {
  const fwmark = num(s.fwmark);
  if (fwmark !== undefined) return `fwmark ${fwmark}`;
  const vip = str(s.vip);
  const port = num(s.port);
  if (vip === undefined || port === undefined) return undefined;
  return `${str(s.protocol) ?? 'tcp'} ${isIP(vip) === 6 ? `[${canonicalIp(vip)}]` : vip}:${port}`;
}

export function crossCheck(input: unknown): Problem[] {
  const problems: Problem[] = [];
  const root = obj(input);
  if (!root) return [{ path: [], message: 'the file must hold a mapping (node:, cluster:, vips:, services:, ...)' }];
  const add = (path: Problem['path'], message: string): void => {
    problems.push({ path, message });
  };

  // ---- cluster nodes
  const cluster = obj(root.cluster);
  const nodes = arr(cluster?.nodes);
  const nodeNames = new Map<string, number>();
  const linkAddrs = new Map<string, string>();
  nodes.forEach((n, i) => {
    const node = obj(n);
    const name = str(node?.name);
    if (name === undefined) return;
    if (nodeNames.has(name)) add(['cluster', 'nodes', i, 'name'], `duplicate node name "${name}" (also cluster.nodes[${nodeNames.get(name)}])`);
    else nodeNames.set(name, i);
    const linkNames = new Set<string>();
    arr(node?.links).forEach((l, j) => {
      const ln = str(obj(l)?.name);
      const la = str(obj(l)?.address);
      if (ln !== undefined) {
        if (linkNames.has(ln)) add(['cluster', 'nodes', i, 'links', j, 'name'], `duplicate link "${ln}" on node "${name}"`);
        linkNames.add(ln);
      }
      if (la !== undefined) {
        const prev = linkAddrs.get(la);
        if (prev !== undefined) add(['cluster', 'nodes', i, 'links', j, 'address'], `address ${la} is already used by ${prev}`);
        else linkAddrs.set(la, `cluster.nodes[${i}].links[${j}]`);
      }
    });
  });
  const me = str(root.node);
  if (me !== undefined && cluster && Array.isArray(cluster.nodes) && !nodeNames.has(me)) {
    add(['node'], `"${me}" is not one of cluster.nodes (${[...nodeNames.keys()].join(', ') || 'none'})`);
  }
  if (cluster && nodes.length > 1 && cluster.key_file === undefined) {
    add(['cluster', 'key_file'], 'is required when the cluster has more than one node (heartbeats are authenticated)');
  }

  // ---- VIPs
  const vips = new Map<string, number>();
  arr(root.vips).forEach((v, i) => {
    const a = str(obj(v)?.address);
    if (a === undefined) return;
    if (vips.has(a)) add(['vips', i, 'address'], `duplicate VIP ${a} (also vips[${vips.get(a)}])`);
    else vips.set(a, i);
    const prefix = num(obj(v)?.prefix);
    if (prefix !== undefined && !a.includes(':') && prefix > 32) add(['vips', i, 'prefix'], `${prefix} is not an IPv4 prefix (0-32)`);
  });

  // ---- services
  const dataplane = obj(root.dataplane);
  const mode = typeof root.dataplane === 'string' ? root.dataplane : str(dataplane?.mode);
  const ecmp = str(cluster?.mode) === 'ecmp';
  const names = new Map<string, number>();
  const keys = new Map<string, number>();
  arr(root.services).forEach((s, i) => {
    const svc = obj(s);
    if (!svc) return;
    const name = str(svc.name);
    if (name !== undefined) {
      if (names.has(name)) add(['services', i, 'name'], `duplicate service name "${name}" (also services[${names.get(name)}])`);
      else names.set(name, i);
    }
    const key = serviceKey(svc);
    if (key !== undefined) {
      if (keys.has(key)) add(['services', i], `duplicate virtual service ${key} (also services[${keys.get(key)}])`);
      else keys.set(key, i);
    }
    if (ecmp) {
      // Every director must pick the same real server for a flow the routers move to it:
      // only mh (Maglev hashing) with mh-port does that (see docs/ARCHITECTURE.md,
      // "Connection consistency"). Refused rather than warned: a wrong scheduler breaks
      // every moved connection silently, long after the config was loaded.
      const sched = str(svc.scheduler) ?? 'wlc';
      const flags = arr(svc.scheduler_flags);
      if (sched !== 'mh' || !flags.includes('mh-port')) {
        add(
          ['services', i, sched !== 'mh' ? 'scheduler' : 'scheduler_flags'],
          `cluster.mode ecmp needs scheduler: mh with scheduler_flags: [mh-port] on every service (${name ?? `services[${i}]`} has scheduler ${sched}${flags.length > 0 ? ` with ${flags.join(', ')}` : ''}), so every director picks the same real server for a flow`,
        );
      }
    }
    const vip = str(svc.vip);
    if (vip !== undefined && !vips.has(vip)) add(['services', i, 'vip'], `${vip} is not declared under vips`);
    if (svc.fwmark !== undefined && mode === 'forwarder') {
      add(['services', i, 'fwmark'], 'fwmark services need IPVS; the built-in forwarder matches VIP:port only');
    }
    const seen = new Map<string, number>();
    const svcPort = num(svc.port);
    arr(svc.real_servers).forEach((r, j) => {
      const rs = obj(r);
      const a = str(rs?.address);
      if (a === undefined) return;
      const p = num(rs?.port) ?? svcPort ?? 0;
      const k = `${a}:${p}`;
      if (seen.has(k)) add(['services', i, 'real_servers', j], `duplicate real server ${k} (also real_servers[${seen.get(k)}])`);
      else seen.set(k, j);
    });
  });
  problems.push(...ecmpProblems(root)); // cluster.mode ecmp (src/ecmp/config.ts)
  return problems;
}
