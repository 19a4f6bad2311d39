/**
 * The second factor: TOTP enrolment and checks, backup codes, and the
 * per-user failure lock.
 *
 * Lifetimes and limits: a TOTP time step is accepted once per user; ±1 step
 * of drift. A right code of a step already used is refused on its own
 * (MFA_CODE_ALREADY_USED) and is not counted as a wrong attempt. Enrolment: 3 wrong codes lock the setup for 60 s. Any wrong second
 * factor (login challenge, regeneration, deactivation) counts toward the
 * user's window: 10 in 15 minutes lock the second factor for 15 minutes.
 * Storage: the TOTP secret is AES-256-GCM encrypted with the user id as
 * associated data; backup codes as keyed hashes, each used once.
 */
import QRCode from 'qrcode';
import type { Clock } from '../../platform/clock.ts';
import type { Db } from '../../store/schema.ts';
import { MINUTE, SECOND } from '../../platform/clock.ts';
import { AppError, TooManyAttemptsError } from '../../platform/errors.ts';
import type { Actor } from '../../store/history.ts';
import type { Revocation } from '../../domain/ledger.ts';
import type { Encryptor } from '../../platform/crypto/encryption.ts';
import { createBackupCodeHasher, generateBackupCodes } from './backup-codes.ts';
import type { MfaRepository } from '../../store/mfa.repository.ts';
import { generateTotpSecret, manualEntryKey, matchTotpStep, otpauthUrl } from './totp.ts';
import type { SecondFactor } from '../../domain/contracts.ts';

export const TOTP_ISSUER = 'Trusted Devices';
export const SETUP_MAX_FAILURES = 3;
export const SETUP_LOCK_MS = 60 * SECOND;
export const USER_FAILURE_WINDOW_MS = 15 * MINUTE;
export const USER_MAX_FAILURES = 10;
export const USER_LOCK_MS = 15 * MINUTE;

export interface MfaServiceOptions {
  repository: MfaRepository;
  revocation: Revocation;
  encryptor: Encryptor;
  dataEncryptionKey: Buffer;
  clock: Clock;
  /** WebAuthn credentials count as a second factor too (docs/passkeys.md). */
  webauthnCredentials?: { countForUser(userId: string): Promise<number> };
}

export function createMfaService({ repository, revocation, encryptor, dataEncryptionKey, clock, webauthnCredentials }: MfaServiceOptions) {
  const hashBackupCode = createBackupCodeHasher(dataEncryptionKey);

  const lockedError = (until: number) =>
    new TooManyAttemptsError((until - clock.now()) / 1000, 'Too many wrong codes. The second factor is locked for a while.');

  async function enabledSecret(userId: string): Promise<string | null> {
    const row = await repository.findTotp(userId);
    if (row === undefined || row.enabled_at === null) return null;
    return encryptor.decrypt(row.secret_encrypted, userId);
  }

  /** True when the code is right and its time step was not used before. */
  async function acceptTotp(userId: string, secret: string, code: string): Promise<boolean> {
    const step = matchTotpStep(secret, code, clock.now());
    return step !== null && (await repository.acceptTotpStep(userId, step));
  }

  /** New backup codes, stored by the caller's transaction (which runs the what-ends-what row they belong to). */
  function newBackupCodes(): { codes: string[]; store: (trx: Db, userId: string) => Promise<void> } {
    const codes = generateBackupCodes();
    return { codes, store: (trx, userId) => repository.replaceBackupCodes(trx, userId, codes.map(hashBackupCode), clock.now()) };
  }

  const credentialCount = (userId: string) => webauthnCredentials?.countForUser(userId) ?? Promise.resolve(0);

  const service = {
    async totpEnabled(userId: string): Promise<boolean> {
      const row = await repository.findTotp(userId);
      return row !== undefined && row.enabled_at !== null;
    },

    /** MFA is on when the user has TOTP or at least one WebAuthn credential (docs/passkeys.md). */
    async isEnabled(userId: string): Promise<boolean> {
      return (await service.totpEnabled(userId)) || (await credentialCount(userId)) > 0;
    },

    /** The second factors the user can answer a login challenge with. */
    async methods(userId: string): Promise<string[]> {
      const [totp, credentials] = await Promise.all([service.totpEnabled(userId), credentialCount(userId)]);
      return [...(totp ? ['totp', 'backup_code'] : []), ...(credentials > 0 ? ['webauthn'] : [])];
    },

    /** Throws 429 while the user's second factor is locked. */
    async assertNotLocked(userId: string): Promise<void> {
      const until = await repository.lockedUntil(userId, clock.now());
      if (until !== null) throw lockedError(until);
    },

    /**
     * Counts a second-factor attempt before its code is checked, so parallel
     * guesses cannot outrun the limit. Throws 429 while the user is locked.
     * `lockedUntil` is set when this attempt is the last one allowed: if its
     * code is wrong, the caller answers with the lock.
     */
    async beginAttempt(userId: string): Promise<{ lockedUntil: number | null }> {
      await service.assertNotLocked(userId);
      const { attempts, lockedUntil } = await repository.reserveUserAttempt(userId, clock.now(), USER_FAILURE_WINDOW_MS, USER_MAX_FAILURES, USER_LOCK_MS);
      if (attempts > USER_MAX_FAILURES) throw lockedError(lockedUntil ?? clock.now() + USER_LOCK_MS);
      return { lockedUntil };
    },

    /**
     * True when `factor` is a TOTP code that is right for a time step this
     * user already used (the code that just turned MFA on, or signed in, within
     * the same ±1 step window). Read-only and checked before any attempt is
     * counted: the caller refuses it as MFA_CODE_ALREADY_USED, which is not a
     * wrong guess. It gives a guesser nothing: only the right code of a spent
     * step passes, and every other guess is counted as before. The one
     * conditional UPDATE (acceptTotpStep) still decides whether a step is used.
     */
    async isUsedCode(userId: string, factor: SecondFactor): Promise<boolean> {
      if (!('code' in factor)) return false;
      const row = await repository.findTotp(userId);
      if (row === undefined || row.enabled_at === null || row.last_used_step === null) return false;
      const step = matchTotpStep(encryptor.decrypt(row.secret_encrypted, userId), factor.code, clock.now());
      return step !== null && step <= row.last_used_step;
    },

    /** A right second factor clears the user's count. */
    attemptSucceeded: (userId: string) => repository.clearUserFailures(userId),

    lockedError,

    /** Checks a TOTP or backup code once. Expected "no" is `false`, not an exception. */
    async checkSecondFactor(userId: string, factor: SecondFactor): Promise<boolean> {
      if ('code' in factor) {
        const secret = await enabledSecret(userId);
        return secret !== null && (await acceptTotp(userId, secret, factor.code));
      }
      return repository.consumeBackupCode(userId, hashBackupCode(factor.backupCode), clock.now());
    },

    /**
     * A second factor that guards an account change (regenerate, deactivate):
     * locked users get 429, a wrong code counts toward the lock and answers 400.
     */
    async requireSecondFactor(userId: string, factor: SecondFactor): Promise<void> {
      const attempt = await service.beginAttempt(userId);
      if (await service.checkSecondFactor(userId, factor)) {
        await service.attemptSucceeded(userId);
        return;
      }
      if (attempt.lockedUntil !== null) throw lockedError(attempt.lockedUntil);
      throw new AppError('INVALID_CODE');
    },

    /** TOTP specifically: regeneration and deactivation are about the authenticator app and its backup codes. */
    async requireEnabled(userId: string): Promise<void> {
      if (!(await service.totpEnabled(userId))) throw new AppError('MFA_NOT_ENABLED', 'Authenticator-app codes (TOTP) are not turned on.');
    },

    async setup(userId: string, email: string, label: string | undefined) {
      const secret = generateTotpSecret();
      // Everything that can fail on the input runs before the secret is stored.
      const url = otpauthUrl(secret, label ? `${email} (${label})` : email, TOTP_ISSUER);
      const qrCode = await QRCode.toDataURL(url, { errorCorrectionLevel: 'M', margin: 1, width: 240 });
      // The upsert refuses to touch an enabled secret: that is the "already on" check, in one statement.
      const saved = await repository.savePendingTotp(userId, encryptor.encrypt(secret, userId), clock.now());
      if (!saved) throw new AppError('TOTP_ALREADY_ENABLED');
      return {
        secret,
        otpauth_url: url,
        qr_code: qrCode,
        manual_entry_key: manualEntryKey(secret),
      };
    },

    /** Turns MFA on and runs the "MFA turned on" row of what ends what (docs/sessions.md) (other sessions end) in the same transaction. */
    async confirmSetup(userId: string, code: string, actor: Actor): Promise<{ backupCodes: string[]; sessionsEnded: number }> {
      const row = await repository.findTotp(userId);
      if (row?.enabled_at != null) throw new AppError('TOTP_ALREADY_ENABLED');
      if (row === undefined) throw new AppError('NO_PENDING_SETUP');
      const now = clock.now();
      if (row.setup_locked_until !== null && row.setup_locked_until > now) {
        throw new TooManyAttemptsError((row.setup_locked_until - now) / 1000);
      }
      const secret = encryptor.decrypt(row.secret_encrypted, userId);
      if (!(await acceptTotp(userId, secret, code))) {
        await repository.recordSetupFailure(userId, now, SETUP_MAX_FAILURES, SETUP_LOCK_MS);
        throw new AppError('INVALID_CODE', 'That code is not correct. Check the time on your phone and try the next code.');
      }
      const backup = newBackupCodes();
      const ended = await revocation.run({ kind: 'mfa_enabled', userId, actor }, async (trx) => {
        // Only the secret whose code was just checked: a setup started again meanwhile must not be enabled unconfirmed.
        if (!(await repository.enableTotp(trx, userId, row.secret_encrypted, now))) {
          throw new AppError('NO_PENDING_SETUP', 'The setup was started again meanwhile: confirm with a code from the newest QR code.');
        }
        await backup.store(trx, userId);
      });
      return { backupCodes: backup.codes, sessionsEnded: ended.sessions.length };
    },

    async status(userId: string) {
      const methods = await service.methods(userId);
      return {
        mfa_enabled: methods.length > 0,
        methods,
        backup_codes_remaining: methods.includes('backup_code') ? await repository.countBackupCodes(userId) : 0,
      };
    },

    /** New backup codes; runs the "backup codes regenerated" row of what ends what (docs/sessions.md) in the same transaction. */
    async regenerateBackupCodes(userId: string, code: string, actor: Actor): Promise<{ backupCodes: string[]; devicesRevoked: number }> {
      await service.requireEnabled(userId);
      await service.requireSecondFactor(userId, { code });
      const backup = newBackupCodes();
      const ended = await revocation.run({ kind: 'backup_codes_regenerated', userId, actor }, (trx) => backup.store(trx, userId));
      return { backupCodes: backup.codes, devicesRevoked: ended.devices.length };
    },

    /** Turns MFA off (the caller checked a code or the password) and runs the "MFA turned off" row. */
    async disable(userId: string, actor: Actor): Promise<{ devicesRevoked: number; sessionsEnded: number }> {
      const ended = await revocation.run({ kind: 'mfa_disabled', userId, actor }, (trx) => repository.removeTotp(trx, userId));
      return { devicesRevoked: ended.devices.length, sessionsEnded: ended.sessions.length };
    },
  };
  return service;
}

export type MfaService = ReturnType<typeof createMfaService>;
