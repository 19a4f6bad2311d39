/**
 * Table types for Kysely. Times are integer epoch milliseconds (bigint in
 * PostgreSQL, INTEGER in SQLite), ids are random UUIDs as text, JSON is text:
 * the same migrations and queries run on both dialects.
 */
import type { Kysely, Transaction } from 'kysely';
export interface UsersTable {
  id: string;
  email: string;
  password_hash: string;
  display_name: string | null;
  created_at: number;
  updated_at: number;
  /** When the address was proven by a verification (or reset) link; null until then. */
  email_verified_at: number | null;
}

export interface RefreshTokensTable {
  id: string;
  user_id: string;
  /** The session (sessions.id): every rotation of one sign-in shares it; reuse of a rotated token ends the session. */
  family_id: string;
  token_hash: string;
  created_at: number;
  expires_at: number;
  rotated_at: number | null;
}

export interface TotpSecretsTable {
  user_id: string;
  /** AES-256-GCM ciphertext of the base32 secret (see src/platform/crypto/encryption.ts). */
  secret_encrypted: string;
  enabled_at: number | null;
  /** Highest accepted TOTP time step: a step is accepted once. */
  last_used_step: number | null;
  setup_failures: number;
  setup_locked_until: number | null;
  created_at: number;
}

export interface BackupCodesTable {
  id: string;
  user_id: string;
  code_hash: string;
  used_at: number | null;
  created_at: number;
}

export interface MfaChallengesTable {
  id: string;
  user_id: string;
  token_hash: string;
  /** The fingerprint of the login request; the challenge is bound to it. */
  fingerprint: string;
  created_at: number;
  expires_at: number;
  consumed_at: number | null;
  failed_attempts: number;
  /** Why the second factor was asked (migration 010, docs/security-center.md): the mfa_reason of the answer. */
  reason: string | null;
}

export interface MfaLockoutsTable {
  user_id: string;
  window_started_at: number;
  failures: number;
  locked_until: number | null;
}

/** What is recorded about a device when it passes MFA; copied from the activation token to the device. */
export interface DeviceDescription {
  device_name: string;
  /** Keyed HMAC of the stable components (hex); shown as device_fingerprint. */
  fingerprint: string;
  /** JSON object: component name → keyed HMAC. Never a raw signal. */
  components: string;
  browser: string;
  os: string;
  device_type: string;
  user_agent: string;
  ip_address: string;
  /** JSON of src/platform/geo.ts StoredLocation (migration 010): of ip_address for a pending device, of last_ip_address for a trusted one. */
  location: string | null;
}

/** Which second factor granted a device's trust (migration 005); null for trust granted before it was recorded. */
export type TrustFactor = 'totp' | 'backup_code' | 'webauthn';
export interface TrustGrant {
  granted_by: TrustFactor | null;
  /** webauthn_credentials.id when granted_by is 'webauthn'. */
  granted_by_credential_id: string | null;
}

export interface ActivationTokensTable extends DeviceDescription, TrustGrant {
  /** Also the id the device gets when it is activated. */
  id: string;
  user_id: string;
  token_hash: string;
  created_at: number;
  expires_at: number;
  consumed_at: number | null;
  outcome: 'activated' | 'skipped' | null;
  /** The session opened by the second factor that issued this token (null for tokens from before sessions existed). */
  session_id: string | null;
  /** Set when a security event ended the pending token (what ends what, docs/sessions.md): it then answers 410. */
  revoked_at: number | null;
}

export type DeviceStatus = 'active' | 'revoked' | 'evicted' | 'expired';

export interface TrustedDevicesTable extends DeviceDescription, TrustGrant {
  user_id: string;
  id: string;
  status: DeviceStatus;
  device_token_hash: string;
  last_ip_address: string;
  created_at: number;
  trusted_at: number;
  last_used_at: number;
  expires_at: number;
  revoked_at: number | null;
  /** The device's public ES256 key as a normalised JWK (docs/trust-model.md), or null when the device is not key-bound. */
  public_key_jwk: string | null;
}

/** A proof-of-possession challenge (docs/trust-model.md): SHA-256 of the challenge, single-use, 60 s. */
export interface DeviceChallengesTable {
  challenge_hash: string;
  created_at: number;
  expires_at: number;
  consumed_at: number | null;
}

/** A device token retired by a rotation (docs/trust-model.md): presented after the grace, it means a copy exists. */
export interface RetiredDeviceTokensTable {
  token_hash: string;
  user_id: string;
  device_id: string;
  retired_at: number;
  /** The device's trust end: after it the token means nothing and is deleted. */
  expires_at: number;
}

export type DeviceEventType =
  | 'activation_created'
  | 'activated'
  | 'activation_skipped'
  | 'trust_used'
  | 'fingerprint_mismatch'
  /** A trusted device passed a second factor with a drifted fingerprint; its record was updated. */
  | 'fingerprint_updated'
  | 'revoked'
  | 'revoked_all'
  | 'evicted'
  | 'expired'
  | 'activation_revoked'
  | 'signed_in'
  | 'signed_out'
  | 'session_revoked'
  /** A session reached its idle or absolute end and housekeeping ended it (migration 016, docs/sessions.md); `cause` says which. */
  | 'session_expired'
  // Admin API (src/admin): a read of the user's data by an admin key, and an admin's "end every session".
  | 'admin_viewed'
  | 'sessions_revoked_all'
  // WebAuthn (migration 005, docs/passkeys.md)
  | 'webauthn_registered'
  | 'webauthn_removed'
  | 'webauthn_counter_error'
  // Device-bound keys and rotation (migration 007, docs/trust-model.md)
  | 'proof_failed'
  | 'reuse_detected'
  // Device-bound sessions (migration 009, docs/sessions.md)
  /** A retired device token came back with a valid proof of the device's own key: a lost cookie update, re-issued, no alarm. */
  | 'token_resynced'
  /** A bound session's refresh came with a proof by another key: the session ended. */
  | 'session_proof_failed'
  // Step-up (migration 011, docs/step-up.md): a factor performed again in a live session.
  | 'step_up'
  // Security center (migration 010, docs/security-center.md)
  /** A sign-in (the right password, or a passkey) came from farther than IMPOSSIBLE_TRAVEL_KMH allows since the previous one. */
  | 'impossible_travel'
  // The security history (docs/security-center.md, "History"): the account changes themselves, not only what they ended.
  | 'password_changed'
  | 'password_reset'
  | 'mfa_enabled'
  | 'mfa_disabled'
  | 'backup_codes_regenerated'
  /** A sign-in spent a backup code (the sign-in's own line is `signed_in`). */
  | 'backup_code_used'
  | 'webauthn_renamed'
  | 'email_verified'
  | 'device_renamed'
  /** A security alert was mailed: the mail kind is the subject name; never its token or link. */
  | 'alert_sent';

/** Why something ended (what ends what, docs/sessions.md): the security event, or the person who asked. */
export type EventCause =
  | 'user'
  | 'admin'
  | 'logout'
  | 'password_changed'
  | 'password_reset'
  | 'mfa_enabled'
  | 'mfa_disabled'
  | 'backup_codes_regenerated'
  | 'device_revoked'
  | 'all_devices_revoked'
  | 'not_me'
  | 'reuse_detected'
  | 'refresh_token_reuse'
  | 'max_devices'
  /** A bound session's refresh came with another key's proof (docs/sessions.md). */
  | 'proof_failed'
  /** A session not refreshed for SESSION_IDLE_DAYS, ended by housekeeping at its idle end (docs/sessions.md). */
  | 'idle_timeout'
  /** A session that reached SESSION_MAX_AGE_DAYS, ended by housekeeping at its absolute end. */
  | 'max_age';

export type ActorType = 'user' | 'admin' | 'system';

export type MfaMethod = 'none' | 'totp' | 'backup_code' | 'trusted_device' | 'webauthn';

export interface SessionsTable {
  id: string;
  user_id: string;
  /** The trusted device that bypassed MFA, or the device the user then activated from this session. */
  device_id: string | null;
  /** The name at sign-in ("Chrome on macOS"); the list shows a trusted device's current name. */
  device_name: string;
  browser: string;
  os: string;
  device_type: string;
  ip_address: string;
  user_agent: string;
  mfa_method: MfaMethod;
  created_at: number;
  /** Updated at most once a minute by the bearer check, and by every refresh. */
  last_active_at: number;
  /** Absolute end: created_at + SESSION_MAX_AGE_DAYS; refreshing never moves it. */
  expires_at: number;
  /** Idle end: last refresh + SESSION_IDLE_DAYS, never past expires_at. */
  idle_expires_at: number;
  ended_at: number | null;
  end_cause: EventCause | null;
  /** How the session is bound to a key of its browser (migration 009, docs/sessions.md); null: unbound. */
  binding_kind: SessionBindingKind | null;
  /** The bound key, a normalised public P-256 JWK: every refresh proof is checked against it. */
  binding_key_jwk: string | null;
  /** RFC 7638 SHA-256 thumbprint of the bound key (base64url). */
  binding_thumbprint: string | null;
  /** DBSC: SHA-256 of the current short-lived bound cookie, and when it ends. */
  dbsc_cookie_hash: string | null;
  dbsc_cookie_expires_at: number | null;
  /** Who ended it: the name of the session (its device) or admin key that did (docs/sessions.md, "Signed-out reasons"). */
  end_actor_name: string | null;
  /** When the last factor was actually performed (the sign-in, or the latest step-up; docs/step-up.md). */
  auth_time: number;
  /** RFC 8176 methods of that authentication, space-separated (src/platform/authn-methods.ts). */
  amr: string;
  /** JSON of the sign-in address's location (migration 010). */
  location: string | null;
  /** The stable fingerprint of the sign-in (migration 010): whether the account has seen this device. */
  fingerprint: string | null;
}

export type SessionBindingKind = 'webcrypto' | 'dbsc';

export interface DeviceEventsTable {
  /** UUIDv7: sorts by time, then by write order within one process. */
  id: string;
  user_id: string;
  device_id: string | null;
  type: DeviceEventType;
  /** The actor's IP and User-Agent. */
  ip_address: string | null;
  user_agent: string | null;
  created_at: number;
  /** The session the event is about (sign-in, sign-out, session ended). */
  session_id: string | null;
  /** The name of the device or session the event is about, at the time. */
  subject_name: string | null;
  cause: EventCause | null;
  actor_type: ActorType | null;
  /** The session that caused the event (a user actor). */
  actor_session_id: string | null;
  /** The actor's name at the time: its session's device name, or an admin key's name. */
  actor_name: string | null;
  /** JSON of the actor address's location (migration 010), looked up when the event was written. */
  location: string | null;
  /** Why a second factor was asked (`mfa_requested`), or a sign-in's flag (`impossible_travel`). */
  reason: string | null;
}

/** An admin API key (src/admin): only its SHA-256 is stored. */
export interface AdminKeysTable {
  id: string;
  /** Unique forever (revoked keys included): it is the actor name in users' histories. */
  name: string;
  key_hash: string;
  /** Comma-separated scopes, e.g. "users:read,devices:write". */
  scopes: string;
  created_at: number;
  revoked_at: number | null;
  /** Moved at most once a minute. */
  last_used_at: number | null;
}

/** One event to deliver to WEBHOOK_URL (src/webhooks); written in the event's transaction. */
export interface WebhookOutboxTable {
  /** The event's id, also the `webhook-id` header: receivers deduplicate by it. */
  id: string;
  /** The webhook type, e.g. "device.revoked". */
  type: string;
  /** The JSON body, exactly as signed and sent. */
  payload: string;
  created_at: number;
  /** Attempts started so far; also fences a late outcome of an attempt whose lease ran out. */
  attempts: number;
  /** When the row is next due (or its lease ends); null once delivered or dead. */
  next_attempt_at: number | null;
  /** The end of the lease of the attempt in flight, null when none is. */
  claimed_until: number | null;
  delivered_at: number | null;
  dead_at: number | null;
  /** The last failure: an HTTP status or a network error (never the payload or a header). */
  last_error: string | null;
}

/** An OpenID Shared Signals event stream (docs/integration.md), owned by the admin key that created it. */
export interface SsfStreamsTable {
  /** The stream_id. */
  id: string;
  admin_key_id: string;
  /** The SETs' `aud`: the owning key's name. */
  audience: string;
  /** `urn:ietf:rfc:8935` (push) or `urn:ietf:rfc:8936` (poll). */
  delivery_method: string;
  /** Push: the receiver's URL. Poll: null (the poll URL is ours, derived from the id). */
  endpoint_url: string | null;
  /** Push: the Authorization header to send, encrypted (DATA_ENCRYPTION_KEY); null when none. */
  authorization_header: string | null;
  /** JSON arrays of event type URIs. */
  events_requested: string;
  events_delivered: string;
  description: string | null;
  /** `enabled`, `paused` (events kept, not sent) or `disabled` (events not kept). */
  status: string;
  /** The receiver's reason for the current status, when it gave one. */
  status_reason: string | null;
  created_at: number;
  updated_at: number;
}

/** One Security Event Token to deliver on one stream; written in the event's transaction. */
/** A user a receiver removed from its stream (streams start with every user; these are the exceptions). */
export interface SsfRemovedSubjectsTable {
  stream_id: string;
  user_id: string;
  created_at: number;
}

export interface SsfOutboxTable {
  /** The SET's `jti`: receivers deduplicate by it, poll receivers acknowledge it. */
  id: string;
  stream_id: string;
  /** The SET's claims (JSON), signed when sent. */
  payload: string;
  created_at: number;
  attempts: number;
  /** Push: when next due (or the lease ends); null once delivered or dead, and always null on a poll stream. */
  next_attempt_at: number | null;
  claimed_until: number | null;
  /** Push: accepted (202). Poll: acknowledged. */
  delivered_at: number | null;
  dead_at: number | null;
  last_error: string | null;
}

export type MailKind =
  | 'verify_email'
  | 'password_reset'
  | 'alert_device_trusted'
  | 'alert_password_changed'
  | 'alert_mfa_disabled'
  | 'alert_backup_codes_regenerated'
  | 'alert_fingerprint_mismatch'
  | 'alert_proof_failed'
  | 'alert_token_reused'
  | 'alert_session_proof_failed'
  | 'alert_new_sign_in'
  | 'alert_passkey_added'
  | 'alert_passkey_removed'
  | 'alert_mfa_enabled'
  | 'alert_backup_code_used';

export type MailStatus = 'pending' | 'sent' | 'failed' | 'dropped';

/** The durable mail queue (src/mail). Holds no token and no rendered body: the sender renders at send time. */
export interface MailOutboxTable {
  id: string;
  kind: MailKind;
  user_id: string | null;
  recipient: string | null;
  /** JSON object of non-secret template facts. */
  payload: string;
  dedupe_key: string | null;
  status: MailStatus;
  attempts: number;
  next_attempt_at: number;
  claimed_by: string | null;
  claimed_until: number | null;
  last_error: string | null;
  subject: string | null;
  created_at: number;
  finished_at: number | null;
}

export type EmailTokenPurpose = 'verify_email' | 'password_reset' | 'report';

export interface EmailTokensTable {
  id: string;
  user_id: string;
  purpose: EmailTokenPurpose;
  token_hash: string;
  device_id: string | null;
  mail_id: string | null;
  created_at: number;
  expires_at: number;
  consumed_at: number | null;
  /** A report link of a new-sign-in alert (migration 010): the session it ends. */
  session_id: string | null;
}

/** A registered WebAuthn credential (passkey or security key; docs/passkeys.md). */
export interface WebauthnCredentialsTable {
  id: string;
  user_id: string;
  /** The authenticator's credential id, base64url; unique across users. */
  credential_id: string;
  /** COSE public key, base64url. */
  public_key: string;
  /** Last signature counter seen; a later assertion must report more (unless both are 0). */
  counter: number;
  /** JSON array of transports the browser reported. */
  transports: string;
  name: string;
  /** 'singleDevice' | 'multiDevice' (synced passkey). */
  device_type: string;
  backed_up: number;
  /** 1/0 from the credProps extension; null when the browser did not say. */
  discoverable: number | null;
  aaguid: string;
  created_at: number;
  last_used_at: number | null;
}

export type WebauthnChallengePurpose = 'registration' | 'second_factor' | 'passwordless' | 'step_up';

/** One issued WebAuthn challenge: single use, 5 minutes, stored as SHA-256. */
export interface WebauthnChallengesTable {
  id: string;
  purpose: WebauthnChallengePurpose;
  /** The user it is bound to (registration, second factor); null for passwordless. */
  user_id: string | null;
  /** Second factor: the MFA challenge (temporary token) it belongs to; step-up: the session it belongs to. */
  mfa_challenge_id: string | null;
  /** Passwordless: SHA-256 of the attempt token handed to the client. */
  attempt_hash: string | null;
  /** Passwordless: the fingerprint of the options request. */
  fingerprint: string | null;
  challenge_hash: string;
  created_at: number;
  expires_at: number;
  consumed_at: number | null;
}

export interface Database {
  users: UsersTable;
  refresh_tokens: RefreshTokensTable;
  totp_secrets: TotpSecretsTable;
  backup_codes: BackupCodesTable;
  mfa_challenges: MfaChallengesTable;
  mfa_lockouts: MfaLockoutsTable;
  activation_tokens: ActivationTokensTable;
  trusted_devices: TrustedDevicesTable;
  device_events: DeviceEventsTable;
  mail_outbox: MailOutboxTable;
  email_tokens: EmailTokensTable;
  sessions: SessionsTable;
  device_challenges: DeviceChallengesTable;
  retired_device_tokens: RetiredDeviceTokensTable;
  admin_keys: AdminKeysTable;
  webhook_outbox: WebhookOutboxTable;
  ssf_streams: SsfStreamsTable;
  ssf_outbox: SsfOutboxTable;
  ssf_removed_subjects: SsfRemovedSubjectsTable;
  webauthn_credentials: WebauthnCredentialsTable;
  webauthn_challenges: WebauthnChallengesTable;
}

/** What a repository function takes first: the database, or the caller's transaction. */
export type Db = Kysely<Database> | Transaction<Database>;
