import { Type } from 'typebox';
import { IsoTime, NAME, PRINTABLE, ref } from '../../platform/http/envelope.ts';

// Any string: an id that is not a device UUID is answered 404 DEVICE_NOT_FOUND, like an unknown one.
export const DeviceId = Type.Object({ device_id: Type.String() });
const DeviceName = Type.String({ minLength: 1, maxLength: 100, pattern: NAME, description: 'Printable, not only white space.' });

// 1024: room for any token a client may send by mistake (an ES256 access token is ~600
// characters), so a wrong token is the same 404 as an unknown one, not a 422.
const ActivationToken = Type.String({ minLength: 1, maxLength: 1024 });
/**
 * A public JWK. Extra members are kept (not stripped) so that the service can
 * refuse a private key (`d`) instead of silently storing its public half;
 * src/platform/crypto/device-keys.ts checks the shape strictly.
 */
export const PublicKeyJwk = Type.Object(
  {
    kty: Type.String({ description: '"EC"' }),
    crv: Type.String({ description: '"P-256"' }),
    x: Type.String({ description: '32 bytes, base64url' }),
    y: Type.String({ description: '32 bytes, base64url' }),
  },
  { additionalProperties: true, description: 'The public half of the device key: an EC P-256 JWK for ES256. Never the private key.' },
);

export const ActivateBody = Type.Object(
  {
    activation_token: ActivationToken,
    device_name: Type.Optional(DeviceName),
    public_key: Type.Optional(PublicKeyJwk),
  },
  { additionalProperties: false },
);
export const SkipBody = Type.Object({ activation_token: ActivationToken }, { additionalProperties: false });
export const RenameBody = Type.Object({ device_name: DeviceName }, { additionalProperties: false });
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
  key_bound: Type.Boolean({ description: 'True when each login from this device must prove possession of its key (SPEC §5.5).' }),
  granted_by: Type.Union([Type.Literal('totp'), Type.Literal('backup_code'), Type.Literal('webauthn'), Type.Null()], {
    description: 'The second factor that granted this trust (SPEC §5.8); null for trust granted before it was recorded.',
  }),
  granted_by_credential_id: Type.Union([Type.String(), Type.Null()], { description: 'The WebAuthn credential that granted it, when granted_by is webauthn.' }),
}, { $id: 'Device', description: 'A trusted device.' });
export const Device = ref(DeviceSchema);

export const ActivateData = Type.Object({ device: Device, device_token: Type.String({ description: 'Shown once; browsers also get it as an HttpOnly cookie.' }) });
export const SkipData = Type.Object({ skipped: Type.Literal(true) });
export const ListData = Type.Object({ devices: Type.Array(Device), total_count: Type.Integer() });
export const RevokedData = Type.Object({ revoked: Type.Literal(true), sessions_ended: Type.Integer({ description: 'Sessions opened on the device, signed out with it' }) });
export const RevokedAllData = Type.Object({ revoked_count: Type.Integer(), sessions_ended: Type.Integer() });
export const DeviceData = Type.Object({ device: Device });
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
  created_at: IsoTime,
}, { $id: 'DeviceEvent', description: 'One entry of the device history.' });
export const Event = ref(DeviceEvent);
export const EventsData = Type.Object({ events: Type.Array(Event), next_before: Type.Union([Type.String(), Type.Null()]) });
