/**
 * /api/v1/admin (docs/admin-and-webhooks.md): `Authorization: Bearer <admin API key>`.
 * Every route authenticates the key (onRequest, before the body is read),
 * then checks its scope; the rate limit counts per key.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { deviceJson, eventJson } from '../../domain/views/device.ts';
import { UnauthorizedError } from '../../platform/errors.ts';
import { iso, ok, success, withErrors } from '../../platform/http/envelope.ts';
import { RATE_LIMITS, rateLimitConfig } from '../../platform/http/rate-limits.ts';
import { sessionJson } from '../../domain/views/session.ts';
import type { AdminPrincipal, AdminRequest, AdminScope, AdminService } from './admin.service.ts';
import * as S from './admin.schemas.ts';

declare module 'fastify' {
  interface FastifyRequest {
    admin: AdminPrincipal | null;
  }
}

export interface AdminRouteContext {
  admin: AdminService;
}

const tags = ['admin'];
const security = [{ adminKey: [] as string[] }];

const userJson = (u: { created_at: number } & Record<string, unknown>) => ({ ...u, created_at: iso(u.created_at) });

export const adminRoutes: FastifyPluginAsyncTypebox<AdminRouteContext> = async (app, { admin }) => {
  app.decorateRequest('admin', null);
  app.addHook('onRequest', async (request: FastifyRequest, _reply: FastifyReply) => {
    const header = request.headers.authorization;
    if (typeof header !== 'string' || !/^Bearer [^\s]+$/i.test(header)) throw new UnauthorizedError('A valid admin API key is required.');
    request.admin = await admin.authenticate(header.slice(7));
  });
  const limit = rateLimitConfig(RATE_LIMITS.admin);

  /** The authenticated caller (its scope was checked in preValidation). */
  const caller = (request: FastifyRequest): AdminRequest => {
    const userAgent = request.headers['user-agent'];
    return { principal: request.admin!, ipAddress: request.ip, userAgent: typeof userAgent === 'string' ? userAgent : null };
  };
  const doc = (operationId: string, summary: string, scope: AdminScope) => ({ operationId, tags, security, summary, description: `Needs the \`${scope}\` scope.` });
  /** The scope check runs before validation: a key without the scope learns nothing about the route's input. */
  const needs = (scope: AdminScope) => ({
    preValidation: async (request: FastifyRequest) => admin.requireScope(request.admin!, scope),
    config: limit,
  });

  app.get('/users', {
    schema: { ...doc('adminFindUser', 'Find a user by email', 'users:read'), querystring: S.EmailQuery, response: withErrors({ 200: success(S.UserData) }, ['FORBIDDEN', 'USER_NOT_FOUND']) },
    ...needs('users:read'),
  }, async (request) => ok({ user: userJson(await admin.findUserByEmail(caller(request), request.query.email)) }));

  app.get('/users/:user_id', {
    schema: { ...doc('adminGetUser', 'A user by id', 'users:read'), params: S.UserId, response: withErrors({ 200: success(S.UserData) }, ['FORBIDDEN', 'USER_NOT_FOUND']) },
    ...needs('users:read'),
  }, async (request) => ok({ user: userJson(await admin.getUser(caller(request), request.params.user_id.toLowerCase())) }));

  app.get('/users/:user_id/devices', {
    schema: { ...doc('adminListDevices', "The user's trusted devices", 'devices:read'), params: S.UserId, response: withErrors({ 200: success(S.DevicesData) }, ['FORBIDDEN', 'USER_NOT_FOUND']) },
    ...needs('devices:read'),
  }, async (request) => {
    const views = await admin.listDevices(caller(request), request.params.user_id.toLowerCase());
    return ok({ devices: views.map(deviceJson), total_count: views.length });
  });

  app.delete('/users/:user_id/devices/:device_id', {
    schema: { ...doc('adminRevokeDevice', 'Revoke one device and end its sessions', 'devices:write'), params: S.UserDeviceId, response: withErrors({ 200: success(S.DeviceRevokedData) }, ['FORBIDDEN', 'USER_NOT_FOUND', 'DEVICE_NOT_FOUND']) },
    ...needs('devices:write'),
  }, async (request) => {
    const { sessionsEnded } = await admin.revokeDevice(caller(request), request.params.user_id.toLowerCase(), request.params.device_id.toLowerCase());
    return ok({ revoked: true as const, sessions_ended: sessionsEnded }, 'The device was revoked and signed out.');
  });

  app.delete('/users/:user_id/devices', {
    schema: { ...doc('adminRevokeDevices', 'Revoke every device and end their sessions', 'devices:write'), params: S.UserId, response: withErrors({ 200: success(S.DevicesRevokedData) }, ['FORBIDDEN', 'USER_NOT_FOUND']) },
    ...needs('devices:write'),
  }, async (request) => {
    const { revoked, sessionsEnded } = await admin.revokeAllDevices(caller(request), request.params.user_id.toLowerCase());
    return ok({ revoked_count: revoked, sessions_ended: sessionsEnded }, 'Every device was revoked and signed out.');
  });

  app.get('/users/:user_id/sessions', {
    schema: { ...doc('adminListSessions', "The user's live sessions", 'sessions:read'), params: S.UserId, response: withErrors({ 200: success(S.SessionsData) }, ['FORBIDDEN', 'USER_NOT_FOUND']) },
    ...needs('sessions:read'),
  }, async (request) => {
    const views = await admin.listSessions(caller(request), request.params.user_id.toLowerCase());
    return ok({ sessions: views.map(sessionJson), total_count: views.length });
  });

  app.delete('/users/:user_id/sessions/:session_id', {
    schema: { ...doc('adminEndSession', 'End one session', 'sessions:write'), params: S.UserSessionId, response: withErrors({ 200: success(S.SessionRevokedData) }, ['FORBIDDEN', 'USER_NOT_FOUND', 'SESSION_NOT_FOUND']) },
    ...needs('sessions:write'),
  }, async (request) => {
    await admin.endSession(caller(request), request.params.user_id.toLowerCase(), request.params.session_id.toLowerCase());
    return ok({ revoked: true as const }, 'The session was signed out.');
  });

  app.delete('/users/:user_id/sessions', {
    schema: { ...doc('adminEndSessions', 'End every session of the user', 'sessions:write'), params: S.UserId, response: withErrors({ 200: success(S.SessionsRevokedData) }, ['FORBIDDEN', 'USER_NOT_FOUND']) },
    ...needs('sessions:write'),
  }, async (request) => {
    const count = await admin.endAllSessions(caller(request), request.params.user_id.toLowerCase());
    return ok({ revoked_count: count }, 'Every session was signed out.');
  });

  app.get('/users/:user_id/events', {
    schema: { ...doc('adminListEvents', "The user's history, newest first", 'events:read'), params: S.UserId, querystring: S.EventsQuery, response: withErrors({ 200: success(S.EventsData) }, ['FORBIDDEN', 'USER_NOT_FOUND']) },
    ...needs('events:read'),
  }, async (request) => {
    const { limit: pageSize = 20, before } = request.query;
    const page = await admin.events(caller(request), request.params.user_id.toLowerCase(), pageSize, before?.toLowerCase());
    return ok({ events: page.events.map(eventJson), next_before: page.nextBefore });
  });
};
