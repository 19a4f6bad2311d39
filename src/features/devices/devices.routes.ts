import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { clearDeviceCookie, setDeviceCookie } from '../../platform/http/cookies.ts';
import { bearerSecurity } from '../../platform/http/authenticate.ts';
import type { HttpTools } from '../../platform/http/context.ts';
import type { DevicesService } from './devices.service.ts';
import { ok, success, withErrors } from '../../platform/http/envelope.ts';
import { RATE_LIMITS, rateLimitConfig } from '../../platform/http/rate-limits.ts';
import { requestActor, requestDeviceToken } from '../../platform/http/request-device.ts';
import { deviceJson, eventJson } from '../../domain/views/device.ts';
import * as S from './devices.schemas.ts';

const tags = ['devices'];

export const devicesRoutes: FastifyPluginAsyncTypebox<HttpTools & { devices: DevicesService }> = async (app, ctx) => {
  const { devices, authenticate, requestDevice, config } = ctx;
  app.addHook('onRequest', authenticate);
  const security = bearerSecurity;
  const limit = rateLimitConfig(RATE_LIMITS.userApi);

  app.post('/activate', {
    schema: { operationId: 'activateDevice', tags, security, summary: 'Trust this device (consumes the activation token)', body: S.ActivateBody, response: withErrors({ 200: success(S.ActivateData) }, ['ACTIVATION_TOKEN_NOT_FOUND', 'ACTIVATION_TOKEN_EXPIRED', 'ACTIVATION_TOKEN_USED', 'FINGERPRINT_MISMATCH', 'INVALID_FINGERPRINT', 'INVALID_PUBLIC_KEY']) },
    config: limit,
  }, async (request, reply) => {
    const { activation_token, device_name, public_key } = request.body;
    const { device, deviceToken } = await devices.activate(request.auth.userId, activation_token, device_name, public_key, requestDevice(request), requestActor(request));
    setDeviceCookie(reply, request, config.cookieSecure, deviceToken, devices.trustTtlMs / 1000);
    return ok({ device: deviceJson(device), device_token: deviceToken }, 'This device is now trusted.');
  });

  app.post('/skip', {
    schema: { operationId: 'skipDevice', tags, security, summary: 'Do not trust this device (consumes the activation token)', body: S.SkipBody, response: withErrors({ 200: success(S.SkipData) }, ['ACTIVATION_TOKEN_NOT_FOUND', 'ACTIVATION_TOKEN_EXPIRED', 'ACTIVATION_TOKEN_USED', 'FINGERPRINT_MISMATCH', 'INVALID_FINGERPRINT']) },
    config: limit,
  }, async (request) => {
    await devices.skip(request.auth.userId, request.body.activation_token, requestDevice(request), requestActor(request));
    return ok({ skipped: true as const }, 'This device will not be remembered.');
  });

  // Under a prefix, '/' answers both /api/v1/devices and /api/v1/devices/.
  app.get('/', {
    schema: { operationId: 'listDevices', tags, security, summary: 'Active trusted devices, most recently used first', response: withErrors({ 200: success(S.ListData) }) },
    config: limit,
  }, async (request) => {
    const views = await devices.list(request.auth.userId, requestDeviceToken(request));
    return ok({ devices: views.map(deviceJson), total_count: views.length });
  });

  app.get('/events', {
    schema: { operationId: 'listDeviceEvents', tags, security, summary: 'Device history, newest first', querystring: S.EventsQuery, response: withErrors({ 200: success(S.EventsData) }) },
    config: limit,
  }, async (request) => {
    const { limit: pageSize = 20, before } = request.query;
    const page = await devices.events(request.auth.userId, pageSize, before?.toLowerCase());
    return ok({ events: page.events.map(eventJson), next_before: page.nextBefore });
  });

  app.delete('/:device_id', {
    schema: { operationId: 'revokeDevice', tags, security, summary: 'Revoke one device and sign it out (ends its sessions)', params: S.DeviceId, response: withErrors({ 200: success(S.RevokedData) }, ['DEVICE_NOT_FOUND']) },
    config: limit,
  }, async (request, reply) => {
    const id = request.params.device_id.toLowerCase();
    const { wasCurrent, sessionsEnded } = await devices.revoke(request.auth.userId, id, requestActor(request), requestDeviceToken(request));
    if (wasCurrent) clearDeviceCookie(reply, request, config.cookieSecure);
    return ok({ revoked: true as const, sessions_ended: sessionsEnded }, 'The device was revoked and signed out.');
  });

  app.delete('/', {
    schema: { operationId: 'revokeAllDevices', tags, security, summary: 'Revoke every device and sign them out', response: withErrors({ 200: success(S.RevokedAllData) }) },
    config: limit,
  }, async (request, reply) => {
    const { revoked, sessionsEnded } = await devices.revokeAll(request.auth.userId, requestActor(request));
    clearDeviceCookie(reply, request, config.cookieSecure);
    return ok({ revoked_count: revoked, sessions_ended: sessionsEnded }, 'Every device was revoked and signed out.');
  });

  app.patch('/:device_id', {
    schema: { operationId: 'renameDevice', tags, security, summary: 'Rename a device', params: S.DeviceId, body: S.RenameBody, response: withErrors({ 200: success(S.DeviceData) }, ['DEVICE_NOT_FOUND']) },
    config: limit,
  }, async (request) => {
    const id = request.params.device_id.toLowerCase();
    const device = await devices.rename(request.auth.userId, id, request.body.device_name.trim() || request.body.device_name, requestDeviceToken(request), requestActor(request));
    return ok({ device: deviceJson(device) }, 'The device was renamed.');
  });
};
