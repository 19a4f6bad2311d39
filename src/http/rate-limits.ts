/**
 * The rate limits of SPEC §6, in one place. Counters live in Redis when
 * REDIS_URL is set (shared by every instance), in memory otherwise.
 * RATE_LIMITS=off registers nothing. The second-factor limits are not here:
 * they are counted in the database (src/mfa), per token and per user.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { MINUTE } from '../clock.ts';
import { AppError } from '../errors.ts';

const bodyEmail = (r: FastifyRequest): string => {
  const email = (r.body as { email?: unknown } | undefined)?.email;
  return typeof email === 'string' ? email.trim().toLowerCase() : '';
};

export interface RouteRateLimit {
  max: number;
  timeWindow: number;
  keyGenerator: (request: FastifyRequest) => string;
}

export const RATE_LIMITS = {
  signup: { max: 3, timeWindow: 5 * MINUTE, keyGenerator: (r: FastifyRequest) => `signup:${r.ip}` },
  login: {
    max: 5,
    timeWindow: 15 * MINUTE,
    keyGenerator: (r: FastifyRequest) => {
      const email = (r.body as { email?: unknown } | undefined)?.email;
      return `login:${r.ip}:${typeof email === 'string' ? email.trim().toLowerCase() : ''}`;
    },
  },
  /** Password checks behind a session (password change, MFA off by password): a stolen access token must not become a password oracle. */
  passwordCheck: { max: 5, timeWindow: 15 * MINUTE, keyGenerator: (r: FastifyRequest) => `password:${r.auth?.userId ?? r.ip}` },
  devices: { max: 60, timeWindow: MINUTE, keyGenerator: (r: FastifyRequest) => `devices:${r.auth?.userId ?? r.ip}` },
  // Account email (SPEC §5.6): each mail-sending route is limited per IP and per account.
  forgotPasswordIp: { max: 10, timeWindow: 15 * MINUTE, keyGenerator: (r: FastifyRequest) => `forgot-ip:${r.ip}` },
  forgotPasswordAccount: { max: 3, timeWindow: 15 * MINUTE, keyGenerator: (r: FastifyRequest) => `forgot:${bodyEmail(r)}` },
  resendVerificationIp: { max: 10, timeWindow: 15 * MINUTE, keyGenerator: (r: FastifyRequest) => `resend-ip:${r.ip}` },
  resendVerificationAccount: { max: 3, timeWindow: 15 * MINUTE, keyGenerator: (r: FastifyRequest) => `resend:${r.auth?.userId ?? r.ip}` },
  /** Verify, reset and report links: guessing a 256-bit token is hopeless, but a reset costs an argon2 hash. */
  emailLink: { max: 20, timeWindow: 15 * MINUTE, keyGenerator: (r: FastifyRequest) => `email-link:${r.ip}` },
  /** Passkey management behind a session (SPEC §5.8). */
  webauthn: { max: 30, timeWindow: MINUTE, keyGenerator: (r: FastifyRequest) => `webauthn:${r.auth?.userId ?? r.ip}` },
  /** Passkey sign-in and second-step options, before any session: each stores a challenge row. */
  webauthnAnonymous: { max: 30, timeWindow: MINUTE, keyGenerator: (r: FastifyRequest) => `webauthn-ip:${r.ip}` },
} satisfies Record<string, RouteRateLimit>;

/**
 * A second, independent limit on one route (the route's own config holds the
 * first): @fastify/rate-limit runs one limit per request through its hook, so
 * the second one is checked with createRateLimit in a preHandler. Without the
 * plugin (RATE_LIMITS=off) it does nothing.
 */
export function extraRateLimit(app: FastifyInstance, limit: RouteRateLimit) {
  const decorated = app as FastifyInstance & { createRateLimit?: (o: RouteRateLimit) => (r: FastifyRequest) => Promise<{ isExceeded?: boolean; ttl?: number }> };
  const check = decorated.createRateLimit?.(limit);
  return async (request: FastifyRequest): Promise<void> => {
    if (!check) return;
    const result = await check(request);
    if (result.isExceeded) {
      const seconds = Math.max(1, Math.ceil((result.ttl ?? limit.timeWindow) / 1000));
      throw new AppError('RATE_LIMITED', `Too many requests. Try again in ${seconds} seconds.`, {
        headers: { 'retry-after': String(seconds) },
        details: { retry_after_seconds: seconds },
      });
    }
  };
}

export const rateLimitConfig = (limit: RouteRateLimit) => ({ rateLimit: limit });
