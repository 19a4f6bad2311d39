/**
 * Cookie policy: the `td_device` (device token) and `td_refresh` (refresh
 * token) cookies, and when they are `Secure`.
 *
 * Lifetimes: td_device lives DEVICE_TRUST_TTL_DAYS, td_refresh
 * REFRESH_TOKEN_TTL_SECONDS (each token also expires on the server).
 * Storage: both HttpOnly (never readable by page script) and SameSite=Strict
 * (never sent on a cross-site request); td_device on Path=/api/v1 (login and
 * the /devices calls need it), td_refresh only on Path=/api/v1/auth (refresh
 * and logout).
 * Threats: a `Secure` cookie is never sent over plain http, so a network
 * attacker cannot read it. But a browser DROPS a `Secure` cookie set by a
 * plain-http page that is not a potentially trustworthy origin (anything but
 * https, localhost and loopback addresses), so with COOKIE_SECURE=true a
 * trial on http://192.168.1.20:3000 or http://my-vm:3000 silently never keeps
 * the device token. COOKIE_SECURE=auto (the default outside production)
 * decides per request: `Secure` when the request is https (the socket, or
 * X-Forwarded-Proto from a TRUST_PROXY proxy) or the host is loopback
 * (where browsers accept `Secure` over http), otherwise not. Production
 * always uses `Secure` (config refuses COOKIE_SECURE=false there).
 */
import { isIP } from 'node:net';
import type { CookieSerializeOptions } from '@fastify/cookie';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CookieSecure } from '../config.ts';

export const DEVICE_COOKIE = 'td_device';
export const REFRESH_COOKIE = 'td_refresh';
export const DEVICE_COOKIE_PATH = '/api/v1';
export const REFRESH_COOKIE_PATH = '/api/v1/auth';
/**
 * A browser client that wants its refresh token as the td_refresh cookie (and
 * not in the JSON body) sends `x-refresh-cookie: 1`; /auth/refresh reads the
 * cookie only with this header. A custom header cannot be sent cross-site
 * without a CORS preflight, which adds a second CSRF guard to SameSite=Strict.
 */
export const REFRESH_COOKIE_HEADER = 'x-refresh-cookie';

/** localhost, *.localhost, 127.0.0.0/8 and ::1: origins browsers treat as secure over http. */
export function isLoopbackHost(hostname: string): boolean {
  let host = hostname.trim().toLowerCase();
  if (host.startsWith('[')) host = host.slice(1, host.indexOf(']') > 0 ? host.indexOf(']') : undefined);
  else if (isIP(host) === 0) host = host.replace(/:\d+$/, ''); // a port, if the framework left one
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || host === '0:0:0:0:0:0:0:1';
  return false;
}

/** Whether cookies set in answer to `request` carry `Secure`. */
export function cookieSecureFor(mode: CookieSecure, request: FastifyRequest): boolean {
  if (mode !== 'auto') return mode;
  return request.protocol === 'https' || isLoopbackHost(request.hostname);
}

export function deviceCookieOptions(mode: CookieSecure, request: FastifyRequest): CookieSerializeOptions {
  return { httpOnly: true, sameSite: 'strict', secure: cookieSecureFor(mode, request), path: DEVICE_COOKIE_PATH };
}

export function refreshCookieOptions(mode: CookieSecure, request: FastifyRequest): CookieSerializeOptions {
  return { httpOnly: true, sameSite: 'strict', secure: cookieSecureFor(mode, request), path: REFRESH_COOKIE_PATH };
}

/** DBSC (docs/sessions.md): the short-lived bound cookie a DBSC session's refresh needs; the browser renews it with its key. */
export const BOUND_COOKIE = 'td_bound';
export function boundCookieOptions(mode: CookieSecure, request: FastifyRequest): CookieSerializeOptions {
  return { httpOnly: true, sameSite: 'strict', secure: cookieSecureFor(mode, request), path: REFRESH_COOKIE_PATH };
}

export function wantsRefreshCookie(request: FastifyRequest): boolean {
  return request.headers[REFRESH_COOKIE_HEADER] === '1';
}

/**
 * Hands a new refresh token to the client: for a browser that asked
 * (`x-refresh-cookie: 1`) as the td_refresh cookie, left out of the body so
 * page script never holds it; otherwise unchanged, in the body. Used by every
 * route that opens or rotates a session (login, MFA verify, refresh, passkey sign-in).
 */
export function deliverRefreshToken<T extends { refresh_token?: string }>(
  config: { cookieSecure: CookieSecure; refreshTokenTtlSeconds: number },
  request: FastifyRequest,
  reply: FastifyReply,
  session: T,
): T {
  if (!wantsRefreshCookie(request) || session.refresh_token === undefined) return session;
  const { refresh_token: token, ...rest } = session;
  reply.setCookie(REFRESH_COOKIE, token, { ...refreshCookieOptions(config.cookieSecure, request), maxAge: config.refreshTokenTtlSeconds });
  return rest as T;
}

/** The device-token cookie (docs/trust-model.md): set at activation and by every login that rotates the token; its lifetime is what remains of the trust. */
export function setDeviceCookie(reply: FastifyReply, request: FastifyRequest, mode: CookieSecure, token: string, maxAgeSeconds: number): void {
  reply.setCookie(DEVICE_COOKIE, token, { ...deviceCookieOptions(mode, request), maxAge: Math.max(0, Math.floor(maxAgeSeconds)) });
}

/** Clears the device-token cookie (the caller revoked its own device). */
export function clearDeviceCookie(reply: FastifyReply, request: FastifyRequest, mode: CookieSecure): void {
  reply.clearCookie(DEVICE_COOKIE, deviceCookieOptions(mode, request));
}
