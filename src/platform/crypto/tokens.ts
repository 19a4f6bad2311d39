/**
 * Opaque secret tokens: temporary (MFA challenge), activation, device and
 * refresh tokens, device proof challenges, admin API keys.
 *
 * - 32 bytes (256 bits) from the CSPRNG, base64url, behind a readable prefix
 *   (`tdm_`, `tda_`, `tdd_`, `tdr_`, `tdk_`, `tdp_`, `tdc_`, and `tdv_`, `tdw_`, `tdx_` for mail links) so a leaked token is recognisable and a
 *   token of one kind is never mistaken for another.
 * - Only SHA-256(token) is stored. A plain, unsalted hash is right here: the
 *   input already has 256 bits of entropy, and lookup must be by hash.
 * - Access tokens are JWTs (src/platform/crypto/access-tokens.ts), not these.
 */
import { createHash, randomBytes, randomInt, randomUUID } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';

export const TOKEN_PREFIX = {
  mfaChallenge: 'tdm_',
  activation: 'tda_',
  device: 'tdd_',
  refresh: 'tdr_',
  /** Admin API keys (src/admin): long-lived, revoked by name. */
  admin: 'tdk_',
  /** A passwordless (passkey) sign-in attempt (docs/passkeys.md). */
  passkeyAttempt: 'tdp_',
  // Account email (src/account): only ever in the link of the mail itself.
  emailVerification: 'tdv_',
  passwordReset: 'tdw_',
  report: 'tdx_',
  /** Proof-of-possession challenge (docs/trust-model.md): signed by a device-bound key, single-use, 60 s. */
  deviceChallenge: 'tdc_',
} as const;

export type TokenKind = keyof typeof TOKEN_PREFIX;

export const TOKEN_BYTES = 32;

export function generateToken(kind: TokenKind): string {
  return TOKEN_PREFIX[kind] + randomBytes(TOKEN_BYTES).toString('base64url');
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Cheap shape check before any lookup: wrong prefix or length never reaches the database. */
export function looksLike(kind: TokenKind, token: string): boolean {
  return token.length === TOKEN_PREFIX[kind].length + 43 && token.startsWith(TOKEN_PREFIX[kind]);
}

export const newId = (): string => randomUUID();

const ID_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Whether a client-sent id can be one of ours (a lower-case UUID): anything else is "not found" without a lookup. */
export const isId = (value: string): boolean => ID_SHAPE.test(value);

/** The last id's millisecond and its 32-bit sequence (uuid's own state is tied to Date.now(), not to our clock). */
const v7State = { msecs: Number.NEGATIVE_INFINITY, seq: 0 };
/**
 * UUIDv7 (RFC 9562) from the `uuid` package, at the injected clock's time.
 * Ids made in the same millisecond by this process are ordered by uuid's
 * 32-bit sequence (random start, +1 per id), so "newest first" is stable under
 * a frozen test clock. A later millisecond starts a fresh sequence, and so
 * does an earlier one (a test clock set back): the id keeps the time it is
 * given, so ids order by time first, as the events' (user_id, id) index needs.
 */
export function newTimeOrderedId(nowMs: number): string {
  if (nowMs === v7State.msecs) {
    v7State.seq += 1; // starts below 2^31, so 2^31 ids fit in one millisecond before the 32 bits run out
  } else {
    v7State.msecs = nowMs;
    v7State.seq = randomInt(2 ** 31); // a random start, as uuid's own stateful v7() does
  }
  return uuidv7({ msecs: nowMs, seq: v7State.seq });
}
