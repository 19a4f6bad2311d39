/**
 * The one place that maps errors to HTTP (README "API overview"). Every error, whatever
 * threw it (a service, Fastify's parsers, schema validation, the rate
 * limiter, the database driver), leaves as the error envelope with a stable
 * code. 5xx messages never carry internals; they are logged with the request id.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, ERRORS, type ErrorCode, type FieldProblem, ServiceUnavailableError } from '../errors.ts';
import { isStorageUnavailable } from '../storage-errors.ts';
import type { RouteTable } from './protocol.ts';

/** The catalogue code for a framework error's status (the catalogue holds their messages). */
const GENERIC_CODES: Record<number, ErrorCode> = {
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

/** Fastify errors whose generic message (by status) would mislead. */
const FRAMEWORK_MESSAGES: Record<string, string> = {
  FST_ERR_BAD_URL: 'The request URL is not valid.',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'The Content-Length does not match the body.',
};

interface ValidationItem {
  keyword?: string;
  schemaPath?: string;
  /** The keyword's value (ajv's `verbose`): for oneOf, the alternatives. */
  schema?: unknown;
  instancePath?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/** One problem per field; an unknown field is named itself ("displayName": is not a known field). */
export function toFieldProblems(items: readonly ValidationItem[], context: string | undefined): FieldProblem[] {
  // A body that may be an object or null (`anyOf`): the object branch's problems say it all, not "must be null" or "must match a schema in anyOf".
  const specific = items.filter((item) => item.keyword !== 'anyOf' && !(item.keyword === 'type' && item.params?.type === 'null'));
  // "Exactly one of" (oneOf of `required` alternatives): one problem naming the alternatives, not each branch's "must have required property".
  const oneOfPaths = specific.filter((item) => item.keyword === 'oneOf').map((item) => `${item.schemaPath}/`);
  const kept = specific.filter((item) => !oneOfPaths.some((path) => item.schemaPath?.startsWith(path)));
  return (kept.length > 0 ? kept : items).map((item) => {
    if (item.keyword === 'oneOf' && Array.isArray(item.schema)) {
      const names = item.schema.flatMap((branch: { required?: unknown }) => (Array.isArray(branch?.required) ? branch.required.map(String) : []));
      if (names.length > 0) {
        const prefix = (item.instancePath ?? '').split('/').filter(Boolean);
        return { field: [...prefix, names[0]].join('.'), message: `send exactly one of ${names.join(', ')}` };
      }
    }
    const path = (item.instancePath ?? '').split('/').filter(Boolean).map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'));
    const missing = item.params?.missingProperty;
    if (typeof missing === 'string') path.push(missing);
    const unknown = item.params?.additionalProperty;
    if (typeof unknown === 'string') {
      path.push(unknown);
      return { field: path.join('.'), message: 'is not a known field' };
    }
    const field = path.join('.') || context || 'body';
    return { field, message: item.message ?? 'is invalid' };
  });
}

/**
 * PostgreSQL refusing client text (a NUL byte: 22021 character_not_in_repertoire,
 * 22P05 untranslatable_character) is a bad request, not a server fault.
 * Schemas reject control characters first; this is the backstop for any field they miss.
 */
function isUnstorableText(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (code === '22021' || code === '22P05') return true;
  }
  return false;
}

export function toAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  const fastifyError = error as FastifyError & { validation?: ValidationItem[]; validationContext?: string };
  if (fastifyError?.validation) {
    return new AppError('VALIDATION_ERROR', undefined, {
      details: toFieldProblems(fastifyError.validation, fastifyError.validationContext),
    });
  }
  if (isUnstorableText(error)) {
    return new AppError('VALIDATION_ERROR', 'The request contains characters that cannot be stored.', { cause: error });
  }
  if (isStorageUnavailable(error)) {
    return new ServiceUnavailableError(error);
  }
  const status = fastifyError?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const code: ErrorCode = fastifyError.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? 'UNSUPPORTED_MEDIA_TYPE' : (GENERIC_CODES[status] ?? 'BAD_REQUEST');
    // A 400 is not always a body problem: an undecodable URL must not be called "not valid JSON".
    const message = FRAMEWORK_MESSAGES[fastifyError.code] ?? ERRORS[code].message;
    return new AppError(code, message, { cause: error });
  }
  return new AppError('INTERNAL_ERROR', undefined, { expose: false, cause: error });
}

export function sendError(request: FastifyRequest, reply: FastifyReply, error: AppError) {
  // Refusals under load (a full hashing line, a limit) are expected and come in floods: one short line each, no stack.
  if (error.status >= 500 && error.code !== 'SERVER_BUSY') {
    request.log.error({ err: error.cause ?? error, code: error.code }, 'request failed');
  } else if (error.status === 429 || error.code === 'SERVER_BUSY') {
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
      message: error.expose ? error.message : ERRORS[error.code].message,
      ...(error.details !== undefined && error.expose ? { details: error.details } : {}),
      request_id: String(request.id),
    },
  });
}

/**
 * For Fastify's `frameworkErrors` option. Errors raised before routing (an
 * undecodable URL such as `/%zz`, a path parameter over maxParamLength) skip
 * the hooks and the error handler: without this, they leave as Fastify's own
 * `{"error":"Bad Request","code":"FST_ERR_BAD_URL",…}` body, outside the
 * envelope and without the headers the onRequest hooks add.
 */
export function createFrameworkErrorHandler(headers: Readonly<Record<string, string>>) {
  return function handleFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
    reply.headers(headers);
    // A parameter longer than any id this service issues names nothing: the same 404 as an unknown route.
    if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
      return sendError(request, reply, new AppError('NOT_FOUND', `No route for ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}.`));
    }
    return sendError(request, reply, toAppError(error));
  };
}

export function registerErrorHandling(app: FastifyInstance, routes?: RouteTable, headers?: Readonly<Record<string, string>>): void {
  app.setErrorHandler((error, request, reply) => {
    // Some errors are raised before the onRequest hooks ran (an HTTP/0.9 request line with an
    // unknown method): the security headers are set here too, so no error leaves without them.
    if (headers) reply.headers(headers);
    return sendError(request, reply, toAppError(error));
  });
  app.setNotFoundHandler((request, reply) => {
    if (headers) reply.headers(headers);
    const path = request.url.split('?')[0]!;
    // A known path with another method: 405 and the methods it has (RFC 9110 §15.5.6).
    const allowed = routes?.allowed(path) ?? [];
    if (allowed.length > 0) {
      const allow = allowed.join(', ');
      return sendError(request, reply, new AppError('METHOD_NOT_ALLOWED', `${request.method} is not allowed on ${path.slice(0, 200)}; use ${allow}.`, { headers: { allow } }));
    }
    return sendError(request, reply, new AppError('NOT_FOUND', `No route for ${request.method} ${path.slice(0, 200)}.`));
  });
}
