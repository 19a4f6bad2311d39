/**
 * Password hashing: argon2id with the OWASP Password Storage Cheat Sheet
 * parameters (m = 19 MiB, t = 2, p = 1). @node-rs/argon2 runs on libuv's
 * thread pool, so hashing never blocks the event loop.
 *
 * Unknown emails are verified against a dummy hash made once at start, so a
 * login for an email that does not exist costs the same as a wrong password.
 */
import { hash, verify } from '@node-rs/argon2';

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

export function createPasswordHasher(options: PasswordHasherOptions = OWASP_ARGON2ID): PasswordHasher {
  const argonOptions = { algorithm: ARGON2ID, ...options };
  // Made once, at start, off the event loop; the catch keeps an early failure from being unhandled.
  const dummy = hash('dummy-password-for-unknown-emails', argonOptions);
  dummy.catch(() => undefined);
  return {
    options,
    hash: (password) => hash(password, argonOptions),
    verify: async (hashed, password) => {
      try {
        return await verify(hashed, password);
      } catch {
        return false;
      }
    },
    verifyDummy: async (password) => {
      await verify(await dummy, password).catch(() => false);
      return false;
    },
  };
}

/** SPEC §5.1: 8–128 characters with an upper-case letter, a lower-case letter and a digit. */
export function passwordProblems(password: string): string[] {
  const problems: string[] = [];
  const length = [...password].length;
  if (length < 8 || length > 128) problems.push('must be 8 to 128 characters long');
  if (!/\p{Lu}/u.test(password)) problems.push('must contain an upper-case letter');
  if (!/\p{Ll}/u.test(password)) problems.push('must contain a lower-case letter');
  if (!/\p{Nd}/u.test(password)) problems.push('must contain a digit');
  return problems;
}
