/**
 * Device-bound keys (docs/trust-model.md): the public half of a device's ES256 key,
 * and the proof of possession a login carries.
 *
 * Keys: EC P-256 only, given as a public JWK. A JWK with a private part
 * (`d`) is refused, never stored; any other shape (another curve or key
 * type, coordinates of the wrong length, a point not on the curve, an
 * `alg`/`use`/`key_ops` that is not ES256 verification) is refused too.
 * What is stored is the normalised JWK {kty, crv, x, y} and nothing else.
 * Verification uses Node's WebCrypto (no hand-written ECDSA); the
 * signature is IEEE P1363 (r||s, 64 bytes), what WebCrypto produces.
 *
 * Proof: `x-device-proof: <challenge>.<base64url signature>`, where the
 * signature is over the UTF-8 bytes of the challenge string as issued
 * (prefix included). Parsing never throws on client input: a malformed
 * header is a failed proof (MFA required), never a 500.
 *
 * Threats: a copied device cookie without the private key (the browser's
 * key is non-extractable); a replayed proof (challenges are single-use and
 * live 60 s: src/features/devices/devices.service.ts consumes them); a client that
 * smuggles a private key to us (refused, so we never hold one).
 */
import { createHash, webcrypto } from 'node:crypto';
import { AppError } from '../errors.ts';
import { looksLike } from './tokens.ts';

const { subtle } = webcrypto;

const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const ES256 = { name: 'ECDSA', hash: 'SHA-256' } as const;
/** 32 bytes of coordinate in unpadded base64url. */
const COORDINATE = /^[A-Za-z0-9_-]{43}$/;
/** 64 bytes of signature (r||s) in unpadded base64url. */
const SIGNATURE = /^[A-Za-z0-9_-]{86}$/;

export interface PublicJwk {
  kty: 'EC';
  crv: 'P-256';
  x: string;
  y: string;
}

const invalidKeyOf = (field: string) => (message: string) =>
  new AppError('INVALID_PUBLIC_KEY', `${field} ${message}`, { details: [{ field, message }] });

/**
 * Checks a client-supplied JWK strictly and imports it (which also checks
 * that the point is on the curve). Returns the normalised JWK as stored.
 */
export async function parsePublicKey(jwk: unknown, field = 'public_key'): Promise<{ jwk: PublicJwk; stored: string; thumbprint: string }> {
  const invalidKey = invalidKeyOf(field);
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) throw invalidKey('must be a JWK object');
  const k = jwk as Record<string, unknown>;
  if ('d' in k) throw invalidKey('must be a public key: a private key (d) is never accepted');
  if (k.kty !== 'EC') throw invalidKey('must have kty "EC"');
  if (k.crv !== 'P-256') throw invalidKey('must have crv "P-256"');
  if (typeof k.x !== 'string' || !COORDINATE.test(k.x)) throw invalidKey('x must be 32 bytes in base64url');
  if (typeof k.y !== 'string' || !COORDINATE.test(k.y)) throw invalidKey('y must be 32 bytes in base64url');
  if (k.alg !== undefined && k.alg !== 'ES256') throw invalidKey('alg, when given, must be "ES256"');
  if (k.use !== undefined && k.use !== 'sig') throw invalidKey('use, when given, must be "sig"');
  if (k.key_ops !== undefined && !(Array.isArray(k.key_ops) && k.key_ops.every((op) => op === 'verify'))) {
    throw invalidKey('key_ops, when given, must be ["verify"]');
  }
  const normalised: PublicJwk = { kty: 'EC', crv: 'P-256', x: k.x, y: k.y };
  try {
    await importPublicKey(normalised);
  } catch {
    throw invalidKey('is not a point on P-256');
  }
  return { jwk: normalised, stored: JSON.stringify(normalised), thumbprint: thumbprintOf(normalised) };
}

/** The RFC 7638 JWK thumbprint (SHA-256, base64url) of a P-256 public key: its required members in lexicographic order. */
export function thumbprintOf(jwk: PublicJwk): string {
  return createHash('sha256').update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y })).digest('base64url');
}

export function importPublicKey(jwk: PublicJwk): Promise<webcrypto.CryptoKey> {
  return subtle.importKey('jwk', jwk, ECDSA_P256, false, ['verify']);
}

/** The parts of an x-device-proof header, or undefined when it is malformed. */
export function parseProof(header: string | undefined): { challenge: string; signature: Buffer } | undefined {
  if (header === undefined) return undefined;
  const dot = header.lastIndexOf('.');
  if (dot < 0) return undefined;
  const challenge = header.slice(0, dot);
  const signature = header.slice(dot + 1);
  if (!looksLike('deviceChallenge', challenge) || !SIGNATURE.test(signature)) return undefined;
  return { challenge, signature: Buffer.from(signature, 'base64url') };
}

/** True when `signature` is a valid ES256 (P1363) signature of `challenge` by the stored key. Never throws. */
export async function verifyProof(storedJwk: string, challenge: string, signature: Buffer): Promise<boolean> {
  try {
    const key = await importPublicKey(JSON.parse(storedJwk) as PublicJwk);
    return await subtle.verify(ES256, key, signature, Buffer.from(challenge, 'utf8'));
  } catch {
    return false;
  }
}
