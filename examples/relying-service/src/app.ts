/**
 * A relying service: a separate Fastify app that accepts the Trusted Devices
 * service's access tokens without sharing any secret with it. It fetches the
 * public keys from the service's /.well-known/jwks.json (jose's remote JWK
 * set: cached, refetched when a token names a kid it has not seen, at most
 * once per 30 s) and checks, for every request:
 *
 * - the signature, with the key the token's kid names, and only ES256/EdDSA
 *   (never HS256 or none: the algorithm list is pinned here too);
 * - iss = the service's JWT_ISSUER, aud = THIS service's audience (the
 *   service's JWT_AUDIENCE), exp/nbf with a small clock tolerance;
 * - typ = at+jwt (RFC 9068), so no other JWT the issuer signs passes.
 *
 * What it cannot see: a session ended less than one access-token lifetime ago
 * (15 min by default). A relying service that needs logout to act at once asks
 * the service (GET /api/v1/auth/me with the token) for sensitive actions.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { createRemoteJWKSet, errors, jwtVerify } from 'jose';

export interface RelyingServiceOptions {
  /** e.g. https://auth.example.com/.well-known/jwks.json */
  jwksUrl: string;
  issuer: string;
  audience: string;
  /** Least time between two JWKS fetches caused by unknown kids (jose's cooldown; default 30 s). */
  jwksCooldownMs?: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    user: { id: string; sessionId: string } | null;
  }
}

export async function buildRelyingService(options: RelyingServiceOptions): Promise<FastifyInstance> {
  const jwks = createRemoteJWKSet(new URL(options.jwksUrl), { cacheMaxAge: 10 * 60_000, cooldownDuration: options.jwksCooldownMs ?? 30_000 });
  const app = Fastify({ logger: false });
  app.decorateRequest('user', null);

  const unauthorized = { error: { code: 'UNAUTHORIZED', message: 'A valid access token of the Trusted Devices service is required.' } };

  app.addHook('onRequest', async (request, reply) => {
    if (request.url === '/healthz') return;
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer ([^\s]+)$/i.exec(header) : null;
    if (!match) return reply.code(401).header('www-authenticate', 'Bearer').send(unauthorized);
    try {
      const { payload } = await jwtVerify(match[1]!, jwks, {
        issuer: options.issuer,
        audience: options.audience,
        algorithms: ['ES256', 'EdDSA'],
        typ: 'at+jwt',
        requiredClaims: ['sub', 'sid', 'exp'],
        clockTolerance: 5,
      });
      if (payload.typ !== 'access' || typeof payload.sid !== 'string') throw new errors.JWTClaimValidationFailed('not an access token', payload);
      request.user = { id: payload.sub!, sessionId: payload.sid };
    } catch (error) {
      // A JWKS that cannot be fetched is the relying service's outage, not the caller's fault.
      if (error instanceof errors.JWKSTimeout || (error instanceof Error && /fetch failed|ECONNREFUSED/.test(error.message))) {
        return reply.code(503).send({ error: { code: 'SERVICE_UNAVAILABLE', message: 'The keys of the Trusted Devices service cannot be fetched.' } });
      }
      return reply.code(401).header('www-authenticate', 'Bearer error="invalid_token"').send(unauthorized);
    }
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/whoami', async (request) => ({ user_id: request.user!.id, session_id: request.user!.sessionId }));

  await app.ready();
  return app;
}
