/**
 * The webhook payload (SPEC §5.7): what is POSTed to WEBHOOK_URL for every
 * event of a user's history, and its OpenAPI description (the document's
 * `webhooks` section, src/app/build-app.ts). Built from the stored event row in the
 * event's own transaction: it holds ids, names, causes and the actor, never
 * a token, a secret or a raw fingerprint signal (events hold none).
 */
import { Type } from 'typebox';
import type { DeviceEventsTable, DeviceEventType } from '../../store/schema.ts';
import { iso } from '../../platform/http/envelope.ts';

const SESSION_TYPES: ReadonlySet<string> = new Set<DeviceEventType>(['signed_in', 'signed_out', 'session_revoked', 'sessions_revoked_all']);

/** `device.<type>`, `session.<type>`, `webauthn.<type>` or `admin.<type>`: receivers filter on the group; `data.type` is the history's own type. */
export function webhookType(type: string): string {
  if (SESSION_TYPES.has(type)) return `session.${type}`;
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

// Documentation only (never used to validate): OpenAPI 3.0's `nullable`, as the document is 3.0.
const Nullable = (description: string) => Type.String({ nullable: true, description });

export const WebhookEvent = Type.Object(
  {
    type: Type.String({ description: 'device.<event type>, session.<event type>, webauthn.<event type> or admin.<event type>', example: 'device.revoked' }),
    timestamp: Type.String({ format: 'date-time', description: 'When the event happened' }),
    data: Type.Object({
      id: Type.String({ description: 'The event id; also the webhook-id header (deduplicate by it: delivery is at least once)' }),
      user_id: Type.String(),
      type: Type.String({ description: 'The event type of the history (GET /api/v1/devices/events)' }),
      device_id: Nullable('The device the event is about'),
      session_id: Nullable('The session the event is about'),
      device_name: Nullable('The name of the device or session the event is about, at the time'),
      cause: Nullable('Why something ended (user, admin, password_changed, …)'),
      actor: Type.Object({
        type: Type.String({ description: 'user, admin or system' }),
        session_id: Nullable("The actor's session"),
        name: Nullable("The actor session's device name, or the admin key's name"),
        ip_address: Nullable("The actor's IP address"),
        user_agent: Nullable("The actor's User-Agent"),
      }),
      created_at: Type.String({ format: 'date-time' }),
    }),
  },
  { description: 'One event of a user\'s history. Signed per Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature (v1, HMAC-SHA-256 with WEBHOOK_SECRET).' },
);

const signatureHeader = (description: string) => ({ required: true, schema: { type: 'string' }, description });

/** The OpenAPI `webhooks` entry (3.1; kept as `x-webhooks` in a 3.0 document). */
export const openApiWebhooks = {
  event: {
    post: {
      operationId: 'webhookEvent',
      // Sent by this service; the receiver authenticates it by the signature headers.
      security: [],
      summary: 'A device, session, security or admin event (POSTed to WEBHOOK_URL)',
      description: 'Answer 2xx to acknowledge. Anything else (or no answer within WEBHOOK_TIMEOUT_SECONDS) is retried with exponential backoff, up to WEBHOOK_MAX_ATTEMPTS attempts.',
      parameters: [
        { in: 'header', name: 'webhook-id', ...signatureHeader('The event id (stable across retries)') },
        { in: 'header', name: 'webhook-timestamp', ...signatureHeader('Unix seconds of this attempt') },
        { in: 'header', name: 'webhook-signature', ...signatureHeader('v1,<base64 HMAC-SHA-256 of "id.timestamp.body">') },
      ],
      requestBody: { required: true, content: { 'application/json': { schema: WebhookEvent } } },
      responses: { '2XX': { description: 'Acknowledged' } },
    },
  },
};
