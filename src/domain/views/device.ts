/**
 * A device, a pending device and a history event as the API shows them:
 * their schemas (named components of the OpenAPI document) and the JSON
 * views that shape the services' domain objects into them (times as ISO
 * strings). Shared by every feature that answers with them (devices, auth,
 * admin).
 */
import { Type } from 'typebox';
import type { DeviceView, PendingDevice } from '../contracts.ts';
import type { StoredEvent } from '../../store/history.ts';
import { IsoTime, iso, ref } from '../../platform/http/envelope.ts';
import { parseStoredLocation, publicLocation } from '../../platform/geo.ts';
import { NullableLocation } from './location.ts';

export const EventsQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
    before: Type.Optional(Type.String({ format: 'uuid', description: 'The next_before of the previous page.' })),
  },
  { additionalProperties: false },
);

export const DeviceSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  device_name: Type.String(),
  device_fingerprint: Type.String({ description: 'Keyed HMAC of the stable fingerprint components (hex).' }),
  browser: Type.String(),
  os: Type.String(),
  device_type: Type.String(),
  user_agent: Type.String(),
  ip_address: Type.String({ description: 'The address the device was first seen from.' }),
  last_ip_address: Type.String(),
  is_active: Type.Boolean(),
  is_current: Type.Boolean({ description: 'True when this request carries this device token.' }),
  created_at: IsoTime,
  trusted_at: IsoTime,
  last_used_at: IsoTime,
  expires_at: IsoTime,
  key_bound: Type.Boolean({ description: 'True when each login from this device must prove possession of its key.' }),
  granted_by: Type.Union([Type.Literal('totp'), Type.Literal('backup_code'), Type.Literal('webauthn'), Type.Null()], {
    description: 'The second factor that granted this trust; null for trust granted before it was recorded.',
  }),
  granted_by_credential_id: Type.Union([Type.String(), Type.Null()], { description: 'The WebAuthn credential that granted it, when granted_by is webauthn.' }),
  location: NullableLocation,
}, { $id: 'Device', description: 'A trusted device.' });
export const Device = ref(DeviceSchema);

const NullableString = Type.Union([Type.String(), Type.Null()]);
export const DeviceEvent = Type.Object({
  id: Type.String(),
  type: Type.String(),
  device_id: NullableString,
  session_id: Type.Union([Type.String(), Type.Null()], { description: 'The session the event is about (sign-in, sign-out, session ended)' }),
  device_name: Type.Union([Type.String(), Type.Null()], { description: 'The name of the device or session the event is about, at the time' }),
  cause: Type.Union([Type.String(), Type.Null()], { description: 'Why it ended: user, admin, logout, password_changed, password_reset, mfa_enabled, mfa_disabled, backup_codes_regenerated, device_revoked, all_devices_revoked, not_me, reuse_detected, refresh_token_reuse, max_devices' }),
  actor: Type.Object(
    {
      type: Type.String({ description: 'user, admin or system' }),
      session_id: NullableString,
      name: Type.Union([Type.String(), Type.Null()], { description: "The actor session's device name, or the admin key's name" }),
      ip_address: NullableString,
      user_agent: NullableString,
    },
    { description: 'Who caused the event' },
  ),
  ip_address: Type.Union([Type.String(), Type.Null()], { description: "The actor's IP address" }),
  user_agent: Type.Union([Type.String(), Type.Null()], { description: "The actor's User-Agent" }),
  location: NullableLocation,
  reason: Type.Union([Type.String(), Type.Null()], {
    description: 'mfa_requested: why the second factor was asked (the mfa_reason of the answer); signed_in and impossible_travel: impossible_travel when the sign-in came from farther than IMPOSSIBLE_TRAVEL_KMH allows since the previous one',
  }),
  created_at: IsoTime,
}, { $id: 'DeviceEvent', description: 'One entry of the device history.' });
export const Event = ref(DeviceEvent);
export const EventsData = Type.Object({ events: Type.Array(Event), next_before: Type.Union([Type.String(), Type.Null()]) });

export const deviceJson = (d: DeviceView) => ({
  ...d,
  created_at: iso(d.created_at),
  trusted_at: iso(d.trusted_at),
  last_used_at: iso(d.last_used_at),
  expires_at: iso(d.expires_at),
});

export const pendingDeviceJson = (d: PendingDevice, trustTtlDays: number) => ({ ...d, expires_at: iso(d.expires_at), trust_ttl_days: trustTtlDays });

export const eventJson = (e: StoredEvent) => ({
  id: e.id,
  type: e.type,
  device_id: e.device_id,
  session_id: e.session_id,
  device_name: e.subject_name,
  cause: e.cause,
  actor: { type: e.actor_type ?? 'user', session_id: e.actor_session_id, name: e.actor_name, ip_address: e.ip_address, user_agent: e.user_agent },
  ip_address: e.ip_address,
  user_agent: e.user_agent,
  location: publicLocation(parseStoredLocation(e.location)),
  reason: e.reason,
  created_at: iso(e.created_at),
});
