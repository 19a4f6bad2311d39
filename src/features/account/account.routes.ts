import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { normaliseEmail } from '../../platform/context.ts';
import { bearerSecurity } from '../../platform/http/authenticate.ts';
import type { HttpTools } from '../../platform/http/context.ts';
import type { AccountService } from './account.service.ts';
import { ok, success, withErrors } from '../../platform/http/envelope.ts';
import { RATE_LIMITS, rateLimitConfig } from '../../platform/http/rate-limits.ts';
import { requestActor } from '../../platform/http/request-device.ts';
import * as S from './account.schemas.ts';

const tags = ['auth'];
const REPORT_TOKEN_SHAPE = /^tdx_[A-Za-z0-9_-]{43}$/;

/** Under /api/v1: verification, reset and report. */
export const accountRoutes: FastifyPluginAsyncTypebox<HttpTools & { account: AccountService }> = async (app, ctx) => {
  const { account, authenticate } = ctx;
  const linkLimit = rateLimitConfig(RATE_LIMITS.emailLink);

  app.post('/auth/email/verify', {
    schema: { operationId: 'verifyEmail', tags, security: [], summary: 'Confirm the email address with the token from the verification mail', body: S.TokenBody, response: withErrors({ 200: success(S.VerifiedData) }, ['LINK_INVALID', 'LINK_USED', 'LINK_EXPIRED']) },
    config: linkLimit,
  }, async (request) => {
    await account.verifyEmail(request.body.token, requestActor(request));
    return ok({ email_verified: true as const }, 'Your email address is confirmed.');
  });

  app.post('/auth/email/resend', {
    onRequest: authenticate,
    schema: { operationId: 'resendVerificationEmail', tags, security: bearerSecurity, summary: 'Send the verification mail again', response: withErrors({ 202: success(S.ResendData) }) },
    config: rateLimitConfig(RATE_LIMITS.resendVerificationIp, RATE_LIMITS.resendVerificationAccount),
  }, async (request, reply) => {
    const { alreadyVerified } = await account.resendVerification(request.auth.userId);
    return reply.code(202).send(ok({ email_verified: alreadyVerified }, alreadyVerified ? 'Your email address is already confirmed.' : 'A new confirmation link is on its way.'));
  });

  app.post('/auth/password/forgot', {
    schema: { operationId: 'forgotPassword', tags, security: [], summary: 'Mail a password-reset link (the same answer whether or not the address has an account)', body: S.ForgotBody, response: withErrors({ 202: success(S.AcceptedData) }) },
    config: rateLimitConfig(RATE_LIMITS.forgotPasswordIp, RATE_LIMITS.forgotPasswordAccount),
  }, async (request, reply) => {
    await account.forgotPassword(normaliseEmail(request.body.email), requestActor(request));
    return reply.code(202).send(ok({ accepted: true as const }, 'If an account uses this address, a reset link is on its way.'));
  });

  app.post('/auth/password/reset', {
    schema: { operationId: 'resetPassword', tags, security: [], summary: 'Set a new password with the token from the reset mail; ends every session and un-trusts every device', body: S.ResetBody, response: withErrors({ 200: success(S.ResetData) }, ['LINK_INVALID', 'LINK_USED', 'LINK_EXPIRED', 'INVALID_PASSWORD', 'SERVER_BUSY']) },
    config: linkLimit,
  }, async (request) => {
    const { devicesRevoked, sessionsEnded } = await account.resetPassword(request.body.token, request.body.new_password, requestActor(request));
    return ok({ password_reset: true as const, devices_revoked: devicesRevoked, sessions_ended: sessionsEnded }, 'Your password was reset. Sign in with the new one.');
  });

  // A POST that reads: the token travels in the body, never in a URL a proxy or the browser history could keep.
  app.post('/security/report/details', {
    schema: { operationId: 'reportLinkDetails', tags: ['devices'], security: [], summary: '"This wasn\'t me" link: what it is about (device or session, browser/OS, location, time) and whether it is still usable; acts on nothing', body: S.TokenBody, response: withErrors({ 200: success(S.ReportDetailsData) }, ['LINK_INVALID']) },
    config: linkLimit,
  }, async (request) => {
    const d = await account.reportDetails(request.body.token);
    const iso = (ms: number) => new Date(ms).toISOString();
    return ok({
      status: d.status,
      used_at: d.used_at === null ? null : iso(d.used_at),
      expires_at: iso(d.expires_at),
      subject: d.subject && { ...d.subject, at: iso(d.subject.at), ended_at: d.subject.ended_at === null ? null : iso(d.subject.ended_at) },
    });
  });

  app.post('/security/report', {
    schema: { operationId: 'reportNotMe', tags: ['devices'], security: [], summary: '"This wasn\'t me": un-trust the device of a security alert and end its sessions', body: S.TokenBody, response: withErrors({ 200: success(S.ReportData) }, ['LINK_INVALID', 'LINK_USED', 'LINK_EXPIRED']) },
    config: linkLimit,
  }, async (request) => {
    const result = await account.report(request.body.token, requestActor(request));
    return ok({ device_id: result.deviceId, device_revoked: result.deviceRevoked, sessions_ended: result.sessionsEnded }, 'That device is no longer trusted and has been signed out.');
  });
};

/**
 * The page of the "This wasn't me" link (docs/email.md fixes its shape). It acts
 * on nothing: it sends the browser to the web app's confirmation view with
 * the token moved into the fragment, which no server or proxy ever logs,
 * and the view POSTs only when the person confirms (mail scanners that fetch
 * links revoke nothing).
 */
export const accountPages: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/security/report', {
    schema: {
      operationId: 'openReportLink',
      tags: ['devices'],
      security: [],
      summary: 'The "This wasn\'t me" link of a security alert: a 303 to the web app\'s confirmation page (acts on nothing; the page POSTs /api/v1/security/report)',
      querystring: Type.Object({ token: Type.Optional(Type.String({ description: 'The token from the mail; moved into the fragment of the Location, never logged.' })) }),
      response: withErrors({ 303: Type.Null({ description: 'See Other: Location is /#/report?token=… (or /#/report when the token has not the shape of one). No body.' }) }, [], { storage: false }),
    },
  }, async (request, reply) => {
    const token = (request.query as { token?: unknown } | undefined)?.token;
    const fragment = typeof token === 'string' && REPORT_TOKEN_SHAPE.test(token) ? `?token=${token}` : '';
    return reply.code(303).header('location', `/#/report${fragment}`).header('referrer-policy', 'no-referrer').send();
  });
};
