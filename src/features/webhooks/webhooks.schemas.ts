/**
 * The OpenAPI description of the webhook payload (the document's `webhooks`
 * section): what is POSTed to WEBHOOK_URL for every event of a user's
 * history. The payload itself is built by src/store/webhook-payload.ts, in
 * the event's own transaction.
 */
import { Type } from 'typebox';

// Documentation only (never used to validate): a string or null, in the document's OpenAPI 3.1 (JSON Schema 2020-12) words.
const Nullable = (description: string) => Type.Unsafe<string | null>({ type: ['string', 'null'], description });

export const WebhookEvent = Type.Object(
  {
    type: Type.String({ description: 'device.<event type>, session.<event type>, account.<event type>, webauthn.<event type> or admin.<event type>', example: 'device.revoked' }),
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
      responses: { '2XX': { description: 'Acknowledged' }, '4XX': { description: 'Not acknowledged (as any other answer, or none): retried with backoff' } },
    },
  },
};
