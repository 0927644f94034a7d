/**
 * The HTTP API (fastify). Reads: / (the status page), /healthz, /readyz, /metrics,
 * /status. Control: POST /v1/... with a bearer token (constant-time compare), checked
 * before the body is even parsed. Errors are JSON `{ error: { code, message } }` with
 * 400/401/404/409/500; the codes are listed in docs/api.md.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import { isIP } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { VigilError } from '../errors.js';
import { STATUS_PAGE } from './page.js';
import type { Control, StatusDoc } from './types.js';

export interface ApiDeps {
  logger: Logger;
  metrics: Metrics;
  status: () => StatusDoc;
  ready: () => boolean;
  /** Loop liveness: false when the daemon's loops stopped ticking. */
  healthy: () => boolean;
  control: Control;
  /** Returns the current token (re-read on reload); undefined = mutations refused. */
  token: () => string | undefined;
  /** Extra routes (status page, ...) registered by other modules. */
  plugins?: ((app: FastifyInstance) => void | Promise<void>)[];
  /** More exposition text appended to /metrics (the cluster process's families). */
  extraMetrics?: () => Promise<string>;
}

const serviceParams = {
  type: 'object',
  required: ['service', 'addr'],
  properties: {
    service: { type: 'string', minLength: 1, maxLength: 63 },
    addr: { type: 'string', minLength: 1, maxLength: 64 },
  },
} as const;

/** `10.0.0.1:80`, `[2001:db8::1]:80`, `10.0.0.1` or `2001:db8::1` → address and port. */
export function splitAddr(addr: string): { address: string; port: number | undefined } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(addr);
  if (v6) return { address: v6[1] as string, port: v6[2] ? Number(v6[2]) : undefined };
  const parts = addr.split(':');
  if (parts.length === 2) return { address: parts[0] as string, port: Number(parts[1]) };
  return { address: addr, port: undefined };
}

/** splitAddr, refusing what is not an IP address with an optional port 1-65535 (400). */
export function parseRealServerAddr(addr: string): { address: string; port: number | undefined } {
  const r = splitAddr(addr);
  if (isIP(r.address) === 0) {
    throw new VigilError('VIGIL_BAD_REQUEST', `"${addr}" is not a real server address (expected address:port, [ipv6]:port or address)`, 400);
  }
  if (r.port !== undefined && !(Number.isInteger(r.port) && r.port >= 1 && r.port <= 65535)) {
    throw new VigilError('VIGIL_BAD_REQUEST', `"${addr}": the port must be an integer between 1 and 65535`, 400);
  }
  return r;
}

/** Stable codes for errors that fastify raises itself (body parsing, limits). */
const HTTP_CODES: Record<number, string> = {
  400: 'VIGIL_BAD_REQUEST',
  401: 'VIGIL_UNAUTHORIZED',
  404: 'VIGIL_NOT_FOUND',
  405: 'VIGIL_METHOD_NOT_ALLOWED',
  409: 'VIGIL_CONFLICT',
  413: 'VIGIL_BODY_TOO_LARGE',
  415: 'VIGIL_UNSUPPORTED_MEDIA_TYPE',
};

/** One line naming the field and what is wrong with it, e.g. `body.evil: unknown field`. */
export function describeSchemaErrors(errors: readonly { instancePath: string; keyword: string; message?: string; params: Record<string, unknown> }[], dataVar: string): string {
  return errors
    .map((e) => {
      const at = `${dataVar}${e.instancePath.replace(/\//g, '.')}`;
      if (e.keyword === 'additionalProperties') return `${at}.${String(e.params.additionalProperty)}: unknown field`;
      if (e.keyword === 'required') return `${at}.${String(e.params.missingProperty)}: required`;
      if (e.keyword === 'type') return `${at}: must be ${String(e.params.type).replace(',', ' or ')}`;
      return `${at}: ${e.message ?? e.keyword}`;
    })
    .join('; ');
}

/** Bodies of the requests that take no parameters: absent, or `{}`. */
const emptyBody = { type: ['object', 'null'], additionalProperties: false, properties: {} } as const;

function tokenMatches(given: string, expected: string): boolean {
  // hash both so the compare is constant-time whatever the lengths
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

export async function createApi(deps: ApiDeps): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    bodyLimit: 64 * 1024,
    // Node refuses request heads over 16 KiB, so no parameter reaches the router longer
    // than this: every parameter is matched, the token checked, then the schema's
    // maxLength answers a standard 400 (fastify's own 414 body would come before auth)
    routerOptions: { maxParamLength: 16 * 1024 },
    // no coercion ("true" is not true, null is not false), no silent removal of unknown
    // fields: the body is taken as sent or refused with a message naming the field
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false } },
    schemaErrorFormatter: (errors, dataVar) => new Error(describeSchemaErrors(errors, dataVar)),
    frameworkErrors: (err, _req, reply) => {
      const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400;
      void (reply as FastifyReply).code(status).send({ error: { code: HTTP_CODES[status] ?? 'VIGIL_BAD_REQUEST', message: err.message } });
    },
  });
  const { logger, metrics, control } = deps;

  app.addHook('onResponse', async (req, reply) => {
    metrics.apiRequests.inc({ route: req.routeOptions.url ?? 'unknown', method: req.method, status: String(reply.statusCode) });
  });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string; validation?: unknown }, req, reply) => {
    if (err instanceof VigilError) {
      return reply.code(err.statusCode).send({ error: { code: err.code, message: err.message } });
    }
    if (err.validation) {
      return reply.code(400).send({ error: { code: 'VIGIL_BAD_REQUEST', message: err.message } });
    }
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) logger.error({ err, url: req.url }, 'API handler failed');
    const code = status === 500 ? 'VIGIL_INTERNAL' : (HTTP_CODES[status] ?? 'VIGIL_BAD_REQUEST');
    return reply.code(status).send({ error: { code, message: err.message } });
  });
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send({ error: { code: 'VIGIL_NOT_FOUND', message: `no route ${req.method} ${req.url}` } });
  });

  app.get('/healthz', async (_req, reply) => {
    if (!deps.healthy()) return reply.code(503).send({ ok: false });
    return { ok: true };
  });
  app.get('/readyz', async (_req, reply) => {
    const ready = deps.ready();
    return reply.code(ready ? 200 : 503).send({ ready });
  });
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    // the cluster process's families come from that process (partitionMetrics)
    const [own, more] = await Promise.all([metrics.registry.metrics(), deps.extraMetrics?.() ?? Promise.resolve('')]);
    return more ? `${own.trimEnd()}\n${more}` : own;
  });
  app.get('/status', async () => deps.status());
  // the status page: one static file with inline JS that polls /status (no build step)
  app.get('/', async (_req, reply) => {
    reply.header('content-type', 'text/html; charset=utf-8');
    reply.header('cache-control', 'no-store');
    reply.header('content-security-policy', "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:");
    return STATUS_PAGE;
  });

  // ---- control: bearer token, audit line per mutation
  const authorize = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const expected = deps.token();
    const header = req.headers.authorization ?? '';
    const given = header.startsWith('Bearer ') ? header.slice(7).trim() : '';
    if (expected === undefined) {
      logger.warn({ audit: true, remote: req.ip, user: req.headers['x-vigil-user'], url: req.url, result: 'refused', reason: 'no token configured' }, 'control request refused');
      metrics.apiMutations.inc({ action: 'unauthorized', result: 'refused' });
      return reply.code(401).send({ error: { code: 'VIGIL_NO_TOKEN', message: 'control is disabled: api.token_file is not configured' } });
    }
    if (!given || !tokenMatches(given, expected)) {
      logger.warn({ audit: true, remote: req.ip, user: req.headers['x-vigil-user'], url: req.url, result: 'refused', reason: given ? 'wrong token' : 'no token given' }, 'control request refused');
      metrics.apiMutations.inc({ action: 'unauthorized', result: 'refused' });
      return reply.code(401).send({ error: { code: 'VIGIL_UNAUTHORIZED', message: 'missing or wrong bearer token' } });
    }
  };

  const mutation = <T>(action: string, fn: (req: FastifyRequest) => Promise<T>) =>
    async (req: FastifyRequest): Promise<T> => {
      const who = { remote: req.ip, user: req.headers['x-vigil-user'], userAgent: req.headers['user-agent'] };
      try {
        const result = await fn(req);
        logger.info({ audit: true, action, ...who, params: req.params, body: req.body, result: 'ok', outcome: result }, `control: ${action}`);
        metrics.apiMutations.inc({ action, result: 'ok' });
        return result;
      } catch (err) {
        logger.warn({ audit: true, action, ...who, params: req.params, body: req.body, result: 'error', code: (err as { code?: string }).code, err: (err as Error).message }, `control: ${action} failed`);
        metrics.apiMutations.inc({ action, result: 'error' });
        throw err;
      }
    };

  await app.register(async (ctl) => {
    // onRequest: an unauthenticated request is refused before its body is parsed
    ctl.addHook('onRequest', authorize);
    // bodies are JSON only (docs/api.md): text/plain gets 415 like any other type
    ctl.removeAllContentTypeParsers();
    ctl.addContentTypeParser('application/json', { parseAs: 'string' }, ctl.getDefaultJsonParser('error', 'error'));
    ctl.post('/v1/takeover', { schema: { body: emptyBody } }, mutation('takeover', async () => ({ ok: true, message: await control.takeover() })));
    ctl.post('/v1/standby', { schema: { body: emptyBody } }, mutation('standby', async () => ({ ok: true, message: await control.standby() })));
    ctl.post(
      '/v1/maintenance',
      {
        schema: {
          body: { type: 'object', required: ['on'], additionalProperties: false, properties: { on: { type: 'boolean' } } },
        },
      },
      mutation('maintenance', async (req) => ({ ok: true, message: await control.maintenance((req.body as { on: boolean }).on) })),
    );
    ctl.post(
      '/v1/services/:service/real-servers/:addr/drain',
      {
        schema: {
          params: serviceParams,
          body: {
            type: ['object', 'null'],
            additionalProperties: false,
            properties: { deadline_ms: { type: 'integer', minimum: 0, maximum: 86_400_000 } },
          },
        },
      },
      mutation('drain', async (req) => {
        const { service, addr } = req.params as { service: string; addr: string };
        const { address, port } = parseRealServerAddr(addr);
        const deadline = (req.body as { deadline_ms?: number } | null)?.deadline_ms ?? 0;
        return { ok: true, ...(await control.drain(service, address, port, deadline)) };
      }),
    );
    ctl.post(
      '/v1/services/:service/real-servers/:addr/enable',
      { schema: { params: serviceParams, body: emptyBody } },
      mutation('enable', async (req) => {
        const { service, addr } = req.params as { service: string; addr: string };
        const { address, port } = parseRealServerAddr(addr);
        return { ok: true, message: await control.enable(service, address, port) };
      }),
    );
    ctl.post('/v1/reload', { schema: { body: emptyBody } }, mutation('reload', async () => ({ ok: true, message: await control.reload() })));
  });

  for (const p of deps.plugins ?? []) await p(app);
  return app;
}
