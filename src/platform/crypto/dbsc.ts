/**
 * Device Bound Session Credentials (W3C webappsec DBSC draft, docs/sessions.md):
 * the pieces of the protocol that know no feature — the structured-field
 * strings of its headers and the DBSC proof JWT.
 *
 * Headers (RFC 9651 structured fields): `Secure-Session-Response` and
 * `Sec-Secure-Session-Id` are sf-strings (parameters ignored);
 * `Secure-Session-Skipped` is a list of tokens with a `session_identifier`
 * parameter. `Secure-Session-Registration` and `Secure-Session-Challenge`
 * are written by `registrationHeader` / `challengeHeader`.
 *
 * Proof JWT: header `{typ: "dbsc+jwt", alg: "ES256", jwk?}` (the jwk only at
 * registration), payload `{jti: <challenge>, authorization?}`, an ES256
 * signature (P1363, 64 bytes) over `<header>.<payload>`. Only ES256 is
 * offered and accepted (the draft also names RS256 and "none"). Parsing never
 * throws on client input: anything malformed is `undefined`.
 */
import { webcrypto } from 'node:crypto';
import { importPublicKey, type PublicJwk } from './device-keys.ts';

const SIGNATURE = /^[A-Za-z0-9_-]{86}$/;
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

/** `Secure-Session-Registration: (ES256);path="…";challenge="…"`. */
export const registrationHeader = (path: string, challenge: string) => `(ES256);path=${sfString(path)};challenge=${sfString(challenge)}`;

/** `Secure-Session-Challenge: "<challenge>";id="<session id>"`. */
export const challengeHeader = (challenge: string, sessionId: string) => `${sfString(challenge)};id=${sfString(sessionId)}`;

/** The reasons of a `Secure-Session-Skipped` header (tokens), at most 8; [] when absent or malformed. */
export function parseSkipped(header: string | string[] | undefined): string[] {
  if (typeof header !== 'string' || header.length > 1024) return [];
  return header
    .split(',')
    .map((item) => item.trim().split(';')[0]!.trim())
    .filter((token) => /^[a-z_]{1,32}$/.test(token))
    .slice(0, 8);
}

export interface DbscProof {
  jti: string;
  authorization?: string | undefined;
  /** The header's jwk, as sent (registration only). */
  jwk?: unknown;
  signingInput: string;
  signature: Buffer;
}

/** Splits and decodes a DBSC proof JWT; undefined when it is not one (wrong typ/alg, bad JSON, no jti, bad signature size). */
export function parseDbscProof(jwt: string | undefined): DbscProof | undefined {
  if (jwt === undefined) return undefined;
  const parts = jwt.split('.');
  if (parts.length !== 3 || !SEGMENT.test(parts[0]!) || !SEGMENT.test(parts[1]!) || !SIGNATURE.test(parts[2]!)) return undefined;
  try {
    const header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as Record<string, unknown>;
    const payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
    if (header === null || payload === null || typeof header !== 'object' || typeof payload !== 'object') return undefined;
    if (header.typ !== 'dbsc+jwt' || header.alg !== 'ES256' || typeof payload.jti !== 'string') return undefined;
    if (payload.authorization !== undefined && typeof payload.authorization !== 'string') return undefined;
    return { jti: payload.jti, authorization: payload.authorization, jwk: header.jwk, signingInput: `${parts[0]}.${parts[1]}`, signature: Buffer.from(parts[2]!, 'base64url') };
  } catch {
    return undefined;
  }
}

/** True when the proof's ES256 signature verifies with `jwk`. Never throws. */
export async function verifyDbscProof(proof: DbscProof, jwk: PublicJwk): Promise<boolean> {
  try {
    const key = await importPublicKey(jwk);
    return await webcrypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, key, proof.signature, Buffer.from(proof.signingInput, 'utf8'));
  } catch {
    return false;
  }
}
