/**
 * Passkeys and security keys, SPEC §5.8. Registered at the API prefix:
 * - `/mfa/webauthn/*` (Bearer): register, list, rename, remove credentials;
 * - `/auth/mfa/webauthn/options`: assertion options for a login's second step
 *   (the answer goes to `/auth/mfa/verify` as `webauthn`);
 * - `/auth/passkey/options` → `/auth/passkey/verify`: passwordless sign-in.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { PasskeySignInData } from '../auth/auth.schemas.ts';
import { bearerSecurity } from '../../platform/http/authenticate.ts';
import { deliverRefreshToken, setDeviceCookie } from '../../platform/http/cookies.ts';
import type { RouteContext } from '../../platform/http/context.ts';
import { iso, ok, success, withErrors } from '../../platform/http/envelope.ts';
import { RATE_LIMITS, rateLimitConfig } from '../../platform/http/rate-limits.ts';
import { requestActor } from '../../platform/http/request-device.ts';
import type { CredentialView, WebauthnService } from './webauthn.service.ts';
import * as S from './webauthn.schemas.ts';

const tags = ['webauthn'];

export interface WebauthnRouteContext extends RouteContext {
  webauthn: WebauthnService;
}

const credentialJson = (c: CredentialView) => ({ ...c, created_at: iso(c.created_at), last_used_at: c.last_used_at === null ? null : iso(c.last_used_at) });

export const webauthnRoutes: FastifyPluginAsyncTypebox<WebauthnRouteContext> = async (app, ctx) => {
  const { auth, webauthn, authenticate, requestDevice, config } = ctx;
  const security = bearerSecurity;
  const signedIn = { onRequest: authenticate, config: rateLimitConfig(RATE_LIMITS.webauthn) };

  app.post('/mfa/webauthn/register/options', {
    ...signedIn,
    schema: { operationId: 'webauthnRegisterOptions', tags, security, summary: 'Options to register a passkey or security key (challenge valid 5 minutes, once)', body: S.RegisterOptionsBody, response: withErrors({ 200: success(S.OptionsData) }) },
  }, async (request) => {
    const me = await auth.me(request.auth.userId);
    const options = await webauthn.registrationOptions({ userId: me.user_id, email: me.email, displayName: me.display_name });
    return ok({ options }, 'Create the credential with these options, then send it to register/verify.');
  });

  app.post('/mfa/webauthn/register/verify', {
    ...signedIn,
    schema: { operationId: 'webauthnRegisterVerify', tags, security, summary: 'Register the credential the browser created', body: S.RegisterVerifyBody, response: withErrors({ 200: success(S.CredentialData) }) },
  }, async (request) => {
    const credential = await webauthn.verifyRegistration(request.auth.userId, request.body.response as never, request.body.name, requestActor(request));
    return ok({ credential: credentialJson(credential) }, 'Passkey or security key registered.');
  });

  app.get('/mfa/webauthn/credentials', {
    ...signedIn,
    schema: { operationId: 'listWebauthnCredentials', tags, security, summary: 'Your passkeys and security keys, oldest first', response: withErrors({ 200: success(S.CredentialListData) }) },
  }, async (request) => {
    const credentials = await webauthn.list(request.auth.userId);
    return ok({ credentials: credentials.map(credentialJson), total_count: credentials.length });
  });

  app.patch('/mfa/webauthn/credentials/:credential_id', {
    ...signedIn,
    schema: { operationId: 'renameWebauthnCredential', tags, security, summary: 'Rename a passkey or security key', params: S.CredentialIdParams, body: S.RenameBody, response: withErrors({ 200: success(S.CredentialData) }) },
  }, async (request) => {
    const credential = await webauthn.rename(request.auth.userId, request.params.credential_id, request.body.name);
    return ok({ credential: credentialJson(credential) }, 'Renamed.');
  });

  app.delete('/mfa/webauthn/credentials/:credential_id', {
    ...signedIn,
    schema: {
      tags,
      operationId: 'removeWebauthnCredential',
      security,
      summary: 'Remove a passkey or security key; revokes the trust it granted (the last second factor turns MFA off)',
      params: S.CredentialIdParams,
      response: withErrors({ 200: success(S.RemovedData) }),
    },
  }, async (request) => {
    const result = await webauthn.remove(request.auth.userId, request.params.credential_id, requestActor(request));
    return ok(
      { removed: true as const, devices_revoked: result.devicesRevoked, sessions_ended: result.sessionsEnded, mfa_enabled: result.mfaEnabled },
      result.mfaEnabled ? 'Removed. Devices trusted with it were revoked.' : 'Removed. That was your last second factor: two-factor authentication is off, trusted devices were revoked and your other sessions were signed out.',
    );
  });

  app.post('/auth/mfa/webauthn/options', {
    config: rateLimitConfig(RATE_LIMITS.webauthnAnonymous),
    schema: {
      tags: ['auth', ...tags],
      operationId: 'webauthnMfaOptions',
      security: [],
      summary: 'Second step of a login with a passkey or security key: assertion options for this temporary token',
      body: S.SecondFactorOptionsBody,
      response: withErrors({ 200: success(S.OptionsData) }),
    },
  }, async (request) => {
    const options = await auth.webauthnSecondFactorOptions(request.body.temporary_token, requestDevice(request));
    return ok({ options }, 'Sign the challenge, then send the answer to /auth/mfa/verify as webauthn.');
  });

  app.post('/auth/passkey/options', {
    config: rateLimitConfig(RATE_LIMITS.webauthnAnonymous),
    schema: { operationId: 'passkeyOptions', security: [], tags: ['auth', ...tags], summary: 'Start a passwordless sign-in with a passkey', body: S.PasskeyOptionsBody, response: withErrors({ 200: success(S.PasskeyOptionsData) }) },
  }, async (request) => ok(await auth.passkeyOptions(requestDevice(request)), 'Sign in with a passkey, then send the answer with the attempt token.'));

  app.post('/auth/passkey/verify', {
    config: rateLimitConfig(RATE_LIMITS.webauthnAnonymous),
    schema: {
      tags: ['auth', ...tags],
      operationId: 'passkeyVerify',
      security: [],
      summary: 'Finish a passwordless sign-in (user verification required); a pending device to activate unless this device is trusted',
      body: S.PasskeyVerifyBody,
      response: withErrors({ 200: success(PasskeySignInData) }),
    },
  }, async (request, reply) => {
    const { deviceCookieMaxAge, ...result } = deliverRefreshToken(config, request, reply, await auth.passkeySignIn(request.body.attempt_token, request.body.response as never, requestDevice(request)));
    // On a trusted device the token was rotated (SPEC §5.5): hand the browser its successor.
    if (result.device_token) setDeviceCookie(reply, request, config.cookieSecure, result.device_token, deviceCookieMaxAge ?? 0);
    const pending = result.trusted_device && { ...result.trusted_device, expires_at: iso(result.trusted_device.expires_at), trust_ttl_days: config.deviceTrustTtlDays };
    return ok({ ...result, trusted_device: pending }, result.trusted_device_id ? 'Signed in with a passkey on a trusted device.' : 'Signed in with a passkey.');
  });
};
