import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ValidationError } from '../../platform/errors.ts';
import { bearerSecurity } from '../../platform/http/authenticate.ts';
import type { AccountAlerts, AccountLookup, SessionAuthentication } from '../../domain/contracts.ts';
import type { HttpTools } from '../../platform/http/context.ts';
import type { MfaService } from './mfa.service.ts';
import { ok, success, withErrors } from '../../platform/http/envelope.ts';
import { requestActor } from '../../platform/http/request-device.ts';
import { RATE_LIMITS, rateLimitConfig } from '../../platform/http/rate-limits.ts';
import * as S from './mfa.schemas.ts';

const tags = ['mfa'];

export const mfaRoutes: FastifyPluginAsyncTypebox<HttpTools & { mfa: MfaService; accounts: AccountLookup; alerts: AccountAlerts; sessionAuthentication: SessionAuthentication }> = async (app, ctx) => {
  const { mfa, accounts, authenticate, alerts, sessionAuthentication } = ctx;
  app.addHook('onRequest', authenticate);
  const security = bearerSecurity;

  app.post('/totp/setup', {
    schema: { operationId: 'setupTotp', tags, security, summary: 'Start TOTP enrolment (MFA stays off until verified)', body: S.SetupBody, response: withErrors({ 200: success(S.SetupData) }, ['TOTP_ALREADY_ENABLED']) },
  }, async (request) => {
    const me = await accounts.me(request.auth.userId);
    return ok(await mfa.setup(request.auth.userId, me.email, request.body?.device_name), 'Scan the QR code, then confirm with a code.');
  });

  app.post('/totp/verify', {
    schema: { operationId: 'confirmTotp', tags, security, summary: 'Confirm TOTP enrolment; returns 10 backup codes, shown once', body: S.CodeBody, response: withErrors({ 200: success(S.BackupCodesData) }, ['NO_PENDING_SETUP', 'INVALID_CODE', 'TOTP_ALREADY_ENABLED', 'TOO_MANY_ATTEMPTS']) },
  }, async (request) => {
    const { backupCodes, sessionsEnded } = await mfa.confirmSetup(request.auth.userId, request.body.code, requestActor(request));
    // The code just checked is a second factor performed in this session (docs/step-up.md): the session is multi-factor from now on.
    await sessionAuthentication.stepUp({ ...request.auth, earlier: request.auth.amr, performed: 'otp', actor: requestActor(request), event: false });
    await alerts.mfaEnabled(request.auth.userId, requestActor(request));
    return ok(
      { mfa_enabled: true as const, backup_codes: backupCodes, sessions_ended: sessionsEnded },
      'Two-factor authentication is on. Your other sessions were signed out. Keep the backup codes somewhere safe.',
    );
  });

  app.get('/status', {
    schema: { operationId: 'getMfaStatus', tags, security, summary: 'MFA status', response: withErrors({ 200: success(S.StatusData) }) },
  }, async (request) => ok(await mfa.status(request.auth.userId)));

  app.post('/backup-codes/regenerate', {
    schema: { operationId: 'regenerateBackupCodes', tags, security, summary: 'New backup codes (old ones stop working); revokes trusted devices', body: S.CodeBody, response: withErrors({ 200: success(S.RegeneratedData) }, ['MFA_NOT_ENABLED', 'INVALID_CODE', 'TOO_MANY_ATTEMPTS']) },
  }, async (request) => {
    const { backupCodes, devicesRevoked } = await mfa.regenerateBackupCodes(request.auth.userId, request.body.code, requestActor(request));
    await alerts.backupCodesRegenerated(request.auth.userId, requestActor(request));
    return ok({ backup_codes: backupCodes, devices_revoked: devicesRevoked }, 'New backup codes issued. Trusted devices were revoked.');
  });

  app.post('/deactivate', {
    schema: { operationId: 'disableMfa', tags, security, summary: 'Turn MFA off with a TOTP code or the password; revokes trusted devices', body: S.DeactivateBody, response: withErrors({ 200: success(S.DeactivatedData) }, ['MFA_NOT_ENABLED', 'INVALID_CODE', 'INVALID_CURRENT_PASSWORD', 'TOO_MANY_ATTEMPTS', 'SERVER_BUSY']) },
    config: rateLimitConfig(RATE_LIMITS.passwordCheck),
  }, async (request) => {
    const userId = request.auth.userId;
    const { code, password } = request.body;
    if ((code === undefined) === (password === undefined)) {
      throw new ValidationError([{ field: 'code', message: 'send exactly one of code or password' }]);
    }
    await mfa.requireEnabled(userId);
    if (code !== undefined) await mfa.requireSecondFactor(userId, { code });
    else await accounts.requirePassword(userId, password!);
    const { devicesRevoked, sessionsEnded } = await mfa.disable(userId, requestActor(request));
    // Passkeys and security keys are second factors too: with one left, MFA stays on.
    const stillOn = await mfa.isEnabled(userId);
    // The alert is about the account losing its second step; with a passkey left it has not.
    if (!stillOn) await alerts.mfaDisabled(userId, requestActor(request));
    return ok(
      { mfa_enabled: stillOn, devices_revoked: devicesRevoked, sessions_ended: sessionsEnded },
      stillOn
        ? 'Authenticator-app codes are off; your passkeys and security keys remain. Trusted devices were revoked and your other sessions were signed out.'
        : 'Two-factor authentication is off. Trusted devices were revoked and your other sessions were signed out.',
    );
  });
};
