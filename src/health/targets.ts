/**
 * Which probes a config asks for. One target per real server that has a check (its own
 * `check`, else its service's). A real server without any check is not probed and counts
 * as healthy.
 *
 * Identity: service name + address + port + the check definition. A reload that keeps
 * all four keeps the target's health state and schedule; any change starts it afresh.
 */
import { isAbsolute, join } from 'node:path';
import type { CheckConfig, Config } from '../config/schema.js';
import { canonicalIp } from '../config/validate.js';
import { realServerId } from '../reconcile/table.js';

export interface ProbeTarget {
  id: string;
  service: string;
  vip: string | null;
  /** The virtual service's port (null for fwmark services). */
  servicePort: number | null;
  address: string;
  /** The real server's port (its own, else the service's; 0 when neither is set). */
  port: number;
  /** The port the probe connects to: check.port, else the real server's port. */
  checkPort: number;
  check: CheckConfig;
  /** Label for metrics and tables: tcp, http, https, or the exec command's name. */
  probe: string;
}

/** `web 10.0.0.5:80`: the same for every spelling of an IPv6 address. */
export function realServerKey(service: string, address: string, port: number): string {
  return `${service} ${realServerId(canonicalIp(address), port)}`;
}

export function probeLabel(check: CheckConfig): string {
  if (check.type !== 'exec') return check.type;
  const parts = check.command.split('/');
  return `exec:${parts[parts.length - 1] ?? check.command}`;
}

export function targetsFromConfig(config: Config): ProbeTarget[] {
  const out: ProbeTarget[] = [];
  for (const s of config.services) {
    for (const rs of s.real_servers) {
      const check = rs.check ?? s.check;
      if (!check) continue;
      const port = rs.port ?? s.port ?? 0;
      out.push({
        id: `${realServerKey(s.name, rs.address, port)} ${JSON.stringify(check)}`,
        service: s.name,
        vip: s.vip ?? null,
        servicePort: s.port ?? null,
        address: rs.address,
        port,
        checkPort: check.port ?? port,
        check,
        probe: probeLabel(check),
      });
    }
  }
  return out;
}

/** Absolute path of an exec check's command. */
export function resolveCommand(command: string, checksDir: string): string {
  return isAbsolute(command) ? command : join(checksDir, command);
}

/** The argument vector for an exec check, by its args_style. */
export function execArgs(t: ProbeTarget): string[] {
  if (t.check.type !== 'exec') return [];
  switch (t.check.args_style) {
    case 'vigil':
      return [...t.check.args, t.address, String(t.checkPort)];
    case 'mon':
      return [...t.check.args, t.address];
    case 'none':
      return [...t.check.args];
  }
}

/** The VIGIL_* environment an exec probe gets. */
export function execEnv(t: ProbeTarget): Record<string, string> {
  return {
    VIGIL_SERVICE: t.service,
    VIGIL_VIP: t.vip ?? '',
    VIGIL_PORT: t.servicePort === null ? '' : String(t.servicePort),
    VIGIL_REAL_SERVER: t.address,
    VIGIL_REAL_PORT: String(t.checkPort),
    VIGIL_TIMEOUT_MS: String(t.check.timeout_ms),
  };
}
