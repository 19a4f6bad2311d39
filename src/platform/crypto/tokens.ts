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
import { createHash, randomBytes, randomUUID } from 'node:crypto';

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

let lastMs = 0;
let counter = 0;
/**
 * UUIDv7 (RFC 9562): 48-bit millisecond time, then a 12-bit counter that
 * orders ids made in the same millisecond by this process, then random bits.
 * Used for events so that "newest first" is stable under a frozen test clock.
 */
export function newTimeOrderedId(nowMs: number): string {
  if (nowMs === lastMs) {
    counter = (counter + 1) & 0xfff;
  } else {
    lastMs = nowMs;
    counter = 0;
  }
  const bytes = randomBytes(16);
  bytes.writeUIntBE(nowMs, 0, 6);
  bytes[6] = 0x70 | (counter >> 8);
  bytes[7] = counter & 0xff;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
