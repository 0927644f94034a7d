/**
 * Typed errors with stable codes. An API handler maps `statusCode` to the HTTP status;
 * a log line carries `code`, so an operator can search for it.
 */
export class VigilError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly statusCode = 500,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'VigilError';
  }
}

export const notFound = (what: string): VigilError => new VigilError('VIGIL_NOT_FOUND', `${what} not found`, 404);
export const conflict = (msg: string): VigilError => new VigilError('VIGIL_CONFLICT', msg, 409);
export const badRequest = (msg: string): VigilError => new VigilError('VIGIL_BAD_REQUEST', msg, 400);
