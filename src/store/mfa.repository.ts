/**
 * Storage for the second factor: TOTP secrets (encrypted by the caller),
 * backup-code hashes, MFA challenges (temporary tokens) and the per-user
 * failure window. Every "use once" step is one conditional UPDATE.
 */
import { type Kysely, sql } from 'kysely';
import type { Database, Db, MfaChallengesTable, TotpSecretsTable } from './schema.ts';
import { newId } from '../platform/crypto/tokens.ts';

export function createMfaRepository(db: Kysely<Database>) {
  return {
    findTotp(userId: string): Promise<TotpSecretsTable | undefined> {
      return db.selectFrom('totp_secrets').selectAll().where('user_id', '=', userId).executeTakeFirst();
    },

    /**
     * Stores a new pending secret, replacing an earlier pending one; never
     * touches an enabled one. The enrolment failure count and lock carry
     * over, so starting again is not a way around the 60 s lock.
     */
    async savePendingTotp(userId: string, secretEncrypted: string, now: number): Promise<boolean> {
      const row = await db
        .insertInto('totp_secrets')
        .values({ user_id: userId, secret_encrypted: secretEncrypted, enabled_at: null, last_used_step: null, setup_failures: 0, setup_locked_until: null, created_at: now })
        .onConflict((oc) =>
          oc.column('user_id').doUpdateSet({ secret_encrypted: secretEncrypted, created_at: now, last_used_step: null }).where('totp_secrets.enabled_at', 'is', null),
        )
        .returning('user_id')
        .executeTakeFirst();
      return row !== undefined;
    },

    /** Counts a wrong setup code; at `max` failures the setup is locked until `now + lockMs`. */
    async recordSetupFailure(userId: string, now: number, max: number, lockMs: number): Promise<void> {
      await db
        .updateTable('totp_secrets')
        .set({
          setup_failures: sql`case when setup_failures + 1 >= ${max} then 0 else setup_failures + 1 end`,
          setup_locked_until: sql`case when setup_failures + 1 >= ${max} then ${now + lockMs} else setup_locked_until end`,
        })
        .where('user_id', '=', userId)
        .execute();
    },

    /** Accepts a TOTP time step once: false when this step (or a later one) was already used. */
    async acceptTotpStep(userId: string, step: number): Promise<boolean> {
      const result = await db
        .updateTable('totp_secrets')
        .set({ last_used_step: step })
        .where('user_id', '=', userId)
        .where((eb) => eb.or([eb('last_used_step', 'is', null), eb('last_used_step', '<', step)]))
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    /**
     * Turns on the secret that was verified, and only that one: a concurrent
     * setup may have replaced it meanwhile, and a secret the user never
     * confirmed must not become their second factor. One conditional UPDATE.
     */
    async enableTotp(trx: Db, userId: string, verifiedSecretEncrypted: string, now: number): Promise<boolean> {
      const result = await trx
        .updateTable('totp_secrets')
        .set({ enabled_at: now, setup_failures: 0, setup_locked_until: null })
        .where('user_id', '=', userId)
        .where('secret_encrypted', '=', verifiedSecretEncrypted)
        .where('enabled_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async removeTotp(trx: Db, userId: string): Promise<void> {
      await trx.deleteFrom('totp_secrets').where('user_id', '=', userId).execute();
      await trx.deleteFrom('backup_codes').where('user_id', '=', userId).execute();
    },

    /** Replaces the user's backup codes; run inside the caller's transaction (with the what-ends-what row it belongs to). */
    async replaceBackupCodes(trx: Db, userId: string, hashes: string[], now: number): Promise<void> {
      await trx.deleteFrom('backup_codes').where('user_id', '=', userId).execute();
      await trx
        .insertInto('backup_codes')
        .values(hashes.map((code_hash) => ({ id: newId(), user_id: userId, code_hash, used_at: null, created_at: now })))
        .execute();
    },

    async consumeBackupCode(userId: string, codeHash: string, now: number): Promise<boolean> {
      const result = await db
        .updateTable('backup_codes')
        .set({ used_at: now })
        .where('user_id', '=', userId)
        .where('code_hash', '=', codeHash)
        .where('used_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async countBackupCodes(userId: string): Promise<number> {
      const row = await db
        .selectFrom('backup_codes')
        .select((eb) => eb.fn.countAll<number>().as('count'))
        .where('user_id', '=', userId)
        .where('used_at', 'is', null)
        .executeTakeFirstOrThrow();
      return Number(row.count);
    },

    async insertChallenge(row: MfaChallengesTable): Promise<void> {
      await db.insertInto('mfa_challenges').values(row).execute();
    },

    findChallenge(tokenHash: string): Promise<MfaChallengesTable | undefined> {
      return db.selectFrom('mfa_challenges').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
    },

    /**
     * Counts one attempt against the challenge before its code is checked,
     * with one conditional UPDATE: concurrent guesses cannot outrun `max`.
     * Returns the attempt's number, or null when the challenge is used,
     * expired or out of attempts.
     */
    async reserveChallengeAttempt(id: string, now: number, max: number): Promise<number | null> {
      const row = await db
        .updateTable('mfa_challenges')
        .set({ failed_attempts: sql`failed_attempts + 1` })
        .where('id', '=', id)
        .where('consumed_at', 'is', null)
        .where('expires_at', '>', now)
        .where('failed_attempts', '<', max)
        .returning('failed_attempts')
        .executeTakeFirst();
      return row === undefined ? null : Number(row.failed_attempts);
    },

    /** Consumes the challenge once; false if it was used, burnt or expired meanwhile. */
    async consumeChallenge(id: string, now: number): Promise<boolean> {
      const result = await db
        .updateTable('mfa_challenges')
        .set({ consumed_at: now })
        .where('id', '=', id)
        .where('consumed_at', 'is', null)
        .where('expires_at', '>', now)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async lockedUntil(userId: string, now: number): Promise<number | null> {
      const row = await db.selectFrom('mfa_lockouts').select('locked_until').where('user_id', '=', userId).executeTakeFirst();
      return row?.locked_until != null && row.locked_until > now ? row.locked_until : null;
    },

    /**
     * Counts one second-factor attempt of the user before it is checked (a
     * success clears the count): a single upsert, so concurrent attempts are
     * all counted and at most `max` are ever checked. The count restarts only
     * after `windowMs` without an attempt (window_started_at moves with every
     * one), so any `max` within `windowMs` lock; a window counted from the
     * first failure would let a burst straddling its end through. The attempt
     * that reaches `max` sets the lock.
     */
    async reserveUserAttempt(userId: string, now: number, windowMs: number, max: number, lockMs: number): Promise<{ attempts: number; lockedUntil: number | null }> {
      const windowOver = sql<boolean>`mfa_lockouts.window_started_at <= ${now - windowMs}`;
      const failures = sql<number>`case when ${windowOver} then 1 else mfa_lockouts.failures + 1 end`;
      const row = await db
        .insertInto('mfa_lockouts')
        .values({ user_id: userId, window_started_at: now, failures: 1, locked_until: max <= 1 ? now + lockMs : null })
        .onConflict((oc) =>
          oc.column('user_id').doUpdateSet({
            window_started_at: now,
            failures,
            locked_until: sql`case when ${failures} >= ${max} then ${now + lockMs} else mfa_lockouts.locked_until end`,
          }),
        )
        .returning(['failures', 'locked_until'])
        .executeTakeFirstOrThrow();
      return { attempts: Number(row.failures), lockedUntil: row.locked_until !== null && row.locked_until > now ? row.locked_until : null };
    },

    async clearUserFailures(userId: string): Promise<void> {
      await db.deleteFrom('mfa_lockouts').where('user_id', '=', userId).execute();
    },

    /** Ends every pending MFA challenge of the user (what ends what, docs/sessions.md): a temporary token then answers 401. */
    async endChallenges(trx: Db, userId: string, now: number): Promise<number> {
      const result = await trx
        .updateTable('mfa_challenges')
        .set({ consumed_at: now })
        .where('user_id', '=', userId)
        .where('consumed_at', 'is', null)
        .where('expires_at', '>', now)
        .executeTakeFirst();
      return Number(result.numUpdatedRows);
    },

    /** At most `limit` rows, chosen through the expiry index (housekeeping loops). */
    async deleteExpiredChallenges(now: number, limit: number): Promise<number> {
      const result = await db
        .deleteFrom('mfa_challenges')
        .where('id', 'in', (eb) => eb.selectFrom('mfa_challenges').select('id').where('expires_at', '<=', now).limit(limit))
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}

export type MfaRepository = ReturnType<typeof createMfaRepository>;
