/**
 * What the Shared Signals transmitter says about an event (docs/integration.md
 * "Shared Signals"): the Security Event Token claims, built from the stored
 * event row in the event's own transaction (as the webhook payload is), and
 * signed only when sent (src/platform/crypto/security-event-tokens.ts), so a
 * key rotation never strands a queued token.
 *
 * Events and subjects (the SET's top-level `sub_id`, RFC 9493 formats):
 *
 * | history | event type | `sub_id` |
 * |---|---|---|
 * | `signed_out`, `session_revoked` | CAEP `session-revoked` | complex: `user` (`iss_sub`), `session` (`opaque`: the access token's `sid`) |
 * | `revoked`, `evicted` (a trusted device ended) | CAEP `device-compliance-change`, `compliant` → `not-compliant` | complex: `user` (`iss_sub`), `device` (`opaque`: the device id) |
 * | `webauthn_registered` / `webauthn_removed` | CAEP `credential-change`, `fido2-platform`, `create` / `delete` | `iss_sub` (the user) |
 * | password changed / reset (ledger) | CAEP `credential-change`, `password`, `update` | `iss_sub` |
 * | second factor turned on / off (ledger) | CAEP `credential-change`, `app`, `create` / `delete` | `iss_sub` |
 * | backup codes regenerated (ledger) | CAEP `credential-change`, `backup-codes`, `update` | `iss_sub` |
 * | a receiver's verification request | SSF `verification` | `opaque`: the stream id |
 *
 * No SET for `session_expired` or `expired`: a session or trusted device whose
 * own time ran out (housekeeping records it) was not revoked.
 *
 * `iss_sub.sub` is the user id, the access tokens' `sub`. Every SET has `iss`
 * (PUBLIC_URL), `aud` (the stream's audience), `iat`, `jti` (the outbox row
 * id), `txn` (one per cause: the SETs written by one change share it) and no
 * `sub` or `exp` (SSF forbids both). Event claims: `event_timestamp` (seconds)
 * and `initiating_entity` (`user`, `admin` or `system`); `reason_admin` names
 * the history's cause in English. Nothing else: no IP, no User-Agent, no
 * device name, no email.
 */
import type { Actor } from '../platform/context.ts';
import type { DeviceEventsTable, EventCause } from './schema.ts';

export const SSF_EVENT_TYPES = {
  sessionRevoked: 'https://schemas.openid.net/secevent/caep/event-type/session-revoked',
  credentialChange: 'https://schemas.openid.net/secevent/caep/event-type/credential-change',
  deviceComplianceChange: 'https://schemas.openid.net/secevent/caep/event-type/device-compliance-change',
  verification: 'https://schemas.openid.net/secevent/ssf/event-type/verification',
} as const;

/** The event types a stream can ask for (the verification event is always delivered when asked for). */
export const SSF_EVENTS_SUPPORTED: readonly string[] = [SSF_EVENT_TYPES.sessionRevoked, SSF_EVENT_TYPES.credentialChange, SSF_EVENT_TYPES.deviceComplianceChange];

/** A credential change the ledger reports (it writes no history event of its own). */
export interface CredentialChange {
  userId: string;
  credentialType: 'password' | 'app' | 'backup-codes' | 'fido2-platform';
  changeType: 'create' | 'revoke' | 'update' | 'delete';
  actor: Actor;
}

/** One signal before it is addressed to a stream: the event type, its subject and its claims. */
export interface SsfSignal {
  eventType: string;
  /** The user the signal is about (a stream that removed this user does not get it). */
  userId: string;
  subId: Record<string, unknown>;
  event: Record<string, unknown>;
}

const initiatingEntity = (actorType: string | null): 'user' | 'admin' | 'system' => (actorType === 'admin' ? 'admin' : actorType === 'system' ? 'system' : 'user');
const reasonAdmin = (cause: EventCause | null) => (cause === null ? {} : { reason_admin: { en: cause.replaceAll('_', ' ') } });
const user = (issuer: string, userId: string) => ({ format: 'iss_sub', iss: issuer, sub: userId });

/** The signal a history row gives, or null when it is none of the shared ones. */
export function signalOfEvent(issuer: string, row: DeviceEventsTable): SsfSignal | null {
  const common = { event_timestamp: Math.floor(row.created_at / 1000), initiating_entity: initiatingEntity(row.actor_type), ...reasonAdmin(row.cause) };
  switch (row.type) {
    case 'signed_out':
    case 'session_revoked':
      if (row.session_id === null) return null;
      return {
        eventType: SSF_EVENT_TYPES.sessionRevoked,
        userId: row.user_id,
        subId: { format: 'complex', user: user(issuer, row.user_id), session: { format: 'opaque', id: row.session_id } },
        event: common,
      };
    case 'revoked':
    case 'evicted':
      if (row.device_id === null) return null;
      return {
        eventType: SSF_EVENT_TYPES.deviceComplianceChange,
        userId: row.user_id,
        subId: { format: 'complex', user: user(issuer, row.user_id), device: { format: 'opaque', id: row.device_id } },
        event: { ...common, previous_status: 'compliant', current_status: 'not-compliant' },
      };
    case 'webauthn_registered':
    case 'webauthn_removed':
      return {
        eventType: SSF_EVENT_TYPES.credentialChange,
        userId: row.user_id,
        subId: user(issuer, row.user_id),
        event: { ...common, credential_type: 'fido2-platform', change_type: row.type === 'webauthn_registered' ? 'create' : 'delete' },
      };
    default:
      return null;
  }
}

export function signalOfCredentialChange(issuer: string, change: CredentialChange, now: number): SsfSignal {
  return {
    eventType: SSF_EVENT_TYPES.credentialChange,
    userId: change.userId,
    subId: user(issuer, change.userId),
    event: {
      event_timestamp: Math.floor(now / 1000),
      initiating_entity: initiatingEntity(change.actor.type),
      credential_type: change.credentialType,
      change_type: change.changeType,
    },
  };
}

/** The SET claims of one signal on one stream. */
export function setClaims(issuer: string, audience: string, jti: string, txn: string, now: number, signal: Omit<SsfSignal, 'userId'>) {
  return { iss: issuer, aud: audience, iat: Math.floor(now / 1000), jti, txn, sub_id: signal.subId, events: { [signal.eventType]: signal.event } };
}
