/**
 * GET /.well-known/jwks.json (docs/integration.md): the public keys access tokens are
 * checked with — the current signing key first, then JWT_PREVIOUS_KEYS — so a
 * relying service verifies tokens without any shared secret.
 *
 * Outside /api, so not under the API's `no-store`: a JWK set is public and
 * meant to be cached. max-age=300 keeps a relying service's copy at most five
 * minutes old; a key rotation therefore publishes the next key (in
 * JWT_PREVIOUS_KEYS) longer than that before it starts signing
 * (docs/integration.md). In HS256 mode the set holds only previous asymmetric
 * keys, usually none: an HMAC secret is never published.
 *
 * Revalidation: the set is fixed for the life of the process (keys come from
 * the environment), so its body is serialised once. `ETag` is a strong tag of
 * that body (SHA-256): the same keys give the same tag on every instance.
 * `Last-Modified` is when this instance loaded the keys (HTTP dates have
 * one-second resolution, so it is rounded down). `If-None-Match` wins over
 * `If-Modified-Since` when both are sent (RFC 9110 13.2.2); either one that
 * matches → 304 with no body, the same validators and the same caching headers.
 *
 * CORS: `Access-Control-Allow-Origin: *` on this route only, without
 * credentials: the set is public and a browser app on any origin may verify
 * tokens with it. Every other route keeps CORS_ORIGINS.
 */
import { createHash } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { withErrors } from '../../platform/http/envelope.ts';
import type { AccessTokens } from '../../platform/crypto/access-tokens.ts';

export const JWKS_PATH = '/.well-known/jwks.json';
export const JWKS_CACHE_CONTROL = 'public, max-age=300';

const Jwk = Type.Object(
  {
    kty: Type.String({ examples: ['EC'] }),
    crv: Type.String({ examples: ['P-256'] }),
    x: Type.String(),
    y: Type.Optional(Type.String()),
    kid: Type.String({ description: 'RFC 7638 thumbprint of the key (or the kid its JWK was given with).' }),
    alg: Type.Union([Type.Literal('ES256'), Type.Literal('EdDSA')]),
    use: Type.Literal('sig'),
  },
  { $id: 'Jwk', description: 'A public signing key (RFC 7517).' },
);
const JwkSet = Type.Object({ keys: Type.Array(Type.Ref('Jwk')) }, { $id: 'JwkSet', description: 'The current and previous access-token keys.' });

export interface JwksOptions {
  accessTokens: Pick<AccessTokens, 'jwks'>;
  /** When the keys were loaded (ms since the epoch): the Last-Modified of the set. */
  loadedAt: number;
}

/** Does an If-None-Match header name this strong tag (or `*`)? Weak comparison, as RFC 9110 asks for GET. */
export function etagMatches(header: string, etag: string): boolean {
  const bare = etag.replace(/^W\//, '');
  return header.split(',').some((part) => {
    const tag = part.trim();
    return tag === '*' || tag.replace(/^W\//, '') === bare;
  });
}

export const jwksRoutes: FastifyPluginAsyncTypebox<JwksOptions> = async (app, { accessTokens, loadedAt }) => {
  const body = JSON.stringify(accessTokens.jwks());
  const etag = `"${createHash('sha256').update(body).digest('base64url')}"`;
  const lastModifiedMs = Math.floor(loadedAt / 1000) * 1000;
  const lastModified = new Date(lastModifiedMs).toUTCString();
  app.addSchema(Jwk);
  app.addSchema(JwkSet);
  app.get(JWKS_PATH, {
    schema: {
      operationId: 'getJwks',
      tags: ['integration'],
      summary: 'Public keys that verify access tokens (JWK set)',
      security: [],
      description: 'Cacheable (`Cache-Control`, `ETag`, `Last-Modified`; 304 on `If-None-Match` or `If-Modified-Since`) and readable from any origin (`Access-Control-Allow-Origin: *`).',
      response: withErrors({ 200: Type.Ref('JwkSet'), 304: { description: 'Not modified: the cached set is current.', type: 'null' } }, [], { storage: false }),
    },
  }, async (request, reply) => {
    reply.headers({
      'cache-control': JWKS_CACHE_CONTROL,
      etag,
      'last-modified': lastModified,
      'access-control-allow-origin': '*',
      'cross-origin-resource-policy': 'cross-origin',
    });
    // A public, credential-less answer: never paired with CORS_ORIGINS' credentials.
    reply.removeHeader('access-control-allow-credentials');
    reply.removeHeader('vary');
    const ifNoneMatch = request.headers['if-none-match'];
    const ifModifiedSince = request.headers['if-modified-since'];
    let notModified = false;
    if (typeof ifNoneMatch === 'string') notModified = etagMatches(ifNoneMatch, etag);
    else if (typeof ifModifiedSince === 'string') {
      const since = Date.parse(ifModifiedSince);
      notModified = Number.isFinite(since) && since >= lastModifiedMs;
    }
    if (notModified) return reply.code(304).send();
    return reply.type('application/json; charset=utf-8').send(body);
  });
};
