/**
 * ipvsadm table commands → vigil services, applied in order as the kernel would (found
 * with the real ipvsadm in the IPVS VM, test/e2e/import-ipvs-vm.test.ts):
 *
 * - `-A` adds a service (one that exists: "Service already exists"); `-s` absent is wlc;
 *   `-M` without `-p` is ignored.
 * - `-E` replaces the service's scheduler, persistence and netmask; what it does not give
 *   goes back to the default (wlc, no persistence). A missing service: "No such service".
 * - `-D` removes a service with its real servers.
 * - `-a` adds a real server: no port means the service port; `-g`/`-i` force the service
 *   port (not for fwmark services, which keep the port as given). A real server already
 *   there (same address and resulting port): "Destination already exists".
 * - `-e` replaces the real server's method and weight (defaults -g and 1), found by the
 *   port `-a` would give it; `-d` finds it by the port as written (or the service port).
 * - `-C` removes everything.
 *
 * Whatever the kernel would refuse is an error line (the script would have failed
 * there). The resulting table becomes services; a service whose real servers use more
 * than one forwarding method cannot be said in vigil (forward is per service): error.
 */
import { SCHEDULERS } from '../config/schema.js';
import { splitHostPort, type IpvsCommand } from './ipvsadm.js';
import type { Ledger, SourceLine } from './ledger.js';
import { keyOf, resolveService, type Obj, type RealServer, type Service, type ServiceState } from './model.js';
import type { Resolver } from './resolve.js';

interface KReal {
  address: string;
  port: number;
  forward: 'dr' | 'tun' | 'nat';
  weight: number;
  src: SourceLine;
}

interface KService {
  key: string;
  protocol?: 'tcp' | 'udp';
  vip?: string;
  port: number;
  fwmark?: number;
  ipv6: boolean;
  scheduler: string;
  persistent?: number;
  netmask?: string;
  reals: KReal[];
  /** The -A line and every later line that changed it. */
  src: SourceLine;
  edits: SourceLine[];
}

export async function ipvsadmServices(
  cmds: IpvsCommand[],
  states: ServiceState[],
  byKey: Map<string, ServiceState>,
  resolver: Resolver,
  ledger: Ledger,
): Promise<void> {
  const table = new Map<string, KService>();
  for (const c of cmds) {
    for (const r of c.refused) ledger.error(c.src, `${r.option}: ${r.reason}`);
    if (c.op === 'C') {
      table.clear();
      ledger.adjust(c.src, 'removes the services defined above it, as the kernel would; vigil itself never clears services it does not declare');
      continue;
    }
    const ref = c.service as NonNullable<IpvsCommand['service']>;
    if (ref.proto === 'sctp') {
      ledger.error(c.src, 'SCTP virtual services are not supported by vigil (tcp, udp, fwmark)');
      continue;
    }
    const resolved = await resolveService(ref.proto, ref.target, resolver, c.ipv6);
    if (typeof resolved === 'string') {
      ledger.error(c.src, resolved);
      continue;
    }
    const key = keyOf(ref.proto === 'fwmark' ? 'tcp' : ref.proto, resolved.vip, resolved.port, resolved.fwmark);
    const svc = table.get(key);
    const fail = (why: string): void => ledger.error(c.src, `${why}: the kernel refuses this command`);
    const serviceSettings = (s: KService): boolean => {
      const sched = c.scheduler ?? 'wlc';
      if (!(SCHEDULERS as readonly string[]).includes(sched)) {
        fail(`scheduler "${sched}" does not exist (${SCHEDULERS.join(', ')})`);
        return false;
      }
      if (c.persistent !== undefined && !(c.persistent >= 1)) {
        fail(`persistence timeout ${c.persistent} is not valid`);
        return false;
      }
      s.scheduler = sched;
      delete s.persistent;
      delete s.netmask;
      if (c.persistent !== undefined) {
        s.persistent = c.persistent;
        if (c.netmask !== undefined) s.netmask = c.netmask;
      } else if (c.netmask !== undefined) ledger.adjust(c.src, `-M ${c.netmask} without -p: the kernel ignores it, and so does vigil`);
      return true;
    };
    switch (c.op) {
      case 'A': {
        if (svc) {
          fail(`the service is already defined on ${svc.src.file}:${svc.src.line} ("Service already exists")`);
          break;
        }
        if (byKey.has(key)) {
          ledger.error(c.src, `the same virtual service is defined in ${byKey.get(key)?.origin ?? ''}; vigil cannot merge the two`);
          break;
        }
        const s: KService = { key, port: resolved.port ?? 0, ipv6: c.ipv6, scheduler: 'wlc', reals: [], src: c.src, edits: [] };
        if (resolved.fwmark !== undefined) s.fwmark = resolved.fwmark;
        else {
          s.protocol = ref.proto === 'udp' ? 'udp' : 'tcp';
          s.vip = resolved.vip;
        }
        if (!serviceSettings(s)) break;
        table.set(key, s);
        ledger.ok(c.src);
        break;
      }
      case 'E':
        if (!svc) fail('no such service ("No such service")');
        else if (serviceSettings(svc)) {
          svc.edits.push(c.src);
          ledger.ok(c.src);
        }
        break;
      case 'D':
        if (!svc) fail('no such service ("No such service")');
        else {
          table.delete(key);
          ledger.ok(c.src);
        }
        break;
      case 'a':
      case 'e':
      case 'd': {
        if (!svc) {
          fail(c.op === 'a' ? 'the service is not defined ("Service not defined")' : 'no such service ("No such service")');
          break;
        }
        const hp = splitHostPort(c.real as string);
        const address = await resolver.host(hp.host, svc.ipv6 ? 6 : undefined);
        if (address === undefined) {
          ledger.error(c.src, `cannot resolve "${hp.host}"`);
          break;
        }
        const given = hp.port !== undefined ? resolver.service(hp.port, svc.protocol ?? 'tcp') : undefined;
        if (hp.port !== undefined && given === undefined) {
          ledger.error(c.src, `unknown port "${hp.port}" (not a number, not in /etc/services)`);
          break;
        }
        // the port the kernel stores (-d looks the real server up by the port as written)
        const port = c.op !== 'd' && svc.fwmark === undefined && c.forward !== 'nat' ? svc.port : given ?? svc.port;
        const i = svc.reals.findIndex((r) => r.address === address && r.port === port);
        if (c.op === 'a') {
          if (i >= 0) {
            fail(`real server ${address}:${port} is already in this service ("Destination already exists")`);
            break;
          }
          svc.reals.push({ address, port, forward: c.forward, weight: c.weight, src: c.src });
          if (given !== undefined && given !== port) ledger.adjust(c.src, `port ${given} becomes the service port ${port}: direct routing and tunnelling cannot map ports (the kernel does the same)`);
          else ledger.ok(c.src);
        } else if (i < 0) {
          fail(`real server ${address}:${port} is not in this service ("No such destination")`);
        } else if (c.op === 'e') {
          const r = svc.reals[i] as KReal;
          r.forward = c.forward;
          r.weight = c.weight;
          ledger.ok(c.src);
        } else {
          svc.reals.splice(i, 1);
          ledger.ok(c.src);
        }
        break;
      }
    }
  }

  for (const s of table.values()) {
    const svc: Service = { name: '', scheduler: s.scheduler, forward: s.reals[0]?.forward ?? 'dr', real_servers: [] };
    if (s.fwmark !== undefined) svc.fwmark = s.fwmark;
    else {
      svc.protocol = s.protocol ?? 'tcp';
      svc.vip = s.vip;
      svc.port = s.port;
    }
    if (s.persistent !== undefined) {
      const p: Obj = { timeout_s: s.persistent };
      if (s.netmask !== undefined) p.netmask = s.netmask;
      svc.persistence = p;
    }
    const methods = [...new Set(s.reals.map((r) => r.forward))];
    if (methods.length > 1) {
      for (const r of s.reals.filter((x) => x.forward !== svc.forward)) {
        ledger.error(r.src, `real server ${r.address} is forwarded by ${r.forward} but ${s.reals[0]?.address ?? ''} by ${svc.forward}: vigil sets one forwarding method per service, so it would be forwarded by ${svc.forward}`);
      }
    }
    for (const r of s.reals) {
      const rs: RealServer = { address: r.address, weight: r.weight };
      if (r.port !== s.port) rs.port = r.port; // fwmark: the service port is 0
      svc.real_servers.push(rs);
    }
    const origin = s.edits.length > 0 ? `${s.src.file}:${s.src.line} (edited on line ${s.edits.map((e) => e.line).join(', ')})` : `${s.src.file}:${s.src.line}`;
    const st: ServiceState = { svc, src: s.src, candidates: new Map(), origin, ipv6: s.ipv6 };
    states.push(st);
    byKey.set(s.key, st);
  }
}
