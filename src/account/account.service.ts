/**
 * Account email flows (SPEC §5.6): email verification, password reset and
 * the "This wasn't me" report.
 *
 * Tokens: ≥ 256 bits with a prefix (tdv_ verification, tdp_ reset, tdx_
 * report), minted by the mail composer at send time (account-mail.ts),
 * stored as SHA-256, consumed by one conditional UPDATE. Lifetimes 24 h,
 * 30 min, 7 days. A report token is bound to the device of its alert.
 *
 * Threats:
 * - account enumeration through "forgot": the request does one identical
 *   INSERT for every address and answers 202; whether an account exists is
 *   decided later, by the background sender;
 * - a reset as an MFA bypass: a reset ends every session, revokes every
 *   trusted device and ends pending MFA challenges and activation tokens,
 *   and never issues tokens itself: the next login still asks for the second
 *   factor;
 * - link scanners (mail security gateways fetch links): every link opens a
 *   page that acts only on an explicit POST;
 * - replay: single use; a new reset or verification mail retires the older
 *   links of the same purpose.
 */
import type { Clock } from '../clock.ts';
import type { DevicesRepository } from '../devices/devices.repository.ts';
import { insertEvents } from '../devices/devices.repository.ts';
import type { EventMeta } from '../devices/devices.service.ts';
import { AppError, ValidationError } from '../errors.ts';
import { type PasswordHasher, passwordProblems } from '../security/passwords.ts';
import { hashToken, looksLike, type TokenKind } from '../security/tokens.ts';
import type { EmailTokenPurpose } from '../db/schema.ts';
import type { AccountMail } from './account-mail.ts';
import type { AccountRepository } from './account.repository.ts';
import type { UsersRepository } from '../auth/users.repository.ts';

export interface AccountServiceOptions {
  repository: AccountRepository;
  devicesRepository: DevicesRepository;
  users: UsersRepository;
  mail: AccountMail;
  passwords: PasswordHasher;
  clock: Clock;
}

const TOKEN_KIND: Record<EmailTokenPurpose, TokenKind> = { verify_email: 'emailVerification', password_reset: 'passwordReset', report: 'report' };

export function createAccountService(options: AccountServiceOptions) {
  const { repository, devicesRepository, users, mail, passwords, clock } = options;

  /** Why a token could not be consumed: unknown (400), used (409) or expired (410). */
  async function refusal(purpose: EmailTokenPurpose, tokenHash: string | null): Promise<AppError> {
    const row = tokenHash === null ? undefined : await repository.findToken(purpose, tokenHash);
    if (row === undefined) return new AppError('LINK_INVALID');
    if (row.consumed_at !== null) return new AppError('LINK_USED');
    return new AppError('LINK_EXPIRED');
  }

  const hashIfShaped = (purpose: EmailTokenPurpose, token: string) => (looksLike(TOKEN_KIND[purpose], token) ? hashToken(token) : null);

  return {
    async verifyEmail(token: string): Promise<void> {
      const hash = hashIfShaped('verify_email', token);
      const now = clock.now();
      const done = hash !== null && (await repository.transaction(async (trx) => {
        const owner = await repository.consumeToken(trx, 'verify_email', hash, now);
        if (owner === undefined) return false;
        await repository.markVerified(trx, owner.user_id, now);
        return true;
      }));
      if (!done) throw await refusal('verify_email', hash);
    },

    /** Resend: 202 either way; nothing is queued for an address that is already verified. */
    async resendVerification(userId: string): Promise<{ alreadyVerified: boolean }> {
      const user = await users.findById(userId);
      if (!user) throw new AppError('UNAUTHORIZED', 'This account no longer exists.');
      if (user.email_verified_at !== null) return { alreadyVerified: true };
      await mail.verifyEmail(userId);
      return { alreadyVerified: false };
    },

    /** Same work for every address: one INSERT, no lookup (the sender decides). */
    async forgotPassword(email: string, meta: EventMeta): Promise<void> {
      await mail.passwordReset(email, meta);
    },

    async resetPassword(token: string, newPassword: string, meta: EventMeta): Promise<{ devicesRevoked: number }> {
      const hash = hashIfShaped('password_reset', token);
      const now = clock.now();
      // A cheap read first, so a wrong link never costs an argon2 hash; the UPDATE below still decides.
      if (hash === null || !(await repository.isUsable('password_reset', hash, now))) throw await refusal('password_reset', hash);
      const problems = passwordProblems(newPassword);
      if (problems.length > 0) {
        throw new ValidationError(problems.map((message) => ({ field: 'new_password', message })), 'INVALID_PASSWORD', 'The new password is too weak.');
      }
      const passwordHash = await passwords.hash(newPassword);
      const at = clock.now();
      const result = await repository.transaction(async (trx) => {
        const owner = await repository.consumeToken(trx, 'password_reset', hash, at);
        if (owner === undefined) return undefined;
        const userId = owner.user_id;
        await repository.setPassword(trx, userId, passwordHash, at);
        // Following the link proved the address.
        await repository.markVerified(trx, userId, at);
        await repository.retireTokens(trx, userId, 'password_reset', at);
        // TODO(sessions): revocation.run({ kind: 'password_reset', userId, actor: { type: 'system' } }, …) replaces the four lines below.
        const revoked = await devicesRepository.revokeAll(trx, userId, at);
        await insertEvents(trx, revoked.map((id) => ({ userId, deviceId: id, type: 'revoked' as const, ipAddress: meta.ipAddress, userAgent: meta.userAgent })), at);
        await repository.endPendingSecondFactorSteps(trx, userId, at);
        await repository.endAllSessions(trx, userId, at);
        return { userId, devicesRevoked: revoked.length };
      });
      if (result === undefined) throw await refusal('password_reset', hash);
      await mail.passwordChanged(result.userId, meta);
      return { devicesRevoked: result.devicesRevoked };
    },

    /** "This wasn't me": un-trusts the alert's device and signs it out (SPEC §4.1 `not_me`). */
    async report(token: string, meta: EventMeta): Promise<{ deviceId: string | null; deviceRevoked: boolean }> {
      const hash = hashIfShaped('report', token);
      const now = clock.now();
      const result = hash === null ? undefined : await repository.transaction(async (trx) => {
        const owner = await repository.consumeToken(trx, 'report', hash, now);
        if (owner === undefined) return undefined;
        const userId = owner.user_id;
        const deviceId = owner.device_id;
        // TODO(sessions): revocation.run({ kind: 'not_me', userId, deviceId, actor: { type: 'system' } }) replaces the lines below,
        // and then ends only the sessions opened on that device. Until sessions exist there is no
        // link from a session to its device, so every session of the account ends (the safe side).
        const revokedHash = deviceId === null ? undefined : await devicesRepository.revoke(trx, userId, deviceId, now);
        if (revokedHash !== undefined) {
          await insertEvents(trx, [{ userId, deviceId, type: 'revoked', ipAddress: meta.ipAddress, userAgent: meta.userAgent }], now);
        }
        await repository.endPendingSecondFactorSteps(trx, userId, now);
        await repository.endAllSessions(trx, userId, now);
        return { deviceId, deviceRevoked: revokedHash !== undefined };
      });
      if (result === undefined) throw await refusal('report', hash);
      return result;
    },
  };
}

export type AccountService = ReturnType<typeof createAccountService>;
