/**
 * Session expiry by housekeeping (docs/sessions.md, "Expiry"): the step that
 * ends sessions past their idle or absolute end finds them by
 * `ended_at is null and idle_expires_at <= now` (idle_expires_at never passes
 * expires_at, so that one column covers both ends). A partial index holds
 * only the unended sessions, ordered by their idle end: the step reads the
 * due ones from its start, and ended sessions (most rows, kept for the
 * history's retention) cost it nothing. The index's WHERE is the literal
 * `ended_at is null` the repository writes (src/store/sessions.repository.ts).
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createIndex('sessions_idle_live').on('sessions').column('idle_expires_at').where(sql.ref('ended_at'), 'is', null).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('sessions_idle_live').execute();
}
