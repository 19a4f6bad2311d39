/** The API's JSON shapes of a device, a pending device and a history event (times as ISO strings); shared by every route that answers with them. */
import type { StoredEvent } from '../../store/history.ts';
import { iso } from '../../platform/http/envelope.ts';
import type { DeviceView, PendingDevice } from './devices.service.ts';

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
  created_at: iso(e.created_at),
});
