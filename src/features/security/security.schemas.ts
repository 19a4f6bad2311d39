import { Type } from 'typebox';
import { IsoTime, ref } from '../../platform/http/envelope.ts';
import { GEO_ATTRIBUTION } from '../../platform/geo.ts';
import { NullableLocation } from '../../domain/views/location.ts';
import { SECURITY_EVENT_KINDS } from './security.service.ts';

const NullableString = Type.Union([Type.String(), Type.Null()]);

export const SecurityEventsQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
    before: Type.Optional(Type.String({ format: 'uuid', description: 'The next_before of the previous page.' })),
    kind: Type.Optional(
      Type.Array(Type.String({ maxLength: 500 }), {
        maxItems: 30,
        description: `Only these kinds: repeat the parameter (\`kind=sign_in&kind=sign_out\`) or separate them with commas (\`kind=sign_in,sign_out\`). An unknown kind is 422. Kinds: ${SECURITY_EVENT_KINDS.join(', ')}.`,
      }),
    ),
  },
  { additionalProperties: false },
);

export const SecurityEventSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid', description: 'Time-ordered: also the cursor of the next page.' }),
    kind: Type.String({ enum: SECURITY_EVENT_KINDS, description: 'What happened (docs/security-center.md, "History"). Clients show `summary` for a kind they do not know: more may be added.' }),
    occurred_at: IsoTime,
    actor: Type.Object(
      {
        type: Type.String({ enum: ['user', 'admin', 'system'], description: 'A person (a session or a sign-in attempt), an admin key, or the service itself' }),
        device_id: Type.Union([Type.String(), Type.Null()], { description: 'The trusted device the acting session is on; null when it is on none' }),
        name: Type.Union([Type.String(), Type.Null()], {
          description: 'The name of that device as the person named it; the admin key\'s name; the browser and system ("Firefox on Windows") only when the actor has no trusted device; null for the service',
        }),
        session_id: Type.Union([Type.String(), Type.Null()], { description: 'The session that acted, when one did' }),
      },
      { description: 'Who did it' },
    ),
    subject: Type.Object(
      {
        device_id: NullableString,
        session_id: NullableString,
        name: Type.Union([Type.String(), Type.Null()], { description: 'The name of the device, session or passkey it is about, at the time (for alert_sent: the mail kind)' }),
      },
      { description: 'What it is about' },
    ),
    ip_address: Type.Union([Type.String(), Type.Null()], { description: "The actor's IP address; null for the service" }),
    location: NullableLocation,
    cause: Type.Union([Type.String(), Type.Null()], {
      description: 'sign_out and device_revoked: why it ended (logout, user, admin, password_changed, password_reset, mfa_enabled, mfa_disabled, device_revoked, all_devices_revoked, not_me, reuse_detected, refresh_token_reuse, proof_failed, max_devices, expired, idle_timeout, max_age)',
    }),
    reason: Type.Union([Type.String(), Type.Null()], { description: 'sign_in: why a second factor was asked (the mfa_reason), or impossible_travel; unusual_location: impossible_travel' }),
    summary: Type.String({ description: 'One plain sentence for people, in English' }),
  },
  {
    $id: 'SecurityEvent',
    description: `One line of the security history. Locations: ${GEO_ATTRIBUTION.text} (${GEO_ATTRIBUTION.url}).`,
    examples: [
      {
        id: '01937a4e-8f00-7c3a-9d2e-3f4a5b6c7d8e',
        kind: 'sign_out',
        occurred_at: '2026-01-01T12:00:00.000Z',
        actor: { type: 'user', device_id: '01937a4e-0000-7c3a-9d2e-3f4a5b6c7d8e', name: 'Work laptop', session_id: '01937a4e-1111-7c3a-9d2e-3f4a5b6c7d8e' },
        subject: { device_id: null, session_id: '01937a4e-2222-7c3a-9d2e-3f4a5b6c7d8e', name: 'Safari on iOS' },
        ip_address: '193.0.6.139',
        location: { city: 'Amsterdam', region: 'North Holland', country: 'Netherlands', country_code: 'NL' },
        cause: 'password_changed',
        reason: null,
        summary: 'Signed out because the password was changed',
      },
    ],
  },
);
export const SecurityEvent = ref(SecurityEventSchema);

export const SecurityEventsData = Type.Object(
  {
    events: Type.Array(SecurityEvent),
    next_before: Type.Union([Type.String(), Type.Null()], { description: 'Pass as `before` for the next (older) page; null on the last page' }),
    location_attribution: Type.Object({ text: Type.String(), url: Type.String() }, { description: 'Show it wherever a location of this list is shown (the DB-IP lite licence)' }),
  },
  {
    examples: [
      {
        events: [
          {
            id: '01937a4e-8f00-7c3a-9d2e-3f4a5b6c7d8e',
            kind: 'password_changed',
            occurred_at: '2026-01-01T12:00:00.000Z',
            actor: { type: 'user', device_id: '01937a4e-0000-7c3a-9d2e-3f4a5b6c7d8e', name: 'Work laptop', session_id: '01937a4e-1111-7c3a-9d2e-3f4a5b6c7d8e' },
            subject: { device_id: null, session_id: null, name: null },
            ip_address: '193.0.6.139',
            location: { city: 'Amsterdam', region: 'North Holland', country: 'Netherlands', country_code: 'NL' },
            cause: null,
            reason: null,
            summary: 'Password changed',
          },
          {
            id: '01937a4e-7000-7c3a-9d2e-3f4a5b6c7d8e',
            kind: 'device_resynced',
            occurred_at: '2026-01-01T11:00:00.000Z',
            actor: { type: 'user', device_id: '01937a4e-0000-7c3a-9d2e-3f4a5b6c7d8e', name: 'Work laptop', session_id: null },
            subject: { device_id: '01937a4e-0000-7c3a-9d2e-3f4a5b6c7d8e', session_id: null, name: 'Work laptop' },
            ip_address: '193.0.6.139',
            location: { city: 'Amsterdam', region: 'North Holland', country: 'Netherlands', country_code: 'NL' },
            cause: null,
            reason: null,
            summary: 'This device’s sign-in was restored after an interrupted update',
          },
        ],
        next_before: '01937a4e-7000-7c3a-9d2e-3f4a5b6c7d8e',
        location_attribution: { text: GEO_ATTRIBUTION.text, url: GEO_ATTRIBUTION.url },
      },
    ],
  },
);
