/**
 * A DeviceKeyStore over IndexedDB: where a browser keeps its device keys
 * (docs/trust-model.md, ./device-key.ts) so they live as long as the device cookie.
 *
 * The CryptoKeyPair object itself is stored, never key bytes: IndexedDB
 * keeps it by structured clone, which preserves `extractable: false`, so
 * script on this origin can still sign with the private key but nothing can
 * read it out.
 *
 * The layout is the one the service's web app has used since device keys
 * came in (its former public/js/device-key.js): database `trusted-devices`
 * version 1, object store `device-keys` with out-of-line keys, one record per
 * account under `key:<trimmed, lower-cased email>`, the value the
 * CryptoKeyPair as WebCrypto made it. Keys already in a browser therefore
 * keep working, and a client on the service's own origin shares them with
 * the web app. Changing any of these names or the version strands every
 * stored key: the device then meets MFA, `proof_failed` and an alert.
 *
 * No DOM typings: IndexedDB is reached through globalThis, so this module
 * type-checks and imports anywhere (Node has no indexedDB: the client keeps
 * keys in memory there).
 */
import type { DeviceKeyPair, DeviceKeyStore, SessionKeyStore } from './device-key.ts';

export const DEVICE_KEY_DATABASE = { name: 'trusted-devices', version: 1, objectStore: 'device-keys' } as const;

const RECORD_PREFIX = 'key:';
/** The record key of an account (an account is already trimmed and lower-cased: deviceKeyAccount). */
export const deviceKeyRecord = (account: string): string => `${RECORD_PREFIX}${account}`;

/** A DeviceKeyStore that also lists its accounts (a passwordless sign-in has no email to look up). */
export interface IndexedDbDeviceKeyStore extends DeviceKeyStore {
  accounts(): Promise<string[]>;
}

type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any

/** True where this global scope has IndexedDB (a browser window or worker; not Node). */
export function indexedDbAvailable(): boolean {
  return Boolean((globalThis as Any).indexedDB);
}

/**
 * Device keys in this origin's IndexedDB. Every call opens the database and
 * closes it again: no connection is held open that would block another tab
 * (or a later version) from upgrading it. Errors (no IndexedDB, a private
 * mode that refuses storage, a blocked open) reject; the client treats a
 * failed read as "no key" and a failed probe as "trust without a key".
 */
export function indexedDbDeviceKeyStore(): IndexedDbDeviceKeyStore {
  return {
    async get(account) {
      const value: Any = await withStore('readonly', (store) => store.get(deviceKeyRecord(account)));
      // Anything but a key pair (a foreign record) is no key: no proof, and the server asks for a code.
      return value?.privateKey && value?.publicKey ? (value as DeviceKeyPair) : undefined;
    },
    async set(account, pair) {
      // Resolves once the transaction committed, so "saved" means on disk as far as the browser says.
      await withStore('readwrite', (store) => store.put(pair, deviceKeyRecord(account)));
    },
    async accounts() {
      const keys: unknown = await withStore('readonly', (store) => store.getAllKeys());
      return (Array.isArray(keys) ? keys : [])
        .filter((key): key is string => typeof key === 'string' && key.startsWith(RECORD_PREFIX))
        .map((key) => key.slice(RECORD_PREFIX.length));
    },
  };
}

/** The record of the session key, beside the device keys (`accounts()` lists only `key:` records). */
export const SESSION_KEY_RECORD = 'session:current';

/** The session key of this browser profile in IndexedDB: one, for the session of the td_refresh cookie. */
export function indexedDbSessionKeyStore(): SessionKeyStore {
  return {
    async get() {
      const value: Any = await withStore('readonly', (store) => store.get(SESSION_KEY_RECORD));
      return value?.privateKey && value?.publicKey ? (value as DeviceKeyPair) : undefined;
    },
    async set(pair) {
      await withStore('readwrite', (store) => (pair === undefined ? store.delete(SESSION_KEY_RECORD) : store.put(pair, SESSION_KEY_RECORD)));
    },
  };
}

function open(): Promise<Any> {
  return new Promise((resolve, reject) => {
    const request = (globalThis as Any).indexedDB.open(DEVICE_KEY_DATABASE.name, DEVICE_KEY_DATABASE.version);
    request.onupgradeneeded = () => request.result.createObjectStore(DEVICE_KEY_DATABASE.objectStore);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
    request.onblocked = () => reject(new Error('IndexedDB blocked'));
  });
}

/** Runs one request in its own transaction; resolves with its result once the transaction completed. */
async function withStore(mode: 'readonly' | 'readwrite', work: (store: Any) => Any): Promise<unknown> {
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(DEVICE_KEY_DATABASE.objectStore, mode);
      const request = work(tx.objectStore(DEVICE_KEY_DATABASE.objectStore));
      let result: unknown;
      request.onsuccess = () => {
        result = request.result;
      };
      tx.oncomplete = () => resolve(result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
    });
  } finally {
    db.close();
  }
}
