/**
 * The rate limits (docs/security.md), in one place: the numbers, the keys, and the
 * hooks that apply them. Counters live in Redis when REDIS_URL is set (shared
 * by every instance), in memory otherwise (src/platform/http/rate-limit-store.ts).
 * RATE_LIMITS=off installs nothing. The second-factor limits are not here:
 * they are counted in the database (src/mfa), per token and per user.
 *
 * Two kinds of limit:
 * - `requests`: every request counts (signup per IP, password checks behind
 *   a session, the per-user API limit shared by device and session routes).
 * - `failures`: only failed attempts count (login). Each attempt is counted
 *   before the work (so a burst of parallel guesses cannot outrun the
 *   limit, and a refused one never reaches the password hasher) and taken
 *   back when it did not fail (a successful sign-in, an MFA challenge).
 *
 * Clients are keyed by address; IPv6 by its /64 (one subscriber's whole
 * prefix), since a single host can use any of 2^64 addresses.
 *
 * Known devices (docs/security.md, "Strangers never lock out the owner"): a
 * login that presents a valid device token of the account of its email (and
 * a valid proof when the device is key-bound) is recognised by the login
 * route before these hooks run (`request.knownDevice`); it is exempt from the
 * per-account and the per-IP limits (it still counts per IP + email), and
 * its success clears the per-account failure count. A password reset clears
 * it too (`LoginFailures.clearAccount`).
 *
 * Threats: online password guessing per account (from one IP: IP + email;
 * from many IPs: the per-account day limit), credential stuffing and floods
 * of distinct emails from one IP (the per-IP ceiling), sign-up spam, a
 * stolen access token used as a password oracle, API scraping; strangers
 * locking the owner out with the per-account limit (the known-device
 * exemption, the reset).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { DAY, MINUTE } from '../clock.ts';
import { AppError } from '../errors.ts';
import { isIPv4Address, networkAddress, parseIpAddress } from '../ip.ts';
import type { CounterStore } from './rate-limit-store.ts';

type KeyOf = (request: FastifyRequest) => string;

export interface RequestLimit {
  kind: 'requests';
  name: string;
  max: number;
  windowMs: number;
  key: KeyOf;
}

export interface FailureRule {
  name: string;
  max: number;
  windowMs: number;
  key: KeyOf;
  /** Whether the answer was a failed attempt for this counter (kept in the count). */
  failed(statusCode: number): boolean;
  /** A request this counter does not apply to (neither counted nor refused). */
  exempt?(request: FastifyRequest): boolean;
  /** An answer after which this counter is forgotten (not just this attempt: every failure before it). */
  clears?(request: FastifyRequest, statusCode: number): boolean;
  /** The 429's message when this counter refuses (what the person can do). */
  message?: string;
}

export interface FailureLimit {
  kind: 'failures';
  rules: readonly FailureRule[];
}

export type RouteRateLimit = RequestLimit | FailureLimit;

/**
 * The address a client is counted by: IPv4 (also IPv4-mapped IPv6) as is,
 * IPv6 by its /64, written as its four hextets + "::/64" (the key format the
 * counters already use, so a deploy does not reset them). Not an address → as given.
 */
export function clientNetwork(ip: string): string {
  const address = parseIpAddress(ip);
  if (address === null) return ip;
  if (isIPv4Address(address)) return address.toString();
  const { parts } = networkAddress(address, 64);
  return `${parts.slice(0, 4).map((part) => part.toString(16)).join(':')}::/64`;
}

const ip = (request: FastifyRequest) => clientNetwork(request.ip);
const normalised = (email: string) => email.trim().toLowerCase();
const email = (request: FastifyRequest) => {
  const value = (request.body as { email?: unknown } | undefined)?.email;
  return typeof value === 'string' ? normalised(value) : '';
};
/** The per-account login counter of an email (existing or not). */
const loginAccountKey = (address: string) => `login:account:${address}`;
/** Recognised by the login route as a device of the email's account (see the module comment). */
const knownDevice = (request: FastifyRequest) => request.knownDevice === true;

/** What the per-account limit tells the person locked out: how to get in anyway. */
export const ACCOUNT_LOCKED_MESSAGE =
  'Too many failed sign-ins for this account. Use a device you signed in on before, or reset your password.';

/**
 * Authenticated API routes, per user, across routes: device routes and the
 * session routes count against one budget. Use it with
 * `config: rateLimitConfig(USER_API_LIMIT)`.
 */
export const USER_API_LIMIT: RequestLimit = {
  kind: 'requests',
  name: 'user-api',
  max: 60,
  windowMs: MINUTE,
  key: (r) => `user-api:${r.auth?.userId ?? `ip:${ip(r)}`}`,
};

export const RATE_LIMITS = {
  signup: { kind: 'requests', name: 'signup', max: 3, windowMs: 5 * MINUTE, key: (r) => `signup:${ip(r)}` } satisfies RequestLimit,
  login: {
    kind: 'failures',
    // A failure is 401 INVALID_CREDENTIALS (a 422 never gets this far: validation runs first).
    // For the per-IP ceiling a refusal by the hashing line counts too (503 when full, 429 when the
    // client is over its share): otherwise a flood from one address, refused at the hasher, would
    // never reach its ceiling and would keep the line full for everyone. It does not count against
    // a person's own email or account. A known device (see the module comment) skips the per-account
    // and per-IP counters, and its success clears the per-account one.
    rules: [
      { name: 'ip-email', max: 5, windowMs: 15 * MINUTE, key: (r) => `login:ip-email:${ip(r)}:${email(r)}`, failed: (status) => status === 401 },
      {
        name: 'account',
        max: 100,
        windowMs: DAY,
        key: (r) => loginAccountKey(email(r)),
        failed: (status) => status === 401,
        exempt: knownDevice,
        clears: (r, status) => knownDevice(r) && status === 200,
        message: ACCOUNT_LOCKED_MESSAGE,
      },
      { name: 'ip', max: 50, windowMs: 15 * MINUTE, key: (r) => `login:ip:${ip(r)}`, failed: (status) => status === 401 || status === 429 || status === 503, exempt: knownDevice },
    ],
  } satisfies FailureLimit,
  /** Password checks behind a session (password change, MFA off by password): a stolen access token must not become a password oracle. */
  passwordCheck: { kind: 'requests', name: 'password', max: 5, windowMs: 15 * MINUTE, key: (r) => `password:${r.auth?.userId ?? ip(r)}` } satisfies RequestLimit,
  userApi: USER_API_LIMIT,
  /** The same budget as userApi (an alias kept for existing callers). */
  devices: USER_API_LIMIT,
  // Account email (docs/email.md): each mail-sending route is limited per IP and per account.
  forgotPasswordIp: { kind: 'requests', name: 'forgot-ip', max: 10, windowMs: 15 * MINUTE, key: (r) => `forgot-ip:${ip(r)}` } satisfies RequestLimit,
  forgotPasswordAccount: { kind: 'requests', name: 'forgot', max: 3, windowMs: 15 * MINUTE, key: (r) => `forgot:${email(r)}` } satisfies RequestLimit,
  resendVerificationIp: { kind: 'requests', name: 'resend-ip', max: 10, windowMs: 15 * MINUTE, key: (r) => `resend-ip:${ip(r)}` } satisfies RequestLimit,
  resendVerificationAccount: { kind: 'requests', name: 'resend', max: 3, windowMs: 15 * MINUTE, key: (r) => `resend:${r.auth?.userId ?? ip(r)}` } satisfies RequestLimit,
  /** Verify, reset and report links: guessing a 256-bit token is hopeless, but a reset costs an argon2 hash. */
  emailLink: { kind: 'requests', name: 'email-link', max: 20, windowMs: 15 * MINUTE, key: (r) => `email-link:${ip(r)}` } satisfies RequestLimit,
  /** Proof challenges need no account: counted per IP (each is a row until it expires, 60 s later). */
  deviceChallenge: { kind: 'requests', name: 'device-challenge', max: 30, windowMs: MINUTE, key: (r) => `device-challenge:${ip(r)}` } satisfies RequestLimit,
  /** Passkey management behind a session (docs/passkeys.md). */
  webauthn: { kind: 'requests', name: 'webauthn', max: 30, windowMs: MINUTE, key: (r) => `webauthn:${r.auth?.userId ?? ip(r)}` } satisfies RequestLimit,
  /** Passkey sign-in and second-step options, before any session: each stores a challenge row. */
  webauthnAnonymous: { kind: 'requests', name: 'webauthn-ip', max: 30, windowMs: MINUTE, key: (r) => `webauthn-ip:${ip(r)}` } satisfies RequestLimit,
  /** Per admin API key (src/admin): its routes authenticate first, so the key is known here. */
  admin: { kind: 'requests', name: 'admin', max: 300, windowMs: MINUTE, key: (r) => `admin:${r.admin?.keyId ?? ip(r)}` } satisfies RequestLimit,
} as const;

/** A route's limits: one, or several independent ones (e.g. per IP and per account), each counted. */
export const rateLimitConfig = (...limits: RouteRateLimit[]) => ({ rateLimit: limits.length === 1 ? limits[0]! : limits });

const limited = (ttlMs: number, message?: string) => {
  const seconds = Math.max(1, Math.ceil(ttlMs / 1000));
  return new AppError('RATE_LIMITED', message ?? `Too many requests. Try again in ${seconds} seconds.`, {
    headers: { 'retry-after': String(seconds) },
    details: { retry_after_seconds: seconds },
  });
};

type Hook = (request: FastifyRequest, reply: FastifyReply, payload?: unknown) => Promise<unknown>;
const append = (existing: unknown, hook: Hook): Hook[] => [...(Array.isArray(existing) ? existing : existing ? [existing] : []), hook];

const reservations = new WeakMap<FastifyRequest, Array<{ rule: FailureRule; key: string }>>();

/** The login failure counters, for the work that lifts them (a password reset). */
export interface LoginFailures {
  /** Forgets the per-account failure count of an email (every instance, with Redis). */
  clearAccount(email: string): Promise<void>;
}

/** RATE_LIMITS=off: nothing is counted, nothing to clear. */
export const NO_LOGIN_FAILURES: LoginFailures = { clearAccount: async () => undefined };

/**
 * Applies `config.rateLimit` of every route registered after this call
 * (preHandler: after authentication and validation, so keys can use the user
 * and the typed body; a route's own preHandlers run first, so the login's
 * device recognition is known here).
 */
export function installRateLimits(app: FastifyInstance, store: CounterStore): LoginFailures {
  app.addHook('onRoute', (route: RouteOptions) => {
    const configured = (route.config as { rateLimit?: RouteRateLimit | readonly RouteRateLimit[] } | undefined)?.rateLimit;
    for (const limit of configured === undefined ? [] : [configured].flat()) applyLimit(route, limit);
  });

  function applyLimit(route: RouteOptions, limit: RouteRateLimit): void {
    if (limit.kind === 'requests') {
      route.preHandler = append(route.preHandler, async (request) => {
        const [state] = await store.hit([{ key: limit.key(request), windowMs: limit.windowMs }]);
        if (state!.count > limit.max) throw limited(state!.ttlMs);
      });
      return;
    }

    route.preHandler = append(route.preHandler, async (request) => {
      const counted = limit.rules.filter((rule) => rule.exempt?.(request) !== true).map((rule) => ({ rule, key: rule.key(request) }));
      const states = await store.hit(counted.map(({ rule, key }) => ({ key, windowMs: rule.windowMs })));
      const over = counted.map((c, i) => ({ ...c, state: states[i]! })).filter(({ rule, state }) => state.count > rule.max);
      if (over.length > 0) {
        // A refused attempt is not checked, so it is not a failure either.
        await store.undo(counted.map((c) => c.key));
        const longest = over.reduce((a, b) => (b.state.ttlMs > a.state.ttlMs ? b : a));
        throw limited(longest.state.ttlMs, longest.rule.message);
      }
      reservations.set(request, counted);
    });
    const rules = limit.rules;
    // onSend, not onResponse: the count is settled before the client sees the answer.
    route.onSend = append(route.onSend, async (request, reply, payload) => {
      const counted = reservations.get(request);
      if (counted !== undefined) {
        reservations.delete(request);
        const notFailures = counted.filter(({ rule }) => !rule.failed(reply.statusCode)).map((c) => c.key);
        if (notFailures.length > 0) await store.undo(notFailures);
      }
      const cleared = rules.filter((rule) => rule.clears?.(request, reply.statusCode) === true).map((rule) => rule.key(request));
      if (cleared.length > 0) await store.clear(cleared);
      return payload;
    });
  }

  return { clearAccount: (address) => store.clear([loginAccountKey(normalised(address))]) };
}

declare module 'fastify' {
  interface FastifyContextConfig {
    rateLimit?: RouteRateLimit | readonly RouteRateLimit[];
  }
  interface FastifyRequest {
    /** Set by the login route: this request presents a valid device (token, and proof when key-bound) of the email's account. */
    knownDevice?: boolean;
  }
}
