/**
 * HTTP below and around the routes (README "API overview", docs/security.md): whatever a client sends,
 * the answer is the error envelope with the security headers and no-store.
 *
 * - Errors of Node's HTTP parser (bad request line or method, duplicate
 *   Content-Length, headers over the limit, a request that arrives too
 *   slowly) never reach Fastify: `clientErrorHandler` writes the envelope on
 *   the raw socket and closes it.
 * - An `Expect` other than 100-continue: 417 in the envelope (Node's own
 *   answer is an empty 417 without our headers).
 * - A missing Host on HTTP/1.1: Node's own check answers a bare 400, so the
 *   server is created without it (`requireHostHeader: false`) and the check
 *   is made here, in the envelope.
 * - A compressed request body (Content-Encoding other than identity): 415
 *   with `Accept-Encoding: identity` (RFC 7694). Bodies are at most 16 KiB,
 *   so compression gains nothing, and a decompression step would be one
 *   more place for a bomb.
 * - An OPTIONS request that is not a CORS preflight, or a preflight without
 *   Origin, is answered here rather than by @fastify/cors's text/plain 400.
 *   405 with Allow for a known path and another method is in
 *   src/platform/http/error-handler.ts.
 */
import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { AppError, ERRORS, type ErrorCode } from '../errors.ts';

type Headers = Readonly<Record<string, string>>;

function envelope(code: ErrorCode, message: string = ERRORS[code].message): string {
  return JSON.stringify({ success: false, error: { code, message, request_id: randomUUID() } });
}

/** A complete HTTP/1.1 error response with the envelope, for a raw socket. */
export function rawErrorResponse(headers: Headers, code: ErrorCode, message?: string): string {
  const status = ERRORS[code].status;
  const body = envelope(code, message);
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    'content-type: application/json; charset=utf-8',
    `content-length: ${Buffer.byteLength(body)}`,
    'connection: close',
  ];
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

const PARSER_ERRORS: Record<string, [ErrorCode, string]> = {
  ERR_HTTP_REQUEST_TIMEOUT: ['REQUEST_TIMEOUT', ERRORS.REQUEST_TIMEOUT.message],
  HPE_HEADER_OVERFLOW: ['HEADERS_TOO_LARGE', ERRORS.HEADERS_TOO_LARGE.message],
};

/** A well-formed request line: a method token (RFC 9110 tchar), a target, the HTTP version. */
const METHOD_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ [^\s]+ HTTP\/\d\.\d\r?\n/;

/** For Fastify's `clientErrorHandler` option (Node's 'clientError' event). */
export function createClientErrorHandler(headers: Headers) {
  return function handleClientError(error: Error & { code?: string }, socket: Socket): void {
    // A reset connection has nobody left to answer.
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    // A well-formed method Node's parser does not know (FOO, BREW): no route can have it, 405. A malformed one (G@T) stays 400.
    const rawPacket = (error as { rawPacket?: unknown }).rawPacket;
    const unknownMethod = error.code === 'HPE_INVALID_METHOD' && Buffer.isBuffer(rawPacket) && METHOD_TOKEN.test(rawPacket.subarray(0, 64).toString('latin1'));
    const [code, message] = unknownMethod
      ? (['METHOD_NOT_ALLOWED', 'This method is not allowed.'] as const)
      : (PARSER_ERRORS[error.code ?? ''] ?? ['BAD_REQUEST', 'The request is not valid HTTP.']);
    // Only before anything of a response was written (a keep-alive connection may be mid-answer).
    if (socket.writable && socket.bytesWritten === 0) socket.write(rawErrorResponse(headers, code, message));
    socket.destroy(error);
  };
}

/** Node's 'checkExpectation' event: any Expect other than 100-continue. */
export function createExpectationHandler(headers: Headers) {
  return function handleExpectation(_request: IncomingMessage, response: ServerResponse): void {
    const body = envelope('EXPECTATION_FAILED');
    response.writeHead(417, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' });
    response.end(body);
  };
}

/** Which methods the routes answer on a path (for 405 + Allow and OPTIONS). */
export interface RouteTable {
  allowed(path: string): string[];
  /** The methods of a route whose path has no parameter and matches exactly (`/devices/activate`), or []. */
  staticAllowed(path: string): string[];
}

const METHOD_ORDER = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Collects every route registered after this call (onRoute). OPTIONS routes (CORS's `OPTIONS *`) are left out. */
export function createRouteTable(app: FastifyInstance): RouteTable {
  const routes: Array<{ pattern: RegExp; methods: string[]; exact: boolean }> = [];
  app.addHook('onRoute', (route) => {
    const methods = [route.method].flat().map(String).filter((m) => m !== 'OPTIONS');
    if (methods.length === 0) return;
    const segments = route.url.split('/').map((segment) => (segment.startsWith(':') ? '[^/]+' : segment === '*' ? '.*' : escapeRegExp(segment)));
    routes.push({ pattern: new RegExp(`^${segments.join('/')}$`), methods, exact: !/[:*]/.test(route.url) });
  });
  const collect = (path: string, exactOnly: boolean) => {
    const methods = new Set<string>();
    for (const route of routes) if ((!exactOnly || route.exact) && route.pattern.test(path)) for (const m of route.methods) methods.add(m);
    if (methods.has('GET')) methods.add('HEAD');
    return [...methods].sort((a, b) => METHOD_ORDER.indexOf(a) - METHOD_ORDER.indexOf(b));
  };
  return { allowed: (path) => collect(path, false), staticAllowed: (path) => collect(path, true) };
}

/**
 * onRequest rules, registered before CORS and every route. A callback hook,
 * not an async one: it runs on every request, and most requests pass every
 * rule, so it should not cost a promise each.
 */
export function installProtocolRules(app: FastifyInstance, routes: RouteTable): void {
  app.addHook('onRequest', (request, reply, done) => {
    const raw = request.raw;
    if (raw.httpVersionMajor === 1 && raw.httpVersionMinor >= 1 && request.headers.host === undefined) {
      return done(new AppError('BAD_REQUEST', 'A Host header is required.'));
    }
    const encoding = request.headers['content-encoding'];
    if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
      reply.header('accept-encoding', 'identity');
      return done(new AppError('UNSUPPORTED_MEDIA_TYPE', 'Compressed request bodies are not accepted: send the JSON without Content-Encoding.'));
    }
    if (request.method !== 'OPTIONS') {
      const path = request.url.split('?')[0]!;
      const route = request.routeOptions.url;
      // No route for this method (QUERY, PUT, …): 405 (or 404) before any body is read, so an empty or
      // unparsable body never turns it into a 400.
      // A parameter route that caught a fixed path of another route (PATCH /devices/activate read as
      // /devices/{device_id}): that path is the fixed route's, and this method is not one of its.
      const fixed = route === undefined ? [] : route.includes(':') ? routes.staticAllowed(path) : [];
      if (route === undefined || fixed.length > 0) {
        const allowed = route === undefined ? routes.allowed(path) : fixed;
        if (allowed.length === 0) return done(new AppError('NOT_FOUND', `No route for ${request.method} ${path.slice(0, 200)}.`));
        const allow = allowed.join(', ');
        return done(new AppError('METHOD_NOT_ALLOWED', `${request.method} is not allowed on ${path.slice(0, 200)}; use ${allow}.`, { headers: { allow } }));
      }
    }
    if (request.method === 'OPTIONS') {
      const preflight = request.headers['access-control-request-method'] !== undefined;
      if (preflight && request.headers.origin === undefined) return done(new AppError('BAD_REQUEST', 'A CORS preflight needs an Origin header.'));
      if (!preflight) {
        // Not a preflight: say which methods the path has (RFC 9110 §9.3.7), or 404.
        const allowed = routes.allowed(request.url.split('?')[0]!);
        if (allowed.length === 0) return done(new AppError('NOT_FOUND', `No route for OPTIONS ${request.url.split('?')[0]!.slice(0, 200)}.`));
        // Answered here: a callback hook that sends does not call done().
        reply.code(204).header('allow', [...allowed, 'OPTIONS'].join(', ')).send();
        return;
      }
    }
    done();
  });
}
