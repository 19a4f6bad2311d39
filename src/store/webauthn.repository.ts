/**
 * Storage for WebAuthn credentials and challenges (docs/passkeys.md).
 *
 * Challenges are stored as SHA-256 and used once: `consume*` is ONE
 * conditional UPDATE (unused, unexpired, right purpose and binding), so of
 * any number of concurrent verifications with one challenge exactly one gets
 * it. Signature counters move forward only, also with one conditional UPDATE.
 */
import type { Kysely, Transaction } from 'kysely';
import type { Database, Db, WebauthnChallengesTable, WebauthnCredentialsTable } from './schema.ts';
import { type Actor, type EventInput, type History } from './history.ts';

export type WebauthnCredential = WebauthnCredentialsTable;
export type WebauthnChallenge = WebauthnChallengesTable;

/** What binds a challenge: it is consumed only when all of these match. */
export type ChallengeBinding =
  | { purpose: 'registration'; challengeHash: string; userId: string }
  | { purpose: 'second_factor'; challengeHash: string; userId: string; mfaChallengeId: string }
  /** A step-up (docs/step-up.md): bound to the user and the session (kept in mfa_challenge_id). */
  | { purpose: 'step_up'; challengeHash: string; userId: string; sessionId: string }
  /** Found by its attempt token; the caller compares the challenge (the attempt is burnt either way). */
  | { purpose: 'passwordless'; attemptHash: string };

export function createWebauthnRepository(db: Kysely<Database>, history: History) {
  return {
    transaction<T>(work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
      return db.transaction().execute(work);
    },

    async insertChallenge(row: WebauthnChallenge): Promise<void> {
      await db.insertInto('webauthn_challenges').values(row).execute();
    },

    /**
     * Uses the challenge once. Returns the consumed row, or undefined when no
     * unused, unexpired challenge has this binding (replayed, expired,
     * another user's or another sign-in's challenge).
     */
    consumeChallenge(binding: ChallengeBinding, now: number): Promise<WebauthnChallenge | undefined> {
      let query = db
        .updateTable('webauthn_challenges')
        .set({ consumed_at: now })
        .where('purpose', '=', binding.purpose)
        .where('consumed_at', 'is', null)
        .where('expires_at', '>', now);
      if (binding.purpose === 'passwordless') {
        query = query.where('attempt_hash', '=', binding.attemptHash);
      } else {
        query = query.where('challenge_hash', '=', binding.challengeHash).where('user_id', '=', binding.userId);
        if (binding.purpose === 'second_factor') query = query.where('mfa_challenge_id', '=', binding.mfaChallengeId);
        if (binding.purpose === 'step_up') query = query.where('mfa_challenge_id', '=', binding.sessionId);
      }
      return query.returningAll().executeTakeFirst();
    },

    /** Inside the caller's transaction; false when the credential id is registered already (by anyone). */
    async insertCredential(trx: Db, row: WebauthnCredential, event: EventInput): Promise<boolean> {
      const inserted = await trx
        .insertInto('webauthn_credentials')
        .values(row)
        .onConflict((oc) => oc.column('credential_id').doNothing())
        .returning('id')
        .executeTakeFirst();
      if (inserted === undefined) return false;
      await history.append(trx, [event], row.created_at);
      return true;
    },

    listForUser(userId: string): Promise<WebauthnCredential[]> {
      return db.selectFrom('webauthn_credentials').selectAll().where('user_id', '=', userId).orderBy('created_at', 'asc').orderBy('id').execute();
    },

    async countForUser(userId: string): Promise<number> {
      const row = await db
        .selectFrom('webauthn_credentials')
        .select((eb) => eb.fn.countAll<number>().as('count'))
        .where('user_id', '=', userId)
        .executeTakeFirstOrThrow();
      return Number(row.count);
    },

    findByCredentialId(credentialId: string): Promise<WebauthnCredential | undefined> {
      return db.selectFrom('webauthn_credentials').selectAll().where('credential_id', '=', credentialId).executeTakeFirst();
    },

    /**
     * Records a verified assertion: the counter moves forward only (or stays
     * 0 for authenticators that keep none). False when the stored counter is
     * already at or past `counter` (a cloned authenticator, or a concurrent
     * use of the same assertion) or the credential was removed meanwhile.
     */
    async advanceCounter(id: string, counter: number, now: number): Promise<boolean> {
      const result = await db
        .updateTable('webauthn_credentials')
        .set({ counter, last_used_at: now })
        .where('id', '=', id)
        .where((eb) => (counter === 0 ? eb('counter', '=', 0) : eb('counter', '<', counter)))
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    /** Renames a credential and records `webauthn_renamed` (its new name) in the same transaction. */
    rename(userId: string, id: string, name: string, actor: Actor, now: number): Promise<WebauthnCredential | undefined> {
      return db.transaction().execute(async (trx) => {
        const row = await trx.updateTable('webauthn_credentials').set({ name }).where('id', '=', id).where('user_id', '=', userId).returningAll().executeTakeFirst();
        if (row !== undefined) await history.append(trx, [{ userId, type: 'webauthn_renamed', subjectName: name, actor }], now);
        return row;
      });
    },

    /**
     * Deletes the credential (inside the caller's transaction) and records the
     * event with its name; returns how many credentials the user has left, or
     * null when there was none to delete.
     */
    async deleteCredential(trx: Db, userId: string, id: string, event: Omit<EventInput, 'subjectName'>, now: number): Promise<number | null> {
      const deleted = await trx.deleteFrom('webauthn_credentials').where('id', '=', id).where('user_id', '=', userId).returning('name').executeTakeFirst();
      if (deleted === undefined) return null;
      await history.append(trx, [{ ...event, subjectName: deleted.name }], now);
      const left = await trx
        .selectFrom('webauthn_credentials')
        .select((eb) => eb.fn.countAll<number>().as('count'))
        .where('user_id', '=', userId)
        .executeTakeFirstOrThrow();
      return Number(left.count);
    },

    recordEvents: (events: EventInput[], now: number) => history.append(db, events, now),

    /** One bounded batch of expired challenges (housekeeping loops over batches). */
    async deleteExpiredChallenges(now: number, limit: number): Promise<number> {
      const result = await db
        .deleteFrom('webauthn_challenges')
        .where('id', 'in', (eb) => eb.selectFrom('webauthn_challenges').select('id').where('expires_at', '<=', now).limit(limit))
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}

export type WebauthnRepository = ReturnType<typeof createWebauthnRepository>;
