import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { bearerSecurity } from '../../platform/http/authenticate.ts';
import type { HttpTools } from '../../platform/http/context.ts';
import type { SessionsService } from './sessions.service.ts';
import { ok, success, withErrors } from '../../platform/http/envelope.ts';
import { RATE_LIMITS, rateLimitConfig } from '../../platform/http/rate-limits.ts';
import { requestActor } from '../../platform/http/request-device.ts';
import { sessionJson } from '../../domain/views/session.ts';
import * as S from './sessions.schemas.ts';

const tags = ['sessions'];


export const sessionsRoutes: FastifyPluginAsyncTypebox<HttpTools & { sessions: SessionsService }> = async (app, ctx) => {
  const { sessions, authenticate } = ctx;
  app.addHook('onRequest', authenticate);
  const security = bearerSecurity;
  const limit = rateLimitConfig(RATE_LIMITS.devices);

  app.get('/', {
    schema: { operationId: 'listSessions', tags, security, summary: 'Live sessions, most recently active first', response: withErrors({ 200: success(S.ListData) }) },
    config: limit,
  }, async (request) => {
    const views = await sessions.list(request.auth.userId, request.auth.sessionId);
    return ok({ sessions: views.map(sessionJson), total_count: views.length });
  });

  app.delete('/:session_id', {
    schema: { operationId: 'endSession', tags, security, summary: 'End one session', params: S.SessionId, response: withErrors({ 200: success(S.RevokedData) }, ['SESSION_NOT_FOUND']) },
    config: limit,
  }, async (request) => {
    await sessions.end(request.auth.userId, request.params.session_id.toLowerCase(), requestActor(request));
    return ok({ revoked: true as const }, 'The session was signed out.');
  });

  app.delete('/', {
    schema: {
      operationId: 'endSessions',
      tags,
      security,
      summary: 'End every session (with except_current=true: every other one)',
      querystring: S.EndAllQuery,
      response: withErrors({ 200: success(S.RevokedAllData) }),
    },
    config: limit,
  }, async (request) => {
    const exceptCurrent = request.query.except_current === true;
    const count = await sessions.endAll(request.auth.userId, exceptCurrent ? request.auth.sessionId : undefined, requestActor(request));
    return ok({ revoked_count: count }, exceptCurrent ? 'Every other session was signed out.' : 'Every session was signed out.');
  });
};
