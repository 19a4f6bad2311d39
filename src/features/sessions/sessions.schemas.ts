import { Type } from 'typebox';
import { ref } from '../../platform/http/envelope.ts';

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
}, { $id: 'Session', description: 'A place where the account is signed in.' });
export const Session = ref(SessionSchema);

export const SessionId = Type.Object({ session_id: Type.String({ maxLength: 64 }) });
export const EndAllQuery = Type.Object({
  except_current: Type.Optional(Type.Boolean({ description: 'true: sign out everywhere else; absent or false: every session ends, this one included' })),
});

export const ListData = Type.Object({ sessions: Type.Array(Session), total_count: Type.Integer() });
export const RevokedData = Type.Object({ revoked: Type.Literal(true) });
export const RevokedAllData = Type.Object({ revoked_count: Type.Integer() });
