/**
 * Table types for Kysely. Times are integer epoch milliseconds (bigint in
 * PostgreSQL, INTEGER in SQLite), ids are random UUIDs as text, JSON is text:
 * the same migrations and queries run on both dialects.
 */
export interface UsersTable {
  id: string;
  email: string;
  password_hash: string;
  display_name: string | null;
  created_at: number;
  updated_at: number;
}

export interface RefreshTokensTable {
  id: string;
  user_id: string;
  /** Every rotation of one login shares a family; reuse of a rotated token revokes the family. */
  family_id: string;
  token_hash: string;
  created_at: number;
  expires_at: number;
  rotated_at: number | null;
  revoked_at: number | null;
}

export interface TotpSecretsTable {
  user_id: string;
  /** AES-256-GCM ciphertext of the base32 secret (see src/security/encryption.ts). */
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
}

export interface ActivationTokensTable extends DeviceDescription {
  /** Also the id the device gets when it is activated. */
  id: string;
  user_id: string;
  token_hash: string;
  created_at: number;
  expires_at: number;
  consumed_at: number | null;
  outcome: 'activated' | 'skipped' | null;
}

export type DeviceStatus = 'active' | 'revoked' | 'evicted' | 'expired';

export interface TrustedDevicesTable extends DeviceDescription {
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
  | 'expired';

export interface DeviceEventsTable {
  /** UUIDv7: sorts by time, then by write order within one process. */
  id: string;
  user_id: string;
  device_id: string | null;
  type: DeviceEventType;
  ip_address: string | null;
  user_agent: string | null;
  created_at: number;
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
}
