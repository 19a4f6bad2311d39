/**
 * Device-bound trust in the browser (SPEC §5.5, docs/trust-model.md).
 *
 * At "Trust this device" the page makes an ECDSA P-256 key pair whose
 * private half is NOT extractable (`extractable: false`): script on this
 * origin can ask the browser to sign with it, but no script, extension API
 * or "export cookies" tool can read the key out. The CryptoKeyPair object is
 * kept in IndexedDB (structured clone keeps it non-extractable); only the
 * public JWK goes to the server. At sign-in the page fetches a single-use
 * challenge and sends `x-device-proof: <challenge>.<signature>` with the
 * login, invisibly. A copied device cookie is then worthless without this
 * browser profile's key store.
 *
 * One key per account (keyed by the lower-cased email) so two accounts that
 * trust the same browser do not overwrite each other's key.
 *
 * Fallback: where WebCrypto or IndexedDB is unavailable (old browsers,
 * some private modes), `createDeviceKey` answers null and the device is
 * trusted the plain way (the devices page then shows "not bound to this
 * browser"). Nothing here ever blocks a sign-in: any failure means "no
 * proof", and the server asks for a code.
 */

const DB_NAME = 'trusted-devices';
const STORE = 'device-keys';
const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNATURE = { name: 'ECDSA', hash: 'SHA-256' };

const keyId = (email) => `key:${String(email).trim().toLowerCase()}`;

/** True when this browser can hold a non-extractable key (WebCrypto + IndexedDB). */
export function deviceKeysSupported() {
  return Boolean(globalThis.crypto?.subtle && globalThis.indexedDB);
}

function openStore() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
    request.onblocked = () => reject(new Error('IndexedDB blocked'));
  });
}

async function withStore(mode, work) {
  const db = await openStore();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = work(tx.objectStore(STORE));
      let result;
      request.onsuccess = () => {
        result = request.result;
      };
      tx.oncomplete = () => resolve(result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error ?? new Error('aborted'));
    });
  } finally {
    db.close();
  }
}

/**
 * Makes a key pair for this account on this browser. Returns
 * `{ publicJwk, save }`: send publicJwk with the activation, and call
 * save() once the server accepted it (so a failed activation never
 * replaces a key another trusted device of this account still uses).
 * Null when the browser cannot hold such a key.
 */
export async function createDeviceKey(email) {
  if (!deviceKeysSupported()) return null;
  try {
    // Probe IndexedDB first: a private mode may have the API but refuse to store.
    await withStore('readonly', (store) => store.count());
    const pair = await crypto.subtle.generateKey(ALGORITHM, false, ['sign', 'verify']);
    const { kty, crv, x, y } = await crypto.subtle.exportKey('jwk', pair.publicKey);
    return {
      publicJwk: { kty, crv, x, y },
      save: () => withStore('readwrite', (store) => store.put(pair, keyId(email))).then(() => true, () => false),
    };
  } catch {
    return null;
  }
}

/** The x-device-proof header for a sign-in as `email`, or undefined when this browser holds no key for it. */
export async function deviceProof(email, fetchChallenge) {
  if (!deviceKeysSupported() || !email) return undefined;
  try {
    const pair = await withStore('readonly', (store) => store.get(keyId(email)));
    if (!pair?.privateKey) return undefined;
    const { challenge } = await fetchChallenge();
    const signature = await crypto.subtle.sign(SIGNATURE, pair.privateKey, new TextEncoder().encode(challenge));
    return `${challenge}.${base64url(new Uint8Array(signature))}`;
  } catch {
    return undefined;
  }
}

/**
 * The proof for a passwordless (passkey) sign-in, where no email is typed:
 * when this browser holds exactly one account's key, sign with it (with
 * several, which account signs in is only known afterwards: no proof, and a
 * key-bound device is then offered to be trusted again).
 */
export async function deviceProofForOnlyKey(fetchChallenge) {
  if (!deviceKeysSupported()) return undefined;
  try {
    const keys = await withStore('readonly', (store) => store.getAllKeys());
    if (!Array.isArray(keys) || keys.length !== 1) return undefined;
    return await deviceProof(String(keys[0]).replace(/^key:/, ''), fetchChallenge);
  } catch {
    return undefined;
  }
}

function base64url(bytes) {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
