import type { FastifyReply, FastifyRequest } from 'fastify';
import { RegistryError, catalogue } from '../errors/catalogue.ts';

/**
 * Renders any error as the OCI spec's error body (`{"errors":[{code,message,detail}]}`,
 * spec section "Error Codes"). Anything that is not a RegistryError is a bug or an outage: it
 * is logged once with its stack and shown to the client only as a plain UNKNOWN.
 */
export function renderOciError(err: unknown, request: FastifyRequest, reply: FastifyReply): void {
  let status: number;
  let body: { code: string; message: string; detail?: unknown };
  if (err instanceof RegistryError) {
    const oci = catalogue[err.errorName].oci;
    status = oci.status;
    body = { code: oci.code, message: err.message, ...(err.detail ? { detail: err.detail } : {}) };
    request.berth.errorCode = oci.code;
  } else if (isClientAbort(err)) {
    // The client went away mid-request; nobody is left to read a response.
    request.berth.errorCode = 'CLIENT_ABORTED';
    request.log.info({ err: { message: (err as Error).message } }, 'client disconnected mid-request');
    status = 400;
    body = { code: 'BLOB_UPLOAD_INVALID', message: 'The request body ended early.' };
  } else {
    request.berth.errorCode = 'UNKNOWN';
    request.log.error({ err }, 'unexpected error');
    status = 500;
    body = { code: 'UNKNOWN', message: 'An unexpected error occurred; it has been logged with the request id.', detail: { requestId: request.id } };
  }
  if (err instanceof RegistryError && typeof err.detail?.['retryAfterSeconds'] === 'number') reply.header('retry-after', String(err.detail['retryAfterSeconds']));
  if (status === 401 && !reply.hasHeader('www-authenticate')) {
    reply.header('www-authenticate', `Basic realm="berth"`);
  }
  if (reply.sent || reply.raw.headersSent) {
    reply.raw.destroy();
    return;
  }
  reply.code(status).header('content-type', 'application/json; charset=utf-8').send(JSON.stringify({ errors: [body] }));
}

function isClientAbort(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNABORTED' || (err as Error | undefined)?.message === 'aborted';
}
