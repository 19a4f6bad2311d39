/**
 * The one place that maps errors to HTTP (SPEC §2). Every error, whatever
 * threw it (a service, Fastify's parsers, schema validation, the rate
 * limiter, the database driver), leaves as the error envelope with a stable
 * code. 5xx messages never carry internals; they are logged with the request id.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, type FieldProblem } from '../errors.ts';
import { isStorageUnavailable } from '../db/storage-errors.ts';

const GENERIC_CODES: Record<number, string> = {
  400: 'MALFORMED_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  406: 'NOT_ACCEPTABLE',
  408: 'REQUEST_TIMEOUT',
  411: 'LENGTH_REQUIRED',
  413: 'PAYLOAD_TOO_LARGE',
  414: 'URI_TOO_LONG',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  422: 'VALIDATION_ERROR',
  429: 'RATE_LIMITED',
  431: 'HEADERS_TOO_LARGE',
  503: 'SERVICE_UNAVAILABLE',
};

const GENERIC_MESSAGES: Record<string, string> = {
  MALFORMED_REQUEST: 'The request body is not valid JSON.',
  PAYLOAD_TOO_LARGE: 'The request body is too large (limit 16 KiB).',
  UNSUPPORTED_MEDIA_TYPE: 'Send the request body as application/json.',
  RATE_LIMITED: 'Too many requests. Try again later.',
  NOT_FOUND: 'Not found.',
  INTERNAL_ERROR: 'Something went wrong on our side.',
};

interface ValidationItem {
  instancePath?: string;
  message?: string;
  params?: Record<string, unknown>;
}

export function toFieldProblems(items: readonly ValidationItem[], context: string | undefined): FieldProblem[] {
  return items.map((item) => {
    const path = (item.instancePath ?? '').split('/').filter(Boolean);
    const missing = item.params?.missingProperty;
    if (typeof missing === 'string') path.push(missing);
    const field = path.join('.') || context || 'body';
    return { field, message: item.message ?? 'is invalid' };
  });
}

export function toAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  const fastifyError = error as FastifyError & { validation?: ValidationItem[]; validationContext?: string };
  if (fastifyError?.validation) {
    return new AppError('VALIDATION_ERROR', 422, 'The request is not valid.', {
      details: toFieldProblems(fastifyError.validation, fastifyError.validationContext),
    });
  }
  if (isStorageUnavailable(error)) {
    return new AppError('SERVICE_UNAVAILABLE', 503, 'The service is temporarily unavailable. Try again shortly.', {
      cause: error,
      headers: { 'retry-after': '5' },
    });
  }
  const status = fastifyError?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const code = fastifyError.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? 'UNSUPPORTED_MEDIA_TYPE' : (GENERIC_CODES[status] ?? 'BAD_REQUEST');
    const message = GENERIC_MESSAGES[code] ?? 'The request could not be processed.';
    return new AppError(code, status === 422 ? 422 : status, message, { cause: error });
  }
  return new AppError('INTERNAL_ERROR', 500, GENERIC_MESSAGES.INTERNAL_ERROR!, { expose: false, cause: error });
}

export function sendError(request: FastifyRequest, reply: FastifyReply, error: AppError) {
  if (error.status >= 500) {
    request.log.error({ err: error.cause ?? error, code: error.code }, 'request failed');
  } else if (error.status === 429) {
    request.log.warn({ code: error.code }, 'request limited');
  }
  reply.headers(error.headers);
  if (error.status === 401 && !reply.hasHeader('www-authenticate') && error.code === 'UNAUTHORIZED') {
    reply.header('www-authenticate', 'Bearer');
  }
  return reply.code(error.status).send({
    success: false,
    error: {
      code: error.code,
      message: error.expose ? error.message : (GENERIC_MESSAGES[error.code] ?? GENERIC_MESSAGES.INTERNAL_ERROR!),
      ...(error.details !== undefined && error.expose ? { details: error.details } : {}),
      request_id: String(request.id),
    },
  });
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error, request, reply) => sendError(request, reply, toAppError(error)));
  app.setNotFoundHandler((request, reply) =>
    sendError(request, reply, new AppError('NOT_FOUND', 404, `No route for ${request.method} ${request.url.split('?')[0]}.`)),
  );
}
