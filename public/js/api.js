/**
 * Thin client for the /api/v1 HTTP API.
 *
 * - Success envelopes `{success, data, message}` resolve to `data` (204 → null).
 * - Error envelopes reject with an ApiError carrying `code`, `details`,
 *   `requestId` and `retryAfter`; network failures get code NETWORK_ERROR.
 * - Session: the access token lives in memory and in sessionStorage (so a
 *   reload keeps you signed in, a closed tab does not); the refresh token only
 *   in sessionStorage. The device token is an HttpOnly cookie the page never
 *   sees; `credentials: 'same-origin'` lets the browser send it.
 * - An authenticated call answered with 401 UNAUTHORIZED is retried once after
 *   POST /auth/refresh. Concurrent 401s share one refresh, because refresh
 *   tokens rotate and re-using a rotated one revokes the whole family.
 * - The x-device-fingerprint header goes on login, MFA verify and every
 *   /devices call (the MFA and activation tokens are bound to it).
 */
import { fingerprintHeader } from './fingerprint.js';

const BASE = '/api/v1';
const KEYS = { access: 'td.access_token', refresh: 'td.refresh_token', user: 'td.user' };

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   * @param {{details?: unknown, requestId?: string, retryAfter?: number}} [extra]
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

const store = safeSessionStorage();

const session = {
  accessToken: store.get(KEYS.access),
  refreshToken: store.get(KEYS.refresh),
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

/** Store tokens (and user fields, when present) from a login / verify / refresh answer. */
export function saveSession(data) {
  if (data.access_token) {
    session.accessToken = data.access_token;
    store.set(KEYS.access, data.access_token);
  }
  if (data.refresh_token) {
    session.refreshToken = data.refresh_token;
    store.set(KEYS.refresh, data.refresh_token);
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
  session.refreshToken = null;
  session.user = null;
  for (const key of Object.values(KEYS)) store.remove(key);
}

export function refreshToken() {
  return session.refreshToken;
}

const needsFingerprint = (path) =>
  path === '/auth/login' || path === '/auth/mfa/verify' || path === '/devices' || path.startsWith('/devices/') ||
  // Passkeys (SPEC §5.8): the second-step options and the passwordless attempt are bound to the fingerprint too.
  path === '/auth/mfa/webauthn/options' || path.startsWith('/auth/passkey/');

/**
 * @param {'GET'|'POST'|'PATCH'|'DELETE'} method
 * @param {string} path  path under /api/v1, e.g. '/devices'
 * @param {{body?: unknown, auth?: boolean}} [options]  auth: send the bearer token (default true)
 */
export async function api(method, path, options = {}) {
  const { body, auth = true } = options;
  const first = await send(method, path, body, auth);
  if (auth && first.status === 401 && isUnauthorized(first.payload)) {
    // Another call may have refreshed the session while this one was in flight.
    const alreadyRefreshed = Boolean(session.accessToken) && session.accessToken !== first.tokenUsed;
    if (alreadyRefreshed || (await refreshSession())) {
      return unwrap(await send(method, path, body, auth));
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

/** Rotate the refresh token once, however many callers ask at the same time. */
export function refreshSession() {
  refreshing ??= (async () => {
    const token = session.refreshToken;
    if (!token) return false;
    try {
      const result = await send('POST', '/auth/refresh', { refresh_token: token }, false);
      if (result.status !== 200 || !result.payload?.data?.access_token) return false;
      saveSession(result.payload.data);
      return true;
    } catch {
      return false;
    }
  })().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

async function send(method, path, body, auth) {
  /** @type {Record<string, string>} */
  const headers = { accept: 'application/json' };
  const tokenUsed = auth ? session.accessToken : null;
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (tokenUsed) headers.authorization = `Bearer ${tokenUsed}`;
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

function safeSessionStorage() {
  try {
    const s = window.sessionStorage;
    const probe = '__td_probe__';
    s.setItem(probe, '1');
    s.removeItem(probe);
    return { get: (k) => s.getItem(k), set: (k, v) => s.setItem(k, v), remove: (k) => s.removeItem(k) };
  } catch {
    // Storage blocked (some privacy modes): keep the session in memory only.
    const m = new Map();
    return { get: (k) => m.get(k) ?? null, set: (k, v) => m.set(k, v), remove: (k) => m.delete(k) };
  }
}
