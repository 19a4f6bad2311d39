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
import { BOUND_COOKIE, boundCookieOptions, REFRESH_COOKIE } from '../../platform/http/cookies.ts';
import { challengeHeader, parseSfString } from '../../platform/crypto/dbsc.ts';
import { attemptActor } from '../../platform/context.ts';

const tags = ['auth'];
export const DBSC_PREFIX = '/api/v1/auth/dbsc';

const Instructions = Type.Object({
  session_identifier: Type.String(),
  refresh_url: Type.String(),
  continue: Type.Boolean(),
  scope: Type.Object({ origin: Type.String(), include_site: Type.Boolean() }),
  credentials: Type.Array(Type.Object({ type: Type.Literal('cookie'), name: Type.String(), attributes: Type.String() })),
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
  },
  { description: 'The envelope; the DBSC session instructions are repeated at the root for the browser' },
);
const DbscHeaders = Type.Object({
  'secure-session-response': Type.Optional(Type.String({ maxLength: 8192, description: 'sf-string: the DBSC proof JWT (typ dbsc+jwt, ES256).' })),
  'sec-secure-session-id': Type.Optional(Type.String({ maxLength: 256, description: 'sf-string: the session identifier (refresh).' })),
});

export const dbscRoutes: FastifyPluginAsyncTypebox<HttpTools & { sessions: SessionsService }> = async (app, ctx) => {
  const { sessions, config, requestDevice } = ctx;

  const instructions = (request: FastifyRequest, sessionId: string) => {
    const secure = boundCookieOptions(config.cookieSecure, request).secure === true;
    return {
      session_identifier: sessionId,
      refresh_url: `${DBSC_PREFIX}/refresh`,
      continue: true,
      scope: { origin: `${request.protocol}://${request.host}`, include_site: false },
      credentials: [{ type: 'cookie' as const, name: BOUND_COOKIE, attributes: `Path=/api/v1/auth; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}` }],
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
