/**
 * The rate limits of SPEC §6, in one place. Counters live in Redis when
 * REDIS_URL is set (shared by every instance), in memory otherwise.
 * RATE_LIMITS=off registers nothing. The second-factor limits are not here:
 * they are counted in the database (src/mfa), per token and per user.
 */
import type { FastifyRequest } from 'fastify';
import { MINUTE } from '../clock.ts';

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
  /** Per admin API key (src/admin): its routes authenticate first, so the key is known here. */
  admin: { max: 300, timeWindow: MINUTE, keyGenerator: (r: FastifyRequest) => `admin:${r.admin?.keyId ?? r.ip}` },
  /** Passkey management behind a session (SPEC §5.8). */
  webauthn: { max: 30, timeWindow: MINUTE, keyGenerator: (r: FastifyRequest) => `webauthn:${r.auth?.userId ?? r.ip}` },
  /** Passkey sign-in and second-step options, before any session: each stores a challenge row. */
  webauthnAnonymous: { max: 30, timeWindow: MINUTE, keyGenerator: (r: FastifyRequest) => `webauthn-ip:${r.ip}` },
} satisfies Record<string, RouteRateLimit>;

export const rateLimitConfig = (limit: RouteRateLimit) => ({ rateLimit: limit });
