/**
 * The webhook payload (docs/admin-and-webhooks.md): what is POSTed to
 * WEBHOOK_URL for every event of a user's history. Built from the stored
 * event row in the event's own transaction: it holds ids, names, causes and
 * the actor, never a token, a secret or a raw fingerprint signal (events
 * hold none). Its OpenAPI description is src/features/webhooks/webhooks.schemas.ts.
 */
import { iso } from '../platform/http/envelope.ts';
import type { DeviceEventsTable, DeviceEventType } from './schema.ts';

const SESSION_TYPES: ReadonlySet<string> = new Set<DeviceEventType>(['signed_in', 'signed_out', 'session_revoked', 'session_expired', 'sessions_revoked_all', 'step_up']);
/** Changes of the account itself (docs/security-center.md, "History"), not of one device or session. */
const ACCOUNT_TYPES: ReadonlySet<string> = new Set<DeviceEventType>([
  'password_changed',
  'password_reset',
  'mfa_enabled',
  'mfa_disabled',
  'backup_codes_regenerated',
  'backup_code_used',
  'email_verified',
  'alert_sent',
]);

/** `device.<type>`, `session.<type>`, `account.<type>`, `webauthn.<type>` or `admin.<type>`: receivers filter on the group; `data.type` is the history's own type. */
export function webhookType(type: string): string {
  if (SESSION_TYPES.has(type)) return `session.${type}`;
  if (ACCOUNT_TYPES.has(type)) return `account.${type}`;
  if (type.startsWith('admin_')) return `admin.${type.slice('admin_'.length)}`;
  if (type.startsWith('webauthn_')) return `webauthn.${type.slice('webauthn_'.length)}`;
  return `device.${type}`;
}

export function webhookPayload(row: DeviceEventsTable) {
  return {
    type: webhookType(row.type),
    timestamp: iso(row.created_at),
    data: {
      id: row.id,
      user_id: row.user_id,
      type: row.type,
      device_id: row.device_id,
      session_id: row.session_id,
      device_name: row.subject_name,
      cause: row.cause,
      actor: {
        type: row.actor_type ?? 'user',
        session_id: row.actor_session_id,
        name: row.actor_name,
        ip_address: row.ip_address,
        user_agent: row.user_agent,
      },
      created_at: iso(row.created_at),
    },
  };
}

