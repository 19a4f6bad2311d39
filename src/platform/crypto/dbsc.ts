/**
 * Device Bound Session Credentials (W3C webappsec DBSC draft, docs/sessions.md):
 * the pieces of the protocol that know no feature — the structured-field
 * strings of its headers, the DBSC proof JWT and the session keys it carries.
 *
 * Headers (RFC 9651 structured fields): `Secure-Session-Response` and
 * `Sec-Secure-Session-Id` are sf-strings (parameters ignored);
 * `Secure-Session-Skipped` is a list of tokens with a `session_identifier`
 * parameter. `Secure-Session-Registration` and `Secure-Session-Challenge`
 * are written by `registrationHeader` / `challengeHeader`.
 *
 * Proof JWT: header `{typ: "dbsc+jwt", alg: "ES256" | "RS256", jwk?}` (the
 * jwk only at registration), payload `{jti: <challenge>, authorization?}`,
 * signed over `<header>.<payload>`: ES256 is ECDSA P-256 with SHA-256 (IEEE
 * P1363 r||s, 64 bytes), RS256 is RSASSA-PKCS1-v1_5 with SHA-256 (as many
 * bytes as the modulus). The draft's third algorithm, "none" (a session
 * without a key), is neither offered nor accepted: without a key there is
 * nothing a copied cookie jar lacks.
 *
 * Keys (lifetime: the session's; stored as the normalised public JWK and its
 * RFC 7638 thumbprint on the session row): ES256 keys get the checks of a
 * device key (device-keys.ts). RS256 keys: kty RSA, no private member
 * (d, p, q, dp, dq, qi, oth), a modulus of 2048 to 4096 bits without leading
 * zero bytes, public exponent 65537 (what TPMs and platform key stores
 * make), alg/use/key_ops if given must say RS256 verification. Threats: a
 * weak key (short modulus) that a thief could factor, a huge one that makes
 * each verification expensive (the 4096-bit cap), a client smuggling a
 * private key (refused, never stored), an algorithm confusion between the
 * JWT and its key (the JWT's alg must be the key's; a refresh proof in
 * another algorithm than the session key's does not verify).
 *
 * Parsing never throws on client input: anything malformed is `undefined`
 * (or a sentence saying what is wrong, for keys).
 */
import { webcrypto } from 'node:crypto';
import { createHash } from 'node:crypto';
import { AppError } from '../errors.ts';
import { importPublicKey, parsePublicKey, type PublicJwk } from './device-keys.ts';

export type DbscAlgorithm = 'ES256' | 'RS256';
/** The algorithms offered in Secure-Session-Registration, in order of preference. */
export const DBSC_ALGORITHMS: readonly DbscAlgorithm[] = ['ES256', 'RS256'];
/** Unpadded base64url of the signature: 64 bytes for ES256; 256 to 512 bytes (2048- to 4096-bit modulus) for RS256. */
const SIGNATURE: Record<DbscAlgorithm, RegExp> = { ES256: /^[A-Za-z0-9_-]{86}$/, RS256: /^[A-Za-z0-9_-]{342,683}$/ };
export const RSA_MIN_BITS = 2048;
export const RSA_MAX_BITS = 4096;
const RSASSA = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as const;
const RSA_PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth'];

export interface RsaPublicJwk {
  kty: 'RSA';
  n: string;
  e: string;
}
export type DbscPublicJwk = PublicJwk | RsaPublicJwk;
const SEGMENT = /^[A-Za-z0-9_-]{1,4096}$/;

/** The value of an sf-string header ("..." with \\" and \\\\ escapes), parameters ignored; undefined if it is not one. */
export function parseSfString(header: string | string[] | undefined): string | undefined {
  if (typeof header !== 'string') return undefined;
  const text = header.trim();
  if (!text.startsWith('"') || text.length > 8192) return undefined;
  let out = '';
  for (let i = 1; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\') {
      const next = text[i + 1];
      if (next !== '"' && next !== '\\') return undefined;
      out += next;
      i++;
    } else if (c === '"') {
      const rest = text.slice(i + 1).trim();
      return rest === '' || rest.startsWith(';') ? out : undefined;
    } else {
      const code = c.charCodeAt(0);
      if (code < 0x20 || code > 0x7e) return undefined;
      out += c;
    }
  }
  return undefined;
}

const sfString = (value: string) => `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

/** `Secure-Session-Registration: (ES256 RS256);path="…";challenge="…"` (the browser picks an algorithm it supports). */
export const registrationHeader = (path: string, challenge: string) => `(${DBSC_ALGORITHMS.join(' ')});path=${sfString(path)};challenge=${sfString(challenge)}`;

/** `Secure-Session-Challenge: "<challenge>";id="<session id>"`. */
export const challengeHeader = (challenge: string, sessionId: string) => `${sfString(challenge)};id=${sfString(sessionId)}`;

/** The draft's only reasons for a skipped refresh; any other token is dropped. */
const SKIPPED_REASONS = new Set(['unreachable', 'server_error', 'quota_exceeded']);

/** The reasons of a `Secure-Session-Skipped` header (the draft's tokens only), at most 8; [] when absent or malformed. */
export function parseSkipped(header: string | string[] | undefined): string[] {
  if (typeof header !== 'string' || header.length > 1024) return [];
  return header
    .split(',')
    .map((item) => item.trim().split(';')[0]!.trim())
    .filter((token) => SKIPPED_REASONS.has(token))
    .slice(0, 8);
}

export interface DbscProof {
  alg: DbscAlgorithm;
  jti: string;
  authorization?: string | undefined;
  /** The header's jwk, as sent (registration only). */
  jwk?: unknown;
  signingInput: string;
  signature: Buffer;
}

/** Splits and decodes a DBSC proof JWT; undefined when it is not one (wrong typ/alg, bad JSON, no jti, a signature of the wrong size for its alg). */
export function parseDbscProof(jwt: string | undefined): DbscProof | undefined {
  if (jwt === undefined) return undefined;
  const parts = jwt.split('.');
  if (parts.length !== 3 || !SEGMENT.test(parts[0]!) || !SEGMENT.test(parts[1]!)) return undefined;
  try {
    const header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as Record<string, unknown>;
    const payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
    if (header === null || payload === null || typeof header !== 'object' || typeof payload !== 'object') return undefined;
    if (header.typ !== 'dbsc+jwt' || (header.alg !== 'ES256' && header.alg !== 'RS256') || typeof payload.jti !== 'string') return undefined;
    if (!SIGNATURE[header.alg].test(parts[2]!)) return undefined;
    if (payload.authorization !== undefined && typeof payload.authorization !== 'string') return undefined;
    return {
      alg: header.alg,
      jti: payload.jti,
      authorization: payload.authorization,
      jwk: header.jwk,
      signingInput: `${parts[0]}.${parts[1]}`,
      signature: Buffer.from(parts[2]!, 'base64url'),
    };
  } catch {
    return undefined;
  }
}

/**
 * The registration JWT's public key, checked for its algorithm (see the
 * header comment), normalised, with its RFC 7638 thumbprint; or a sentence
 * saying what is wrong with it.
 */
export async function parseDbscKey(alg: DbscAlgorithm, jwk: unknown): Promise<{ jwk: DbscPublicJwk; stored: string; thumbprint: string } | { problem: string }> {
  if (alg === 'ES256') {
    try {
      return await parsePublicKey(jwk, 'jwk');
    } catch (error) {
      return { problem: error instanceof AppError ? `An ES256 registration JWT's ${error.message}.` : 'An ES256 registration JWT must carry a public P-256 JWK.' };
    }
  }
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) return { problem: 'An RS256 registration JWT must carry a public RSA JWK in its header.' };
  const k = jwk as Record<string, unknown>;
  if (RSA_PRIVATE_MEMBERS.some((m) => m in k)) return { problem: 'The jwk must be a public key: a private RSA member (d, p, q, dp, dq, qi, oth) is never accepted.' };
  if (k.kty !== 'RSA') return { problem: 'An RS256 registration JWT needs a jwk with kty "RSA".' };
  if (typeof k.n !== 'string' || !/^[A-Za-z0-9_-]{1,700}$/.test(k.n)) return { problem: 'The RSA jwk needs n, the modulus, in base64url.' };
  const modulus = Buffer.from(k.n, 'base64url');
  const bits = modulus.length * 8;
  if (modulus.length === 0 || modulus[0] === 0) return { problem: 'The RSA modulus n must have no leading zero bytes.' };
  if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS) return { problem: `The RSA modulus must be ${RSA_MIN_BITS} to ${RSA_MAX_BITS} bits (it is ${bits}).` };
  if ((modulus[modulus.length - 1]! & 1) === 0) return { problem: 'The RSA modulus n must be odd.' };
  if (k.e !== 'AQAB') return { problem: 'The RSA public exponent e must be 65537 ("AQAB").' };
  if (k.alg !== undefined && k.alg !== 'RS256') return { problem: 'The jwk\'s alg, when given, must be "RS256".' };
  if (k.use !== undefined && k.use !== 'sig') return { problem: 'The jwk\'s use, when given, must be "sig".' };
  if (k.key_ops !== undefined && !(Array.isArray(k.key_ops) && k.key_ops.every((op) => op === 'verify'))) return { problem: 'The jwk\'s key_ops, when given, must be ["verify"].' };
  const normalised: RsaPublicJwk = { kty: 'RSA', n: k.n, e: k.e };
  try {
    await webcrypto.subtle.importKey('jwk', normalised, RSASSA, false, ['verify']);
  } catch {
    return { problem: 'The RSA jwk is not a usable public key.' };
  }
  const thumbprint = createHash('sha256').update(JSON.stringify({ e: normalised.e, kty: 'RSA', n: normalised.n })).digest('base64url');
  return { jwk: normalised, stored: JSON.stringify(normalised), thumbprint };
}

/**
 * True when the proof's signature verifies with `jwk`, in the proof's
 * algorithm, and that algorithm is the key's (ES256 for EC, RS256 for RSA):
 * a proof in another algorithm than the key's never verifies. Never throws.
 */
export async function verifyDbscProof(proof: DbscProof, jwk: DbscPublicJwk): Promise<boolean> {
  try {
    const data = Buffer.from(proof.signingInput, 'utf8');
    if (proof.alg === 'ES256' && jwk.kty === 'EC') {
      return await webcrypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, await importPublicKey(jwk), proof.signature, data);
    }
    if (proof.alg === 'RS256' && jwk.kty === 'RSA') {
      const key = await webcrypto.subtle.importKey('jwk', { kty: 'RSA', n: jwk.n, e: jwk.e }, RSASSA, false, ['verify']);
      return await webcrypto.subtle.verify(RSASSA, key, proof.signature, data);
    }
    return false;
  } catch {
    return false;
  }
}
