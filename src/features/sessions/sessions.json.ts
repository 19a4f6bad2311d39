/** The API's JSON shape of a session (times as ISO strings); shared by the user's and the admin's routes. */
import { iso } from '../../platform/http/envelope.ts';
import type { SessionView } from './sessions.service.ts';

export const sessionJson = (s: SessionView) => ({
  ...s,
  created_at: iso(s.created_at),
  last_active_at: iso(s.last_active_at),
  expires_at: iso(s.expires_at),
});
