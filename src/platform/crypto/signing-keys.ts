/**
 * Asymmetric signing keys for access tokens (docs/integration.md): parsing, key ids and
 * the public JWK set.
 *
 * - Lifetime: a key signs from the moment it is JWT_SIGNING_KEY until it is
 *   replaced; it is then still accepted (and published) for as long as the
 *   operator keeps it in JWT_PREVIOUS_KEYS, at least one access-token lifetime.
 * - Storage: the private key lives only in the environment (production) or in
 *   DATA_DIR/keys.json, mode 0600 (development, src/platform/keys.ts). Only public
 *   halves ever leave the process (GET /.well-known/jwks.json).
 * - Threats: algorithm confusion (a token whose `alg` was changed to HS256 and
 *   signed with the public key bytes, or `none`) — each key id is pinned to the
 *   one algorithm its key type allows, so it is refused; a forged `kid` — an
 *   unknown kid is refused, never "try every key"; a leaked old key — removing
 *   it from JWT_PREVIOUS_KEYS ends every token it signed at once.
 *
 * Key ids are the RFC 7638 thumbprint of the public key (or the `kid` a JWK
 * brings with it): stable across restarts and equal on every instance that
 * holds the same key, with no state to share.
 *
 * Parsing is synchronous node:crypto so loadConfig can report a bad key
 * together with every other bad variable; jose is what relying services
 * (examples/relying-service) and the tests use on the published set.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';

export type AsymmetricAlgorithm = 'EdDSA' | 'ES256';
export const ASYMMETRIC_ALGORITHMS: readonly AsymmetricAlgorithm[] = ['EdDSA', 'ES256'];

export interface VerificationKey {
  kid: string;
  alg: AsymmetricAlgorithm;
  publicKey: KeyObject;
  /** The public JWK as published: kty, crv, x (, y), kid, alg, use. */
  jwk: PublicJwk;
}

export interface SigningKey extends VerificationKey {
  privateKey: KeyObject;
}

export interface PublicJwk {
  kty: string;
  crv: string;
  x: string;
  y?: string;
  kid: string;
  alg: AsymmetricAlgorithm;
  use: 'sig';
}

export class KeyFormatError extends Error {}

/** The algorithm a key's type allows: Ed25519 → EdDSA, P-256 → ES256, nothing else. */
function algorithmOf(key: KeyObject): AsymmetricAlgorithm {
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  throw new KeyFormatError('the key must be an Ed25519 (EdDSA) or P-256 (ES256) key');
}

/**
 * RFC 7638: SHA-256 over the required members in lexicographic order, base64url.
 * Written here because jose's calculateJwkThumbprint is async and loadConfig is
 * not; test/config.test.ts checks that the two agree.
 */
export function jwkThumbprint(jwk: JsonWebKey): string {
  const members = jwk.kty === 'EC' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

function describe(publicKey: KeyObject, givenKid?: string): VerificationKey {
  const alg = algorithmOf(publicKey);
  const raw = publicKey.export({ format: 'jwk' });
  const kid = givenKid ?? jwkThumbprint(raw);
  const jwk: PublicJwk = { kty: raw.kty!, crv: raw.crv!, x: raw.x!, ...(raw.y ? { y: raw.y } : {}), kid, alg, use: 'sig' };
  return { kid, alg, publicKey, jwk };
}

/** One key as text: a PEM, a JWK as JSON, or either of them base64-encoded. */
function keyText(raw: string): { pem: string } | { jwk: JsonWebKey & { kid?: string } } {
  const text = raw.trim();
  if (text.startsWith('-----BEGIN')) return { pem: text };
  if (text.startsWith('{')) {
    try {
      return { jwk: JSON.parse(text) };
    } catch {
      throw new KeyFormatError('the JWK is not valid JSON');
    }
  }
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) {
    const decoded = Buffer.from(text, 'base64').toString('utf8').trim();
    if (decoded.startsWith('-----BEGIN') || decoded.startsWith('{')) return keyText(decoded);
  }
  throw new KeyFormatError('expected a PEM, a JWK (JSON) or the base64 of either');
}

/** The current signing key: a private key (PKCS#8 PEM, SEC1 PEM or private JWK). */
export function parseSigningKey(raw: string): SigningKey {
  const text = keyText(raw);
  let privateKey: KeyObject;
  try {
    privateKey = 'pem' in text ? createPrivateKey(text.pem) : createPrivateKey({ key: text.jwk, format: 'jwk' });
  } catch {
    throw new KeyFormatError('it is not a private key (PKCS#8 PEM or a private JWK with "d")');
  }
  const kid = 'jwk' in text && typeof text.jwk.kid === 'string' && text.jwk.kid !== '' ? text.jwk.kid : undefined;
  return { ...describe(createPublicKey(privateKey), kid), privateKey };
}

/** One verification key: a public or a private key (its public half is taken). */
function parseVerificationKey(raw: string | JsonWebKey): VerificationKey {
  const text = typeof raw === 'string' ? keyText(raw) : { jwk: raw as JsonWebKey & { kid?: string } };
  let publicKey: KeyObject;
  try {
    publicKey = 'pem' in text ? createPublicKey(text.pem) : createPublicKey({ key: text.jwk, format: 'jwk' });
  } catch {
    throw new KeyFormatError('it is not a public or private key');
  }
  const kid = 'jwk' in text && typeof text.jwk.kid === 'string' && text.jwk.kid !== '' ? text.jwk.kid : undefined;
  return describe(publicKey, kid);
}

/**
 * JWT_PREVIOUS_KEYS: any number of keys, public or private, as
 * - concatenated PEM blocks,
 * - a JSON array of JWKs (or of PEM strings), or a JWK set `{"keys": [...]}`,
 * - or a comma-separated list of base64-encoded PEMs or JWKs.
 */
export function parseVerificationKeys(raw: string): VerificationKey[] {
  const text = raw.trim();
  if (text === '') return [];
  if (text.startsWith('[') || text.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new KeyFormatError('not valid JSON');
    }
    const list = Array.isArray(parsed) ? parsed : (parsed as { keys?: unknown }).keys ?? [parsed];
    if (!Array.isArray(list)) throw new KeyFormatError('"keys" must be an array');
    return list.map((item) => parseVerificationKey(item as string | JsonWebKey));
  }
  if (text.includes('-----BEGIN')) {
    const blocks = text.match(/-----BEGIN ([A-Z ]+)-----[\s\S]+?-----END \1-----/g) ?? [];
    return blocks.map((block) => parseVerificationKey(block));
  }
  return text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')
    .map((item) => parseVerificationKey(item));
}

/** A fresh key pair, as a PKCS#8 PEM (development keys, tests). */
export function generateSigningKeyPem(alg: AsymmetricAlgorithm): string {
  const { privateKey } =
    alg === 'EdDSA' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

/** The document of GET /.well-known/jwks.json: the current key first, then the previous ones, no duplicates. */
export function publicJwks(current: VerificationKey | undefined, previous: readonly VerificationKey[]): { keys: PublicJwk[] } {
  const seen = new Set<string>();
  const keys: PublicJwk[] = [];
  for (const key of [...(current ? [current] : []), ...previous]) {
    if (seen.has(key.kid)) continue;
    seen.add(key.kid);
    keys.push(key.jwk);
  }
  return { keys };
}
