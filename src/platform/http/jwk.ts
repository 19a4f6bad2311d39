/**
 * The public P-256 JWK the API accepts for a key held by a browser (a device
 * key at activation, a session key at sign-in): the shape JSON Schema can say.
 * The rest (no private part `d`, key_ops, alg, a point on the curve) is
 * checked in code (src/platform/crypto/device-keys.ts) and answered with
 * 422 INVALID_PUBLIC_KEY.
 */
import { Type } from 'typebox';

export const p256PublicJwk = (description: string) =>
  Type.Object(
    {
      kty: Type.Unsafe<'EC'>({ type: 'string', enum: ['EC'] }),
      crv: Type.Unsafe<'P-256'>({ type: 'string', enum: ['P-256'] }),
      x: Type.String({ pattern: '^[A-Za-z0-9_-]{43}$', description: '32 bytes, base64url without padding' }),
      y: Type.String({ pattern: '^[A-Za-z0-9_-]{43}$', description: '32 bytes, base64url without padding' }),
    },
    {
      additionalProperties: true,
      description:
        `${description} Other JWK members (ext, key_ops, alg, kid, as WebCrypto exports them) are allowed; ` +
        'the server refuses a private key (`d`), key_ops other than verify, an alg other than ES256 and a point off the curve with 422 INVALID_PUBLIC_KEY.',
    },
  );
