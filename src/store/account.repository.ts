/**
 * Storage for the account-email feature: single-use email tokens
 * (verification, password reset, "This wasn't me" report) and the user's
 * verified flag. What a reset or a report ends is src/domain/ledger.ts's.
 *
 * Tokens are stored as SHA-256 only and consumed by ONE conditional UPDATE
 * (unused, unexpired, right purpose): of concurrent uses exactly one wins.
 */
import type { Kysely, Transaction } from 'kysely';
import type { Database, EmailTokenPurpose, EmailTokensTable } from './schema.ts';
import type { Actor, History } from './history.ts';

type Db = Kysely<Database> | Transaction<Database>;
export type EmailToken = EmailTokensTable;

/** `history`: the one event writer, for `email_verified` (omitted by readers that never verify: the mail composer, housekeeping). */
export function createAccountRepository(db: Kysely<Database>, history?: History) {
  return {
    transaction<T>(work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
      return db.transaction().execute(work);
    },

    /**
     * Stores a freshly minted token. Earlier unused tokens of the same mail (a
     * retried send) and, for `retireOthers`, of the same purpose (only the
     * latest reset / verification link works) stop working in the same step.
     */
    async insertToken(row: EmailToken, retireOthers: boolean): Promise<void> {
      await db.transaction().execute(async (trx) => {
        let retire = trx
          .updateTable('email_tokens')
          .set({ consumed_at: row.created_at })
          .where('user_id', '=', row.user_id)
          .where('purpose', '=', row.purpose)
          .where('consumed_at', 'is', null);
        if (!retireOthers) retire = retire.where('mail_id', '=', row.mail_id ?? '');
        await retire.execute();
        await trx.insertInto('email_tokens').values(row).execute();
      });
    },

    /** Consumes a token; returns its owner (and device) only to the one caller that won. */
    async consumeToken(trx: Db, purpose: EmailTokenPurpose, tokenHash: string, now: number): Promise<{ user_id: string; device_id: string | null; session_id: string | null } | undefined> {
      return trx
        .updateTable('email_tokens')
        .set({ consumed_at: now })
        .where('token_hash', '=', tokenHash)
        .where('purpose', '=', purpose)
        .where('consumed_at', 'is', null)
        .where('expires_at', '>', now)
        .returning(['user_id', 'device_id', 'session_id'])
        .executeTakeFirst();
    },

    /** Whose token it is (to lock that user first), or why a consume failed (unknown, used or expired). */
    findToken(purpose: EmailTokenPurpose, tokenHash: string): Promise<Pick<EmailToken, 'user_id' | 'device_id' | 'session_id' | 'consumed_at' | 'expires_at'> | undefined> {
      return db
        .selectFrom('email_tokens')
        .select(['user_id', 'device_id', 'session_id', 'consumed_at', 'expires_at'])
        .where('token_hash', '=', tokenHash)
        .where('purpose', '=', purpose)
        .executeTakeFirst();
    },

    /** Every other unused token of the purpose ends with the one just used. */
    async retireTokens(trx: Db, userId: string, purpose: EmailTokenPurpose, now: number): Promise<void> {
      await trx
        .updateTable('email_tokens')
        .set({ consumed_at: now })
        .where('user_id', '=', userId)
        .where('purpose', '=', purpose)
        .where('consumed_at', 'is', null)
        .execute();
    },

    /** Marks the address verified; the first time, `email_verified` is recorded in the same transaction (when an actor is given). */
    async markVerified(trx: Db, userId: string, now: number, actor?: Actor): Promise<void> {
      const result = await trx.updateTable('users').set({ email_verified_at: now }).where('id', '=', userId).where('email_verified_at', 'is', null).executeTakeFirst();
      if (Number(result.numUpdatedRows) === 1 && actor !== undefined && history !== undefined) {
        await history.append(trx, [{ userId, type: 'email_verified', actor }], now);
      }
    },

    async setPassword(trx: Db, userId: string, passwordHash: string, now: number): Promise<void> {
      await trx.updateTable('users').set({ password_hash: passwordHash, updated_at: now }).where('id', '=', userId).execute();
    },

    /** One bounded batch of expired link tokens (housekeeping loops over batches). */
    deleteExpiredTokens: async (before: number, limit: number): Promise<number> => {
      const result = await db
        .deleteFrom('email_tokens')
        .where('id', 'in', (eb) => eb.selectFrom('email_tokens').select('id').where('expires_at', '<=', before).limit(limit))
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },

    /** Who a queued mail goes to: the user by id, or (a mail queued before the account existed) by address. */
    findRecipient(to: { userId: string } | { email: string }) {
      const query = db.selectFrom('users').select(['id', 'email', 'display_name', 'email_verified_at']);
      return ('userId' in to ? query.where('id', '=', to.userId) : query.where('email', '=', to.email)).executeTakeFirst();
    },

    /** A session's device name and the trusted device it is on now (a new-sign-in alert; docs/security-center.md). By primary key. */
    session(sessionId: string): Promise<{ device_name: string; device_id: string | null; ended_at: number | null } | undefined> {
      return db.selectFrom('sessions').select(['device_name', 'device_id', 'ended_at']).where('id', '=', sessionId).executeTakeFirst();
    },

    /**
     * What a "This wasn't me" link is about, for its page (docs/security-center.md):
     * the session of a sign-in alert, with the current name of the device trusted
     * from it. By primary keys; reads only, never the token.
     */
    reportSession(sessionId: string) {
      return db
        .selectFrom('sessions')
        .leftJoin('trusted_devices', 'trusted_devices.id', 'sessions.device_id')
        .select([
          'sessions.device_name as session_name',
          'trusted_devices.device_name as trusted_name',
          'sessions.browser',
          'sessions.os',
          'sessions.device_type',
          'sessions.ip_address',
          'sessions.location',
          'sessions.created_at',
          'sessions.ended_at',
        ])
        .where('sessions.id', '=', sessionId)
        .executeTakeFirst();
    },

    /** The trusted device of a device alert's link, for its page. By primary key. */
    reportDevice(deviceId: string) {
      return db
        .selectFrom('trusted_devices')
        .select(['device_name', 'browser', 'os', 'device_type', 'last_ip_address', 'location', 'trusted_at', 'revoked_at'])
        .where('id', '=', deviceId)
        .executeTakeFirst();
    },

    /** A device's current name, for a mail that knows only its id. */
    async deviceName(deviceId: string): Promise<string | null> {
      const row = await db.selectFrom('trusted_devices').select('device_name').where('id', '=', deviceId).executeTakeFirst();
      return row?.device_name ?? null;
    },
  };
}

export type AccountRepository = ReturnType<typeof createAccountRepository>;
