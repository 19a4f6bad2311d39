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
 */
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
}

export const jwksRoutes: FastifyPluginAsyncTypebox<JwksOptions> = async (app, { accessTokens }) => {
  app.addSchema(Jwk);
  app.addSchema(JwkSet);
  app.get(JWKS_PATH, {
    schema: {
      operationId: 'getJwks',
      tags: ['integration'],
      summary: 'Public keys that verify access tokens (JWK set)',
      security: [],
      response: withErrors({ 200: Type.Ref('JwkSet') }, [], { storage: false }),
    },
  }, async (_request, reply) => {
    reply.header('cache-control', JWKS_CACHE_CONTROL);
    return accessTokens.jwks();
  });
};
