/**
 * Password hashing: argon2id with the OWASP Password Storage Cheat Sheet
 * parameters (m = 19 MiB, t = 2, p = 1). @node-rs/argon2 runs on libuv's
 * thread pool, so hashing never blocks the event loop.
 *
 * At most one hash per core runs at a time (the rest wait in line): more
 * would not finish sooner, would hold 19 MiB each, and would take every
 * thread of the pool that file and DNS work also need. The line is bounded
 * (QUEUE_PER_SLOT per running hash, and no more than MAX_EXPECTED_WAIT_MS of
 * expected waiting): when it is full, a new request is
 * refused at once with 503 SERVER_BUSY (Retry-After: 1) instead of waiting
 * behind a flood, so no login ever waits seconds (docs/security.md). The rate limits
 * (src/platform/http/rate-limits.ts) stop a flood from one client before it gets here;
 * the bound is for floods from many.
 *
 * Unknown emails are verified against a dummy hash made once at start, so a
 * login for an email that does not exist costs the same as a wrong password.
 */
import { availableParallelism } from 'node:os';
import { hash, verify } from '@node-rs/argon2';
import { AppError } from '../errors.ts';

/** Algorithm.Argon2id of @node-rs/argon2 (an ambient const enum, so spelled out). */
const ARGON2ID = 2;

export interface PasswordHasherOptions {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

export const OWASP_ARGON2ID: PasswordHasherOptions = { memoryCost: 19_456, timeCost: 2, parallelism: 1 };

export interface PasswordHasher {
  readonly options: PasswordHasherOptions;
  hash(password: string): Promise<string>;
  verify(hashed: string, password: string): Promise<boolean>;
  /** Spends the time of one verification and answers false. */
  verifyDummy(password: string): Promise<false>;
}

/** Hashes that may wait per running one, at most. */
export const QUEUE_PER_SLOT = 8;
/** And at most this much expected waiting: a new hash is refused when the line ahead would take longer (docs/security.md: no login waits seconds). */
export const MAX_EXPECTED_WAIT_MS = 1000;

export const serverBusy = () => new AppError('SERVER_BUSY', undefined, { headers: { 'retry-after': '1' } });

/**
 * Runs at most `slots` tasks at once, the others in arrival order; refuses at
 * once when `maxWaiting` already wait, or when the line ahead would take more
 * than `maxWaitMs` at the recent pace (a moving average of task durations:
 * the bound follows the machine, slow under load, fast when idle).
 */
function createLimiter(slots: number, maxWaiting: number, maxWaitMs: number) {
  let running = 0;
  let averageMs = 50;
  const waiting: Array<() => void> = [];
  return async function limited<T>(task: () => Promise<T>): Promise<T> {
    if (running >= slots) {
      const expectedWaitMs = ((waiting.length + 1) * averageMs) / slots;
      if (waiting.length >= maxWaiting || expectedWaitMs > maxWaitMs) throw serverBusy();
      await new Promise<void>((resolve) => waiting.push(resolve));
    } else running++;
    const started = performance.now();
    try {
      return await task();
    } finally {
      averageMs = 0.8 * averageMs + 0.2 * (performance.now() - started);
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
}

export function createPasswordHasher(
  options: PasswordHasherOptions = OWASP_ARGON2ID,
  concurrency = availableParallelism(),
  maxWaiting = QUEUE_PER_SLOT * Math.max(1, concurrency),
  maxWaitMs = MAX_EXPECTED_WAIT_MS,
): PasswordHasher {
  const argonOptions = { algorithm: ARGON2ID, ...options };
  const limited = createLimiter(Math.max(1, concurrency), maxWaiting, maxWaitMs);
  // A malformed stored hash is a wrong password; a full line is SERVER_BUSY, never "wrong password".
  const check = (hashed: string, password: string) => limited(() => verify(hashed, password).catch(() => false));
  // Made once, at start, off the event loop (never refused: nothing waits yet); the catch keeps an early failure from being unhandled.
  const dummy = limited(() => hash('dummy-password-for-unknown-emails', argonOptions));
  dummy.catch(() => undefined);
  return {
    options,
    hash: (password) => limited(() => hash(password, argonOptions)),
    verify: check,
    verifyDummy: async (password) => {
      await check(await dummy, password);
      return false;
    },
  };
}

/**
 * README "API overview", the one password policy: the API enforces it (passwordProblems)
 * and serves it (GET /auth/password-policy) so clients check the same rule.
 * Length counts Unicode code points; the classes are Unicode categories, so
 * "Ärger123x" has its upper-case letter.
 */
export const PASSWORD_POLICY = Object.freeze({
  min_length: 8,
  max_length: 128,
  require_uppercase: true,
  require_lowercase: true,
  require_digit: true,
  description: '8 to 128 characters, with an upper-case letter, a lower-case letter and a digit.',
});

export function passwordProblems(password: string): string[] {
  const problems: string[] = [];
  const length = [...password].length;
  const { min_length: min, max_length: max } = PASSWORD_POLICY;
  if (length < min || length > max) problems.push(`must be ${min} to ${max} characters long`);
  if (PASSWORD_POLICY.require_uppercase && !/\p{Lu}/u.test(password)) problems.push('must contain an upper-case letter');
  if (PASSWORD_POLICY.require_lowercase && !/\p{Ll}/u.test(password)) problems.push('must contain a lower-case letter');
  if (PASSWORD_POLICY.require_digit && !/\p{Nd}/u.test(password)) problems.push('must contain a digit');
  return problems;
}
