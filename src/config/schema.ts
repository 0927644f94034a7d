/**
 * The whole vigil.yaml schema. Names are the YAML names (snake_case) so a path in an
 * error message is the path the operator types. Defaults are filled here; rules that
 * involve more than one field of one object live next to that object (so they are
 * reported even when some other part of the file is broken); rules across sections
 * live in validate.ts.
 */
import { isIP } from 'node:net';
import { z } from 'zod';

export const SCHEDULERS = ['rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'dh', 'sh', 'sed', 'nq', 'mh', 'fo', 'ovf'] as const;
/** ipvsadm -b: the mh scheduler's flags (hash the client's port too; walk past an unavailable real server). */
export const SCHEDULER_FLAGS = ['mh-port', 'mh-fallback'] as const;
export const FORWARD_METHODS = ['dr', 'tun', 'nat'] as const;
export const PROTOCOLS = ['tcp', 'udp'] as const;
export const DATAPLANES = ['auto', 'ipvs', 'forwarder'] as const;
/** The bound on dataplane.forwarder.max_accept (the daemon sends a worker at most this many copies of a socket). */
export const MAX_ACCEPT_MAX = 64;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const name = z
  .string()
  .min(1, 'must not be empty')
  .max(63, 'must be at most 63 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'must start with a letter or digit and use only letters, digits, "_", "." and "-"');

export const ipAddress = z.string().refine((s) => isIP(s) !== 0, { message: 'is not a valid IPv4 or IPv6 address' });
const port = z.number().int('must be an integer').min(1, 'must be between 1 and 65535').max(65535, 'must be between 1 and 65535');
const ms = (min = 1) => z.number().int('must be an integer number of milliseconds').min(min, `must be at least ${min} ms`);
const path = z.string().min(1, 'must not be empty');

/** `host:port`, `[v6]:port` or a bare port (then 127.0.0.1). */
export const listenAddress = z.string().superRefine((s, ctx) => {
  if (parseListen(s) === null) ctx.addIssue({ code: 'custom', message: `"${s}" is not a valid listen address (expected host:port, [ipv6]:port or port)` });
});

export function parseListen(s: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d+)$/.exec(s) ?? (/^(\d+)$/.exec(s) ? [s, undefined, '127.0.0.1', s] : null);
  if (!m) return null;
  const host = (m[1] ?? m[2]) as string;
  const p = Number(m[3]);
  if (!Number.isInteger(p) || p < 0 || p > 65535) return null;
  if (isIP(host) === 0 && host !== 'localhost') return null;
  return { host, port: p };
}

// ---------------------------------------------------------------- health checks

const checkCommon = {
  interval_ms: ms(10).default(2000),
  timeout_ms: ms(1).default(1000),
  rise: z.number().int().min(1).max(100).default(2),
  fall: z.number().int().min(1).max(100).default(2),
  /** State assumed before the first verdict: down until proven up, by default. */
  initial: z.enum(['up', 'down']).default('down'),
  /** Connect/probe port when it differs from the real server's port. */
  port: port.optional(),
};

const tcpCheck = z.strictObject({ type: z.literal('tcp'), ...checkCommon });

const httpCheck = z.strictObject({
  type: z.enum(['http', 'https']),
  ...checkCommon,
  path: z.string().startsWith('/', 'must start with "/"').default('/'),
  host: z.string().min(1).optional(),
  method: z.enum(['GET', 'HEAD']).default('GET'),
  expect_status: z.array(z.number().int().min(100).max(599)).min(1).default([200]),
  body_regex: z
    .string()
    .refine((s) => {
      try {
        new RegExp(s);
        return true;
      } catch {
        return false;
      }
    }, 'is not a valid regular expression')
    .optional(),
  /** https only: accept self-signed certificates (the usual case for a real server's check). */
  insecure: z.boolean().default(true),
});

const execCheck = z.strictObject({
  type: z.literal('exec'),
  ...checkCommon,
  /** A name in the checks directory (`http`, `tcp.monitor`) or an absolute path. */
  command: z
    .string()
    .min(1)
    .refine((s) => s.startsWith('/') || !s.includes('/'), 'must be a name in the checks directory or an absolute path'),
  args: z.array(z.string()).default([]),
  /**
   * vigil: `command [args...] <address> <port>`; mon: `command [args...] <address>` as
   * mon's `monitor x.monitor -p 80` runs `x.monitor -p 80 host`; none: `command [args...]`.
   */
  args_style: z.enum(['vigil', 'mon', 'none']).default('vigil'),
});

function checkTimeoutBelowInterval(c: { timeout_ms: number; interval_ms: number }, ctx: z.RefinementCtx): void {
  if (c.timeout_ms >= c.interval_ms) {
    ctx.addIssue({
      code: 'custom',
      path: ['timeout_ms'],
      message: `timeout_ms (${c.timeout_ms}) must be less than interval_ms (${c.interval_ms}) so a probe never overlaps itself`,
    });
  }
}

export const checkSchema = z
  .discriminatedUnion('type', [tcpCheck, httpCheck, execCheck], {
    error: (iss) =>
      iss.code === 'invalid_union' ? 'type must be one of tcp, http, https, exec' : undefined,
  })
  .superRefine(checkTimeoutBelowInterval);

// ---------------------------------------------------------------- cluster

const link = z.strictObject({
  /** The link's name, the same on every node (`heartbeat`, `lan`). */
  name,
  /** This node's address on that link: the heartbeat socket binds to it, peers send to it. */
  address: ipAddress,
});

const clusterNode = z.strictObject({
  name,
  priority: z.number().int().min(1).max(255).default(100),
  links: z.array(link).min(1, 'a node needs at least one link'),
});

const track = z.discriminatedUnion('type', [
  z
    .strictObject({
      type: z.literal('ping'),
      target: ipAddress,
      /** Subtracted from the priority while the target does not answer. */
      weight: z.number().int().min(1).max(255).default(50),
      interval_ms: ms(100).default(1000),
      timeout_ms: ms(10).default(500),
      rise: z.number().int().min(1).default(2),
      fall: z.number().int().min(1).default(3),
    })
    .superRefine(checkTimeoutBelowInterval),
  z.strictObject({
    type: z.literal('interface'),
    interface: z.string().min(1),
    weight: z.number().int().min(1).max(255).default(50),
    interval_ms: ms(100).default(1000),
  }),
]);

const script = z.strictObject({
  /** Run as `<path> start` on takeover and `<path> stop` on release, like a haresources script. */
  path,
  timeout_ms: ms(100).default(10000),
});

/** The daemon's lease with the cluster process (cluster.lease_ms and its default). */
export function leaseMs(c: { lease_ms?: number | undefined; deadtime_ms: number }): number {
  return c.lease_ms ?? Math.max(c.deadtime_ms, 1000);
}
// ---- ecmp mode (src/ecmp): N active directors announce the VIPs through the local BIRD
export const ecmpSchema = z.strictObject({
  /** BIRD's control socket (`bird -s`), used by `birdc -s`. */
  bird_socket: path.default('/run/bird/bird.ctl'),
  birdc: path.default('birdc'),
  /** The file vigil writes (a static protocol with the announced VIP routes); bird.conf includes it. */
  include_file: path.default('/var/lib/vigil/bird-vips.conf'),
  /** Name of the generated static protocol (IPv6 VIPs: the same name with a `6` suffix). */
  protocol: name.default('vigil_vips'),
  /** Where the VIPs sit, without ARP: `lo` or a dummy interface. */
  vip_interface: z.string().min(1).max(15).default('lo'),
  /** After a withdraw, wait this long for the routers to converge before the dataplane stops. */
  withdraw_wait_ms: ms(0).default(1000),
  /** How often BIRD's BGP and BFD session states are read (status, metrics). */
  poll_interval_ms: ms(100).default(2000),
  birdc_timeout_ms: ms(100).default(5000),
});

export const clusterSchema = z
  .strictObject({
    /** pair: one active director holds the VIPs (ARP); ecmp: every director announces them by BGP. */
    mode: z.enum(['pair', 'ecmp']).default('pair'),
    ecmp: ecmpSchema.prefault({}),
    id: name.default('vigil'),
    port: port.default(694),
    // 50/250: crash failover ≈ 270 ms (bench:failover); 5 missed heartbeats before a peer
    // is dead, over 3× the margin of 20/80, which stays flap-free under the load scenario
    // (docs/ARCHITECTURE.md "Default timers")
    interval_ms: ms(5).default(50),
    deadtime_ms: ms(10).default(250),
    warntime_ms: ms(5).default(150),
    initdead_ms: ms(0).default(2000),
    preempt: z.boolean().default(false),
    /** Shared HMAC key, mode 0600. Required when the cluster has more than one node. */
    key_file: path.optional(),
    /**
     * Where this node keeps its heartbeat incarnation across restarts (Heartbeat's
     * hb_generation), so a restart with the clock stepped back is not refused as a replay.
     */
    state_file: path.optional(),
    nodes: z.array(clusterNode).min(1, 'list at least this node'),
    tracks: z.array(track).default([]),
    /** Resource scripts: start in order on takeover, stop in reverse order on release. */
    resources: z.array(script).default([]),
    /** Called as `<path> <new-role> <old-role> <reason>` on every transition. */
    notify: script.optional(),
    /**
     * The cluster runs in its own process; the daemon renews a lease with it every
     * interval. No renewal for this long (the daemon blocked or hung): this node hands the
     * VIPs to a peer that can serve. Default max(deadtime_ms, 1000); a daemon that exits
     * or is killed is noticed at once, whatever this says.
     */
    lease_ms: ms(10).optional(),
    /**
     * Run the cluster process at realtime priority (SCHED_RR), like Heartbeat's `realtime
     * on` (its default too): measured, only this keeps heartbeats on time on a saturated
     * director (bench:isolation). Without CAP_SYS_NICE it logs a warning and runs at nice -10.
     */
    realtime: z.boolean().default(true),
    /** SCHED_RR priority with `realtime: true` (1-99). */
    realtime_priority: z.number().int().min(1).max(99).default(10),
  })
  .superRefine((c, ctx) => {
    if (c.lease_ms !== undefined && c.lease_ms < 2 * c.interval_ms) {
      ctx.addIssue({
        code: 'custom',
        path: ['lease_ms'],
        message: `lease_ms (${c.lease_ms}) must be at least 2 × interval_ms (${2 * c.interval_ms})`,
      });
    }
    if (c.deadtime_ms < 2 * c.interval_ms) {
      ctx.addIssue({
        code: 'custom',
        path: ['deadtime_ms'],
        message: `deadtime_ms (${c.deadtime_ms}) must be at least 2 × interval_ms (${2 * c.interval_ms})`,
      });
    }
    if (c.warntime_ms < c.interval_ms || c.warntime_ms > c.deadtime_ms) {
      ctx.addIssue({
        code: 'custom',
        path: ['warntime_ms'],
        message: `warntime_ms (${c.warntime_ms}) must be between interval_ms (${c.interval_ms}) and deadtime_ms (${c.deadtime_ms})`,
      });
    }
  });

// ---------------------------------------------------------------- VIPs

const garp = z.strictObject({
  /** Gratuitous ARPs sent at takeover. */
  count: z.number().int().min(0).max(100).default(3),
  interval_ms: ms(10).default(100),
  /** A second burst this long after takeover (switches drop the first); 0 = none. */
  repeat_after_ms: ms(0).default(2000),
  /** Periodic refresh while active; 0 = none. */
  refresh_ms: ms(0).default(0),
});

export const vipSchema = z.strictObject({
  address: ipAddress,
  prefix: z.number().int().min(0).max(128).default(32),
  interface: z.string().min(1).max(15),
  /** `ip addr ... label`; default `<interface>:vigil`. */
  label: z.string().min(1).max(15).optional(),
  garp: garp.prefault({}),
  /**
   * false: the address is configured by something else (a loopback demo, a router);
   * vigil never adds or removes it but still forwards on it.
   */
  managed: z.boolean().default(true),
});

// ---------------------------------------------------------------- services

const realServer = z.strictObject({
  address: ipAddress,
  /** Defaults to the service port (DR and TUN cannot map ports). */
  port: port.optional(),
  weight: z.number().int().min(0).max(65535).default(1),
  check: checkSchema.optional(),
});

const endpoint = z.strictObject({ address: ipAddress, port: port.optional() });

export const serviceSchema = z
  .strictObject({
    name,
    protocol: z.enum(PROTOCOLS).default('tcp'),
    vip: ipAddress.optional(),
    port: port.optional(),
    fwmark: z.number().int().min(1).max(0xffffffff).optional(),
    scheduler: z.enum(SCHEDULERS).default('wlc'),
    /** ipvsadm -b; only for scheduler mh (cluster.mode ecmp requires mh-port). */
    scheduler_flags: z.array(z.enum(SCHEDULER_FLAGS)).default([]),
    persistence: z
      .strictObject({
        timeout_s: z.number().int().min(1).max(31536000).default(300),
        netmask: z.string().optional(),
      })
      .optional(),
    forward: z.enum(FORWARD_METHODS).default('dr'),
    /** Keep a failed real server with weight 0 instead of removing it. */
    quiescent: z.boolean().default(false),
    sorry_server: endpoint.optional(),
    check: checkSchema.optional(),
    real_servers: z.array(realServer).default([]),
  })
  .superRefine((s, ctx) => {
    if (s.fwmark === undefined) {
      if (s.vip === undefined) ctx.addIssue({ code: 'custom', path: ['vip'], message: 'a service needs vip and port, or fwmark' });
      if (s.port === undefined) ctx.addIssue({ code: 'custom', path: ['port'], message: 'a service needs vip and port, or fwmark' });
    } else if (s.port !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['fwmark'], message: 'fwmark and port are exclusive (an fwmark service matches by mark, not by port)' });
    }
    if (s.scheduler_flags.length > 0 && s.scheduler !== 'mh') {
      ctx.addIssue({ code: 'custom', path: ['scheduler_flags'], message: `${s.scheduler_flags.join(', ')} need scheduler mh (this service uses ${s.scheduler})` });
    }
    if (s.persistence?.netmask !== undefined && !isNetmask(s.persistence.netmask)) {
      ctx.addIssue({
        code: 'custom',
        path: ['persistence', 'netmask'],
        message: `"${s.persistence.netmask}" is not a netmask (dotted like 255.255.255.0, or an IPv6 prefix length 1-128)`,
      });
    } else if (s.persistence?.netmask !== undefined) {
      const problem = netmaskFamilyProblem(s.persistence.netmask, serviceFamily(s));
      if (problem) ctx.addIssue({ code: 'custom', path: ['persistence', 'netmask'], message: problem });
    }
    if (s.forward !== 'nat') {
      s.real_servers.forEach((r, i) => {
        const valid = (p: unknown): p is number => Number.isInteger(p) && (p as number) >= 1 && (p as number) <= 65535;
        if (valid(r.port) && valid(s.port) && r.port !== s.port) {
          ctx.addIssue({
            code: 'custom',
            path: ['real_servers', i, 'port'],
            message: `port ${r.port} differs from the service port ${s.port}; only forward: nat can map ports`,
          });
        }
      });
    }
  });

/** 4 or 6 from the VIP, else (fwmark) from the first real server or the sorry server; undefined when unknown. */
function serviceFamily(s: { vip?: string | undefined; real_servers: { address: string }[]; sorry_server?: { address: string } | undefined }): 4 | 6 | undefined {
  const a = s.vip ?? s.real_servers[0]?.address ?? s.sorry_server?.address;
  const f = a === undefined ? 0 : isIP(a);
  return f === 4 || f === 6 ? f : undefined;
}

/**
 * ipvsadm -M takes a dotted mask for an IPv4 service and a prefix length for an IPv6 one;
 * the other form is not refused by ipvsadm but reaches the kernel wrong (IPv4 "24" is the
 * mask 0.0.0.24) or stops an `ipvsadm -R` batch (IPv6 "255.255.255.0").
 */
export function netmaskFamilyProblem(mask: string, family: 4 | 6 | undefined): string | undefined {
  const prefix = /^\d{1,3}$/.test(mask);
  if (family === 4 && prefix) {
    const n = Number(mask);
    const dotted = n <= 32 ? [0, 1, 2, 3].map((i) => (n >= 8 * (i + 1) ? 255 : n > 8 * i ? (256 - 2 ** (8 - (n - 8 * i))) : 0)).join('.') : undefined;
    return `"${mask}" is an IPv6 prefix length but the service is IPv4: write a dotted mask${dotted ? ` (${dotted} for /${n})` : ' like 255.255.255.0'}`;
  }
  if (family === 6 && !prefix) return `"${mask}" is a dotted IPv4 mask but the service is IPv6: write a prefix length 1-128 (e.g. 64)`;
  return undefined;
}

export function isNetmask(s: string): boolean {
  if (/^\d{1,3}$/.test(s)) return Number(s) >= 1 && Number(s) <= 128;
  if (isIP(s) !== 4) return false;
  const n = s.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  const inv = ~n >>> 0;
  return (inv & (inv + 1)) === 0;
}

// ---------------------------------------------------------------- the rest

export const dataplaneSchema = z.preprocess(
  (v) => (typeof v === 'string' ? { mode: v } : v),
  z.strictObject({
    mode: z.enum(DATAPLANES).default('auto'),
    /** Period of the full reconcile that repairs drift. */
    reconcile_interval_ms: ms(100).default(5000),
    ipvs: z
      .strictObject({
        ipvsadm: path.default('ipvsadm'),
        /** IPVS connection sync daemon: master on the active node, backup on the standby. */
        sync_daemon: z.strictObject({ interface: z.string().min(1), sync_id: z.number().int().min(0).max(255).default(0) }).optional(),
      })
      .prefault({}),
    forwarder: z
      .strictObject({
        /** Worker processes accepting on the listening sockets; 0 = one per core. */
        workers: z.number().int().min(0).max(64).default(0),
        connect_timeout_ms: ms(10).default(2000),
        /** Attempts on other real servers after a failed connect. */
        connect_retries: z.number().int().min(0).max(10).default(2),
        tcp_idle_timeout_ms: ms(1000).default(900_000),
        udp_idle_timeout_ms: ms(100).default(300_000),
        /**
         * Connections a worker can accept per event-loop turn (HAProxy's tune.maxaccept):
         * the worker polls this many descriptors of each TCP listening socket.
         */
        max_accept: z.number().int().min(1).max(MAX_ACCEPT_MAX).default(8),
      })
      .prefault({}),
  }),
);

export const apiSchema = z.strictObject({
  listen: listenAddress.default('127.0.0.1:9694'),
  /** Bearer token for POST endpoints; without it mutations are refused. */
  token_file: path.optional(),
});

export const loggingSchema = z.strictObject({
  level: z.enum(LOG_LEVELS).default('info'),
});

export const healthSchema = z.strictObject({
  /** Where exec probes named without a path are found; relative to the config file. */
  checks_dir: path.optional(),
  /** At most this many probes in flight at once. */
  concurrency: z.number().int().min(1).max(10000).default(256),
  /** Grace between TERM and KILL of a timed-out probe's process group. */
  kill_grace_ms: ms(10).default(500),
  /** Bytes of probe output kept (the rest is read and discarded). */
  output_limit_bytes: z.number().int().min(64).max(1 << 20).default(1024),
});

export const configSchema = z.strictObject({
  /** This node's name; must be one of cluster.nodes. `$VIGIL_NODE` overrides. */
  node: name,
  cluster: clusterSchema,
  vips: z.array(vipSchema).default([]),
  services: z.array(serviceSchema).default([]),
  health: healthSchema.prefault({}),
  dataplane: dataplaneSchema.prefault({}),
  api: apiSchema.prefault({}),
  logging: loggingSchema.prefault({}),
});

export type Config = z.output<typeof configSchema>;
export type ClusterConfig = Config['cluster'];
export type EcmpConfig = ClusterConfig['ecmp'];
export type ClusterNodeConfig = ClusterConfig['nodes'][number];
export type TrackConfig = ClusterConfig['tracks'][number];
export type VipConfig = Config['vips'][number];
export type ServiceConfig = Config['services'][number];
export type RealServerConfig = ServiceConfig['real_servers'][number];
export type CheckConfig = z.output<typeof checkSchema>;
export type DataplaneConfig = Config['dataplane'];
export type Scheduler = (typeof SCHEDULERS)[number];
export type SchedulerFlag = (typeof SCHEDULER_FLAGS)[number];
export type ForwardMethod = (typeof FORWARD_METHODS)[number];
export type Protocol = (typeof PROTOCOLS)[number];
