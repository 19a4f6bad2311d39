/**
 * The one API client of the app (/api/v1).
 *
 * - Success envelopes `{success, data, message}` resolve to `data` (204 → null).
 * - Error envelopes reject with an ApiError carrying `code`, `details`,
 *   `requestId` and `retryAfter`; network failures get code NETWORK_ERROR.
 * - Tokens: the access token (15 min) lives in memory and in sessionStorage
 *   (a reload keeps it). The refresh token is never visible to script: login,
 *   MFA verify and refresh send `x-refresh-cookie: 1`, and the server sets it
 *   as the HttpOnly, SameSite=Strict `td_refresh` cookie on Path=/api/v1/auth.
 *   A second tab (empty sessionStorage) gets its own access token from that
 *   cookie (`restoreSession`), so a sign-in survives opening another tab.
 *   localStorage only keeps a "signed in" hint (no secret) so a signed-out
 *   page does not ask for a refresh at every load. The device token is the
 *   HttpOnly `td_device` cookie; `credentials: 'same-origin'` sends both.
 * - An authenticated call answered with 401 UNAUTHORIZED is retried once after
 *   POST /auth/refresh. Refresh tokens rotate and re-using a rotated one
 *   revokes the whole family, so refreshes are serialised: concurrent 401s
 *   share one refresh, and tabs take turns through the Web Locks API where
 *   the browser has it (secure contexts).
 * - The x-device-fingerprint header goes on login, MFA verify and every
 *   /devices call (the MFA and activation tokens are bound to it). Its value
 *   comes from the TypeScript client's browser helper, generated into
 *   vendor/trusted-devices-browser.js (one collector for both).
 */
import { fingerprintHeader } from './vendor/trusted-devices-browser.js';

const BASE = '/api/v1';
const KEYS = { access: 'td.access_token', user: 'td.user', legacyRefresh: 'td.refresh_token' };
const SIGNED_IN_HINT = 'td.signed_in';

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   * @param {{details?: any, requestId?: string, retryAfter?: number}} [extra]
   */
  constructor(status, code, message, extra = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = extra.details;
    this.requestId = extra.requestId;
    this.retryAfter = extra.retryAfter;
  }
}

const store = safeStorage('sessionStorage');
const shared = safeStorage('localStorage');
store.remove(KEYS.legacyRefresh); // earlier versions kept it here

const session = {
  accessToken: store.get(KEYS.access),
  /** @type {{user_id?: string, email?: string, display_name?: string|null}|null} */
  user: parseJson(store.get(KEYS.user)),
};

/** @type {() => void} */
let onSessionExpired = () => {};

/** Called when the session cannot be refreshed any more. */
export function setSessionExpiredHandler(fn) {
  onSessionExpired = fn;
}

export function isSignedIn() {
  return Boolean(session.accessToken);
}

export function currentUser() {
  return session.user;
}

/** Store the access token (and user fields, when present) from a login / verify / refresh / me answer. */
export function saveSession(data) {
  if (data.access_token) {
    session.accessToken = data.access_token;
    store.set(KEYS.access, data.access_token);
    shared.set(SIGNED_IN_HINT, '1');
  }
  if (data.email || data.user_id) {
    session.user = {
      user_id: data.user_id ?? session.user?.user_id,
      email: data.email ?? session.user?.email,
      display_name: data.display_name ?? session.user?.display_name ?? null,
    };
    store.set(KEYS.user, JSON.stringify(session.user));
  }
}

export function clearSession() {
  session.accessToken = null;
  session.user = null;
  for (const key of Object.values(KEYS)) store.remove(key);
  shared.remove(SIGNED_IN_HINT);
}

/**
 * At start-up in a tab without an access token (a new tab, a reopened
 * browser): get one from the td_refresh cookie. Resolves true when signed in.
 */
export async function restoreSession() {
  if (session.accessToken) return true;
  if (shared.get(SIGNED_IN_HINT) !== '1') return false;
  if (!(await refreshSession())) {
    shared.remove(SIGNED_IN_HINT);
    return false;
  }
  try {
    saveSession(await api('GET', '/auth/me'));
  } catch {
    // The profile only labels the header; the session itself is fine.
  }
  return true;
}

const needsFingerprint = (path) =>
  path === '/auth/login' || path === '/auth/mfa/verify' || path === '/devices' || path.startsWith('/devices/') ||
  // Passkeys (SPEC §5.8): the second-step options and the passwordless attempt are bound to the fingerprint too.
  path === '/auth/mfa/webauthn/options' || path.startsWith('/auth/passkey/');
// Every answer that opens or rotates a session: the refresh token comes back as the td_refresh cookie.
const wantsRefreshCookie = (path) => path === '/auth/login' || path === '/auth/mfa/verify' || path === '/auth/refresh' || path === '/auth/passkey/verify';

/**
 * @param {'GET'|'POST'|'PATCH'|'DELETE'} method
 * @param {string} path  path under /api/v1, e.g. '/devices'
 * @param {{body?: unknown, auth?: boolean, headers?: Record<string, string>}} [options]  headers: extra request headers (x-device-proof)  auth: send the bearer token (default true)
 */
export async function api(method, path, options = {}) {
  const { body, auth = true, headers: extra } = options;
  const first = await send(method, path, body, auth, extra);
  if (auth && first.status === 401 && isUnauthorized(first.payload)) {
    // Another call may have refreshed the session while this one was in flight.
    const alreadyRefreshed = Boolean(session.accessToken) && session.accessToken !== first.tokenUsed;
    if (alreadyRefreshed || (await refreshSession())) {
      return unwrap(await send(method, path, body, auth, extra));
    }
    clearSession();
    onSessionExpired();
  }
  return unwrap(first);
}

function isUnauthorized(payload) {
  const code = payload?.error?.code;
  return code === undefined || code === 'UNAUTHORIZED';
}

/** @type {Promise<boolean>|null} */
let refreshing = null;

/** Rotate the refresh cookie once, however many callers (and tabs) ask at the same time. */
export function refreshSession() {
  refreshing ??= withRefreshLock(async () => {
    try {
      const result = await send('POST', '/auth/refresh', undefined, false);
      if (result.status !== 200 || !result.payload?.data?.access_token) return false;
      saveSession(result.payload.data);
      return true;
    } catch {
      return false;
    }
  }).finally(() => {
    refreshing = null;
  });
  return refreshing;
}

/** One refresh at a time across tabs (Web Locks); without the API, within this tab only. */
function withRefreshLock(fn) {
  const locks = /** @type {any} */ (navigator).locks;
  return locks?.request ? locks.request('td-refresh', fn) : fn();
}

/** Sign out: the server ends the session and clears the td_refresh cookie. */
export async function logout() {
  try {
    await api('POST', '/auth/logout');
  } finally {
    clearSession();
  }
}

async function send(method, path, body, auth, extra = {}) {
  /** @type {Record<string, string>} */
  const headers = { accept: 'application/json', ...extra };
  const tokenUsed = auth ? session.accessToken : null;
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (tokenUsed) headers.authorization = `Bearer ${tokenUsed}`;
  if (wantsRefreshCookie(path)) headers['x-refresh-cookie'] = '1';
  if (needsFingerprint(path)) headers['x-device-fingerprint'] = await fingerprintHeader();
  let response;
  try {
    response = await fetch(BASE + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, 'NETWORK_ERROR', 'Network error');
  }
  let payload = null;
  if (response.status !== 204) {
    const text = await response.text().catch(() => '');
    payload = parseJson(text);
  }
  const retryAfter = Number.parseInt(response.headers.get('retry-after') ?? '', 10);
  return { status: response.status, payload, tokenUsed, retryAfter: Number.isFinite(retryAfter) ? retryAfter : undefined };
}

function unwrap({ status, payload, retryAfter }) {
  if (status === 204) return null;
  if (status >= 200 && status < 300 && payload && payload.success !== false) {
    return payload.data ?? null;
  }
  const error = payload?.error ?? {};
  throw new ApiError(status, error.code ?? fallbackCode(status), error.message ?? `HTTP ${status}`, {
    details: error.details,
    requestId: error.request_id,
    retryAfter: error.details?.retry_after_seconds ?? retryAfter,
  });
}

function fallbackCode(status) {
  if (status === 401) return 'UNAUTHORIZED';
  if (status === 429) return 'RATE_LIMITED';
  if (status === 503) return 'SERVICE_UNAVAILABLE';
  if (status >= 500) return 'INTERNAL_ERROR';
  return 'UNKNOWN_ERROR';
}

function parseJson(text) {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function safeStorage(name) {
  try {
    const s = /** @type {Storage} */ (window[name]);
    const probe = '__td_probe__';
    s.setItem(probe, '1');
    s.removeItem(probe);
    return { get: (k) => s.getItem(k), set: (k, v) => s.setItem(k, v), remove: (k) => s.removeItem(k) };
  } catch {
    // Storage blocked (some privacy modes): keep it in memory only.
    const m = new Map();
    return { get: (k) => m.get(k) ?? null, set: (k, v) => m.set(k, v), remove: (k) => m.delete(k) };
  }
}
