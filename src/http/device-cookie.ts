/**
 * The device-token cookie (SPEC §5.3, §5.5), set by activation and by every
 * login that rotates the token, cleared by revoking one's own device.
 * HttpOnly (no script reads it), SameSite=Strict, Secure unless
 * COOKIE_SECURE=false (local http), scoped to the API path. Its lifetime is
 * what remains of the device's trust.
 */
import type { FastifyReply } from 'fastify';
import type { Config } from '../config.ts';
import { DEVICE_COOKIE } from './request-device.ts';

export const deviceCookieOptions = (config: Readonly<Config>) => ({
  httpOnly: true,
  sameSite: 'strict' as const,
  secure: config.cookieSecure,
  path: '/api/v1',
});

export function setDeviceCookie(reply: FastifyReply, config: Readonly<Config>, token: string, maxAgeSeconds: number): void {
  reply.setCookie(DEVICE_COOKIE, token, { ...deviceCookieOptions(config), maxAge: Math.max(0, Math.floor(maxAgeSeconds)) });
}

export function clearDeviceCookie(reply: FastifyReply, config: Readonly<Config>): void {
  reply.clearCookie(DEVICE_COOKIE, deviceCookieOptions(config));
}
