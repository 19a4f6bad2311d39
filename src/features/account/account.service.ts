/**
 * Account email flows (docs/email.md): email verification, password reset and
 * the "This wasn't me" report.
 *
 * Tokens: ≥ 256 bits with a prefix (tdv_ verification, tdw_ reset, tdx_
 * report), minted by the mail composer at send time (account-mail.ts),
 * stored as SHA-256, consumed by one conditional UPDATE. Lifetimes 24 h,
 * 30 min, 7 days. A report token is bound to the device of its alert.
 *
 * A reset and a report run their rows of what ends what (docs/sessions.md) through src/domain/ledger.ts,
 * in the same transaction as the token's consumption: either the token is
 * spent and everything in the row ended, or neither. The token is read once
 * before, only to learn whose it is (revocation locks that user's row first).
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
 *   page that acts only on an explicit POST; the report page first asks
 *   what the link is about (`reportDetails`), which reads and never consumes;
 * - replay: single use; a new reset or verification mail retires the older
 *   links of the same purpose.
 */
import type { Clock } from '../../platform/clock.ts';
import type { EmailTokenPurpose } from '../../store/schema.ts';
import { AppError, ValidationError } from '../../platform/errors.ts';
import type { Actor } from '../../store/history.ts';
import { NothingToEnd, type Revocation } from '../../domain/ledger.ts';
import { type PasswordHasher, passwordProblems } from '../../platform/crypto/passwords.ts';
import { hashToken, looksLike, type TokenKind } from '../../platform/crypto/tokens.ts';
import type { UsersRepository } from '../../store/users.repository.ts';
import type { LoginFailures } from '../../platform/http/rate-limits.ts';
import type { AccountMail } from './account-mail.ts';
import type { AccountRepository } from '../../store/account.repository.ts';
import { type Location, parseStoredLocation, publicLocation } from '../../platform/geo.ts';

export interface AccountServiceOptions {
  repository: AccountRepository;
  revocation: Revocation;
  users: UsersRepository;
  mail: AccountMail;
  passwords: PasswordHasher;
  clock: Clock;
  /** The login failure counters: a reset lifts the per-account lock (docs/security.md). */
  loginFailures?: LoginFailures;
}

const TOKEN_KIND: Record<EmailTokenPurpose, TokenKind> = { verify_email: 'emailVerification', password_reset: 'passwordReset', report: 'report' };

/** The device or session a report link names (what its mail said), as the page shows it. */
export interface ReportSubject {
  kind: 'session' | 'device';
  name: string;
  browser: string;
  os: string;
  device_type: string;
  ip_address: string;
  location: Location | null;
  /** The sign-in (a session) or when the device was trusted. */
  at: number;
  /** When that session ended or that device was revoked; null while it goes on. */
  ended_at: number | null;
}

export interface ReportDetails {
  status: 'usable' | 'used' | 'expired';
  used_at: number | null;
  expires_at: number;
  /** Null when the row is gone (pruned) or the link names neither. */
  subject: ReportSubject | null;
}

/** Thrown inside a transaction whose token another request consumed first: rolls the row back. */
class LostRace extends Error {}

export function createAccountService(options: AccountServiceOptions) {
  const { repository, revocation, users, mail, passwords, clock } = options;

  /** Why a token could not be consumed: unknown (400), used (409) or expired (410). */
  async function refusal(purpose: EmailTokenPurpose, tokenHash: string | null): Promise<AppError> {
    const row = tokenHash === null ? undefined : await repository.findToken(purpose, tokenHash);
    if (row === undefined) return new AppError('LINK_INVALID');
    if (row.consumed_at !== null) return new AppError('LINK_USED');
    return new AppError('LINK_EXPIRED');
  }

  const hashIfShaped = (purpose: EmailTokenPurpose, token: string) => (looksLike(TOKEN_KIND[purpose], token) ? hashToken(token) : null);

  /** The token's owner when it is usable now; otherwise the refusal is thrown. */
  async function usableToken(purpose: EmailTokenPurpose, hash: string | null) {
    const row = hash === null ? undefined : await repository.findToken(purpose, hash);
    if (hash === null || row === undefined || row.consumed_at !== null || row.expires_at <= clock.now()) throw await refusal(purpose, hash);
    return { hash, userId: row.user_id, deviceId: row.device_id, sessionId: row.session_id };
  }

  return {
    async verifyEmail(token: string, actor: Actor): Promise<void> {
      const hash = hashIfShaped('verify_email', token);
      const now = clock.now();
      const done = hash !== null && (await repository.transaction(async (trx) => {
        const owner = await repository.consumeToken(trx, 'verify_email', hash, now);
        if (owner === undefined) return false;
        await repository.markVerified(trx, owner.user_id, now, actor);
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
    async forgotPassword(email: string, actor: Actor): Promise<void> {
      await mail.passwordReset(email, actor);
    },

    /** The `password_reset` row of what ends what (docs/sessions.md), with the new password, in one transaction. */
    async resetPassword(token: string, newPassword: string, actor: Actor): Promise<{ devicesRevoked: number; sessionsEnded: number }> {
      // Checked before the argon2 hash, so a wrong link never costs one; the UPDATE below still decides.
      const { hash, userId } = await usableToken('password_reset', hashIfShaped('password_reset', token));
      const problems = passwordProblems(newPassword);
      if (problems.length > 0) {
        throw new ValidationError(problems.map((message) => ({ field: 'new_password', message })), 'INVALID_PASSWORD', 'The new password is too weak.');
      }
      const passwordHash = await passwords.hash(newPassword);
      let ended;
      try {
        ended = await revocation.run({ kind: 'password_reset', userId, actor }, async (trx) => {
          const at = clock.now();
          if ((await repository.consumeToken(trx, 'password_reset', hash, at)) === undefined) throw new LostRace();
          await users.updatePassword(trx, userId, passwordHash, at);
          // Following the link proved the address; no other reset link outlives this one.
          await repository.markVerified(trx, userId, at, actor);
          await repository.retireTokens(trx, userId, 'password_reset', at);
        });
      } catch (error) {
        if (error instanceof LostRace) throw await refusal('password_reset', hash);
        throw error;
      }
      // The new password must work at once: strangers' failed guesses against the old one no longer count.
      const user = await users.findById(userId);
      if (user) await options.loginFailures?.clearAccount(user.email);
      await mail.passwordChanged(userId, actor);
      return { devicesRevoked: ended.devices.length, sessionsEnded: ended.sessions.length };
    },

    /**
     * What a "This wasn't me" link is about, for its page: the device or
     * session it names, and whether the link is still usable, already used or
     * expired. Reads only: the link stays usable (it is consumed by the one
     * conditional UPDATE of `report`). Unknown links are LINK_INVALID.
     */
    async reportDetails(token: string): Promise<ReportDetails> {
      const hash = hashIfShaped('report', token);
      const row = hash === null ? undefined : await repository.findToken('report', hash);
      if (row === undefined) throw new AppError('LINK_INVALID');
      const status = row.consumed_at !== null ? 'used' : row.expires_at <= clock.now() ? 'expired' : 'usable';
      let subject: ReportSubject | null = null;
      if (row.session_id !== null) {
        const s = await repository.reportSession(row.session_id);
        if (s) {
          subject = {
            kind: 'session',
            name: s.trusted_name ?? s.session_name,
            browser: s.browser,
            os: s.os,
            device_type: s.device_type,
            ip_address: s.ip_address,
            location: publicLocation(parseStoredLocation(s.location)),
            at: s.created_at,
            ended_at: s.ended_at,
          };
        }
      } else if (row.device_id !== null) {
        const d = await repository.reportDevice(row.device_id);
        if (d) {
          subject = {
            kind: 'device',
            name: d.device_name,
            browser: d.browser,
            os: d.os,
            device_type: d.device_type,
            ip_address: d.last_ip_address,
            location: publicLocation(parseStoredLocation(d.location)),
            at: d.trusted_at,
            ended_at: d.revoked_at,
          };
        }
      }
      return { status, used_at: row.consumed_at, expires_at: row.expires_at, subject };
    },

    /** "This wasn't me": the `not_me` row of what ends what (docs/sessions.md) for the alert's device. */
    async report(token: string, actor: Actor): Promise<{ deviceId: string | null; deviceRevoked: boolean; sessionsEnded: number }> {
      const { hash, userId, deviceId, sessionId } = await usableToken('report', hashIfShaped('report', token));
      const consume = async (trx: Parameters<typeof repository.consumeToken>[0]) => {
        if ((await repository.consumeToken(trx, 'report', hash, clock.now())) === undefined) throw new LostRace();
      };
      try {
        if (sessionId !== null) {
          // A sign-in alert's report (docs/security-center.md): that session, and the device trusted from it.
          const ended = await revocation.run({ kind: 'not_me_session', userId, sessionId, actor }, consume);
          return { deviceId: ended.devices[0] ?? null, deviceRevoked: ended.devices.length > 0, sessionsEnded: ended.sessions.length };
        }
        if (deviceId === null) throw new NothingToEnd('device');
        const ended = await revocation.run({ kind: 'not_me', userId, deviceId, actor }, consume);
        return { deviceId, deviceRevoked: true, sessionsEnded: ended.sessions.length };
      } catch (error) {
        if (error instanceof LostRace) throw await refusal('report', hash);
        if (!(error instanceof NothingToEnd)) throw error;
      }
      // The device was already revoked (its sessions ended with it): spend the token, and say so.
      try {
        await repository.transaction(consume);
      } catch (error) {
        if (error instanceof LostRace) throw await refusal('report', hash);
        throw error;
      }
      return { deviceId, deviceRevoked: false, sessionsEnded: 0 };
    },
  };
}

export type AccountService = ReturnType<typeof createAccountService>;
