/**
 * Access tokens: JWT, HS256 (pinned: no other algorithm is accepted, `none`
 * included), key JWT_SECRET (≥ 32 bytes). Claims: iss, aud, sub (user id),
 * jti, sid (the refresh-token family), iat, nbf, exp and `typ: "access"`; the header carries `typ: at+jwt`
 * (RFC 9068). Lifetime ACCESS_TOKEN_TTL_SECONDS (default 15 min). They are
 * stateless: verification is a signature check plus claim checks against the
 * injected clock, with no storage access (the bearer check is a hot path).
 * Consequence, documented in docs/security.md: logout and password change end
 * refresh tokens at once, while an access token already issued lives out its
 * short lifetime.
 */
import { randomUUID } from 'node:crypto';
import { createSigner, createVerifier } from 'fast-jwt';
import type { Clock } from '../clock.ts';

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
}

export interface AccessTokenSubject {
  userId: string;
  sessionId: string;
}

export interface AccessTokens {
  readonly ttlSeconds: number;
  issue(subject: AccessTokenSubject): string;
  /** The subject, or null for anything that is not a currently valid access token. */
  verify(token: string): AccessTokenSubject | null;
}

export function createAccessTokens(options: {
  secret: Buffer;
  issuer: string;
  audience: string;
  ttlSeconds: number;
  clock: Clock;
}): AccessTokens {
  const { secret, issuer, audience, ttlSeconds, clock } = options;
  // iat, nbf and exp are set from the injected clock in issue(); the signer keeps a given iat.
  const sign = createSigner({ key: secret, algorithm: 'HS256', header: { alg: 'HS256', typ: 'at+jwt' } });
  // Time claims are checked below against the injected clock, not Date.now().
  const decode = createVerifier({
    key: secret,
    algorithms: ['HS256'],
    allowedIss: issuer,
    allowedAud: audience,
    checkTyp: 'at+jwt',
    // iss and aud too: fast-jwt checks allowedIss/allowedAud only when the claim is present.
    requiredClaims: ['iss', 'aud', 'sub', 'sid', 'jti', 'exp', 'iat', 'nbf', 'typ'],
    ignoreExpiration: true,
    ignoreNotBefore: true,
    // A client sends one access token many times: remember recent verifications
    // (keyed by a hash of the whole token, so a changed byte is a miss). Time claims are
    // checked on every call below, so a cached token still expires on time.
    // Sized above the working set of live tokens one instance sees (an LRU smaller
    // than a rotating working set never hits and only adds insert/evict work):
    // 25,000 entries ≈ 11 MB at most (docs/performance.md, issue 11).
    cache: 25_000,
  });

  return {
    ttlSeconds,
    issue({ userId, sessionId }) {
      const now = Math.floor(clock.now() / 1000);
      const claims: AccessTokenClaims = {
        sub: userId,
        sid: sessionId,
        jti: randomUUID(),
        iat: now,
        nbf: now,
        exp: now + ttlSeconds,
        iss: issuer,
        aud: audience,
        typ: 'access',
      };
      return sign(claims);
    },
    verify(token) {
      let claims: Partial<AccessTokenClaims>;
      try {
        claims = decode(token) as Partial<AccessTokenClaims>;
      } catch {
        return null;
      }
      const now = clock.now() / 1000;
      if (claims.typ !== 'access' || typeof claims.sub !== 'string' || typeof claims.sid !== 'string') return null;
      if (typeof claims.exp !== 'number' || claims.exp <= now) return null;
      if (typeof claims.nbf !== 'number' || claims.nbf > now + 5) return null;
      return { userId: claims.sub, sessionId: claims.sid };
    },
  };
}
