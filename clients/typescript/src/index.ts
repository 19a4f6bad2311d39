/**
 * A typed client for the Trusted Devices service.
 *
 * Two layers:
 * - `client.api`: every operation of the OpenAPI document, typed end to end
 *   (openapi-fetch over the types openapi-typescript generated in
 *   ./generated/api.ts). Paths, bodies and answers are checked by the compiler.
 * - The flows, hand-written on top: `login()` (a session, or an MFA step),
 *   `verifyMfa()`, `trustThisDevice()` / `notNow()`, `refresh()`, `me()`,
 *   `logout()`, `devices.list()` / `devices.revoke()` / `devices.revokeAll()`
 *   / `devices.rename()`. Tokens live in a TokenStore (memory by default);
 *   a call that gets 401 UNAUTHORIZED refreshes once and is retried.
 * - Step-up (docs/step-up.md): a sensitive operation answered 401
 *   STEP_UP_REQUIRED rejects with a `StepUpRequiredError` (its `maxAge`,
 *   `acrValues`, `methods`); `stepUp(factor)` performs a factor again and
 *   keeps the new access token of the same session; retry the operation.
 *   That 401 is not a dead session: nothing is refreshed for it.
 * - `request(method, path, …)`: any other operation under /api/v1, for apps
 *   written in plain JavaScript (the service's own web app): the same
 *   envelope handling, device headers, refresh and retry as the flows.
 *
 * Cookie-refresh mode (`refreshCookie: true`, a browser app on the service's
 * origin): the refresh token is never seen by script. Every call that opens
 * or rotates a session sends `x-refresh-cookie: 1`, the service answers
 * without `refresh_token` and sets it as the HttpOnly `td_refresh` cookie,
 * and `refresh()` rotates that cookie. Refreshes are serialised in the page
 * and, through the Web Locks API where the browser has it, across tabs
 * (re-using a rotated refresh token revokes the whole family).
 *
 * Device token: browsers keep it in the service's HttpOnly cookie (never
 * visible to this code); other clients (Node, native) keep it in the store
 * and send it as `x-device-token`. Fingerprint signals: pass `fingerprint`
 * (in a browser, `fingerprintHeader` from ./browser.ts).
 *
 * Session key (docs/sessions.md, "Bound sessions"): every sign-in makes a
 * fresh non-extractable P-256 key, sends its public JWK as `session_key` and
 * keeps the pair in a SessionKeyStore (IndexedDB in browsers, memory in
 * Node); `refresh()` answers the service's 401 SESSION_PROOF_REQUIRED by
 * signing its challenge (`x-session-proof`). A copied refresh token is then
 * worthless without this client's key.
 *
 * Device key (docs/trust-model.md, ./device-key.ts): `trustThisDevice()` binds the
 * trust to a new WebCrypto key pair (the public JWK goes with the
 * activation), and `login()` proves possession with `x-device-proof` when a
 * key is held for the account, so a copied device token alone no longer
 * skips MFA. Keys live in a DeviceKeyStore: IndexedDB where the global
 * scope has it (browsers: ./indexeddb-device-keys.ts, the layout the web app
 * uses), memory elsewhere (Node).
 */
import createClient, { type Client, type Middleware } from 'openapi-fetch';
import {
  createDeviceKey,
  deviceKeyAccount,
  type DeviceKeyPair,
  type DeviceKeyStore,
  deviceKeysSupported,
  memoryDeviceKeyStore,
  memorySessionKeyStore,
  type PublicDeviceJwk,
  type SessionKeyStore,
  signChallenge,
} from './device-key.ts';
import type { components, operations, paths } from './generated/api.ts';
import { ERROR_CODES, OPERATIONS } from './generated/operations.ts';
import { indexedDbAvailable, indexedDbDeviceKeyStore, indexedDbSessionKeyStore } from './indexeddb-device-keys.ts';

export type { components, operations, paths } from './generated/api.ts';
export { ERROR_CODES, OPERATIONS } from './generated/operations.ts';
export { type DeviceKeyPair, type DeviceKeyStore, memoryDeviceKeyStore, memorySessionKeyStore, type PublicDeviceJwk, type SessionKeyStore } from './device-key.ts';
export { indexedDbDeviceKeyStore, type IndexedDbDeviceKeyStore, indexedDbSessionKeyStore } from './indexeddb-device-keys.ts';

/** Every operation, by its operationId in the OpenAPI document. */
export type OperationId = keyof typeof OPERATIONS;
/** Every error code the document lists. */
export type ApiErrorCode = (typeof ERROR_CODES)[number];
/** What the client itself adds: no answer (NETWORK_ERROR), an answer without the envelope (HTTP_ERROR). */
export type ClientErrorCode = ApiErrorCode | 'NETWORK_ERROR' | 'HTTP_ERROR';
/** The error codes the document lists for one operation (plus the client's own). */
export type ErrorCodeOf<K extends OperationId> = (typeof OPERATIONS)[K]['errors'][number] | 'NETWORK_ERROR' | 'HTTP_ERROR';

type Op<K extends OperationId> = operations[K];
type Params<K extends OperationId> = Op<K>['parameters'];
type JsonBody<K extends OperationId> = Op<K> extends { requestBody: { content: { 'application/json': infer B } } }
  ? { body: B }
  : Op<K> extends { requestBody?: { content: { 'application/json': infer B } } }
    ? { body?: B }
    : { body?: undefined };
/** What `call(id, init)` takes: path and query parameters, the JSON body, extra headers. */
export type CallInit<K extends OperationId> = { headers?: Record<string, string> } & (Params<K> extends { path: infer P } ? { path: P } : { path?: undefined }) &
  (Params<K> extends { query: infer Q } ? { query: Q } : { query?: Params<K>['query'] }) &
  JsonBody<K>;
type Responses<K extends OperationId> = Op<K>['responses'];
/** What `call(id)` resolves to: the success envelope's `data` (the JWK set as it is, the metrics text, null for 204/303). */
export type DataOf<K extends OperationId> = {
  [S in keyof Responses<K>]: S extends 200 | 201 | 202
    ? Responses<K>[S] extends { content: { 'application/json': infer E } }
      ? E extends { success: true; data: infer D }
        ? D
        : E
      : Responses<K>[S] extends { content: { 'text/plain': infer T } }
        ? T
        : never
    : S extends 204 | 303
      ? null
      : never;
}[keyof Responses<K>];
/** True when an operation's `init` may be left out (no path parameter, no required query or body). */
type InitOptional<K extends OperationId> = {} extends CallInit<K> ? true : false;
type Schemas = components['schemas'];
export type Device = Schemas['Device'];
export type DeviceEvent = Schemas['DeviceEvent'];
export type SecurityEvent = Schemas['SecurityEvent'];
export type PendingDevice = Schemas['PendingDevice'];
export type LoginSession = Schemas['LoginSession'];
export type MfaChallenge = Schemas['MfaChallenge'];
export type TokenPair = Schemas['TokenPair'];
export type User = Schemas['User'];
export type ErrorEnvelope = Schemas['ErrorEnvelope'];

/** Why a session is over, as the service's 401 says (docs/sessions.md, "Signed-out reasons"). */
export interface SignedOutReason {
  /** device_revoked, password_reset, password_changed, not_me, proof_failed, reuse_detected, signed_out_elsewhere, signed_out, expired, … */
  cause: string;
  /** ISO time it ended. */
  ended_at?: string;
  /** The name of the device (session) or admin that ended it, when one did. */
  ended_by?: string | null;
}

/** The signed-out reason in an error of the service, if it carries one. */
export function signedOutReason(error: unknown): SignedOutReason | undefined {
  const details = error instanceof TrustedDevicesError ? (error.details as Partial<SignedOutReason> | undefined) : undefined;
  return typeof details?.cause === 'string' ? (details as SignedOutReason) : undefined;
}

/** Where the client keeps its tokens. Implement it over localStorage, a keychain, a file… */
export interface TokenStore {
  get(name: TokenName): string | undefined | Promise<string | undefined>;
  set(name: TokenName, value: string | undefined): void | Promise<void>;
}
export type TokenName = 'access_token' | 'refresh_token' | 'device_token';

export function memoryTokenStore(initial: Partial<Record<TokenName, string>> = {}): TokenStore {
  const values = new Map<TokenName, string>(Object.entries(initial) as Array<[TokenName, string]>);
  return {
    get: (name) => values.get(name),
    set: (name, value) => void (value === undefined ? values.delete(name) : values.set(name, value)),
  };
}

export interface ClientOptions {
  /** The service's origin, e.g. `https://auth.example.com` (no /api/v1). */
  baseUrl: string;
  tokens?: TokenStore;
  /** The x-device-fingerprint header value, or a function giving it (browser: `fingerprintHeader`). */
  fingerprint?: string | (() => string | Promise<string>);
  /**
   * Keep the device token in the TokenStore and send it as x-device-token.
   * Default: true outside browsers; in a browser the HttpOnly cookie does this.
   */
  keepDeviceToken?: boolean;
  /**
   * Where the key of a trusted device is kept (one per account). Default:
   * `indexedDbDeviceKeyStore()` where `globalThis.indexedDB` exists (browsers:
   * the key lives as long as the device cookie, across reloads and client
   * objects), otherwise in memory for the life of this client object (Node:
   * keep the device token and the key together, or pass a store that persists
   * both). A key-bound device that logs in without its key is asked for MFA
   * (the service records `proof_failed` and mails a security alert). `false`:
   * trust devices without a key (the device token alone, as before device keys existed).
   */
  deviceKeys?: DeviceKeyStore | false;
  /**
   * Bound sessions (docs/sessions.md): every sign-in (login, MFA verify,
   * passkey sign-in) makes a fresh non-extractable P-256 key and sends its
   * public JWK as `session_key`; the service then refreshes the session only
   * with a proof of it, which `refresh()` gives by itself (it signs the
   * challenge of the 401 SESSION_PROOF_REQUIRED and retries once). A copied
   * refresh token or cookie is then worthless. Default:
   * `indexedDbSessionKeyStore()` in browsers, memory in Node. `false`:
   * unbound sessions (as before).
   */
  sessionKeys?: SessionKeyStore | false;
  /**
   * Cookie-refresh mode, for a browser app served by the service itself
   * (same origin): login, MFA verify, passkey verify and refresh send
   * `x-refresh-cookie: 1`, so the refresh token lives only in the HttpOnly
   * `td_refresh` cookie; `refresh()` sends no token and rotates the cookie.
   * Refreshes are serialised across tabs (Web Locks) and answers are never
   * cached. Keep the access token in a TokenStore the app chooses (memory,
   * sessionStorage: `webStorageTokenStore` in ./browser.ts).
   */
  refreshCookie?: boolean;
  /**
   * Called when a call got 401 UNAUTHORIZED and the session could not be
   * refreshed (it ended: logout elsewhere, device revoked, password
   * changed…). The tokens are already forgotten; the call still rejects.
   * `reason`: why, when the service said (`details` of its 401:
   * `{cause, ended_at, ended_by}`, docs/sessions.md "Signed-out reasons").
   */
  onSessionExpired?: (reason?: SignedOutReason) => void;
  /** Extra headers on every request (a User-Agent for a native client, …). */
  headers?: Record<string, string>;
  fetch?: typeof globalThis.fetch;
}

/**
 * An error answer of the service (the error envelope: `code`, `message`,
 * `details`, `request_id`), or a network failure (status 0, code
 * NETWORK_ERROR). An answer without an envelope gets a code from its status
 * (401 UNAUTHORIZED, 429 RATE_LIMITED, 503 SERVICE_UNAVAILABLE, other 5xx
 * INTERNAL_ERROR, else HTTP_ERROR) and the message `HTTP <status>`.
 * `retryAfter`: seconds to wait, from `details.retry_after_seconds` or the
 * Retry-After header.
 */
export class TrustedDevicesError<C extends string = ClientErrorCode> extends Error {
  override readonly name: string = 'TrustedDevicesError';
  constructor(
    readonly status: number,
    readonly code: C,
    message: string,
    readonly details?: unknown,
    readonly requestId?: string,
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

/**
 * 401 STEP_UP_REQUIRED (docs/step-up.md; RFC 9470): the operation needs a
 * factor performed within `maxAge` seconds. `methods`: what the account can
 * step up with (`totp`, `backup_code`, `webauthn`, or `password`);
 * `acrValues`: the class asked for, when a second factor is due.
 */
export class StepUpRequiredError extends TrustedDevicesError {
  override readonly name = 'StepUpRequiredError';
  constructor(
    message: string,
    readonly maxAge: number,
    readonly methods: string[],
    readonly acrValues: string | undefined,
    details?: unknown,
    requestId?: string,
  ) {
    super(401, 'STEP_UP_REQUIRED', message, details, requestId);
  }
}

/** A factor for `stepUp()`: a TOTP code, a backup code, a WebAuthn assertion, or the password (accounts without a second factor). */
export type StepUpFactor = { code: string } | { backupCode: string } | { webauthn: unknown } | { password: string };

/** max_age of an RFC 9470 challenge header (the envelope's details carry it too). */
function maxAgeOf(header: string | null): number | undefined {
  const match = header === null ? null : /max_age="?(\d+)"?/.exec(header);
  return match ? Number(match[1]) : undefined;
}

/** One TrustedDevicesError per code: narrowing on `code` narrows the type (a discriminated union). */
export type ApiError<C extends string = ClientErrorCode> = { [K in C]: TrustedDevicesError<K> }[C];

/**
 * Whether `error` is an error of this service, optionally one of the codes an
 * operation documents: `if (isApiError(e, 'signup') && e.code === 'EMAIL_TAKEN')`.
 */
export function isApiError<K extends OperationId = OperationId>(error: unknown, _operation?: K): error is ApiError<ErrorCodeOf<K>> {
  return error instanceof TrustedDevicesError;
}

function fallbackCode(status: number): ClientErrorCode {
  if (status === 401) return 'UNAUTHORIZED';
  if (status === 429) return 'RATE_LIMITED';
  if (status === 503) return 'SERVICE_UNAVAILABLE';
  if (status >= 500) return 'INTERNAL_ERROR';
  return 'HTTP_ERROR';
}

/** The paths (under /api/v1) whose answers are bound to the device: they carry x-device-fingerprint (and, outside browsers, x-device-token). */
export const deviceBoundPath = (path: string): boolean =>
  path === '/auth/login' ||
  path === '/auth/mfa/verify' ||
  path === '/auth/mfa/webauthn/options' ||
  path.startsWith('/auth/passkey/') ||
  path === '/devices' ||
  path.startsWith('/devices/') ||
  path.startsWith('/devices?');
/** The paths (under /api/v1) whose answers open or rotate a session: in cookie-refresh mode they send x-refresh-cookie: 1. */
export const sessionOpeningPath = (path: string): boolean =>
  path === '/auth/login' || path === '/auth/mfa/verify' || path === '/auth/refresh' || path === '/auth/passkey/verify';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
export interface RequestOptions {
  /** The JSON body. */
  body?: unknown;
  /** Send the access token, refresh and retry once on 401 (default true). */
  auth?: boolean;
  /** Extra request headers (x-device-proof, …). */
  headers?: Record<string, string>;
}

/** Login finished: tokens are stored. `mfaBypassed` when a trusted device skipped MFA. */
export interface SessionResult {
  kind: 'session';
  session: LoginSession;
  mfaBypassed: boolean;
}

/** Login needs a second factor: call `verifyMfa(step, …)` before `expiresAt`. */
export interface MfaStep {
  kind: 'mfa_required';
  temporaryToken: string;
  methods: string[];
  expiresAt: Date;
}

export interface VerifiedMfa {
  /** The user and tokens (stored). */
  session: Omit<Schemas['TokenPair'], never> & { user_id: string; email: string; display_name: string | null };
  /** This device, not yet trusted: ask the user, then `trustThisDevice(pending)` or `notNow(pending)`. Null when nothing can be trusted. */
  pendingDevice: PendingDevice | null;
}

export type TrustedDevicesClient = ReturnType<typeof createTrustedDevicesClient>;

/** IndexedDB where this global scope has it (a browser: keys outlive the page, like the device cookie), memory elsewhere. */
function defaultDeviceKeyStore(): DeviceKeyStore {
  return indexedDbAvailable() ? indexedDbDeviceKeyStore() : memoryDeviceKeyStore();
}

export function createTrustedDevicesClient(options: ClientOptions) {
  const tokens = options.tokens ?? memoryTokenStore();
  const keepDeviceToken = options.keepDeviceToken ?? typeof document === 'undefined';
  const deviceKeys = options.deviceKeys === false ? undefined : (options.deviceKeys ?? defaultDeviceKeyStore());
  const sessionKeys = options.sessionKeys === false ? undefined : (options.sessionKeys ?? (indexedDbAvailable() ? indexedDbSessionKeyStore() : memorySessionKeyStore()));
  /** The account being signed in (the key store's key): set by login() and verifyMfa(). */
  let account: string | undefined;
  const cookieMode = options.refreshCookie === true;
  const api: Client<paths> = createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/$/, ''),
    // A network failure rejects with a TrustedDevicesError (status 0), like any other failure.
    fetch: async (input: Request) => {
      try {
        return await (options.fetch ?? globalThis.fetch)(input);
      } catch {
        throw new TrustedDevicesError(0, 'NETWORK_ERROR', 'Network error');
      }
    },
    // Browsers send (and receive) the HttpOnly device (and refresh) cookies.
    credentials: 'include',
    // Tokens and device lists must never come from the HTTP cache.
    ...(cookieMode ? { cache: 'no-store' as const } : {}),
    headers: options.headers,
  });
  /** x-refresh-cookie: 1 in cookie-refresh mode (on the calls that open or rotate a session). */
  const refreshCookieHeader = (): Record<string, string> => (cookieMode ? { 'x-refresh-cookie': '1' } : {});

  /** The device headers the service reads on login, MFA verify, activate and skip. */
  async function deviceHeaders(): Promise<Record<string, string>> {
    const headers: Record<string, string> = {};
    const fingerprint = typeof options.fingerprint === 'function' ? await options.fingerprint() : options.fingerprint;
    if (fingerprint) headers['x-device-fingerprint'] = fingerprint;
    const deviceToken = keepDeviceToken ? await tokens.get('device_token') : undefined;
    if (deviceToken) headers['x-device-token'] = deviceToken;
    return headers;
  }

  async function bearer(): Promise<Record<string, string>> {
    const access = await tokens.get('access_token');
    if (!access) throw new TrustedDevicesError(401, 'UNAUTHORIZED', 'Not signed in.');
    return { authorization: `Bearer ${access}` };
  }

  /** Why the last session ended, as the service said; forgotten when a new one starts. */
  let lastSignedOut: SignedOutReason | undefined;

  // refresh_token is absent when the refresh token went into the td_refresh cookie (cookie-refresh mode).
  async function storeTokens(pair: { access_token: string; refresh_token?: string }) {
    lastSignedOut = undefined;
    await tokens.set('access_token', pair.access_token);
    if (pair.refresh_token !== undefined) await tokens.set('refresh_token', pair.refresh_token);
  }

  /** The data of a success envelope, or a TrustedDevicesError for an error envelope. */
  function unwrap<T>(result: { data?: { data: T }; error?: unknown; response: Response }): T {
    if (result.data !== undefined) return result.data.data;
    const { status, headers } = result.response;
    const envelope = result.error as Partial<ErrorEnvelope> | undefined;
    const error = envelope?.error;
    const details = error?.details as { retry_after_seconds?: unknown } | undefined;
    const header = Number.parseInt(headers.get('retry-after') ?? '', 10);
    const retryAfter = typeof details?.retry_after_seconds === 'number' ? details.retry_after_seconds : Number.isFinite(header) ? header : undefined;
    if (status === 401 && error?.code === 'STEP_UP_REQUIRED') {
      const stepUp = error.details as { max_age?: unknown; methods?: unknown; acr_values?: unknown } | undefined;
      const maxAge = typeof stepUp?.max_age === 'number' ? stepUp.max_age : (maxAgeOf(headers.get('www-authenticate')) ?? 0);
      const methods = Array.isArray(stepUp?.methods) ? stepUp.methods.filter((m): m is string => typeof m === 'string') : [];
      throw new StepUpRequiredError(error.message ?? 'A recent second factor is required.', maxAge, methods, typeof stepUp?.acr_values === 'string' ? stepUp.acr_values : undefined, error.details, error.request_id);
    }
    throw new TrustedDevicesError(status, (error?.code as ClientErrorCode | undefined) ?? fallbackCode(status), error?.message ?? `HTTP ${status}`, error?.details, error?.request_id, retryAfter);
  }

  async function forgetTokens() {
    await tokens.set('access_token', undefined);
    await tokens.set('refresh_token', undefined);
  }

  /**
   * Runs an authenticated call; on 401 UNAUTHORIZED refreshes the tokens
   * once and retries. A refresh that fails forgets the session and calls
   * onSessionExpired; the call then rejects with its own 401.
   */
  async function authed<T>(call: (headers: Record<string, string>) => Promise<T>): Promise<T> {
    const tokenUsed = await tokens.get('access_token');
    try {
      return await call(await bearer());
    } catch (error) {
      if (!(error instanceof TrustedDevicesError) || error.status !== 401 || error.code !== 'UNAUTHORIZED') throw error;
      if (!cookieMode && !(await tokens.get('refresh_token'))) throw error;
      // Another call may have refreshed the session while this one was in flight.
      const current = await tokens.get('access_token');
      if (current === undefined || current === tokenUsed) {
        try {
          await refresh();
        } catch (refreshError) {
          const ended = refreshError instanceof TrustedDevicesError && refreshError.status === 401;
          // A concurrent call whose refresh came after the session was forgotten keeps the reason the first one was told.
          const reason = signedOutReason(refreshError) ?? signedOutReason(error) ?? lastSignedOut;
          lastSignedOut = reason;
          if (cookieMode || ended) {
            await forgetTokens();
            options.onSessionExpired?.(reason);
          }
          // In cookie-refresh mode any failed refresh ends the session (the app signs in again): the call's own 401 is the answer,
          // carrying the reason the refresh was told (docs/sessions.md, "Signed-out reasons").
          if (cookieMode && reason && !signedOutReason(error)) throw new TrustedDevicesError(error.status, error.code, error.message, reason, error.requestId);
          throw cookieMode ? error : refreshError;
        }
      }
      return call(await bearer());
    }
  }

  /** One refresh at a time across tabs in cookie-refresh mode (Web Locks, where the browser has them: secure contexts). */
  function withRefreshLock<T>(fn: () => Promise<T>): Promise<T> {
    const locks = cookieMode ? (globalThis as { navigator?: { locks?: { request?: (name: string, fn: () => Promise<T>) => Promise<T> } } }).navigator?.locks : undefined;
    return locks?.request ? locks.request('td-refresh', fn) : fn();
  }

  let refreshing: Promise<TokenPair> | undefined;
  /**
   * Rotates the refresh token (one request at a time, however many callers
   * ask): the stored one, or in cookie-refresh mode the td_refresh cookie.
   * Stores and returns the new access token (and refresh token outside
   * cookie mode); a 401 (the session ended) forgets the tokens.
   */
  function refresh(): Promise<TokenPair> {
    refreshing ??= withRefreshLock(async () => {
      const refreshToken = cookieMode ? undefined : await tokens.get('refresh_token');
      if (!cookieMode && !refreshToken) throw new TrustedDevicesError(401, 'UNAUTHORIZED', 'No refresh token: sign in again.');
      let pair: TokenPair;
      // Cookie mode: no body at all, the service reads the td_refresh cookie.
      const body = refreshToken === undefined ? undefined : { refresh_token: refreshToken };
      const post = async (proof?: string) =>
        unwrap(await api.POST('/api/v1/auth/refresh', { body: body as never, headers: { ...refreshCookieHeader(), ...(proof ? { 'x-session-proof': proof } : {}) } }));
      // A bound session (this client holds its key): sign a fresh challenge up front, so one refresh is one POST.
      const key = await sessionKeyPair();
      let proof: string | undefined;
      if (key) {
        try {
          proof = await signChallenge(key, unwrap(await api.POST('/api/v1/auth/device-challenge')).challenge);
        } catch {
          proof = undefined; // the 401 below brings a challenge
        }
      }
      try {
        try {
          pair = await post(proof);
        } catch (error) {
          // The service asked for a proof (none sent, or its challenge was spent): sign the challenge of the answer, once.
          const challenge = (error as TrustedDevicesError).details as { challenge?: unknown } | undefined;
          if (!(error instanceof TrustedDevicesError) || error.code !== 'SESSION_PROOF_REQUIRED' || typeof challenge?.challenge !== 'string' || !key) throw error;
          pair = await post(await signChallenge(key, challenge.challenge));
        }
      } catch (error) {
        // The session ended (logout elsewhere, device revoked, password changed…): forget it.
        if (error instanceof TrustedDevicesError && error.status === 401) await forgetTokens();
        throw error;
      }
      await storeTokens(pair);
      return pair;
    }).finally(() => {
      refreshing = undefined;
    });
    return refreshing;
  }

  /**
   * The x-device-proof header for a login as `email`: a fresh challenge signed
   * with the account's device key. Undefined when no key is held, or on any
   * failure (no WebCrypto, a store error, the rate-limited challenge refused):
   * a missing proof never blocks a sign-in, the service then asks for MFA.
   */
  async function deviceProof(email: string, headers: Record<string, string>): Promise<string | undefined> {
    if (!deviceKeys || !deviceKeysSupported()) return undefined;
    // Outside browsers the device token is in the store: without one there is no trust to prove, so spare the challenge.
    if (keepDeviceToken && !headers['x-device-token']) return undefined;
    try {
      const pair = await deviceKeys.get(deviceKeyAccount(email));
      if (!pair) return undefined;
      const { challenge } = unwrap(await api.POST('/api/v1/auth/device-challenge'));
      return await signChallenge(pair, challenge);
    } catch {
      return undefined;
    }
  }

  /** This client's session key, or undefined (none, keys off, a store error). */
  async function sessionKeyPair(): Promise<DeviceKeyPair | undefined> {
    try {
      return sessionKeys ? await sessionKeys.get() : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * A fresh session key for a sign-in: `{ publicJwk, save }` (send the JWK as
   * `session_key`, call save() once the session opened), or undefined (keys
   * off, no WebCrypto, a store that cannot keep one): the session is then
   * unbound, which never blocks a sign-in.
   */
  async function newSessionKey(): Promise<{ publicJwk: PublicDeviceJwk; save: () => Promise<void> } | undefined> {
    if (!sessionKeys || !deviceKeysSupported()) return undefined;
    try {
      await sessionKeys.get(); // probe: a private mode may have IndexedDB and refuse it
      const { pair, publicJwk } = await createDeviceKey(false);
      return { publicJwk, save: async () => void (await sessionKeys.set(pair)) };
    } catch {
      return undefined;
    }
  }

  /**
   * A key for the device about to be trusted, or undefined (keys off, no
   * WebCrypto, an unusable store, generation failed): the device is then
   * trusted without one.
   */
  async function newDeviceKey(owner: string): Promise<{ pair: DeviceKeyPair; publicJwk: PublicDeviceJwk } | undefined> {
    if (!deviceKeys || !deviceKeysSupported()) return undefined;
    try {
      // Probe the store first: some private modes offer IndexedDB but refuse it. A device bound to a key
      // the store cannot keep would meet MFA, proof_failed and an alert at its next login; unbound, it is simply trusted.
      await deviceKeys.get(owner);
      return await createDeviceKey(deviceKeys.needsExtractableKey === true);
    } catch {
      return undefined;
    }
  }

  async function login(credentials: { email: string; password: string }): Promise<SessionResult | MfaStep> {
    const headers = await deviceHeaders();
    const proof = await deviceProof(credentials.email, headers);
    if (proof) headers['x-device-proof'] = proof;
    const sessionKey = await newSessionKey();
    const body = { ...credentials, ...(sessionKey ? { session_key: sessionKey.publicJwk } : {}) };
    const data = unwrap(await api.POST('/api/v1/auth/login', { body, headers: { ...headers, ...refreshCookieHeader() } }));
    account = deviceKeyAccount(credentials.email);
    if ('mfa_required' in data) {
      return { kind: 'mfa_required', temporaryToken: data.temporary_token, methods: data.methods, expiresAt: new Date(Date.now() + data.expires_in * 1000) };
    }
    await sessionKey?.save();
    await storeTokens(data);
    // docs/trust-model.md: a bypass rotates the device token; keep the successor (null: a parallel login rotated it, keep ours).
    if (keepDeviceToken && data.device_token) await tokens.set('device_token', data.device_token);
    return { kind: 'session', session: data, mfaBypassed: data.mfa_bypassed };
  }

  async function verifyMfa(step: MfaStep, factor: { code: string } | { backupCode: string }): Promise<VerifiedMfa> {
    const sessionKey = await newSessionKey();
    const body = {
      ...('code' in factor ? { temporary_token: step.temporaryToken, code: factor.code } : { temporary_token: step.temporaryToken, backup_code: factor.backupCode }),
      ...(sessionKey ? { session_key: sessionKey.publicJwk } : {}),
    };
    const data = unwrap(await api.POST('/api/v1/auth/mfa/verify', { body, headers: { ...(await deviceHeaders()), ...refreshCookieHeader() } }));
    await sessionKey?.save();
    await storeTokens(data);
    account = deviceKeyAccount(data.email);
    const { trusted_device: pendingDevice, ...session } = data;
    return { session, pendingDevice };
  }

  /**
   * "Trust this device": later logins from it skip MFA. Returns the trusted
   * device (`key_bound` tells whether a device key was bound to it).
   */
  async function trustThisDevice(pending: PendingDevice, deviceName?: string): Promise<Device> {
    const extra = await deviceHeaders();
    // The account the key is kept under: known after login() / verifyMfa(), asked for when the tokens came from a store.
    const owner = deviceKeys ? (account ?? deviceKeyAccount((await me()).email)) : undefined;
    const key = owner === undefined ? undefined : await newDeviceKey(owner);
    const data = await authed(async (headers) =>
      unwrap(
        await api.POST('/api/v1/devices/activate', {
          body: { activation_token: pending.activation_token, ...(deviceName ? { device_name: deviceName } : {}), ...(key ? { public_key: key.publicJwk } : {}) },
          headers: { ...extra, ...headers },
        }),
      ),
    );
    if (keepDeviceToken) await tokens.set('device_token', data.device_token);
    // Stored only once the service accepted it: a refused activation must not replace the key another trusted device of this account uses.
    if (key && deviceKeys && owner !== undefined) await deviceKeys.set(owner, key.pair);
    return data.device;
  }

  /** "Not now": this device is not remembered; the next login asks for MFA again. */
  async function notNow(pending: PendingDevice): Promise<void> {
    const extra = await deviceHeaders();
    await authed(async (headers) => unwrap(await api.POST('/api/v1/devices/skip', { body: { activation_token: pending.activation_token }, headers: { ...extra, ...headers } })));
  }

  async function me(): Promise<User> {
    return authed(async (headers) => unwrap(await api.GET('/api/v1/auth/me', { headers })));
  }

  /** Ends this session on the server and forgets the tokens (the device stays trusted). */
  async function logout(): Promise<void> {
    const refreshToken = await tokens.get('refresh_token');
    try {
      await authed(async (headers) => {
        const result = await api.POST('/api/v1/auth/logout', { body: refreshToken ? { refresh_token: refreshToken } : null, headers });
        if (result.error !== undefined) unwrap(result as never);
      });
    } finally {
      await forgetTokens();
      // The session's key goes with it (the next sign-in makes a fresh one).
      await Promise.resolve(sessionKeys?.set(undefined)).catch(() => undefined);
    }
  }

  /**
   * Any operation under /api/v1, untyped (for plain-JavaScript apps; typed
   * code has `api`): `path` as in the document without the prefix, query
   * string included (`/devices/events?limit=20`). Resolves to the success
   * envelope's `data` (null for 204), rejects with a TrustedDevicesError.
   * Device-bound paths get the device headers, session-opening ones the
   * refresh-cookie header (cookie mode) and their tokens are stored; with
   * `auth` (default) the access
   * token is sent, and a 401 UNAUTHORIZED refreshes once and retries.
   */
  async function request<T = any>(method: HttpMethod, path: string, init: RequestOptions = {}): Promise<T> { // eslint-disable-line @typescript-eslint/no-explicit-any
    const { auth = true, headers: extra } = init;
    let { body } = init;
    // A sign-in through here (the web app's login, MFA verify, passkey sign-in) binds its session too, unless the caller chose a key.
    const opensSession = sessionOpeningPath(path) && path !== '/auth/refresh' && typeof body === 'object' && body !== null && !Array.isArray(body);
    const sessionKey = opensSession && !('session_key' in (body as object)) ? await newSessionKey() : undefined;
    if (sessionKey) body = { ...(body as object), session_key: sessionKey.publicJwk };
    const send = async (authorization: Record<string, string>): Promise<T> => {
      const headers: Record<string, string> = { accept: 'application/json', ...extra, ...authorization };
      if (deviceBoundPath(path)) Object.assign(headers, await deviceHeaders());
      if (sessionOpeningPath(path)) Object.assign(headers, refreshCookieHeader());
      const result = await (api as unknown as Client<Record<string, never>>).request(method.toLowerCase() as never, `/api/v1${path}` as never, { body, headers } as never);
      const { response } = result as { response: Response };
      if (!response.ok) return unwrap(result as never);
      const data = (result as { data?: { data?: T } }).data?.data ?? null;
      // A session opened or rotated here (login, MFA verify, passkey sign-in…): keep its tokens, as the flows do.
      const pair = data as { access_token?: unknown; refresh_token?: string } | null;
      if (sessionOpeningPath(path) && typeof pair?.access_token === 'string') {
        await sessionKey?.save();
        await storeTokens(pair as { access_token: string; refresh_token?: string });
      }
      // A step-up: a new access token of the same session (the refresh token is unchanged).
      if (path === '/auth/step-up' && typeof pair?.access_token === 'string') await tokens.set('access_token', pair.access_token);
      return data as T;
    };
    return auth ? authed(send) : send({});
  }

  /**
   * Step-up (docs/step-up.md): performs a factor again in this session and
   * keeps the new access token (fresh auth_time); then retry the operation
   * that answered StepUpRequiredError. A wrong factor rejects (400, or 429
   * once the second factor is locked).
   */
  async function stepUp(factor: StepUpFactor): Promise<Schemas['StepUpResult']> {
    const body =
      'code' in factor ? { code: factor.code } : 'backupCode' in factor ? { backup_code: factor.backupCode } : 'password' in factor ? { password: factor.password } : { webauthn: factor.webauthn };
    const data = await authed(async (headers) => unwrap(await api.POST('/api/v1/auth/step-up', { body: body as never, headers })));
    await tokens.set('access_token', data.access_token);
    return data;
  }

  /** Assertion options for a step-up with a passkey or security key (pass them to navigator.credentials.get, then `stepUp({ webauthn })`). */
  async function stepUpWebauthnOptions(): Promise<unknown> {
    return authed(async (headers) => unwrap(await api.POST('/api/v1/auth/step-up/webauthn/options', { headers })).options);
  }

  /**
   * openapi-fetch middleware: the access token on every operation the document
   * secures with bearerAuth (unless the caller set Authorization), and on 401
   * UNAUTHORIZED one refresh and one retry of the same request. A refresh that
   * fails forgets the session (onSessionExpired) and the 401 is the answer.
   */
  const secured = new Set(Object.values(OPERATIONS).filter((op) => op.auth === 'bearerAuth').map((op) => `${op.method.toUpperCase()} ${op.path}`));
  const retries = new Map<string, Request>();
  const bearerMiddleware: Middleware = {
    async onRequest({ request, schemaPath, id }) {
      if (!secured.has(`${request.method} ${schemaPath}`) || request.headers.has('authorization')) return undefined;
      const access = await tokens.get('access_token');
      if (!access) return undefined;
      request.headers.set('authorization', `Bearer ${access}`);
      request.headers.set('x-td-bearer', access);
      retries.set(id, request.clone());
      request.headers.delete('x-td-bearer');
      return request;
    },
    async onResponse({ response, id }) {
      const retry = retries.get(id);
      retries.delete(id);
      if (retry === undefined || response.status !== 401) return undefined;
      const code = ((await response.clone().json().catch(() => null)) as { error?: { code?: string } } | null)?.error?.code;
      if (code !== 'UNAUTHORIZED' || (!cookieMode && !(await tokens.get('refresh_token')))) return undefined;
      const tokenUsed = retry.headers.get('x-td-bearer');
      retry.headers.delete('x-td-bearer');
      const current = await tokens.get('access_token');
      if (current === undefined || current === tokenUsed) {
        try {
          await refresh();
        } catch (refreshError) {
          if (cookieMode || (refreshError instanceof TrustedDevicesError && refreshError.status === 401)) {
            await forgetTokens();
            options.onSessionExpired?.();
          }
          return undefined;
        }
      }
      retry.headers.set('authorization', `Bearer ${await tokens.get('access_token')}`);
      return (options.fetch ?? globalThis.fetch)(retry);
    },
    onError({ id }) {
      retries.delete(id);
    },
  };
  api.use(bearerMiddleware);

  /**
   * Any operation by its operationId, typed from the document: `init` holds its
   * path and query parameters and its JSON body; resolves to the success
   * envelope's `data`, rejects with a TrustedDevicesError whose `code` is one
   * the document lists for the operation (`isApiError(e, id)` narrows it).
   * The access token is sent where the document asks for it (middleware), a
   * 401 refreshes once and retries; device headers go with device-bound paths.
   */
  async function call<K extends OperationId>(id: K, ...args: InitOptional<K> extends true ? [init?: CallInit<K>] : [init: CallInit<K>]): Promise<DataOf<K>> {
    const init = (args[0] ?? {}) as { path?: Record<string, string>; query?: Record<string, unknown>; body?: unknown; headers?: Record<string, string> };
    const operation = OPERATIONS[id];
    const apiPath = operation.path.replace(/^\/api\/v1/, '');
    const headers: Record<string, string> = { accept: 'application/json', ...init.headers };
    if (deviceBoundPath(apiPath)) Object.assign(headers, await deviceHeaders());
    if (sessionOpeningPath(apiPath)) Object.assign(headers, refreshCookieHeader());
    const result = await (api as unknown as Client<Record<string, never>>).request(operation.method as never, operation.path as never, {
      params: { path: init.path, query: init.query },
      ...(init.body !== undefined ? { body: init.body } : {}),
      headers,
      parseAs: 'text',
    } as never);
    const { response } = result as { response: Response };
    // openapi-fetch hands an error answer over already parsed (when it is JSON).
    if (!response.ok && response.status !== 303) return unwrap({ error: (result as { error?: unknown }).error, response } as never);
    const text = (result as { data?: string }).data ?? '';
    const json = /json/.test(response.headers.get('content-type') ?? '') && text !== '' ? (JSON.parse(text) as unknown) : undefined;
    if (json === undefined) return (text === '' ? null : text) as DataOf<K>;
    const envelope = json as { success?: unknown; data?: unknown };
    const data = envelope.success === true && 'data' in envelope ? envelope.data : json;
    const pair = data as { access_token?: unknown; refresh_token?: string } | null;
    if (sessionOpeningPath(apiPath) && typeof pair?.access_token === 'string') await storeTokens(pair as { access_token: string; refresh_token?: string });
    return data as DataOf<K>;
  }

  const withDeviceToken = async (headers: Record<string, string>) => {
    const deviceToken = keepDeviceToken ? await tokens.get('device_token') : undefined;
    return deviceToken ? { ...headers, 'x-device-token': deviceToken } : headers;
  };

  const devices = {
    /** Active trusted devices, most recently used first; `is_current` marks this one. */
    async list(): Promise<Device[]> {
      return authed(async (headers) => unwrap(await api.GET('/api/v1/devices', { headers: await withDeviceToken(headers) })).devices);
    },
    async revoke(deviceId: string): Promise<void> {
      await authed(async (headers) =>
        unwrap(await api.DELETE('/api/v1/devices/{device_id}', { params: { path: { device_id: deviceId } }, headers: await withDeviceToken(headers) })),
      );
    },
    async revokeAll(): Promise<number> {
      return authed(async (headers) => unwrap(await api.DELETE('/api/v1/devices', { headers })).revoked_count);
    },
    async rename(deviceId: string, deviceName: string): Promise<Device> {
      return authed(
        async (headers) =>
          unwrap(await api.PATCH('/api/v1/devices/{device_id}', { params: { path: { device_id: deviceId } }, body: { device_name: deviceName }, headers: await withDeviceToken(headers) }))
            .device,
      );
    },
    /** Device history, newest first; pass `before` = the previous page's nextBefore. */
    async events(page: { limit?: number; before?: string } = {}): Promise<{ events: DeviceEvent[]; nextBefore: string | null }> {
      const data = await authed(async (headers) => unwrap(await api.GET('/api/v1/devices/events', { params: { query: page }, headers })));
      return { events: data.events, nextBefore: data.next_before };
    },
  };

  /** Named, typed methods for the rest of the API (each is `call(operationId, …)`). */
  const accountApi = {
    signup: (body: CallInit<'signup'>['body']) => call('signup', { body }),
    passwordPolicy: () => call('getPasswordPolicy'),
    changePassword: (body: CallInit<'changePassword'>['body']) => call('changePassword', { body }),
    forgotPassword: (email: string) => call('forgotPassword', { body: { email } }),
    resetPassword: (token: string, newPassword: string) => call('resetPassword', { body: { token, new_password: newPassword } }),
    verifyEmail: (token: string) => call('verifyEmail', { body: { token } }),
    resendVerificationEmail: () => call('resendVerificationEmail'),
    reportNotMe: (token: string) => call('reportNotMe', { body: { token } }),
  };
  const totp = {
    setup: (deviceName?: string) => call('setupTotp', { body: deviceName === undefined ? null : { device_name: deviceName } }),
    confirm: (code: string) => call('confirmTotp', { body: { code } }),
    status: () => call('getMfaStatus'),
    regenerateBackupCodes: (code: string) => call('regenerateBackupCodes', { body: { code } }),
    disable: (factor: { code: string } | { password: string }) => call('disableMfa', { body: factor }),
  };
  const sessions = {
    list: () => call('listSessions'),
    end: (sessionId: string) => call('endSession', { path: { session_id: sessionId } }),
    endAll: (exceptCurrent = false) => call('endSessions', { query: { except_current: exceptCurrent } }),
  };
  const security = {
    /**
     * The security history, newest first (docs/security-center.md, "History"):
     * pass `before` = the previous page's nextBefore; `kind` narrows it
     * (an unknown kind is a 422). Show `summary` for a kind you do not know.
     */
    async events(page: { limit?: number; before?: string; kind?: string[] } = {}): Promise<{ events: SecurityEvent[]; nextBefore: string | null; locationAttribution: { text: string; url: string } }> {
      const data = await call('listSecurityEvents', { query: page });
      return { events: data.events, nextBefore: data.next_before, locationAttribution: data.location_attribution };
    },
  };
  const passkeys = {
    registrationOptions: () => call('webauthnRegisterOptions', { body: null }),
    register: (body: CallInit<'webauthnRegisterVerify'>['body']) => call('webauthnRegisterVerify', { body }),
    list: () => call('listWebauthnCredentials'),
    rename: (credentialId: string, name: string) => call('renameWebauthnCredential', { path: { credential_id: credentialId }, body: { name } }),
    remove: (credentialId: string) => call('removeWebauthnCredential', { path: { credential_id: credentialId } }),
    signInOptions: () => call('passkeyOptions', { body: null }),
    signIn: (body: CallInit<'passkeyVerify'>['body']) => call('passkeyVerify', { body }),
    secondFactorOptions: (step: MfaStep) => call('webauthnMfaOptions', { body: { temporary_token: step.temporaryToken } }),
  };

  return { api, tokens, call, request, login, verifyMfa, trustThisDevice, notNow, refresh, me, logout, stepUp, stepUpWebauthnOptions, devices, account: accountApi, totp, sessions, passkeys, security };
}
