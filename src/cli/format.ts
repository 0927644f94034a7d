/**
 * `vigil status` as text: the cluster first (this node, peers and their links with RTTs,
 * VIPs and who owns them), then the forwarding table the way `ipvsadm -L -n` prints it,
 * with health columns added, then the most recent events. Pure: a StatusDoc and the
 * current time in, lines out.
 */
import { formatEcmp } from '../ecmp/format.js';
import type { RealServerStatus, ServiceStatus, StatusDoc } from '../api/types.js';
import { statusWarnings } from '../api/warnings.js';

const FORWARD: Record<string, string> = { dr: 'Route', tun: 'Tunnel', nat: 'Masq' };

export function hostPort(address: string | null, port: number | null | undefined): string {
  const a = address ?? '*';
  const h = a.includes(':') ? `[${a}]` : a;
  return port === null || port === undefined ? h : `${h}:${port}`;
}

/** Pads columns to the widest cell; numbers (right-aligned) are marked by `num`. */
export function columns(rows: string[][], num: boolean[] = [], gap = 2): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) =>
    r
      .map((c, i) => {
        const last = i === r.length - 1;
        if (num[i]) return c.padStart(widths[i] ?? 0);
        return last ? c : c.padEnd(widths[i] ?? 0);
      })
      .join(' '.repeat(gap))
      .trimEnd(),
  );
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${(ms / 1000).toFixed(s < 10 ? 1 : 0)} s`;
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  return `${m}m ${s % 60}s`;
}

function rtt(ms: number | null): string {
  if (ms === null) return '-';
  return ms < 1 ? `${ms.toFixed(3)} ms` : `${ms.toFixed(1)} ms`;
}

function health(r: RealServerStatus): string {
  if (r.drained) return 'drained';
  return r.healthy ? 'up' : 'DOWN';
}

function serviceLine(s: ServiceStatus): string {
  const where = s.fwmark !== null && s.fwmark !== undefined ? `FWM  ${s.fwmark}` : `${s.protocol.toUpperCase().padEnd(4)} ${hostPort(s.vip, s.port)}`;
  const flags: string[] = [];
  if (s.persistence) flags.push(`persistent ${s.persistence.timeoutS}${s.persistence.netmask ? ` mask ${s.persistence.netmask}` : ''}`);
  if (s.quiescent) flags.push('quiescent');
  if (s.sorryServerActive) flags.push('SORRY-SERVER');
  return `${where} ${s.scheduler}${flags.length ? ` ${flags.join(' ')}` : ''}`;
}

/** `same`, `DIFFERENT 2.1 s` (within the grace), `MISMATCH 5.0 s` (named), or `?` (unknown). */
function tableCell(t: StatusDoc['peers'][number]['table'], nowMs: number): string {
  if (!t || t.match === null) return '?';
  if (t.match) return 'same';
  const age = t.since === null ? '' : ` ${formatDuration(Math.max(0, nowMs - Date.parse(t.since)))}`;
  return `${t.mismatched ? 'MISMATCH' : 'different'}${age} (${t.digest ?? '?'})`;
}

function oneLine(s: string, max = 60): string {
  const first = s.split('\n')[0] ?? '';
  return first.length > max ? `${first.slice(0, max - 1)}…` : first;
}

export function formatStatus(doc: StatusDoc, nowMs: number = Date.now(), historyLines = 5): string[] {
  const out: string[] = [];
  const prio = doc.effectivePriority !== doc.priority ? `priority ${doc.priority} (effective ${doc.effectivePriority})` : `priority ${doc.priority}`;
  out.push(`vigil ${doc.version} on ${doc.node}: ${doc.role.toUpperCase()}, ${prio}, up ${formatDuration(doc.uptimeSeconds * 1000)}${doc.ready ? '' : ', NOT READY'}`);
  // what needs attention, right under the headline (the exit status says the same)
  for (const w of statusWarnings(doc)) out.push(`  ! ${w.message}`);

  // ---- cluster
  out.push('');
  if (doc.peers.length === 0) {
    out.push('Peers: none (a cluster of one)');
  } else {
    out.push('Peers:');
    // cluster.mode ecmp: the peer's table digest against ours (peers[].table)
    const tables = doc.peers.some((p) => p.table !== undefined);
    const rows: string[][] = [['Peer', 'State', 'Role', 'Prio', 'Link', 'Local -> Remote', 'Link', 'RTT', ...(tables ? ['Table'] : [])]];
    for (const p of doc.peers) {
      const links = p.links.length > 0 ? p.links : [null];
      links.forEach((l, i) => {
        rows.push([
          i === 0 ? p.name : '',
          i === 0 ? (p.alive ? 'alive' : 'DEAD') : '',
          i === 0 ? p.role : '',
          i === 0 && p.priority !== null ? String(p.priority) : '',
          l ? l.name : '-',
          l ? `${l.local} -> ${l.remote}` : '',
          l ? (l.up ? 'up' : 'DOWN') : '',
          l ? rtt(l.rttMs) : '',
          ...(tables ? [i === 0 ? tableCell(p.table, nowMs) : ''] : []),
        ]);
      });
    }
    out.push(...columns(rows, [false, false, false, true, false, false, false, true]).map((l) => `  ${l}`));
  }
  out.push('');
  if (doc.vips.length === 0) {
    out.push('VIPs: none');
  } else {
    out.push('VIPs:');
    const rows = [['Address', 'Interface', 'Owner', 'Here']];
    for (const v of doc.vips) rows.push([`${v.address}/${v.prefix}`, v.interface, v.owner ?? 'nobody', v.owned ? 'yes' : 'no']);
    out.push(...columns(rows).map((l) => `  ${l}`));
  }
  if (doc.ecmp) out.push('', ...formatEcmp(doc.ecmp, (rows) => columns(rows), doc.table)); // cluster.mode ecmp (src/ecmp/format.ts)

  // ---- forwarding table, like ipvsadm -L -n
  out.push('');
  if (doc.services.length === 0) {
    out.push('Virtual services: none');
  } else {
    const planes = [...new Set(doc.services.map((s) => s.dataplane))].join(', ');
    out.push(`Virtual services (dataplane ${planes}):`);
    const rsRows: string[][] = [['  -> RemoteAddress:Port', 'Forward', 'Weight', 'ActiveConn', 'InActConn', 'Health', 'Checked', 'Last result']];
    const perService: { line: string; rows: string[][] }[] = [];
    for (const s of doc.services) {
      const rows = s.realServers.map((r) => {
        const c = r.connections;
        const checked = r.lastCheck ? `${formatDuration(Math.max(0, nowMs - Date.parse(r.lastCheck.at)))} ago` : 'never';
        return [
          `  -> ${hostPort(r.address, r.port)}`,
          FORWARD[s.forward] ?? s.forward,
          r.weight === r.configuredWeight ? String(r.weight) : `${r.weight}/${r.configuredWeight}`,
          c ? String(c.active) : '-',
          c ? String(c.inactive) : '-',
          health(r),
          checked,
          r.lastCheck ? oneLine(r.lastCheck.reason || (r.lastCheck.ok ? 'ok' : 'failed')) : '',
        ];
      });
      rsRows.push(...rows);
      const healthy = s.realServers.filter((r) => r.healthy && !r.drained).length;
      perService.push({ line: `${serviceLine(s)}   [${s.name}: ${healthy}/${s.realServers.length} healthy]`, rows });
    }
    const aligned = columns(rsRows, [false, false, true, true, true]);
    out.push('Prot LocalAddress:Port Scheduler Flags');
    out.push(aligned[0] as string);
    let i = 1;
    for (const s of perService) {
      out.push(s.line);
      for (let k = 0; k < s.rows.length; k += 1) out.push(aligned[i++] as string);
    }
  }

  // ---- recent events
  if (historyLines > 0 && doc.history.length > 0) {
    out.push('');
    out.push('Recent events:');
    const rows = doc.history.slice(0, historyLines).map((h) => [h.at.replace('T', ' ').replace(/\.\d+Z$/, 'Z'), h.kind, oneLine(h.message, 100)]);
    out.push(...columns(rows).map((l) => `  ${l}`));
  }
  return out;
}

/** `30s`, `500ms`, `2m`, `1h`, a bare number of seconds → milliseconds; undefined when invalid. */
export function parseDuration(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(s.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const factor = unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000;
  const ms = Math.round(n * factor);
  return Number.isFinite(ms) ? ms : undefined;
}
