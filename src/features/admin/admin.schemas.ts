import { Type } from 'typebox';
import { Device, EventsQuery as UserEventsQuery, EventsData } from '../../domain/views/device.ts';
import { IsoTime, PRINTABLE } from '../../platform/http/envelope.ts';
import { Session } from '../../domain/views/session.ts';

export const EmailQuery = Type.Object({ email: Type.String({ minLength: 3, maxLength: 254, pattern: PRINTABLE }) }, { additionalProperties: false });
// Any string: an id that is not a UUID is answered like an unknown one (404).
export const UserId = Type.Object({ user_id: Type.String({ maxLength: 64 }) });
export const UserDeviceId = Type.Object({ user_id: Type.String({ maxLength: 64 }), device_id: Type.String({ maxLength: 64 }) });
export const UserSessionId = Type.Object({ user_id: Type.String({ maxLength: 64 }), session_id: Type.String({ maxLength: 64 }) });
export const EventsQuery = UserEventsQuery;

export const User = Type.Object({
  user_id: Type.String({ format: 'uuid' }),
  email: Type.String(),
  display_name: Type.Union([Type.String(), Type.Null()]),
  mfa_enabled: Type.Boolean(),
  created_at: IsoTime,
});
export const UserData = Type.Object({ user: User });
export const DevicesData = Type.Object({ devices: Type.Array(Device), total_count: Type.Integer() });
export const SessionsData = Type.Object({ sessions: Type.Array(Session), total_count: Type.Integer() });
export { EventsData };
export const DeviceRevokedData = Type.Object({ revoked: Type.Literal(true), sessions_ended: Type.Integer() });
export const DevicesRevokedData = Type.Object({ revoked_count: Type.Integer(), sessions_ended: Type.Integer() });
export const SessionRevokedData = Type.Object({ revoked: Type.Literal(true) });
export const SessionsRevokedData = Type.Object({ revoked_count: Type.Integer() });
