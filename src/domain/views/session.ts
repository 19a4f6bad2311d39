/**
 * A session as the API shows it: its schema (the `Session` component) and the
 * JSON view of the service's domain object (times as ISO strings). Shared by
 * the user's and the admin's routes.
 */
import { Type } from 'typebox';
import type { SessionView } from '../contracts.ts';
import { iso, ref } from '../../platform/http/envelope.ts';
import { NullableLocation } from './location.ts';

const IsoTime = Type.String({ format: 'date-time' });

export const SessionSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  device_id: Type.Union([Type.String(), Type.Null()], { description: 'The trusted device this session was opened on (or activated from it), while it is trusted' }),
  device_name: Type.String({ description: "The trusted device's current name, or the browser and OS of the sign-in" }),
  device_trusted: Type.Boolean({ description: 'Whether the device skips the second factor' }),
  browser: Type.String(),
  os: Type.String(),
  device_type: Type.String(),
  ip_address: Type.String({ description: 'The address the session was opened from' }),
  created_at: IsoTime,
  last_active_at: Type.String({ format: 'date-time', description: 'Updated at most once a minute' }),
  expires_at: Type.String({ format: 'date-time', description: 'When it ends unless refreshed (idle limit), never past its absolute limit' }),
  mfa_method: Type.Union([Type.Literal('none'), Type.Literal('totp'), Type.Literal('backup_code'), Type.Literal('trusted_device'), Type.Literal('webauthn')]),
  is_current: Type.Boolean({ description: 'True for the session of the access token of this request' }),
  bound: Type.Boolean({ description: 'Whether a refresh needs a proof of a key that never leaves the browser that signed in (a copied cookie is worthless)' }),
  binding: Type.Union([Type.Literal('webcrypto'), Type.Literal('dbsc'), Type.Null()], {
    description: "How it is bound: 'webcrypto' (a non-extractable key sent as session_key), 'dbsc' (the browser's Device Bound Session Credentials), or null (unbound: a native client or script)",
  }),
  location: NullableLocation,
}, { $id: 'Session', description: 'A place where the account is signed in.' });
export const Session = ref(SessionSchema);

export const sessionJson = (s: SessionView) => ({
  ...s,
  created_at: iso(s.created_at),
  last_active_at: iso(s.last_active_at),
  expires_at: iso(s.expires_at),
});
