/**
 * Under /api/v1/security (Bearer): the account's security history
 * (docs/security-center.md, "History"). Beside it, the "This wasn't me" link
 * of the alerts (`/security/report`) belongs to the account feature.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { bearerSecurity } from '../../platform/http/authenticate.ts';
import type { HttpTools } from '../../platform/http/context.ts';
import { iso, ok, success, withErrors } from '../../platform/http/envelope.ts';
import { RATE_LIMITS, rateLimitConfig } from '../../platform/http/rate-limits.ts';
import { GEO_ATTRIBUTION, parseStoredLocation, publicLocation } from '../../platform/geo.ts';
import { parseKinds, type SecurityEventView, type SecurityService } from './security.service.ts';
import * as S from './security.schemas.ts';

const tags = ['security'];

const securityEventJson = (e: SecurityEventView) => ({ ...e, occurred_at: iso(e.occurred_at), location: publicLocation(parseStoredLocation(e.location)) });

export const securityRoutes: FastifyPluginAsyncTypebox<HttpTools & { security: SecurityService }> = async (app, ctx) => {
  const { security, authenticate } = ctx;
  app.addHook('onRequest', authenticate);

  app.get('/events', {
    schema: {
      operationId: 'listSecurityEvents',
      tags,
      security: bearerSecurity,
      summary: 'The security history: every security change of the account, newest first, one line per sign-in and per sign-out',
      querystring: S.SecurityEventsQuery,
      response: withErrors({ 200: success(S.SecurityEventsData) }),
    },
    config: rateLimitConfig(RATE_LIMITS.userApi),
  }, async (request) => {
    const { limit = 20, before, kind } = request.query;
    const kinds = parseKinds(kind);
    const page = await security.events(request.auth.userId, limit, before?.toLowerCase(), kinds);
    return ok({ events: page.events.map(securityEventJson), next_before: page.nextBefore, location_attribution: { text: GEO_ATTRIBUTION.text, url: GEO_ATTRIBUTION.url } });
  });
};
