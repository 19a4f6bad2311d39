import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { bearerSecurity } from '../../platform/http/authenticate.ts';
import type { DeviceChallenges, SessionTokenRotation } from '../../domain/contracts.ts';
import type { StepUpFactor } from './auth.service.ts';
import type { HttpTools } from '../../platform/http/context.ts';
import type { AuthService, LoginRecognition } from './auth.service.ts';
import type { RequestDevice } from '../../platform/context.ts';
import { iso, NoContent, ok, success, withErrors } from '../../platform/http/envelope.ts';
import { clientNetwork, RATE_LIMITS, rateLimitConfig } from '../../platform/http/rate-limits.ts';
import { requestActor, requestDeviceToken } from '../../platform/http/request-device.ts';
import { pendingDeviceJson } from '../../domain/views/device.ts';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { BOUND_COOKIE, deliverRefreshToken as deliverRefreshCookie, REFRESH_COOKIE, refreshCookieOptions, setDeviceCookie, wantsRefreshCookie } from '../../platform/http/cookies.ts';
import { AppError, ValidationError } from '../../platform/errors.ts';
import { attemptActor } from '../../platform/context.ts';
import { parseSkipped, registrationHeader } from '../../platform/crypto/dbsc.ts';

/** docs/sessions.md, "Bound sessions". */
const SESSION_PROOF_HEADER = 'x-session-proof';
import { PASSWORD_POLICY } from '../../platform/crypto/passwords.ts';
import type { LoginResult } from '../../platform/metrics.ts';
import * as S from './auth.schemas.ts';

const tags = ['auth'];

/** A login's device and what its recognition found, from the preHandler to the handler. */
const recognitions = new WeakMap<FastifyRequest, { device: RequestDevice; recognition: LoginRecognition | undefined }>();

export interface AuthRouteContext extends HttpTools {
  auth: AuthService;
  sessions: SessionTokenRotation;
  devices: DeviceChallenges;
  /** Told the result of every answered login (the /metrics counter): never who logged in. */
  onLoginOutcome?: (result: LoginResult) => void;
}

/** The login result a status names; a 200 is told by the handler. Other statuses (400, 422, 503) are no login outcome. */
const OUTCOME_OF_STATUS: Readonly<Record<number, LoginResult>> = { 401: 'failed', 429: 'limited' };

export const authRoutes: FastifyPluginAsyncTypebox<AuthRouteContext> = async (app, ctx) => {
  const { auth, sessions, devices, requestDevice, authenticate, config } = ctx;
  const loginOutcomes = new WeakMap<FastifyRequest, LoginResult>();

  /** The refresh token as the td_refresh cookie when the browser asks for it (src/platform/http/cookies.ts). */
  const deliverRefreshToken = <T extends { refresh_token?: string }>(request: FastifyRequest, reply: FastifyReply, session: T): T =>
    deliverRefreshCookie(config, request, reply, session);
  const clearRefreshCookie = (request: FastifyRequest, reply: FastifyReply) => reply.clearCookie(REFRESH_COOKIE, refreshCookieOptions(config.cookieSecure, request));
  /** The body's refresh token, else (only with `x-refresh-cookie: 1`) the cookie's. */
  /**
   * DBSC (docs/sessions.md): a browser sign-in (cookie mode) that opened an unbound session is offered
   * the draft's registration; browsers without DBSC ignore the header.
   */
  const offerDbsc = async (request: FastifyRequest, reply: FastifyReply, opened: boolean, sessionKey: unknown) => {
    if (!opened || sessionKey !== undefined || !wantsRefreshCookie(request)) return;
    const { challenge } = await devices.issueChallenge();
    reply.header('secure-session-registration', registrationHeader('/api/v1/auth/dbsc/register', challenge));
  };
  const presentedRefreshToken = (request: FastifyRequest, body: { refresh_token?: string } | null | undefined) =>
    body?.refresh_token ?? (wantsRefreshCookie(request) ? request.cookies?.[REFRESH_COOKIE] || undefined : undefined);

  app.post('/signup', {
    schema: { operationId: 'signup', security: [], tags, summary: 'Create an account', body: S.SignupBody, response: withErrors({ 201: success(S.SignupData) }, ['EMAIL_TAKEN', 'INVALID_PASSWORD', 'SERVER_BUSY']) },
    config: rateLimitConfig(RATE_LIMITS.signup),
  }, async (request, reply) => {
    const user = await auth.signup(request.body);
    return reply.code(201).send(ok({ ...user, created_at: iso(user.created_at) }, 'Account created.'));
  });

  app.get('/password-policy', {
    schema: { operationId: 'getPasswordPolicy', security: [], tags, summary: 'The password policy that signup and password change enforce', response: withErrors({ 200: success(S.PasswordPolicyData) }, [], { storage: false }) },
  }, async () => ok({ ...PASSWORD_POLICY }));

  app.post('/login', {
    schema: {
      operationId: 'login',
      security: [],
      tags,
      summary: 'Log in; bypasses MFA on a trusted device, otherwise returns an MFA challenge',
      body: S.LoginBody,
      response: withErrors({ 200: success(S.LoginResponse) }, ['INVALID_CREDENTIALS', 'TOO_MANY_ATTEMPTS', 'INVALID_FINGERPRINT', 'SERVER_BUSY', 'INVALID_PUBLIC_KEY']),
    },
    config: rateLimitConfig(RATE_LIMITS.login),
    // After the answer, whatever answered it (the rate limit's 429 comes before the handler).
    onResponse: async (request, reply) => {
      const result = reply.statusCode === 200 ? loginOutcomes.get(request) : OUTCOME_OF_STATUS[reply.statusCode];
      if (result !== undefined) ctx.onLoginOutcome?.(result);
    },
    // Before the rate limits (a route's own preHandler runs first): a known device of the account is
    // exempt from the per-account and per-IP limits and hashed in the priority lane (docs/security.md).
    preHandler: async (request) => {
      // No device token, nothing to recognise: a flood without one pays nothing here.
      if (requestDeviceToken(request) === undefined) return;
      const device = requestDevice(request);
      const recognition = await auth.recogniseDevice(request.body.email, device);
      request.knownDevice = recognition?.known === true;
      recognitions.set(request, { device, recognition });
    },
  }, async (request, reply) => {
    const seen = recognitions.get(request);
    const result = await auth.login(request.body, seen?.device ?? requestDevice(request), { client: clientNetwork(request.ip), recognition: seen?.recognition, sessionKey: request.body.session_key });
    loginOutcomes.set(request, result.kind === 'mfa_required' ? 'mfa_required' : result.mfa_bypassed ? 'bypassed' : 'signed_in');
    if (result.kind === 'mfa_required') {
      return ok(
        { mfa_required: true as const, temporary_token: result.temporary_token, methods: result.methods, expires_in: result.expires_in, mfa_reason: result.mfa_reason },
        'A second factor is required.',
      );
    }
    await offerDbsc(request, reply, true, request.body.session_key);
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
      response: withErrors({ 200: success(S.MfaVerifyData) }, ['INVALID_TOKEN', 'INVALID_MFA_CODE', 'MFA_CODE_ALREADY_USED', 'WEBAUTHN_VERIFICATION_FAILED', 'WEBAUTHN_NOT_REGISTERED', 'TOO_MANY_ATTEMPTS', 'INVALID_FINGERPRINT', 'INVALID_PUBLIC_KEY']),
    },
  }, async (request, reply) => {
    const { temporary_token, code, backup_code, webauthn, session_key } = request.body;
    if ([code, backup_code, webauthn].filter((f) => f !== undefined).length !== 1) {
      throw new ValidationError([{ field: 'code', message: 'send exactly one of code, backup_code or webauthn' }]);
    }
    const factor = code !== undefined ? { code } : backup_code !== undefined ? { backupCode: backup_code } : { webauthn: webauthn! };
    const result = deliverRefreshToken(request, reply, await auth.verifyMfa(temporary_token, factor, requestDevice(request), session_key));
    await offerDbsc(request, reply, true, session_key);
    return ok(
      { ...result, trusted_device: result.trusted_device && pendingDeviceJson(result.trusted_device, config.deviceTrustTtlDays) },
      'Second factor verified.',
    );
  });

  app.post('/refresh', {
    schema: {
      operationId: 'refreshTokens',
      security: [],
      tags,
      summary: 'Rotate a refresh token; a bound session needs x-session-proof (401 SESSION_PROOF_REQUIRED gives the challenge to sign)',
      body: S.RefreshBody,
      headers: S.RefreshHeaders,
      response: withErrors({ 200: success(S.SessionData) }, ['INVALID_TOKEN', 'SESSION_PROOF_REQUIRED', 'SESSION_CHALLENGE_REQUIRED', 'INVALID_SESSION_RESPONSE']),
    },
  }, async (request, reply) => {
    const token = presentedRefreshToken(request, request.body);
    // The body is valid (`{}` and null are the cookie mode's bodies): what is missing is the credential, so 401 like a wrong one.
    if (token === undefined) throw new AppError('INVALID_TOKEN', 'No refresh token: send refresh_token, or the td_refresh cookie with x-refresh-cookie: 1.');
    try {
      const proof = request.headers[SESSION_PROOF_HEADER];
      const refreshed = await sessions.refresh(token, {
        proof: typeof proof === 'string' ? proof : undefined,
        actor: attemptActor(requestDevice(request)),
        boundCookie: request.cookies?.[BOUND_COOKIE] || undefined,
        skipped: parseSkipped(request.headers['secure-session-skipped']),
      });
      return ok(deliverRefreshToken(request, reply, refreshed), 'Tokens refreshed.');
    } catch (error) {
      // A bound session asking for its proof keeps its cookie: the next try, with the proof, uses it.
      if (request.body?.refresh_token === undefined && !(error instanceof AppError && error.code === 'SESSION_PROOF_REQUIRED')) clearRefreshCookie(request, reply);
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
      response: withErrors({ 200: success(S.PasswordChangeData) }, ['INVALID_CURRENT_PASSWORD', 'INVALID_PASSWORD', 'SERVER_BUSY']),
    },
    config: rateLimitConfig(RATE_LIMITS.passwordCheck),
  }, async (request) => {
    const { current_password, new_password } = request.body;
    const result = await auth.changePassword(request.auth.userId, current_password, new_password, requestActor(request));
    return ok(result, 'Password changed. Trusted devices were revoked and your other sessions were signed out.');
  });

  app.post('/step-up', {
    onRequest: authenticate,
    schema: {
      operationId: 'stepUp',
      tags,
      security: bearerSecurity,
      summary: 'Step up: perform a factor again (TOTP, backup code, passkey, or the password on an account without a second factor); a new access token of the same session with a fresh auth_time',
      description:
        'Answers a 401 STEP_UP_REQUIRED (docs/step-up.md). Send exactly one of code, backup_code, webauthn (from /auth/step-up/webauthn/options) or password. ' +
        'Attempts count toward the second-factor limit of sign-in (10 wrong in 15 minutes lock it for 15 minutes). The refresh token is unchanged; refreshing keeps the new auth_time and amr.',
      body: S.StepUpBody,
      response: withErrors({ 200: success(S.StepUpData) }, ['INVALID_MFA_CODE', 'MFA_CODE_ALREADY_USED', 'STEP_UP_METHOD_NOT_AVAILABLE', 'TOO_MANY_ATTEMPTS', 'WEBAUTHN_VERIFICATION_FAILED', 'INVALID_CREDENTIALS']),
    },
  }, async (request) => {
    const { code, backup_code, webauthn, password } = request.body;
    if ([code, backup_code, webauthn, password].filter((f) => f !== undefined).length !== 1) {
      throw new ValidationError([{ field: 'code', message: 'send exactly one of code, backup_code, webauthn or password' }]);
    }
    const factor: StepUpFactor =
      code !== undefined ? { code } : backup_code !== undefined ? { backupCode: backup_code } : webauthn !== undefined ? { webauthn: webauthn as never } : { password: password! };
    const result = await auth.stepUp(request.auth, factor, requestDevice(request), requestActor(request));
    return ok({ ...result, auth_time: iso(result.auth_time) }, 'Confirmed. Retry the action with the new access token.');
  });

  app.post('/step-up/webauthn/options', {
    onRequest: authenticate,
    config: rateLimitConfig(RATE_LIMITS.webauthn),
    schema: {
      operationId: 'stepUpWebauthnOptions',
      tags: ['auth', 'webauthn'],
      security: bearerSecurity,
      summary: 'Assertion options for a step-up with a passkey or security key (bound to this session, 5 minutes, once)',
      response: withErrors({ 200: success(S.WebauthnOptionsData) }, ['WEBAUTHN_NOT_REGISTERED', 'TOO_MANY_ATTEMPTS']),
    },
  }, async (request) => {
    const options = await auth.stepUpWebauthnOptions(request.auth);
    return ok({ options }, 'Sign the challenge, then send the answer to /auth/step-up as webauthn.');
  });

  app.post('/mfa/webauthn/options', {
    config: rateLimitConfig(RATE_LIMITS.webauthnAnonymous),
    schema: {
      tags: ['auth', 'webauthn'],
      operationId: 'webauthnMfaOptions',
      security: [],
      summary: 'Second step of a login with a passkey or security key: assertion options for this temporary token',
      body: S.SecondFactorOptionsBody,
      response: withErrors({ 200: success(S.WebauthnOptionsData) }, ['INVALID_TOKEN', 'WEBAUTHN_NOT_REGISTERED', 'INVALID_FINGERPRINT']),
    },
  }, async (request) => {
    const options = await auth.webauthnSecondFactorOptions(request.body.temporary_token, requestDevice(request));
    return ok({ options }, 'Sign the challenge, then send the answer to /auth/mfa/verify as webauthn.');
  });

  app.post('/passkey/options', {
    config: rateLimitConfig(RATE_LIMITS.webauthnAnonymous),
    schema: { operationId: 'passkeyOptions', security: [], tags: ['auth', 'webauthn'], summary: 'Start a passwordless sign-in with a passkey', body: S.PasskeyOptionsBody, response: withErrors({ 200: success(S.PasskeyOptionsData) }, ['INVALID_FINGERPRINT']) },
  }, async (request) => ok(await auth.passkeyOptions(requestDevice(request)), 'Sign in with a passkey, then send the answer with the attempt token.'));

  app.post('/passkey/verify', {
    config: rateLimitConfig(RATE_LIMITS.webauthnAnonymous),
    schema: {
      tags: ['auth', 'webauthn'],
      operationId: 'passkeyVerify',
      security: [],
      summary: 'Finish a passwordless sign-in (user verification required); a pending device to activate unless this device is trusted',
      body: S.PasskeyVerifyBody,
      response: withErrors({ 200: success(S.PasskeySignInData) }, ['INVALID_TOKEN', 'WEBAUTHN_VERIFICATION_FAILED', 'INVALID_FINGERPRINT', 'INVALID_PUBLIC_KEY']),
    },
  }, async (request, reply) => {
    const { deviceCookieMaxAge, ...result } = deliverRefreshToken(request, reply, await auth.passkeySignIn(request.body.attempt_token, request.body.response as never, requestDevice(request), request.body.session_key));
    await offerDbsc(request, reply, true, request.body.session_key);
    // On a trusted device the token was rotated (docs/trust-model.md): hand the browser its successor.
    if (result.device_token) setDeviceCookie(reply, request, config.cookieSecure, result.device_token, deviceCookieMaxAge ?? 0);
    const pending = result.trusted_device && { ...result.trusted_device, expires_at: iso(result.trusted_device.expires_at), trust_ttl_days: config.deviceTrustTtlDays };
    return ok({ ...result, trusted_device: pending }, result.trusted_device_id ? 'Signed in with a passkey on a trusted device.' : 'Signed in with a passkey.');
  });
};
