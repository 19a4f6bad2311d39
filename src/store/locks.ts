/**
 * One lock order for everything that changes a user's security state.
 *
 * A what-ends-what row (src/domain/ledger.ts) touches devices, sessions, activation tokens
 * and challenges; an activation touches a session, an activation token and
 * devices (eviction). Taken in different orders on PostgreSQL, two such
 * transactions can deadlock. Both first lock the user's row — a no-op UPDATE,
 * which takes a row lock on PostgreSQL and needs no dialect-only SQL — so they
 * run one after the other per user. On SQLite transactions are serialised
 * anyway.
 */
import type { Db } from './schema.ts';

export async function lockUser(trx: Db, userId: string): Promise<void> {
  await trx.updateTable('users').set((eb) => ({ updated_at: eb.ref('updated_at') })).where('id', '=', userId).execute();
}
