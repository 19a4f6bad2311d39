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
 * It also reads how the person signed in (docs/step-up.md): `auth_time`
 * (when the last factor was actually performed), `amr` (RFC 8176 values;
 * `device` when a trusted device stood in for the second factor) and `acr`,
 * and guards its own sensitive action the RFC 9470 way: `POST /sensitive`
 * needs a multi-factor sign-in at most STEP_UP_MAX_AGE seconds old, else
 * 401 with `WWW-Authenticate: Bearer error="insufficient_user_authentication"`.
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
  /** How recent a factor POST /sensitive needs (seconds; default 600, the service's default). */
  stepUpMaxAgeSeconds?: number;
}

/** The service's acr for a sign-in that performed a second factor (docs/step-up.md). */
export const MULTI_FACTOR_ACR = 'urn:trusted-devices:acr:multi-factor';

declare module 'fastify' {
  interface FastifyRequest {
    user: { id: string; sessionId: string; authTime: number; amr: string[]; acr: string } | null;
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
        requiredClaims: ['sub', 'sid', 'exp', 'auth_time', 'amr', 'acr'],
        clockTolerance: 5,
      });
      if (payload.typ !== 'access' || typeof payload.sid !== 'string') throw new errors.JWTClaimValidationFailed('not an access token', payload);
      const { auth_time: authTime, amr, acr } = payload;
      if (typeof authTime !== 'number' || !Array.isArray(amr) || !amr.every((m) => typeof m === 'string') || typeof acr !== 'string') {
        throw new errors.JWTClaimValidationFailed('auth_time, amr or acr malformed', payload);
      }
      request.user = { id: payload.sub!, sessionId: payload.sid, authTime, amr: amr as string[], acr };
    } catch (error) {
      // A JWKS that cannot be fetched is the relying service's outage, not the caller's fault.
      if (error instanceof errors.JWKSTimeout || (error instanceof Error && /fetch failed|ECONNREFUSED/.test(error.message))) {
        return reply.code(503).send({ error: { code: 'SERVICE_UNAVAILABLE', message: 'The keys of the Trusted Devices service cannot be fetched.' } });
      }
      return reply.code(401).header('www-authenticate', 'Bearer error="invalid_token"').send(unauthorized);
    }
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/whoami', async (request) => {
    const user = request.user!;
    return { user_id: user.id, session_id: user.sessionId, auth_time: user.authTime, amr: user.amr, acr: user.acr };
  });

  // RFC 9470 on this side: a sensitive action of the relying service itself. A trusted-device
  // sign-in (amr "device", acr single-factor) never passes; the user steps up at the service
  // (POST /api/v1/auth/step-up), and the new access token does.
  const maxAge = options.stepUpMaxAgeSeconds ?? 600;
  app.post('/sensitive', async (request, reply) => {
    const user = request.user!;
    const recent = Date.now() / 1000 - user.authTime <= maxAge;
    if (user.acr !== MULTI_FACTOR_ACR || !recent) {
      const description = recent ? 'A second factor is required' : 'More recent authentication is required';
      return reply
        .code(401)
        .header('www-authenticate', `Bearer error="insufficient_user_authentication", error_description="${description}", max_age=${maxAge}, acr_values="${MULTI_FACTOR_ACR}"`)
        .send({ error: { code: 'STEP_UP_REQUIRED', message: description } });
    }
    return { done: true };
  });

  await app.ready();
  return app;
}
