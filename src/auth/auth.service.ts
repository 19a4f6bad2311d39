/**
 * Sign-up, login (with the MFA challenge and the trusted-device bypass),
 * second-factor verification, refresh-token rotation, logout and password
 * change.
 *
 * Lifetimes: access token ACCESS_TOKEN_TTL_SECONDS (JWT, stateless); refresh
 * token REFRESH_TOKEN_TTL_SECONDS, rotated on every use, the rotated one
 * never valid again and its reuse revoking the whole family (a stolen copy
 * is detected when either party uses it second); MFA challenge (temporary
 * token) MFA_CHALLENGE_TTL_SECONDS, single use, bound to the login request's
 * fingerprint, burnt after 5 wrong codes.
 * Storage: argon2id password hashes; SHA-256 of every opaque token.
 * Threats: user enumeration (one answer and the same argon2 cost for an
 * unknown email and a wrong password), brute force of the second factor
 * (per-token and per-user limits), token theft (short lifetimes, rotation,
 * prefixes that never cross kinds).
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Clock } from '../clock.ts';
import { AppError, TooManyAttemptsError, UnauthorizedError, ValidationError } from '../errors.ts';
import type { DeviceTrust, EventMeta, PendingDevice, RequestDevice } from '../devices/devices.service.ts';
import { GATE_COMPONENTS } from '../devices/fingerprint.ts';
import type { MfaRepository } from '../mfa/mfa.repository.ts';
import type { MfaService, SecondFactor } from '../mfa/mfa.service.ts';
import type { AccessTokens } from '../security/access-tokens.ts';
import { type PasswordHasher, passwordProblems } from '../security/passwords.ts';
import { generateToken, hashToken, looksLike, newId } from '../security/tokens.ts';
import type { RefreshTokensRepository } from './refresh-tokens.repository.ts';
import type { User, UsersRepository } from './users.repository.ts';

export const CHALLENGE_MAX_FAILURES = 5;

export interface AuthServiceOptions {
  users: UsersRepository;
  refreshTokens: RefreshTokensRepository;
  mfaRepository: MfaRepository;
  mfa: MfaService;
  deviceTrust: DeviceTrust;
  passwords: PasswordHasher;
  accessTokens: AccessTokens;
  clock: Clock;
  refreshTokenTtlSeconds: number;
  mfaChallengeTtlSeconds: number;
  log: FastifyBaseLogger;
}

export interface Session {
  access_token: string;
  refresh_token: string;
  token_type: 'bearer';
  expires_in: number;
}

export interface Profile {
  user_id: string;
  email: string;
  display_name: string | null;
}

export type LoginResult =
  | ({ kind: 'session'; mfa_bypassed: boolean; trusted_device_id: string | null } & Session & Profile)
  | { kind: 'mfa_required'; temporary_token: string; expires_in: number };

export const normaliseEmail = (email: string): string => email.trim().toLowerCase();

// Deliberately simple (one @, a dot in the domain, no spaces): deliverability is the mail server's call.
const EMAIL_SHAPE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

const invalidCredentials = () => new AppError('INVALID_CREDENTIALS');
const invalidToken = (what = 'The token') => new AppError('INVALID_TOKEN', `${what} is not valid or has expired.`);

export function createAuthService(options: AuthServiceOptions) {
  const { users, refreshTokens, mfaRepository, mfa, deviceTrust, passwords, accessTokens, clock, log } = options;
  const refreshTtlMs = options.refreshTokenTtlSeconds * 1000;
  const challengeTtlMs = options.mfaChallengeTtlSeconds * 1000;

  const profile = (user: User): Profile => ({ user_id: user.id, email: user.email, display_name: user.display_name });

  async function issueSession(userId: string, familyId = newId()): Promise<Session> {
    const now = clock.now();
    const refreshToken = generateToken('refresh');
    await refreshTokens.insert({
      id: newId(),
      user_id: userId,
      family_id: familyId,
      token_hash: hashToken(refreshToken),
      created_at: now,
      expires_at: now + refreshTtlMs,
      rotated_at: null,
      revoked_at: null,
    });
    return {
      access_token: accessTokens.issue({ userId, sessionId: familyId }),
      refresh_token: refreshToken,
      token_type: 'bearer',
      expires_in: accessTokens.ttlSeconds,
    };
  }

  /** Fail closed: a trust check that cannot complete means "not trusted", never "trusted". */
  async function checkTrust(userId: string, device: RequestDevice) {
    try {
      return await deviceTrust.check(userId, device);
    } catch (error) {
      log.warn({ err: error }, 'trust check failed; MFA required');
      return { trusted: false as const, reason: 'error' as const };
    }
  }

  /**
   * After a verified second factor: nothing to offer when the device is
   * already trusted; a drifted fingerprint on a valid device token of the
   * same browser family and OS is re-anchored (the code just proved the
   * user, so the stored components follow the browser's ordinary changes);
   * otherwise a pending device to activate or skip.
   */
  async function pendingDeviceAfterMfa(userId: string, device: RequestDevice): Promise<PendingDevice | null> {
    const decision = await deviceTrust.evaluate(userId, device);
    if (decision.trusted) return null;
    if (
      decision.reason === 'fingerprint_mismatch' &&
      !decision.differing.some((name) => GATE_COMPONENTS.includes(name)) &&
      (await deviceTrust.reanchor(userId, decision.deviceId, device))
    ) {
      return null;
    }
    return deviceTrust.createPendingDevice(userId, device);
  }

  return {
    issueSession,

    async signup(input: { email: string; password: string; display_name?: string }) {
      const email = normaliseEmail(input.email);
      if (!EMAIL_SHAPE.test(email)) throw new ValidationError([{ field: 'email', message: 'must be an email address' }]);
      const problems = passwordProblems(input.password);
      if (problems.length > 0) {
        throw new ValidationError(
problems.map((message) => ({ field: 'password', message })), 'INVALID_PASSWORD');
      }
      const now = clock.now();
      const displayName = input.display_name?.trim() || null;
      const user: User = { id: newId(), email, password_hash: await passwords.hash(input.password), display_name: displayName, created_at: now, updated_at: now };
      if (!(await users.insert(user))) throw new AppError('EMAIL_TAKEN');
      return { ...profile(user), created_at: now };
    },

    async login(input: { email: string; password: string }, device: RequestDevice): Promise<LoginResult> {
      const user = await users.findByEmail(normaliseEmail(input.email));
      const passwordOk = user ? await passwords.verify(user.password_hash, input.password) : await passwords.verifyDummy(input.password);
      if (!user || !passwordOk) throw invalidCredentials();

      if (!(await mfa.isEnabled(user.id))) {
        return { kind: 'session', ...(await issueSession(user.id)), ...profile(user), mfa_bypassed: false, trusted_device_id: null };
      }

      const trust = await checkTrust(user.id, device);
      if (trust.trusted) {
        return { kind: 'session', ...(await issueSession(user.id)), ...profile(user), mfa_bypassed: true, trusted_device_id: trust.deviceId };
      }

      const now = clock.now();
      const temporaryToken = generateToken('mfaChallenge');
      await mfaRepository.insertChallenge({
        id: newId(),
        user_id: user.id,
        token_hash: hashToken(temporaryToken),
        fingerprint: device.fingerprint.fingerprint,
        created_at: now,
        expires_at: now + challengeTtlMs,
        consumed_at: null,
        failed_attempts: 0,
      });
      return { kind: 'mfa_required', temporary_token: temporaryToken, expires_in: options.mfaChallengeTtlSeconds };
    },

    async verifyMfa(temporaryToken: string, factor: SecondFactor, device: RequestDevice): Promise<Session & Profile & { trusted_device: PendingDevice | null }> {
      if (!looksLike('mfaChallenge', temporaryToken)) throw invalidToken('The temporary token');
      const challenge = await mfaRepository.findChallenge(hashToken(temporaryToken));
      const now = clock.now();
      if (
        challenge === undefined ||
        challenge.consumed_at !== null ||
        challenge.expires_at <= now ||
        challenge.fingerprint !== device.fingerprint.fingerprint
      ) {
        throw invalidToken('The temporary token');
      }
      const userId = challenge.user_id;
      // Both counters move before the code is checked (see MfaService.beginAttempt).
      await mfa.assertNotLocked(userId);
      const attempt = await mfaRepository.reserveChallengeAttempt(challenge.id, now, CHALLENGE_MAX_FAILURES);
      if (attempt === null) throw invalidToken('The temporary token');
      const { lockedUntil } = await mfa.beginAttempt(userId);

      if (!(await mfa.checkSecondFactor(userId, factor))) {
        if (lockedUntil !== null) throw mfa.lockedError(lockedUntil);
        // The last allowed attempt: the counter already refuses any further one
        // (without consuming the token, so a right code checked concurrently still wins).
        if (attempt >= CHALLENGE_MAX_FAILURES) {
          // The challenge is used up: waiting does not help, a new sign-in does (restart_sign_in tells clients so).
          throw new TooManyAttemptsError(1, 'Too many wrong codes for this sign-in. Sign in again.', {
            details: { attempts_remaining: 0, restart_sign_in: true },
          });
        }
        throw new AppError('INVALID_MFA_CODE', undefined, {
          details: { attempts_remaining: CHALLENGE_MAX_FAILURES - attempt },
        });
      }
      if (!(await mfaRepository.consumeChallenge(challenge.id, now))) throw invalidToken('The temporary token');
      await mfa.attemptSucceeded(userId);

      const user = await users.findById(userId);
      if (!user) throw invalidToken('The temporary token');
      const pending = await pendingDeviceAfterMfa(userId, device);
      return { ...(await issueSession(userId)), ...profile(user), trusted_device: pending };
    },

    async refresh(refreshToken: string): Promise<Session> {
      if (!looksLike('refresh', refreshToken)) throw invalidToken('The refresh token');
      const now = clock.now();
      const result = await refreshTokens.rotate(hashToken(refreshToken), now);
      if (result.kind === 'reused') {
        await refreshTokens.revokeFamily(result.familyId, now);
        log.warn({ userId: result.userId }, 'refresh token reuse detected; family revoked');
      }
      if (result.kind !== 'rotated') throw invalidToken('The refresh token');
      return issueSession(result.userId, result.familyId);
    },

    async logout(userId: string, sessionId: string, refreshToken: string | undefined): Promise<void> {
      const now = clock.now();
      await refreshTokens.revokeFamily(sessionId, now);
      if (refreshToken !== undefined && looksLike('refresh', refreshToken)) {
        const family = await refreshTokens.familyOf(hashToken(refreshToken), userId);
        if (family !== undefined && family !== sessionId) await refreshTokens.revokeFamily(family, now);
      }
    },

    async me(userId: string) {
      const user = await users.findById(userId);
      if (!user) throw new UnauthorizedError('This account no longer exists.');
      return { ...profile(user), mfa_enabled: await mfa.isEnabled(userId), created_at: user.created_at };
    },

    /** Checks the password of a signed-in user (password change, MFA deactivation). */
    async requirePassword(userId: string, password: string): Promise<User> {
      const user = await users.findById(userId);
      if (!user || !(await passwords.verify(user.password_hash, password))) {
        throw new AppError('INVALID_CURRENT_PASSWORD');
      }
      return user;
    },

    async changePassword(userId: string, sessionId: string, currentPassword: string, newPassword: string, meta: EventMeta) {
      const user = await this.requirePassword(userId, currentPassword);
      const problems = passwordProblems(newPassword);
      if (problems.length > 0) {
        throw new ValidationError(problems.map((message) => ({ field: 'new_password', message })), 'INVALID_PASSWORD', 'The new password is too weak.');
      }
      const now = clock.now();
      await users.updatePassword(user.id, await passwords.hash(newPassword), now);
      await refreshTokens.revokeAllForUser(user.id, now, sessionId);
      const revoked = await deviceTrust.revokeAll(user.id, meta);
      return { password_changed: true, devices_revoked: revoked };
    },
  };
}

export type AuthService = ReturnType<typeof createAuthService>;
