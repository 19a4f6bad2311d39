import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { bearerSecurity } from '../../platform/http/authenticate.ts';
import type { DeviceChallenges, SessionTokenRotation } from '../../domain/contracts.ts';
import type { HttpTools } from '../../platform/http/context.ts';
import type { AuthService } from './auth.service.ts';
import { iso, NoContent, ok, success, withErrors } from '../../platform/http/envelope.ts';
import { RATE_LIMITS, rateLimitConfig } from '../../platform/http/rate-limits.ts';
import { requestActor } from '../../platform/http/request-device.ts';
import { pendingDeviceJson } from '../../domain/views/device.ts';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { deliverRefreshToken as deliverRefreshCookie, REFRESH_COOKIE, refreshCookieOptions, setDeviceCookie, wantsRefreshCookie } from '../../platform/http/cookies.ts';
import { ValidationError } from '../../platform/errors.ts';
import { PASSWORD_POLICY } from '../../platform/crypto/passwords.ts';
import * as S from './auth.schemas.ts';

const tags = ['auth'];

export interface AuthRouteContext extends HttpTools {
  auth: AuthService;
  sessions: SessionTokenRotation;
  devices: DeviceChallenges;
}

export const authRoutes: FastifyPluginAsyncTypebox<AuthRouteContext> = async (app, ctx) => {
  const { auth, sessions, devices, requestDevice, authenticate, config } = ctx;

  /** The refresh token as the td_refresh cookie when the browser asks for it (src/platform/http/cookies.ts). */
  const deliverRefreshToken = <T extends { refresh_token?: string }>(request: FastifyRequest, reply: FastifyReply, session: T): T =>
    deliverRefreshCookie(config, request, reply, session);
  const clearRefreshCookie = (request: FastifyRequest, reply: FastifyReply) => reply.clearCookie(REFRESH_COOKIE, refreshCookieOptions(config.cookieSecure, request));
  /** The body's refresh token, else (only with `x-refresh-cookie: 1`) the cookie's. */
  const presentedRefreshToken = (request: FastifyRequest, body: { refresh_token?: string } | null | undefined) =>
    body?.refresh_token ?? (wantsRefreshCookie(request) ? request.cookies?.[REFRESH_COOKIE] || undefined : undefined);

  app.post('/signup', {
    schema: { operationId: 'signup', security: [], tags, summary: 'Create an account', body: S.SignupBody, response: withErrors({ 201: success(S.SignupData) }) },
    config: rateLimitConfig(RATE_LIMITS.signup),
  }, async (request, reply) => {
    const user = await auth.signup(request.body);
    return reply.code(201).send(ok({ ...user, created_at: iso(user.created_at) }, 'Account created.'));
  });

  app.get('/password-policy', {
    schema: { operationId: 'getPasswordPolicy', security: [], tags, summary: 'The password policy that signup and password change enforce', response: withErrors({ 200: success(S.PasswordPolicyData) }) },
  }, async () => ok({ ...PASSWORD_POLICY }));

  app.post('/login', {
    schema: {
      operationId: 'login',
      security: [],
      tags,
      summary: 'Log in; bypasses MFA on a trusted device, otherwise returns an MFA challenge',
      body: S.LoginBody,
      response: withErrors({ 200: success(S.LoginResponse) }),
    },
    config: rateLimitConfig(RATE_LIMITS.login),
  }, async (request, reply) => {
    const result = await auth.login(request.body, requestDevice(request));
    if (result.kind === 'mfa_required') {
      return ok(
        { mfa_required: true as const, temporary_token: result.temporary_token, methods: result.methods, expires_in: result.expires_in, mfa_reason: result.mfa_reason },
        'A second factor is required.',
      );
    }
    const { kind: _kind, deviceCookieMaxAge, ...session } = deliverRefreshToken(request, reply, result);
    // docs/trust-model.md: the presented device token is retired; the browser gets its successor.
    if (session.device_token) setDeviceCookie(reply, request, config.cookieSecure, session.device_token, deviceCookieMaxAge ?? 0);
    return ok(session, session.mfa_bypassed ? 'Logged in on a trusted device.' : 'Logged in.');
  });

  app.post('/device-challenge', {
    schema: {
      operationId: 'createDeviceChallenge',
      security: [],
      tags,
      summary: 'A single-use, 60-second challenge for the x-device-proof header of the next login (key-bound devices)',
      response: withErrors({ 200: success(S.DeviceChallengeData) }),
    },
    config: rateLimitConfig(RATE_LIMITS.deviceChallenge),
  }, async () => {
    const { challenge, expiresIn } = await devices.issueChallenge();
    return ok({ challenge, expires_in: expiresIn });
  });

  app.post('/mfa/verify', {
    schema: {
      operationId: 'verifyMfa',
      security: [],
      tags,
      summary: 'Verify the second factor of a login; returns tokens and a pending device to activate or skip',
      body: S.MfaVerifyBody,
      response: withErrors({ 200: success(S.MfaVerifyData) }),
    },
  }, async (request, reply) => {
    const { temporary_token, code, backup_code, webauthn } = request.body;
    if ([code, backup_code, webauthn].filter((f) => f !== undefined).length !== 1) {
      throw new ValidationError([{ field: 'code', message: 'send exactly one of code, backup_code or webauthn' }]);
    }
    const factor = code !== undefined ? { code } : backup_code !== undefined ? { backupCode: backup_code } : { webauthn: webauthn! };
    const result = deliverRefreshToken(request, reply, await auth.verifyMfa(temporary_token, factor, requestDevice(request)));
    return ok(
      { ...result, trusted_device: result.trusted_device && pendingDeviceJson(result.trusted_device, config.deviceTrustTtlDays) },
      'Second factor verified.',
    );
  });

  app.post('/refresh', {
    schema: { operationId: 'refreshTokens', security: [], tags, summary: 'Rotate a refresh token', body: S.RefreshBody, response: withErrors({ 200: success(S.SessionData) }) },
  }, async (request, reply) => {
    const token = presentedRefreshToken(request, request.body);
    if (token === undefined) throw new ValidationError([{ field: 'refresh_token', message: 'is required (in the body, or the td_refresh cookie with x-refresh-cookie: 1)' }]);
    try {
      return ok(deliverRefreshToken(request, reply, await sessions.refresh(token)), 'Tokens refreshed.');
    } catch (error) {
      if (request.body?.refresh_token === undefined) clearRefreshCookie(request, reply);
      throw error;
    }
  });

  app.post('/logout', {
    onRequest: authenticate,
    schema: { operationId: 'logout', tags, summary: 'End this session', security: bearerSecurity, body: S.LogoutBody, response: withErrors({ 204: NoContent }) },
  }, async (request, reply) => {
    await sessions.logout(request.auth.userId, request.auth.sessionId, request.body?.refresh_token ?? (request.cookies?.[REFRESH_COOKIE] || undefined), requestActor(request));
    if (request.cookies?.[REFRESH_COOKIE] !== undefined) clearRefreshCookie(request, reply);
    return reply.code(204).send(null);
  });

  app.get('/me', {
    onRequest: authenticate,
    schema: { operationId: 'getCurrentUser', tags, summary: 'The signed-in user', security: bearerSecurity, response: withErrors({ 200: success(S.MeData) }) },
  }, async (request) => {
    const me = await auth.me(request.auth.userId);
    return ok({ ...me, created_at: iso(me.created_at) });
  });

  app.post('/password/change', {
    onRequest: authenticate,
    schema: {
      operationId: 'changePassword',
      tags,
      summary: 'Change the password; revokes every trusted device, pending activation and other session',
      security: bearerSecurity,
      body: S.PasswordChangeBody,
      response: withErrors({ 200: success(S.PasswordChangeData) }),
    },
    config: rateLimitConfig(RATE_LIMITS.passwordCheck),
  }, async (request) => {
    const { current_password, new_password } = request.body;
    const result = await auth.changePassword(request.auth.userId, current_password, new_password, requestActor(request));
    return ok(result, 'Password changed. Trusted devices were revoked and your other sessions were signed out.');
  });

  app.post('/mfa/webauthn/options', {
    config: rateLimitConfig(RATE_LIMITS.webauthnAnonymous),
    schema: {
      tags: ['auth', 'webauthn'],
      operationId: 'webauthnMfaOptions',
      security: [],
      summary: 'Second step of a login with a passkey or security key: assertion options for this temporary token',
      body: S.SecondFactorOptionsBody,
      response: withErrors({ 200: success(S.WebauthnOptionsData) }),
    },
  }, async (request) => {
    const options = await auth.webauthnSecondFactorOptions(request.body.temporary_token, requestDevice(request));
    return ok({ options }, 'Sign the challenge, then send the answer to /auth/mfa/verify as webauthn.');
  });

  app.post('/passkey/options', {
    config: rateLimitConfig(RATE_LIMITS.webauthnAnonymous),
    schema: { operationId: 'passkeyOptions', security: [], tags: ['auth', 'webauthn'], summary: 'Start a passwordless sign-in with a passkey', body: S.PasskeyOptionsBody, response: withErrors({ 200: success(S.PasskeyOptionsData) }) },
  }, async (request) => ok(await auth.passkeyOptions(requestDevice(request)), 'Sign in with a passkey, then send the answer with the attempt token.'));

  app.post('/passkey/verify', {
    config: rateLimitConfig(RATE_LIMITS.webauthnAnonymous),
    schema: {
      tags: ['auth', 'webauthn'],
      operationId: 'passkeyVerify',
      security: [],
      summary: 'Finish a passwordless sign-in (user verification required); a pending device to activate unless this device is trusted',
      body: S.PasskeyVerifyBody,
      response: withErrors({ 200: success(S.PasskeySignInData) }),
    },
  }, async (request, reply) => {
    const { deviceCookieMaxAge, ...result } = deliverRefreshToken(request, reply, await auth.passkeySignIn(request.body.attempt_token, request.body.response as never, requestDevice(request)));
    // On a trusted device the token was rotated (docs/trust-model.md): hand the browser its successor.
    if (result.device_token) setDeviceCookie(reply, request, config.cookieSecure, result.device_token, deviceCookieMaxAge ?? 0);
    const pending = result.trusted_device && { ...result.trusted_device, expires_at: iso(result.trusted_device.expires_at), trust_ttl_days: config.deviceTrustTtlDays };
    return ok({ ...result, trusted_device: pending }, result.trusted_device_id ? 'Signed in with a passkey on a trusted device.' : 'Signed in with a passkey.');
  });
};
