/**
 * A complete /status document for the API, CLI and status-page tests: a DR pair seen
 * from the active director, one healthy and one failed real server, a drained one.
 */
import type { StatusDoc } from '../../src/api/types.js';

export function sampleStatus(): StatusDoc {
  return {
    node: 'lvs1',
    version: '0.1.0',
    role: 'active',
    priority: 150,
    effectivePriority: 90,
    uptimeSeconds: 3 * 3600 + 12 * 60 + 5,
    ready: true,
    peers: [
      {
        name: 'lvs2',
        alive: true,
        role: 'standby',
        priority: 100,
        links: [
          { name: 'heartbeat', local: '10.255.255.1', remote: '10.255.255.2', up: true, rttMs: 0.213, lastHeardMsAgo: 40 },
          { name: 'lan', local: '172.16.100.2', remote: '172.16.100.3', up: false, rttMs: null, lastHeardMsAgo: 5200 },
        ],
      },
    ],
    vips: [{ address: '172.16.100.100', prefix: 24, interface: 'eth0', owned: true, owner: 'lvs1' }],
    services: [
      {
        name: 'web',
        protocol: 'tcp',
        vip: '172.16.100.100',
        port: 80,
        fwmark: null,
        scheduler: 'wlc',
        forward: 'dr',
        dataplane: 'ipvs',
        persistence: { timeoutS: 300, netmask: null },
        sorryServerActive: false,
        realServers: [
          {
            address: '172.16.100.10',
            port: 80,
            weight: 1,
            configuredWeight: 1,
            healthy: true,
            drained: false,
            lastCheck: { at: '2026-01-01T12:00:00.000Z', ok: true, reason: 'HTTP 200', durationMs: 1.2 },
            connections: { active: 12, inactive: 3, total: 15 },
          },
          {
            address: '172.16.100.11',
            port: 80,
            weight: 0,
            configuredWeight: 2,
            healthy: false,
            drained: false,
            lastCheck: { at: '2026-01-01T11:59:58.000Z', ok: false, reason: 'connect ECONNREFUSED 172.16.100.11:80', durationMs: 0.4 },
            connections: { active: 0, inactive: 0, total: 0 },
          },
          {
            address: '172.16.100.12',
            port: 80,
            weight: 0,
            configuredWeight: 1,
            healthy: true,
            drained: true,
            lastCheck: null,
            connections: null,
          },
        ],
      },
      {
        name: 'dns',
        protocol: 'udp',
        vip: null,
        port: null,
        fwmark: 7,
        scheduler: 'rr',
        forward: 'tun',
        dataplane: 'ipvs',
        sorryServerActive: true,
        realServers: [],
      },
    ],
    history: [
      { at: '2026-01-01T11:59:58.000Z', kind: 'health', message: 'web 172.16.100.11:80 down: connect ECONNREFUSED' },
      { at: '2026-01-01T09:00:00.000Z', kind: 'role', message: 'standby -> active (peer lvs2 released)' },
    ],
  };
}
