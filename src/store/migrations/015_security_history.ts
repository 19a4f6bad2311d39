/**
 * The security history (docs/security-center.md, "History"):
 * `GET /api/v1/security/events?kind=…` reads one user's events of some types,
 * newest first, a page at a time. `device_events_user_type` (user_id, type,
 * id) serves it: one index range per type, the cursor (`id < ?`) inside each.
 * The unfiltered history keeps using `device_events_user_id` (user_id, id).
 *
 * The new event types of the history (password_changed, mfa_enabled,
 * device_renamed, alert_sent, …) need no column: `type` is text.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createIndex('device_events_user_type').on('device_events').columns(['user_id', 'type', 'id']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('device_events_user_type').execute();
}
