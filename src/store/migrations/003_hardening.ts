/**
 * Issue 10 (hardening): an index for the one housekeeping statement that had
 * none. Ended devices (revoked, evicted, expired) are deleted once they ended
 * more than EVENT_RETENTION_DAYS ago; "ended" is revoked_at, or expires_at for
 * a device that simply expired. Partial (ended devices only), so per-user
 * queries on active devices are never tempted by it, and on the expression
 * the delete uses, so the delete is a range search, not a scan of the table.
 */
import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createIndex('trusted_devices_ended')
    .on('trusted_devices')
    .expression(sql`coalesce(revoked_at, expires_at)`)
    .where(sql.ref('status'), '<>', 'active')
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('trusted_devices_ended').ifExists().execute();
}
