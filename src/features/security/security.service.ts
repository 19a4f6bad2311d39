/**
 * The security history (docs/security-center.md, "History"): one list of every
 * security change of an account, in words a person reads without alarm when
 * the cause was ordinary.
 *
 * It reads the events the one event writer stored (src/store/history.ts) and
 * shows them by *kind*: one kind per thing that happened to the account,
 * named for the person (`sign_in`, `passkey_added`, `device_revoked`, …),
 * not for the storage. Events that only repeat another line are not shown:
 * a trusted sign-in's `trust_used` (its `signed_in` line says "on a trusted
 * device"), the pending activation of a sign-in, the "all devices" and "all
 * sessions" summaries (each device and session has its own line), a
 * refreshed fingerprint. So one sign-in is one line, one sign-out is one line.
 *
 * The actor is named by its device: the session that acted is looked up and,
 * when it is on a trusted device, that device's name (as the person named
 * it) is shown; only an actor without a device is named by browser and
 * system. Nothing is written here, and nothing is looked up over the network
 * (locations were stored with the events).
 */
import type { Kysely } from 'kysely';
import { ValidationError } from '../../platform/errors.ts';
import { describeDevice } from '../../platform/crypto/fingerprint.ts';
import { defaultDeviceName } from '../../platform/context.ts';
import type { Database, DeviceEventType, EventCause } from '../../store/schema.ts';
import { actorDevices, listSecurityEvents, type StoredEvent } from '../../store/history.ts';

/** The kinds of the history and the stored event types each shows. */
export const KIND_TYPES = {
  sign_in: ['signed_in'],
  sign_out: ['signed_out', 'session_revoked', 'session_expired'],
  password_changed: ['password_changed'],
  password_reset: ['password_reset'],
  mfa_enabled: ['mfa_enabled'],
  mfa_disabled: ['mfa_disabled'],
  backup_codes_regenerated: ['backup_codes_regenerated'],
  backup_code_used: ['backup_code_used'],
  passkey_added: ['webauthn_registered'],
  passkey_renamed: ['webauthn_renamed'],
  passkey_removed: ['webauthn_removed'],
  email_verified: ['email_verified'],
  device_trusted: ['activated'],
  device_renamed: ['device_renamed'],
  device_revoked: ['revoked', 'evicted', 'expired'],
  device_resynced: ['token_resynced'],
  alert_sent: ['alert_sent'],
  step_up: ['step_up'],
  unusual_location: ['impossible_travel'],
  device_key_mismatch: ['fingerprint_mismatch'],
  device_proof_failed: ['proof_failed'],
  device_key_copied: ['reuse_detected'],
  session_key_failed: ['session_proof_failed'],
  passkey_counter_error: ['webauthn_counter_error'],
  admin_access: ['admin_viewed'],
} as const satisfies Record<string, readonly DeviceEventType[]>;

export type SecurityEventKind = keyof typeof KIND_TYPES;
export const SECURITY_EVENT_KINDS = Object.keys(KIND_TYPES) as SecurityEventKind[];

const KIND_OF = new Map<DeviceEventType, SecurityEventKind>(SECURITY_EVENT_KINDS.flatMap((kind) => KIND_TYPES[kind].map((type) => [type, kind] as const)));

/** Stored types that only repeat another line (see the head of this file). */
export const HIDDEN_TYPES = [
  'trust_used',
  'activation_created',
  'activation_skipped',
  'activation_revoked',
  'fingerprint_updated',
  'revoked_all',
  'sessions_revoked_all',
] as const satisfies readonly DeviceEventType[];

/** Every stored type is either shown by a kind or hidden on purpose: a new type that is neither does not compile. */
type Placed = (typeof KIND_TYPES)[SecurityEventKind][number] | (typeof HIDDEN_TYPES)[number];
const everyTypePlaced: [Exclude<DeviceEventType, Placed>] extends [never] ? true : Exclude<DeviceEventType, Placed> = true;
void everyTypePlaced;

/** `?kind=` as given (repeated, or comma-separated): the known kinds, or a 422 naming the unknown ones. */
export function parseKinds(given: readonly string[] | undefined): SecurityEventKind[] | undefined {
  if (given === undefined) return undefined;
  const kinds = given.flatMap((k) => k.split(',')).map((k) => k.trim()).filter((k) => k !== '');
  if (kinds.length === 0) return undefined;
  const unknown = kinds.filter((k) => !(k in KIND_TYPES));
  if (unknown.length > 0) {
    throw new ValidationError([{ field: 'kind', message: `Unknown kind: ${unknown.slice(0, 5).join(', ')}. Known kinds: ${SECURITY_EVENT_KINDS.join(', ')}.` }]);
  }
  return [...new Set(kinds as SecurityEventKind[])];
}

export interface ActorView {
  type: 'user' | 'admin' | 'system';
  /** The trusted device the acting session is on (null when it is on none). */
  device_id: string | null;
  /** That device's name; an admin key's name; the browser and system of an actor without a device; null for the service itself. */
  name: string | null;
  session_id: string | null;
}

export interface SecurityEventView {
  id: string;
  kind: SecurityEventKind;
  occurred_at: number;
  actor: ActorView;
  subject: { device_id: string | null; session_id: string | null; name: string | null };
  ip_address: string | null;
  location: string | null;
  cause: EventCause | 'expired' | 'max_devices' | null;
  reason: string | null;
  summary: string;
}

const quoted = (name: string | null, fallback: string) => (name ? `“${name}”` : fallback);

/** Why something ended, as the end of a sentence ("… because the password was changed"). */
const BECAUSE: Partial<Record<string, string>> = {
  password_changed: 'because the password was changed',
  password_reset: 'because the password was reset',
  mfa_enabled: 'because two-step verification was turned on',
  mfa_disabled: 'because two-step verification was turned off',
  backup_codes_regenerated: 'because new backup codes were generated',
  device_revoked: 'because its device was removed',
  all_devices_revoked: 'because all trusted devices were removed',
  not_me: 'after “This wasn’t me” was reported',
  reuse_detected: 'for safety: a copy of its key was used elsewhere',
  refresh_token_reuse: 'for safety: an old copy of its sign-in was used',
  proof_failed: 'for safety: it could not prove its key',
  max_devices: 'because the trusted-device limit was reached',
  // A session that ended by itself (housekeeping's `session_expired`, docs/sessions.md "Expiry"): nothing was done to it.
  expired: 'after a period of inactivity',
  idle_timeout: 'after a period of inactivity',
  max_age: 'after the session reached its maximum length',
};

const SIGN_IN_REASON: Partial<Record<string, string>> = {
  new_device: 'Signed in from a new browser or device',
  trust_expired: 'Signed in; a code was asked because the device’s trust had run out',
  device_revoked: 'Signed in; a code was asked because the device was no longer trusted',
  unusual_location: 'Signed in from an unusual location; a code was asked',
  impossible_travel: 'Signed in from an unusual location',
};

/** The mail of an `alert_sent` line, by mail kind (never its link). */
const ALERT_NAME: Partial<Record<string, string>> = {
  alert_device_trusted: 'a new device was trusted',
  alert_password_changed: 'your password was changed',
  alert_mfa_disabled: 'two-step verification was turned off',
  alert_mfa_enabled: 'two-step verification was turned on',
  alert_backup_codes_regenerated: 'new backup codes were generated',
  alert_backup_code_used: 'a backup code was used',
  alert_fingerprint_mismatch: 'a device key was used from another browser',
  alert_proof_failed: 'a device key was used without its device',
  alert_token_reused: 'a device key was copied',
  alert_session_proof_failed: 'a copy of a session was used',
  alert_new_sign_in: 'a sign-in to your account',
  alert_passkey_added: 'a passkey was added',
  alert_passkey_removed: 'a passkey was removed',
};

/** One plain sentence per line; calm for ordinary causes (your own sign-out, an expiry, a restored sign-in). */
export function summarise(kind: SecurityEventKind, e: StoredEvent, actor: ActorView, cause: SecurityEventView['cause']): string {
  const subject = e.subject_name;
  switch (kind) {
    case 'sign_in':
      return (e.reason !== null ? SIGN_IN_REASON[e.reason] : undefined) ?? (e.device_id !== null ? 'Signed in without a code (trusted device)' : 'Signed in');
    case 'sign_out': {
      if (cause === 'logout') return 'Signed out';
      if (cause === 'admin') return 'Signed out by an administrator';
      if (cause === 'user') return actor.session_id !== null && actor.session_id === e.session_id ? 'Signed out' : `Signed out from ${quoted(actor.name, 'another session')}`;
      const because = cause !== null ? BECAUSE[cause] : undefined;
      return because ? `Signed out ${because}` : 'Signed out';
    }
    case 'password_changed':
      return 'Password changed';
    case 'password_reset':
      return 'Password reset with an email link';
    case 'mfa_enabled':
      return 'Two-step verification turned on';
    case 'mfa_disabled':
      return 'Two-step verification turned off';
    case 'backup_codes_regenerated':
      return 'New backup codes generated; the old ones no longer work';
    case 'backup_code_used':
      return 'A backup code was used to sign in';
    case 'passkey_added':
      return `Passkey ${quoted(subject, '')} added`.replace('  ', ' ');
    case 'passkey_renamed':
      return `Passkey renamed to ${quoted(subject, 'a new name')}`;
    case 'passkey_removed':
      return `Passkey ${quoted(subject, '')} removed`.replace('  ', ' ');
    case 'email_verified':
      return 'Email address confirmed';
    case 'device_trusted':
      return `Device trusted: ${quoted(subject, 'a new device')}`;
    case 'device_renamed':
      return `Device renamed to ${quoted(subject, 'a new name')}`;
    case 'device_revoked': {
      const name = quoted(subject, 'a device');
      // Its trusted period simply ended: nothing was done to it.
      if (cause === 'expired') return `Trust of ${name} ended after its trusted period`;
      if (cause === 'max_devices') return `Device revoked: ${name}, to make room for a newer device`;
      if (cause === 'user') return `Device revoked: ${name}`;
      if (cause === 'admin') return `Device revoked: ${name}, by an administrator`;
      const because = cause !== null ? BECAUSE[cause] : undefined;
      return `Device revoked: ${name}${because ? `, ${because}` : ''}`;
    }
    case 'device_resynced':
      return 'This device’s sign-in was restored after an interrupted update';
    case 'alert_sent': {
      const about = subject !== null ? ALERT_NAME[subject] : undefined;
      return about ? `Security email sent: ${about}` : 'Security email sent';
    }
    case 'step_up':
      return 'Confirmed it’s you for a sensitive change';
    case 'unusual_location':
      return 'Sign-in attempt from an unusual location; a code was asked';
    case 'device_key_mismatch':
      return 'A trusted device’s key came from another browser; a code was asked instead';
    case 'device_proof_failed':
      return 'A trusted device’s key was used without the device; a code was asked instead';
    case 'device_key_copied':
      return `A copy of ${quoted(subject, 'a trusted device')}’s key was used; the device was removed for safety`;
    case 'session_key_failed':
      return 'A copy of a session was used without its key; it was signed out';
    case 'passkey_counter_error':
      return `Passkey ${quoted(subject, '')} answered out of order (it may have been copied)`.replace('  ', ' ');
    case 'admin_access':
      return `An administrator viewed ${subject ?? 'your account'}`;
  }
}

export function createSecurityService(options: { db: Kysely<Database> }) {
  const { db } = options;

  return {
    /** One page, newest first; `nextBefore` is the cursor of the next page (null on the last). */
    async events(userId: string, limit: number, before: string | undefined, kinds: readonly SecurityEventKind[] | undefined): Promise<{ events: SecurityEventView[]; nextBefore: string | null }> {
      const filter = kinds === undefined ? { hidden: HIDDEN_TYPES } : { types: kinds.flatMap((k) => KIND_TYPES[k]) };
      const rows = await listSecurityEvents(db, userId, filter, limit + 1, before);
      const page = rows.slice(0, limit);
      const sessionIds = [...new Set(page.flatMap((e) => (e.actor_session_id !== null ? [e.actor_session_id] : [])))];
      const devices = new Map((await actorDevices(db, userId, sessionIds)).map((d) => [d.session_id, d]));
      const events = page.flatMap((e): SecurityEventView[] => {
        const kind = KIND_OF.get(e.type);
        if (kind === undefined) return [];
        const actor = actorOf(e, devices.get(e.actor_session_id ?? ''));
        const cause = e.type === 'expired' ? 'expired' : e.type === 'evicted' ? (e.cause ?? 'max_devices') : e.cause;
        return [{
          id: e.id,
          kind,
          occurred_at: e.created_at,
          actor,
          subject: { device_id: e.device_id, session_id: e.session_id, name: e.subject_name },
          ip_address: e.ip_address,
          location: e.location,
          cause,
          reason: e.reason,
          summary: summarise(kind, e, actor, cause),
        }];
      });
      return { events, nextBefore: rows.length > limit ? page[page.length - 1]!.id : null };
    },
  };
}

/** Who acted, named by its device (see the head of this file). */
function actorOf(e: StoredEvent, device: { device_id: string | null; device_name: string | null; session_name: string } | undefined): ActorView {
  const type = e.actor_type ?? 'user';
  if (type === 'system') return { type, device_id: null, name: null, session_id: null };
  if (type === 'admin') return { type, device_id: null, name: e.actor_name, session_id: null };
  if (device !== undefined && device.device_id !== null && device.device_name !== null) {
    return { type, device_id: device.device_id, name: device.device_name, session_id: e.actor_session_id };
  }
  // A restored sign-in is the trusted device itself proving its key before any session exists.
  if (e.type === 'token_resynced' && e.device_id !== null) return { type, device_id: e.device_id, name: e.subject_name, session_id: null };
  // No trusted device: the browser and system (the session's name until a device names it, or the request's User-Agent).
  const fallback = device?.session_name ?? e.actor_name ?? (e.user_agent !== null ? browserAndOs(e.user_agent) : null);
  return { type, device_id: null, name: fallback, session_id: e.actor_session_id };
}

function browserAndOs(userAgent: string): string {
  const { browser, os } = describeDevice(userAgent);
  return defaultDeviceName(browser, os);
}

export type SecurityService = ReturnType<typeof createSecurityService>;
