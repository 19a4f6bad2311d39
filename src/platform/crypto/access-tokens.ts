/**
 * Access tokens: JWT, signed with an asymmetric key by default (ES256, or
 * EdDSA; src/platform/crypto/signing-keys.ts) whose public half anyone can fetch from
 * GET /.well-known/jwks.json; HS256 with JWT_SECRET (≥ 32 bytes) only when
 * chosen explicitly (JWT_ALGORITHM=HS256). Claims: iss, aud, sub (user id),
 * jti, sid (the session), iat, nbf, exp and `typ: "access"`; the header
 * carries `typ: at+jwt` (RFC 9068) and, for asymmetric keys, the `kid`.
 * How the person signed in (docs/step-up.md): `auth_time` (seconds: when
 * the last factor was actually performed), `amr` (RFC 8176 values) and
 * `acr` (src/platform/authn-methods.ts), copied from the session's record so
 * a refreshed token keeps them and a step-up moves them.
 * Lifetime ACCESS_TOKEN_TTL_SECONDS (default 15 min). They are stateless:
 * verification is a signature check plus claim checks against the injected
 * clock, with no storage access. This module alone does not decide whether
 * a token is still good: the bearer check then reads the token's session row
 * (`sid`, src/features/sessions/sessions.service.ts), so the access tokens
 * of an ended session (logout, password change, revocation) are refused from
 * the next request on, on every instance (docs/security.md, docs/sessions.md).
 * A relying service that verifies with the JWK set alone sees no session row
 * and may accept one for the rest of its short lifetime (docs/integration.md).
 *
 * Algorithm pinning: one fast-jwt verifier per key id, each allowing only the
 * algorithm of its key. The `kid` chooses the verifier and nothing else: an
 * unknown kid, a kid of a key that left JWT_PREVIOUS_KEYS, a token whose `alg`
 * was changed (HS256 signed with the public key bytes, `none`) → not a token.
 * A token without a kid is checked only by the HS256 verifier, which exists
 * only in HS256 mode.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createSigner, createVerifier } from 'fast-jwt';
import type { Clock } from '../clock.ts';
import { type Acr, acrOf, type Amr } from '../authn-methods.ts';
import { type AsymmetricAlgorithm, publicJwks, type PublicJwk, type SigningKey, type VerificationKey } from './signing-keys.ts';

export interface AccessTokenClaims {
  sub: string;
  /** Session: the refresh-token family this access token was issued with. */
  sid: string;
  jti: string;
  iat: number;
  nbf: number;
  exp: number;
  iss: string;
  aud: string;
  typ: 'access';
  /** Seconds since the epoch: the last factor the person performed in this session. */
  auth_time: number;
  amr: Amr[];
  acr: Acr;
}

export interface AccessTokenSubject {
  userId: string;
  sessionId: string;
}

/** What the issuer needs besides the subject: the session's authentication (its row's auth_time and amr). */
export interface AccessTokenGrant extends AccessTokenSubject {
  /** Epoch milliseconds. */
  authTime: number;
  amr: readonly Amr[];
}

export type AccessTokenKeys =
  | { algorithm: 'HS256'; secret: Buffer; previous?: readonly VerificationKey[] }
  | { algorithm: AsymmetricAlgorithm; signingKey: SigningKey; previous?: readonly VerificationKey[] };

export interface AccessTokens {
  readonly ttlSeconds: number;
  /** `ttlSeconds` overrides the lifetime of this one token (a bound session's are shorter: docs/sessions.md). */
  issue(grant: AccessTokenGrant, ttlSeconds?: number): string;
  /** The subject, or null for anything that is not a currently valid access token. */
  verify(token: string): AccessTokenSubject | null;
  /** The public keys tokens are checked with (current first), for GET /.well-known/jwks.json. */
  jwks(): { keys: PublicJwk[] };
}

/**
 * Verified tokens remembered, at most: above the working set of live tokens one instance sees
 * (an LRU smaller than a rotating working set never hits and only adds insert/evict work).
 */
export const VERIFIED_CACHE_SIZE = 25_000;

export function createAccessTokens(options: {
  keys: AccessTokenKeys;
  issuer: string;
  audience: string;
  ttlSeconds: number;
  clock: Clock;
}): AccessTokens {
  const { keys, issuer, audience, ttlSeconds, clock } = options;
  // iat, nbf and exp are set from the injected clock in issue(); the signer keeps a given iat.
  const sign =
    keys.algorithm === 'HS256'
      ? createSigner({ key: keys.secret, algorithm: 'HS256', header: { alg: 'HS256', typ: 'at+jwt' } })
      : createSigner({
          key: keys.signingKey.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
          algorithm: keys.algorithm,
          kid: keys.signingKey.kid,
          header: { alg: keys.algorithm, typ: 'at+jwt' },
        });

  const verifierFor = (key: Buffer | string, algorithm: 'HS256' | AsymmetricAlgorithm) =>
    createVerifier({
      key,
      algorithms: [algorithm],
      allowedIss: issuer,
      allowedAud: audience,
      checkTyp: 'at+jwt',
      // iss and aud too: fast-jwt checks allowedIss/allowedAud only when the claim is present.
      requiredClaims: ['iss', 'aud', 'sub', 'sid', 'jti', 'exp', 'iat', 'nbf', 'typ'],
      // Time claims are checked below against the injected clock, not Date.now().
      ignoreExpiration: true,
      ignoreNotBefore: true,
      // No fast-jwt cache: this module keeps its own, smaller one (VERIFIED_CACHE_SIZE, below).
      cache: false,
    });

  // kid → the verifier pinned to that key's algorithm. The current key wins a kid collision.
  const byKid = new Map<string, ReturnType<typeof verifierFor>>();
  const published: VerificationKey[] = [];
  const current = keys.algorithm === 'HS256' ? undefined : keys.signingKey;
  for (const key of [...(current ? [current] : []), ...(keys.previous ?? [])]) {
    if (byKid.has(key.kid)) continue;
    byKid.set(key.kid, verifierFor(key.publicKey.export({ format: 'pem', type: 'spki' }).toString(), key.alg));
    published.push(key);
  }
  const withoutKid = keys.algorithm === 'HS256' ? verifierFor(keys.secret, 'HS256') : undefined;
  /**
   * Tokens whose signature and claims checked out, by the SHA-256 of the whole token (a changed
   * byte is a miss), least recently used first. A client sends one access token many times, so
   * most requests skip the signature. It keeps only what the bearer check needs (subject,
   * session, exp, nbf: about 200 bytes an entry, 5 MB full), not the whole payload as fast-jwt's
   * own cache did (about 650 bytes an entry; docs/performance.md, "Memory"). A Map iterates in
   * insertion order, so re-inserting on a hit makes it an LRU with O(1) eviction (hand-written:
   * a dozen lines, no dependency).
   */
  const verified = new Map<string, { subject: AccessTokenSubject; exp: number; nbf: number }>();
  const jwks = publicJwks(undefined, published);

  return {
    ttlSeconds,
    issue({ userId, sessionId, authTime, amr }, lifetime = ttlSeconds) {
      const now = Math.floor(clock.now() / 1000);
      const claims: AccessTokenClaims = {
        auth_time: Math.floor(authTime / 1000),
        amr: [...amr],
        acr: acrOf(amr),
        sub: userId,
        sid: sessionId,
        jti: randomUUID(),
        iat: now,
        nbf: now,
        exp: now + lifetime,
        iss: issuer,
        aud: audience,
        typ: 'access',
      };
      return sign(claims);
    },
    verify(token) {
      const now = clock.now() / 1000;
      // Time claims are checked on every call, cached or not: a remembered token still expires on time.
      const key = createHash('sha256').update(token).digest('base64');
      const known = verified.get(key);
      if (known !== undefined) {
        verified.delete(key);
        verified.set(key, known); // most recently used last
        return known.exp > now && known.nbf <= now + 5 ? known.subject : null;
      }
      const decode = verifierOf(token);
      if (decode === undefined) return null;
      let claims: Partial<AccessTokenClaims>;
      try {
        claims = decode(token) as Partial<AccessTokenClaims>;
      } catch {
        return null;
      }
      if (claims.typ !== 'access' || typeof claims.sub !== 'string' || typeof claims.sid !== 'string') return null;
      if (typeof claims.exp !== 'number' || typeof claims.nbf !== 'number') return null;
      const entry = { subject: Object.freeze({ userId: claims.sub, sessionId: claims.sid }), exp: claims.exp, nbf: claims.nbf };
      // Only a token whose signature and claims checked out is remembered (never a refusal).
      if (verified.size >= VERIFIED_CACHE_SIZE) verified.delete(verified.keys().next().value!);
      verified.set(key, entry);
      return entry.exp > now && entry.nbf <= now + 5 ? entry.subject : null;
    },
    jwks: () => jwks,
  };

  /** The verifier the header's kid names (the HS256 one for no kid), or undefined: no other key is ever tried. */
  function verifierOf(token: string) {
    const dot = token.indexOf('.');
    if (dot <= 0) return undefined;
    let header: unknown;
    try {
      header = JSON.parse(Buffer.from(token.slice(0, dot), 'base64url').toString('utf8'));
    } catch {
      return undefined;
    }
    if (header === null || typeof header !== 'object') return undefined;
    const kid = (header as { kid?: unknown }).kid;
    if (kid === undefined) return withoutKid;
    return typeof kid === 'string' ? byKid.get(kid) : undefined;
  }
}

/** The key material of the configured algorithm (config.jwtAlgorithm), or a clear error if it is missing. */
export function accessTokenKeysFor(
  algorithm: 'HS256' | AsymmetricAlgorithm,
  keys: { jwtSecret?: Buffer; jwtSigningKey?: SigningKey; jwtPreviousKeys?: readonly VerificationKey[] },
): AccessTokenKeys {
  const previous = keys.jwtPreviousKeys ?? [];
  if (algorithm === 'HS256') {
    if (!keys.jwtSecret) throw new Error('JWT_ALGORITHM=HS256 needs JWT_SECRET');
    return { algorithm, secret: keys.jwtSecret, previous };
  }
  if (!keys.jwtSigningKey) throw new Error(`JWT_ALGORITHM=${algorithm} needs JWT_SIGNING_KEY`);
  return { algorithm, signingKey: keys.jwtSigningKey, previous };
}
