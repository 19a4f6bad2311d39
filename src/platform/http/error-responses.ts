/**
 * The error responses of every operation, generated (docs/integration.md): a
 * route declares its own codes with `withErrors(responses, codes)`
 * (./envelope.ts); this onRoute hook adds the generic codes the route can
 * answer with, from its schema and config, groups them by the status the
 * ERRORS catalogue gives each, and writes one response per status whose
 * schema names exactly those codes. The document (and the typed client
 * generated from it) can therefore tell a 401 from a 409, 422 or 429, and
 * no status is typed by hand.
 */
import type { FastifyInstance, RouteOptions } from 'fastify';
import { ERRORS, type ErrorCode } from '../errors.ts';
import { DECLARED_ERRORS, type ErrorDeclaration } from './envelope.ts';

type Schema = Record<string, unknown>;

/** The codes a route can answer with: its own and the generic ones its shape implies. */
export function routeErrorCodes(route: Pick<RouteOptions, 'schema' | 'config' | 'onRequest'>, declaration: ErrorDeclaration): ErrorCode[] {
  const schema = (route.schema ?? {}) as Schema;
  const codes = new Set<ErrorCode>(declaration.codes ?? []);
  if (schema.body !== undefined) {
    codes.add('MALFORMED_REQUEST');
    codes.add('PAYLOAD_TOO_LARGE');
    codes.add('UNSUPPORTED_MEDIA_TYPE');
  }
  if (schema.body !== undefined || schema.querystring !== undefined || schema.params !== undefined) codes.add('VALIDATION_ERROR');
  const security = schema.security;
  if (Array.isArray(security) && security.length > 0) codes.add('UNAUTHORIZED');
  if ((route.config as { rateLimit?: unknown } | undefined)?.rateLimit !== undefined) codes.add('RATE_LIMITED');
  codes.add('INTERNAL_ERROR');
  if (declaration.storage !== false) codes.add('SERVICE_UNAVAILABLE');
  return [...codes];
}

/** One status's response: the ErrorEnvelope, with `code` one of these codes. */
export function errorResponse(codes: readonly ErrorCode[]): Schema {
  const sorted = [...codes].sort();
  return {
    description: sorted.map((code) => `\`${code}\`: ${ERRORS[code].message}`).join(' '),
    allOf: [
      { $ref: 'ErrorEnvelope' },
      {
        type: 'object',
        required: ['error'],
        properties: { error: { type: 'object', required: ['code'], properties: { code: { type: 'string', enum: sorted } } } },
      },
    ],
  };
}

/**
 * Refusals of the request itself, before any route is chosen or whatever the route (src/platform/http/protocol.ts):
 * any request can get them, so every operation lists them under `4XX` rather than per status.
 */
export const PROTOCOL_CODES: readonly ErrorCode[] = [
  'BAD_REQUEST',
  'METHOD_NOT_ALLOWED',
  'NOT_ACCEPTABLE',
  'REQUEST_TIMEOUT',
  'LENGTH_REQUIRED',
  'URI_TOO_LONG',
  'UNSUPPORTED_MEDIA_TYPE',
  'EXPECTATION_FAILED',
  'HEADERS_TOO_LARGE',
];

export function errorResponses(codes: readonly ErrorCode[]): Record<string, Schema> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) {
    const status = ERRORS[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const protocol = errorResponse(PROTOCOL_CODES);
  protocol.description = `Refusals of the request itself, whatever the operation: ${protocol.description}`;
  return {
    ...Object.fromEntries([...byStatus.entries()].sort(([a], [b]) => a - b).map(([status, list]) => [String(status), errorResponse(list)])),
    '4xx': protocol,
  };
}

/** Registered before the routes (and before @fastify/swagger reads them). */
export function documentErrorResponses(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    const response = (route.schema as Schema | undefined)?.response as (Schema & { [DECLARED_ERRORS]?: ErrorDeclaration }) | undefined;
    const declaration = response?.[DECLARED_ERRORS];
    if (response === undefined || declaration === undefined) return;
    const { [DECLARED_ERRORS]: _declared, ...success } = response;
    (route.schema as Schema).response = { ...success, ...errorResponses(routeErrorCodes(route, declaration)) };
  });
}
