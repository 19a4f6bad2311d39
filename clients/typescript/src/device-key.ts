/**
 * Device-bound keys (docs/trust-model.md): the client's side of the proof of possession.
 *
 * A device token is a bearer secret: whoever copies it holds the trust. When
 * the device is trusted, the client makes an ECDSA P-256 key pair and sends
 * only the public JWK with the activation; at later logins it signs a fresh
 * single-use challenge (`POST /auth/device-challenge`) and sends
 * `x-device-proof: <challenge>.<base64url signature>`. The service then skips
 * MFA only for a request that holds the token AND the key.
 *
 * What the service checks (src/platform/crypto/device-keys.ts): the JWK is EC P-256
 * with 32-byte x and y and no private part (`d` is refused); the signature
 * is ES256 over the UTF-8 bytes of the challenge exactly as issued (prefix
 * included), in IEEE P1363 form (r||s, 64 bytes: what WebCrypto produces,
 * not DER), base64url without padding.
 *
 * WebCrypto only (`globalThis.crypto.subtle`: browsers in a secure context,
 * Node 20), no hand-written ECDSA. The private key is made non-extractable
 * unless the key store says it must serialise it: script can then ask for
 * signatures but nothing can read the key out.
 */

type Subtle = typeof globalThis.crypto.subtle;
/** A WebCrypto CryptoKey (the DOM's or Node's: this module type-checks with either). */
export type DeviceCryptoKey = Parameters<Subtle['sign']>[1];
export interface DeviceKeyPair {
  privateKey: DeviceCryptoKey;
  publicKey: DeviceCryptoKey;
}

/** The public half sent as `public_key` with `POST /devices/activate`: only these four members are stored. */
// A type alias, not an interface: it must fit the generated body type's open JWK object (index signature).
export type PublicDeviceJwk = {
  kty: 'EC';
  crv: 'P-256';
  x: string;
  y: string;
};

/**
 * Where the client keeps device keys, one per account (the lower-cased email),
 * so two accounts trusting the same device do not overwrite each other's key.
 *
 * Browsers: `indexedDbDeviceKeyStore()` (./indexeddb-device-keys.ts, the
 * client's default where IndexedDB exists) keeps the CryptoKeyPair object
 * itself (a structured clone keeps it non-extractable). Stores that can only
 * hold bytes (a file, a keychain entry) set `needsExtractableKey` and export
 * the private key themselves, which gives up the non-extractable guarantee.
 *
 * `get` may throw: the client then sends no proof (the service asks for
 * MFA), and before binding a new key it treats a throwing `get` as a store
 * that cannot keep one and trusts the device without a key.
 */
export interface DeviceKeyStore {
  get(account: string): DeviceKeyPair | undefined | Promise<DeviceKeyPair | undefined>;
  set(account: string, pair: DeviceKeyPair): void | Promise<void>;
  readonly needsExtractableKey?: boolean;
}

/**
 * Where the client keeps the key its session is bound to (docs/sessions.md,
 * "Bound sessions"): one per client (a browser holds one session, in its
 * refresh cookie). A fresh key is made at every sign-in, its public JWK goes
 * with it as `session_key`, and refreshes sign the service's challenge with
 * it (`x-session-proof`). Browsers: IndexedDB (survives reloads, other tabs,
 * a restart of a persistent profile); Node: memory.
 */
export interface SessionKeyStore {
  get(): DeviceKeyPair | undefined | Promise<DeviceKeyPair | undefined>;
  set(pair: DeviceKeyPair | undefined): void | Promise<void>;
}

/** A session key held for the life of this client object (Node's default). */
export function memorySessionKeyStore(): SessionKeyStore {
  let current: DeviceKeyPair | undefined;
  return { get: () => current, set: (pair) => void (current = pair) };
}

/** Keys held for the life of this client object (the default). */
export function memoryDeviceKeyStore(): DeviceKeyStore {
  const pairs = new Map<string, DeviceKeyPair>();
  return { get: (account) => pairs.get(account), set: (account, pair) => void pairs.set(account, pair) };
}

/** The store's key for an account: the service trims and lower-cases emails, so "Ann@X.com " and "ann@x.com" are one account. */
export const deviceKeyAccount = (email: string): string => email.trim().toLowerCase();

const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const ES256 = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** True where WebCrypto is available (not on plain-http origins other than localhost). */
export function deviceKeysSupported(): boolean {
  return Boolean(globalThis.crypto?.subtle);
}

/** A new key pair and its public JWK. The private key is non-extractable unless `extractable`. */
export async function createDeviceKey(extractable = false): Promise<{ pair: DeviceKeyPair; publicJwk: PublicDeviceJwk }> {
  const subtle = globalThis.crypto.subtle;
  const pair = (await subtle.generateKey(ECDSA_P256, extractable, ['sign', 'verify'])) as DeviceKeyPair;
  // The public key is always exportable; keep only what the service stores (no alg/key_ops/ext to get wrong).
  const { x, y } = (await subtle.exportKey('jwk', pair.publicKey)) as { x?: string; y?: string };
  if (typeof x !== 'string' || typeof y !== 'string') throw new Error('WebCrypto exported a JWK without coordinates');
  return { pair, publicJwk: { kty: 'EC', crv: 'P-256', x, y } };
}

/** The x-device-proof header value: the challenge, a dot, the base64url P1363 ES256 signature of its UTF-8 bytes. */
export async function signChallenge(pair: DeviceKeyPair, challenge: string): Promise<string> {
  const signature = await globalThis.crypto.subtle.sign(ES256, pair.privateKey, new TextEncoder().encode(challenge));
  return `${challenge}.${base64url(new Uint8Array(signature))}`;
}

function base64url(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
