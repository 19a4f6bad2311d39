/**
 * Passkeys and security keys (docs/passkeys.md), registered at the API
 * prefix: `/mfa/webauthn/*` (Bearer) registers, lists, renames and removes
 * credentials. Signing in with one (`/auth/mfa/webauthn/options`,
 * `/auth/passkey/*`) is the auth feature's.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { bearerSecurity } from '../../platform/http/authenticate.ts';
import type { AccountLookup, PasskeyAlerts } from '../../domain/contracts.ts';
import type { HttpTools } from '../../platform/http/context.ts';
import { iso, ok, success, withErrors } from '../../platform/http/envelope.ts';
import { RATE_LIMITS, rateLimitConfig } from '../../platform/http/rate-limits.ts';
import { requestActor } from '../../platform/http/request-device.ts';
import type { CredentialView, WebauthnService } from './webauthn.service.ts';
import * as S from './webauthn.schemas.ts';

const tags = ['webauthn'];

export interface WebauthnRouteContext extends HttpTools {
  webauthn: WebauthnService;
  accounts: AccountLookup;
  alerts?: PasskeyAlerts;
}

const credentialJson = (c: CredentialView) => ({ ...c, created_at: iso(c.created_at), last_used_at: c.last_used_at === null ? null : iso(c.last_used_at) });

export const webauthnRoutes: FastifyPluginAsyncTypebox<WebauthnRouteContext> = async (app, ctx) => {
  const { accounts, webauthn, authenticate, alerts } = ctx;
  const security = bearerSecurity;
  const signedIn = { onRequest: authenticate, config: rateLimitConfig(RATE_LIMITS.webauthn) };

  app.post('/mfa/webauthn/register/options', {
    ...signedIn,
    schema: { operationId: 'webauthnRegisterOptions', tags, security, summary: 'Options to register a passkey or security key (challenge valid 5 minutes, once)', body: S.RegisterOptionsBody, response: withErrors({ 200: success(S.OptionsData) }, ['WEBAUTHN_CREDENTIAL_LIMIT']) },
  }, async (request) => {
    const me = await accounts.me(request.auth.userId);
    const options = await webauthn.registrationOptions({ userId: request.auth.userId, email: me.email, displayName: me.display_name });
    return ok({ options }, 'Create the credential with these options, then send it to register/verify.');
  });

  app.post('/mfa/webauthn/register/verify', {
    ...signedIn,
    schema: { operationId: 'webauthnRegisterVerify', tags, security, summary: 'Register the credential the browser created', body: S.RegisterVerifyBody, response: withErrors({ 200: success(S.CredentialData) }, ['WEBAUTHN_VERIFICATION_FAILED', 'WEBAUTHN_CREDENTIAL_EXISTS', 'WEBAUTHN_CREDENTIAL_LIMIT']) },
  }, async (request) => {
    const credential = await webauthn.verifyRegistration(request.auth.userId, request.body.response as never, request.body.name, requestActor(request));
    await alerts?.passkeyAdded(request.auth.userId, requestActor(request), credential.name);
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
    schema: { operationId: 'renameWebauthnCredential', tags, security, summary: 'Rename a passkey or security key', params: S.CredentialIdParams, body: S.RenameBody, response: withErrors({ 200: success(S.CredentialData) }, ['WEBAUTHN_CREDENTIAL_NOT_FOUND']) },
  }, async (request) => {
    const credential = await webauthn.rename(request.auth.userId, request.params.credential_id, request.body.name, requestActor(request));
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
      response: withErrors({ 200: success(S.RemovedData) }, ['WEBAUTHN_CREDENTIAL_NOT_FOUND']),
    },
  }, async (request) => {
    // Its name, for the mail (read before it is gone).
    const name = (await webauthn.list(request.auth.userId)).find((c) => c.id === request.params.credential_id)?.name;
    const result = await webauthn.remove(request.auth.userId, request.params.credential_id, requestActor(request));
    if (name !== undefined) await alerts?.passkeyRemoved(request.auth.userId, requestActor(request), name);
    return ok(
      { removed: true as const, devices_revoked: result.devicesRevoked, sessions_ended: result.sessionsEnded, mfa_enabled: result.mfaEnabled },
      result.mfaEnabled ? 'Removed. Devices trusted with it were revoked.' : 'Removed. That was your last second factor: two-factor authentication is off, trusted devices were revoked and your other sessions were signed out.',
    );
  });
};
