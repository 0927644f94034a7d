/**
 * Checks a document against docs/status.schema.json with the validator fastify already
 * ships (a throw-away route whose body schema is the status schema), so the published
 * schema and what the daemon serves are held to each other without a new dependency.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import Fastify from 'fastify';

export const STATUS_SCHEMA = JSON.parse(readFileSync(resolve(import.meta.dirname, '..', '..', 'docs', 'status.schema.json'), 'utf8')) as Record<string, unknown>;

/** Returns the validation errors (empty when the document conforms). */
export async function statusSchemaErrors(doc: unknown): Promise<string[]> {
  const { $schema: _drop, $id: _id, ...schema } = STATUS_SCHEMA;
  const app = Fastify({
    logger: false,
    // validate, do not repair: no type coercion, no defaults, keep unknown fields
    ajv: { customOptions: { coerceTypes: false, useDefaults: false, removeAdditional: false, allErrors: true } },
  });
  app.setErrorHandler((err: Error & { validation?: { instancePath: string; message?: string }[] }, _req, reply) => {
    reply.code(400).send({ errors: (err.validation ?? []).map((v) => `${v.instancePath || '/'} ${v.message ?? ''}`) });
  });
  app.post('/check', { schema: { body: schema } }, async () => ({ errors: [] }));
  try {
    const r = await app.inject({ method: 'POST', url: '/check', payload: doc as object });
    return (r.json() as { errors: string[] }).errors;
  } finally {
    await app.close();
  }
}
