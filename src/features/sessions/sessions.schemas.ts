import { Type } from 'typebox';
import { Session } from '../../domain/views/session.ts';

export { Session };


export const SessionId = Type.Object({ session_id: Type.String({ maxLength: 64 }) });
export const EndAllQuery = Type.Object({
  except_current: Type.Optional(Type.Boolean({ description: 'true: sign out everywhere else; absent or false: every session ends, this one included' })),
});

export const ListData = Type.Object({ sessions: Type.Array(Session), total_count: Type.Integer() });
export const RevokedData = Type.Object({ revoked: Type.Literal(true) });
export const RevokedAllData = Type.Object({ revoked_count: Type.Integer() });
