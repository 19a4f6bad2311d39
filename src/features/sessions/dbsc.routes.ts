/**
 * Device Bound Session Credentials endpoints (W3C webappsec DBSC draft; docs/sessions.md):
 * registration and refresh, under /api/v1/auth/dbsc so the browser sends the
 * td_refresh cookie (Path=/api/v1/auth) with them. Answers are JSON in the
 * envelope; a success also carries the draft's session instructions at the
 * root of the body (`session_identifier`, `refresh_url`, `scope`,
 * `credentials`, `continue`), where the browser reads them.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { HttpTools } from '../../platform/http/context.ts';
import type { SessionsService } from './sessions.service.ts';
import { ok, withErrors } from '../../platform/http/envelope.ts';
import { AppError, ValidationError } from '../../platform/errors.ts';
import { RATE_LIMITS, rateLimitConfig } from '../../platform/http/rate-limits.ts';
import { BOUND_COOKIE, boundCookieOptions, REFRESH_COOKIE, REFRESH_COOKIE_PATH } from '../../platform/http/cookies.ts';
import { challengeHeader, parseSfString } from '../../platform/crypto/dbsc.ts';
import { attemptActor } from '../../platform/context.ts';

const tags = ['auth'];
export const DBSC_PREFIX = '/api/v1/auth/dbsc';
/** The one request that needs the bound cookie (POST /auth/refresh of a DBSC session). */
const BOUND_COOKIE_NEEDED_AT = '/api/v1/auth/refresh';

const ScopeRule = Type.Object({ type: Type.Union([Type.Literal('include'), Type.Literal('exclude')]), domain: Type.String(), path: Type.String() });
const Instructions = Type.Object({
  session_identifier: Type.String(),
  refresh_url: Type.String(),
  continue: Type.Boolean(),
  scope: Type.Object({ origin: Type.String(), include_site: Type.Boolean(), scope_specification: Type.Array(ScopeRule) }),
  credentials: Type.Array(Type.Object({ type: Type.Literal('cookie'), name: Type.String(), attributes: Type.String() })),
  allowed_refresh_initiators: Type.Array(Type.String()),
});
const DbscAnswer = Type.Union([Instructions, Type.Object({ continue: Type.Literal(false) })]);
/** The envelope with the instructions also at its root (where the browser looks). */
const DbscResponse = Type.Object(
  {
    success: Type.Literal(true),
    data: DbscAnswer,
    message: Type.String(),
    session_identifier: Type.Optional(Type.String()),
    refresh_url: Type.Optional(Type.String()),
    continue: Type.Boolean(),
    scope: Type.Optional(Instructions.properties.scope),
    credentials: Type.Optional(Instructions.properties.credentials),
    allowed_refresh_initiators: Type.Optional(Instructions.properties.allowed_refresh_initiators),
  },
  { description: 'The envelope; the DBSC session instructions are repeated at the root for the browser' },
);
const DbscHeaders = Type.Object({
  'secure-session-response': Type.Optional(Type.String({ maxLength: 8192, description: 'sf-string: the DBSC proof JWT (typ dbsc+jwt, ES256 or RS256).' })),
  'sec-secure-session-id': Type.Optional(Type.String({ maxLength: 256, description: 'sf-string: the session identifier (refresh).' })),
});

export const dbscRoutes: FastifyPluginAsyncTypebox<HttpTools & { sessions: SessionsService }> = async (app, ctx) => {
  const { sessions, config, requestDevice } = ctx;

  /**
   * The draft's session instructions. Scope: this origin only
   * (`include_site: false`: the service does not own its registrable domain,
   * and a site scope would need /.well-known/device-bound-sessions there).
   * `scope_specification` narrows it to the one URL that needs the bound
   * cookie: rules are read from last to first, so `/api/v1/auth/refresh` is
   * included and everything else excluded (a sign-in page, a login or a
   * device challenge never waits for a DBSC refresh). The refresh URL itself
   * is always out of scope. `allowed_refresh_initiators` is empty: only this
   * origin's own requests may start a refresh (the cookie is SameSite=Strict
   * anyway). The credential's attributes are the td_bound Set-Cookie's
   * (Path, HttpOnly, SameSite, Secure; host-only, so no Domain), which the
   * browser compares to the cookie it holds.
   */
  const instructions = (request: FastifyRequest, sessionId: string) => {
    const secure = boundCookieOptions(config.cookieSecure, request).secure === true;
    // The origin already pins the host: '*' (the draft's default) matches it, and needs no parsing of a Host header.
    const domain = '*';
    return {
      session_identifier: sessionId,
      refresh_url: `${DBSC_PREFIX}/refresh`,
      continue: true,
      scope: {
        origin: `${request.protocol}://${request.host}`,
        include_site: false,
        scope_specification: [
          { type: 'exclude' as const, domain, path: '/' },
          { type: 'include' as const, domain, path: BOUND_COOKIE_NEEDED_AT },
        ],
      },
      credentials: [{ type: 'cookie' as const, name: BOUND_COOKIE, attributes: `Path=${REFRESH_COOKIE_PATH}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}` }],
      allowed_refresh_initiators: [] as string[],
    };
  };
  /** The envelope, with the draft's instructions at its root too (the browser reads those keys and ignores the rest). */
  const answer = (reply: FastifyReply, data: Record<string, unknown>, message: string) => reply.send({ ...ok(data, message), ...data });

  app.post('/register', {
    schema: {
      operationId: 'dbscRegister',
      security: [],
      tags,
      summary: 'DBSC registration: bind this session (its td_refresh cookie) to the browser key of the Secure-Session-Response JWT',
      headers: DbscHeaders,
      response: withErrors({ 200: DbscResponse }, ['INVALID_SESSION_RESPONSE', 'SESSION_CHALLENGE_REQUIRED', 'INVALID_TOKEN', 'SESSION_NOT_FOUND', 'VALIDATION_ERROR']),
    },
    config: rateLimitConfig(RATE_LIMITS.deviceChallenge),
  }, async (request, reply) => {
    const response = parseSfString(request.headers['secure-session-response']);
    const result = await sessions.dbscRegister(request.cookies?.[REFRESH_COOKIE] || undefined, response);
    if (!result.continue) return answer(reply, { continue: false }, 'This session is bound another way; no DBSC session.');
    reply.setCookie(BOUND_COOKIE, result.cookie, { ...boundCookieOptions(config.cookieSecure, request), maxAge: result.ttlSeconds });
    return answer(reply, instructions(request, result.sessionId), 'Session bound to this browser.');
  });

  app.post('/refresh', {
    schema: {
      operationId: 'dbscRefresh',
      security: [],
      tags,
      summary: 'DBSC refresh: a new short-lived bound cookie for a proof of the session key (403 + Secure-Session-Challenge asks for one)',
      headers: DbscHeaders,
      response: withErrors({ 200: DbscResponse }, ['INVALID_SESSION_RESPONSE', 'SESSION_CHALLENGE_REQUIRED', 'INVALID_TOKEN', 'SESSION_NOT_FOUND', 'VALIDATION_ERROR']),
    },
    config: rateLimitConfig(RATE_LIMITS.deviceChallenge),
  }, async (request, reply) => {
    const sessionId = parseSfString(request.headers['sec-secure-session-id']);
    if (sessionId === undefined) throw new ValidationError([{ field: 'sec-secure-session-id', message: 'is required: the session identifier as a structured-field string' }]);
    const response = request.headers['secure-session-response'] === undefined ? undefined : (parseSfString(request.headers['secure-session-response']) ?? '');
    const result = await sessions.dbscRefresh(sessionId, response, attemptActor(requestDevice(request)));
    if (result.kind === 'challenge') {
      throw new AppError('SESSION_CHALLENGE_REQUIRED', undefined, { headers: { 'secure-session-challenge': challengeHeader(result.challenge, result.sessionId) } });
    }
    reply.setCookie(BOUND_COOKIE, result.cookie, { ...boundCookieOptions(config.cookieSecure, request), maxAge: result.ttlSeconds });
    return answer(reply, instructions(request, result.sessionId), 'Bound cookie refreshed.');
  });
};
