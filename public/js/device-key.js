/**
 * Device-bound trust in the web app (docs/trust-model.md): what
 * the app does with the TypeScript client's key store and WebCrypto
 * primitives (vendor/trusted-devices-browser.js, generated from
 * clients/typescript/src/). The key pair, its non-extractable private half
 * and the IndexedDB layout are the client's (indexeddb-device-keys.ts); this
 * module only decides when to make, keep and use a key.
 *
 * At "Trust this device" a key is made and its public JWK goes with the
 * activation; at sign-in a single-use challenge is signed and sent as
 * `x-device-proof`, invisibly. A copied device cookie is then worthless
 * without this browser profile's key store.
 *
 * Fallback: where WebCrypto or IndexedDB is unavailable (old browsers, some
 * private modes), `createDeviceKey` answers null and the device is trusted
 * the plain way (the devices page then shows "not bound to this browser").
 * Nothing here ever blocks a sign-in: any failure means "no proof", and the
 * server asks for a code.
 */
import {
  createDeviceKey as newDeviceKey,
  deviceKeyAccount,
  deviceKeysSupported,
  indexedDbAvailable,
  indexedDbDeviceKeyStore,
  signChallenge,
} from './vendor/trusted-devices-browser.js';

const keys = indexedDbDeviceKeyStore();
const supported = () => deviceKeysSupported() && indexedDbAvailable();

/**
 * Why this browser cannot hold a device key here, for the trust prompt to say
 * so before the person decides: 'insecure' on a page that is not a secure
 * context (plain http on an address other than localhost: no WebCrypto, no
 * passkeys either), 'unsupported' when the browser lacks WebCrypto or a usable
 * IndexedDB (some private modes), null when a key can be made.
 * @returns {Promise<'insecure'|'unsupported'|null>}
 */
export async function deviceKeyProblem() {
  if (!window.isSecureContext) return 'insecure';
  if (!supported()) return 'unsupported';
  try {
    // The same probe createDeviceKey makes: a private mode may have the API but refuse to store.
    await keys.accounts();
    return null;
  } catch {
    return 'unsupported';
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
  if (!supported()) return null;
  const account = deviceKeyAccount(String(email));
  try {
    // Probe IndexedDB first: a private mode may have the API but refuse to store.
    await keys.get(account);
    const { pair, publicJwk } = await newDeviceKey();
    return { publicJwk, save: () => keys.set(account, pair).then(() => true, () => false) };
  } catch {
    return null;
  }
}

/** The x-device-proof header for a sign-in as `email`, or undefined when this browser holds no key for it. */
export async function deviceProof(email, fetchChallenge) {
  if (!supported() || !email) return undefined;
  try {
    const pair = await keys.get(deviceKeyAccount(email));
    if (!pair) return undefined;
    const { challenge } = await fetchChallenge();
    return await signChallenge(pair, challenge);
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
  if (!supported()) return undefined;
  try {
    const accounts = await keys.accounts();
    return accounts.length === 1 ? await deviceProof(accounts[0], fetchChallenge) : undefined;
  } catch {
    return undefined;
  }
}
