/**
 * The app's session, over the TypeScript client (clients/typescript, loaded
 * as vendor/trusted-devices-browser.js): this module only says where the
 * session is kept and who is signed in; every request goes through the
 * client, which owns the HTTP side.
 *
 * - `api(method, path, {body, auth, headers})` is the client's `request()`:
 *   success envelopes resolve to `data` (204 → null); error envelopes reject
 *   with a TrustedDevicesError carrying `status`, `code`, `message`,
 *   `details`, `requestId` and `retryAfter` (network failures: code
 *   NETWORK_ERROR), which errors.js turns into the app's wording.
 * - Cookie-refresh mode: the refresh token is never visible to script. The
 *   client sends `x-refresh-cookie: 1` on login, MFA verify, passkey sign-in
 *   and refresh, and the server keeps the token in the HttpOnly,
 *   SameSite=Strict `td_refresh` cookie on Path=/api/v1/auth. An
 *   authenticated call answered 401 UNAUTHORIZED is retried once after a
 *   refresh; refreshes are serialised in the page and across tabs (Web
 *   Locks). When the refresh fails the session has ended: the handler set
 *   with setSessionExpiredHandler runs.
 * - The access token (15 min) is kept in sessionStorage (a reload keeps it);
 *   a second tab gets its own from the cookie (`restoreSession`).
 *   localStorage only keeps a "signed in" hint (no secret) so a signed-out
 *   page does not ask for a refresh at every load. The device token is the
 *   HttpOnly `td_device` cookie.
 * - The client adds x-device-fingerprint to login, MFA verify, the passkey
 *   sign-in and every /devices call (the tokens are bound to it).
 */
import { createTrustedDevicesClient, fingerprintHeader, signedOutReason, webStorage, webStorageTokenStore } from './vendor/trusted-devices-browser.js';

const USER_KEY = 'td.user';
const SIGNED_IN_HINT = 'td.signed_in';

const store = webStorage('sessionStorage');
const shared = webStorage('localStorage');
store.remove('td.refresh_token'); // earlier versions kept it here
const tokens = webStorageTokenStore('sessionStorage', 'td.');

/** @type {(reason?: {cause: string, ended_at?: string, ended_by?: string|null}) => void} */
let onSessionExpired = () => {};
/** Why the session found at start-up was over, if the server said (docs/sessions.md, "Signed-out reasons"). */
let startupReason;

export const client = createTrustedDevicesClient({
  baseUrl: location.origin,
  refreshCookie: true,
  tokens,
  fingerprint: fingerprintHeader,
  // Device keys are handled by device-key.js (the proof is sent as an extra header).
  deviceKeys: false,
  onSessionExpired: (reason) => {
    clearSession();
    onSessionExpired(reason);
  },
});

/**
 * @param {'GET'|'POST'|'PATCH'|'DELETE'} method
 * @param {string} path  path under /api/v1, e.g. '/devices'
 * @param {{body?: unknown, auth?: boolean, headers?: Record<string, string>}} [options]  headers: extra request headers (x-device-proof)  auth: send the access token (default true)
 */
export const api = (method, path, options) => client.request(method, path, options);

/** @type {{user_id?: string, email?: string, display_name?: string|null}|null} */
let user = parseJson(store.get(USER_KEY));

/** Called when the session cannot be refreshed any more. */
export function setSessionExpiredHandler(fn) {
  onSessionExpired = fn;
}

export function isSignedIn() {
  return Boolean(tokens.get('access_token'));
}

export function currentUser() {
  return user;
}

/** Keep the user fields (and the access token, when present) of a login / verify / refresh / me answer. */
export function saveSession(data) {
  if (data.access_token) {
    tokens.set('access_token', data.access_token);
    shared.set(SIGNED_IN_HINT, '1');
  }
  if (data.email || data.user_id) {
    user = {
      user_id: data.user_id ?? user?.user_id,
      email: data.email ?? user?.email,
      display_name: data.display_name ?? user?.display_name ?? null,
    };
    store.set(USER_KEY, JSON.stringify(user));
  }
}

export function clearSession() {
  tokens.set('access_token', undefined);
  user = null;
  store.remove(USER_KEY);
  shared.remove(SIGNED_IN_HINT);
}

/**
 * At start-up in a tab without an access token (a new tab, a reopened
 * browser): get one from the td_refresh cookie. Resolves true when signed in.
 */
export async function restoreSession() {
  if (isSignedIn()) return true;
  if (shared.get(SIGNED_IN_HINT) !== '1') return false;
  try {
    saveSession(await client.refresh());
  } catch (error) {
    shared.remove(SIGNED_IN_HINT);
    startupReason = signedOutReason(error);
    return false;
  }
  try {
    saveSession(await api('GET', '/auth/me'));
  } catch {
    // The profile only labels the header; the session itself is fine.
  }
  return true;
}

/** Why the session this page found at start-up had ended (once), or undefined. */
export function takeStartupReason() {
  const reason = startupReason;
  startupReason = undefined;
  return reason;
}

/** Sign out: the server ends the session and clears the td_refresh cookie. */
export async function logout() {
  try {
    await client.logout();
  } finally {
    clearSession();
  }
}

function parseJson(text) {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
