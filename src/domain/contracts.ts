/**
 * The seams features offer one another. A feature never imports another
 * feature: where one needs another's work (the sign-in needs the trust check,
 * a session, a second factor; the admin API reads devices and sessions), it
 * names the seam here, the providing feature implements it, and the app
 * (src/app/build-app.ts) hands one to the other. Types only.
 */
import type { AuthenticationResponseJSON } from '@simplewebauthn/server';
import type { Actor, RequestDevice } from '../platform/context.ts';
import type { Acr, Amr } from '../platform/authn-methods.ts';
import type { Db, MfaMethod, SessionBindingKind, TrustFactor } from '../store/schema.ts';
import type { StoredEvent } from '../store/history.ts';
import type { Location, StoredLocation } from '../platform/geo.ts';

export type TrustDecision =
  | {
      trusted: true;
      deviceId: string;
      deviceName: string;
      /** The device's trust end (the rotated cookie's lifetime). */
      expiresAt: number;
      /** The new device token when this check rotated it (docs/trust-model.md); undefined when a token within the grace was used. */
      newDeviceToken?: string | undefined;
    }
  | { trusted: false; reason: 'fingerprint_mismatch'; deviceId: string; deviceName: string; differing: string[] }
  | { trusted: false; reason: 'proof_failed'; deviceId: string; why: ProofFailure }
  | { trusted: false; reason: 'reuse_detected'; deviceId: string }
  | { trusted: false; reason: 'no_token' | 'unknown_token' | 'inactive' | 'expired' };

/**
 * Why a sign-in asks for the second factor (`mfa_reason`, docs/security-center.md).
 * `trust_check_failed`: the trust check could not complete (storage), so it failed closed.
 */
export const MFA_REASONS = [
  'new_device',
  'trust_expired',
  'device_revoked',
  'proof_missing',
  'proof_failed',
  'fingerprint_mismatch',
  'unusual_location',
  'trust_check_failed',
] as const;
export type MfaReason = (typeof MFA_REASONS)[number];

export type ProofFailure = 'missing' | 'malformed' | 'unusable_challenge' | 'bad_signature';

/** A login's device recognised before the password (DeviceTrust.recognise); a known device when `proof` is undefined (no failure). */
export interface RecognisedDevice {
  deviceId: string;
  proof: ProofFailure | undefined;
}

/** The second factor that was verified before a pending device was created (docs/passkeys.md: the trust remembers it). */
export type TrustGrantInput = { factor: Exclude<TrustFactor, 'webauthn'> } | { factor: 'webauthn'; credentialId: string };

export interface PendingDevice {
  id: string;
  device_name: string;
  /** From the sign-in's User-Agent, as on device cards: the trust prompt's icon. */
  device_type: string;
  device_fingerprint: string;
  activation_token: string;
  expires_at: number;
  is_active: false;
}

/** The seam the authentication service calls at login and MFA verify. */
export interface DeviceTrust {
  /**
   * The full trust check of a sign-in; records `trust_used` or what failed.
   * When the device is trusted, `openSession` runs in the same transaction
   * as the token rotation, under the user's lock (src/store/locks.ts), after
   * a conditional UPDATE has found the device still active: a revocation
   * that commits first is never followed by a session on the revoked device,
   * and a failure anywhere leaves neither the rotation nor the session.
   */
  check<T>(
    userId: string,
    device: RequestDevice,
    openSession: (trx: Db, trusted: { id: string; name: string }) => Promise<T>,
    /** What `recognise` found for this request (its proof is not checked twice: the challenge is already used). */
    recognised?: RecognisedDevice,
  ): Promise<{ decision: TrustDecision; session?: T }>;
  /** Like check, without recording anything (a key-bound device's proof is still used up). */
  evaluate(userId: string, device: RequestDevice): Promise<TrustDecision>;
  /**
   * Before a login's password is checked (docs/security.md, known devices):
   * the device whose usable token of this user the request presents, with
   * its proof's outcome when key-bound (the challenge is used up). Undefined
   * when the token is missing, unknown, another user's, inactive, expired,
   * retired beyond the grace, or from another browser. Records nothing.
   */
  recognise(userId: string, device: RequestDevice): Promise<RecognisedDevice | undefined>;
  /** After a verified second factor, inside the transaction that opens the session: a pending device and its activation token. */
  createPendingDevice(trx: Db, userId: string, device: RequestDevice, sessionId: string, grant: TrustGrantInput): Promise<PendingDevice>;
  /**
   * After a verified second factor on a device whose token is valid but whose
   * fingerprint drifted (same browser family and OS): store the current
   * components, so the next sign-in is recognised again. False when the
   * device is no longer active.
   */
  reanchor(userId: string, device: { id: string; device_name: string }, request: RequestDevice): Promise<boolean>;
}

export interface DeviceView {
  id: string;
  device_name: string;
  device_fingerprint: string;
  browser: string;
  os: string;
  device_type: string;
  user_agent: string;
  ip_address: string;
  last_ip_address: string;
  is_active: boolean;
  is_current: boolean;
  created_at: number;
  trusted_at: number;
  last_used_at: number;
  expires_at: number;
  /** Whether the device proves possession of a key at each login (docs/trust-model.md). */
  key_bound: boolean;
  granted_by: TrustFactor | null;
  granted_by_credential_id: string | null;
  /** Approximate location of last_ip_address (docs/security-center.md), looked up when it was recorded. */
  location: Location | null;
}

/** Where the request that caused an alert came from. */
export interface AlertRequest {
  ipAddress: string | null;
  userAgent: string | null;
}

/** Security alerts (src/features/account/account-mail.ts): queued, never throw. */
export interface DeviceAlerts {
  deviceTrusted(userId: string, context: AlertRequest & { deviceId: string; deviceName: string }): Promise<void>;
  fingerprintMismatch(userId: string, context: AlertRequest & { deviceId: string }): Promise<void>;
  /** A key-bound device's token came without a valid proof (docs/trust-model.md). */
  deviceProofFailed(userId: string, context: AlertRequest & { deviceId: string; deviceName: string }): Promise<void>;
  /** A retired device token came back after the grace: the device was revoked (docs/trust-model.md). */
  deviceTokenReused(userId: string, context: AlertRequest & { deviceId: string; deviceName: string }): Promise<void>;
}

/** Security alerts about sessions (queued, never throw). */
export interface SessionAlerts {
  /** A bound session's refresh came with another key's proof: the session was ended (docs/sessions.md). */
  sessionProofFailed(userId: string, context: AlertRequest & { deviceId: string | null; deviceName: string }): Promise<void>;
}

/** How a session is bound to a key of its browser (docs/sessions.md); absent: unbound. */
export interface SessionBinding {
  kind: SessionBindingKind;
  /** The normalised public JWK (text). */
  jwk: string;
  thumbprint: string;
}

/**
 * The single-use proof challenges (POST /auth/device-challenge), shared by
 * every check of a device or session proof: a challenge is accepted once
 * across all of them (one conditional UPDATE consumes it).
 */
export interface ProofChallenges {
  issueChallenge(): Promise<{ challenge: string; expiresIn: number }>;
  /** True exactly once for an issued, unexpired challenge. */
  consume(challenge: string): Promise<boolean>;
}

/** The tokens of a session, as the API returns them. */
export interface SessionTokens {
  access_token: string;
  refresh_token: string;
  token_type: 'bearer';
  expires_in: number;
}

export interface OpenSession {
  userId: string;
  device: RequestDevice;
  mfaMethod: MfaMethod;
  /** RFC 8176 methods the person performed to open it (`device` when a trusted device stood in for the second factor; docs/step-up.md). */
  amr: Amr[];
  /** The trusted device that bypassed MFA (or that the verified device already is). */
  trustedDevice?: { id: string; name: string } | undefined;
  /** The browser key the session is bound to (`session_key` at sign-in); undefined: unbound. */
  binding?: SessionBinding | undefined;
  /** Why the second factor was asked, recorded on the `signed_in` event (`mfa_reason`; `unusual_location` also without one). */
  reason?: string | null | undefined;
}

export interface SessionView {
  id: string;
  device_id: string | null;
  device_name: string;
  browser: string;
  os: string;
  device_type: string;
  ip_address: string;
  created_at: number;
  last_active_at: number;
  expires_at: number;
  mfa_method: MfaMethod;
  is_current: boolean;
  /** Whether the session's device is trusted now (skips the second factor). */
  device_trusted: boolean;
  /** Whether a refresh needs a proof of a key of the browser that signed in (docs/sessions.md). */
  bound: boolean;
  /** How: 'webcrypto' (session_key), 'dbsc' (Device Bound Session Credentials), or null (unbound). */
  binding: SessionBindingKind | null;
  /** Approximate location of ip_address (docs/security-center.md). */
  location: Location | null;
}

export type SecondFactor = { code: string } | { backupCode: string };

/** The seam the authentication service calls at /auth/mfa/* and /auth/passkey/*. */
export interface WebauthnFactor {
  secondFactorOptions(userId: string, mfaChallengeId: string): Promise<unknown>;
  /** Checks an assertion against a challenge of this MFA challenge; null when refused. `amr`: hwk or swk (src/platform/authn-methods.ts). */
  checkSecondFactor(userId: string, mfaChallengeId: string, response: AuthenticationResponseJSON, device: RequestDevice): Promise<{ credentialId: string; amr: Amr } | null>;
  passwordlessOptions(device: RequestDevice): Promise<{ options: unknown; attempt_token: string; expires_in: number }>;
  /** Throws 401 INVALID_TOKEN / 400 WEBAUTHN_VERIFICATION_FAILED; on success, whose credential answered. */
  verifyPasswordless(attemptToken: string, response: AuthenticationResponseJSON, device: RequestDevice): Promise<{ userId: string; credentialId: string; amr: Amr }>;
  /** Assertion options for a step-up of this session (docs/step-up.md), bound to the user and the session. */
  stepUpOptions(userId: string, sessionId: string): Promise<unknown>;
  /** Checks a step-up assertion against a challenge of this session; null when refused. */
  checkStepUp(userId: string, sessionId: string, response: AuthenticationResponseJSON, device: RequestDevice): Promise<{ credentialId: string; amr: Amr } | null>;
}


/** What the sign-in needs of the sessions feature: a session opened, optionally with more work in its transaction. */
export interface SessionOpener {
  /** Opens a session inside the caller's transaction (the trusted sign-in's). */
  openIn(trx: Db, input: OpenSession): Promise<{ sessionId: string; tokens: SessionTokens }>;
  open<T>(input: OpenSession, within?: (trx: Db, sessionId: string) => Promise<T>): Promise<{ sessionId: string; tokens: SessionTokens; extra: T }>;
}

/** What a step-up answers: a new access token of the same session, and the session's new authentication. */
export interface StepUpResult {
  access_token: string;
  token_type: 'bearer';
  expires_in: number;
  /** Epoch milliseconds. */
  auth_time: number;
  amr: Amr[];
  acr: Acr;
}

/** A factor performed again in a live session (docs/step-up.md). */
export interface SessionAuthentication {
  /**
   * Moves the session's auth_time to now and its amr to `earlier` plus
   * `performed`; writes a `step_up` event unless `event` is false. 401 when
   * the session has ended.
   */
  stepUp(input: { userId: string; sessionId: string; earlier: readonly Amr[]; performed: Amr; actor: Actor; event?: boolean }): Promise<StepUpResult>;
}

/** What the sign-in needs to know of earlier sign-ins (docs/security-center.md): impossible travel and new-device alerts. */
export interface SignInHistory {
  latestSignIn(userId: string): Promise<{ at: number; location: StoredLocation | null } | undefined>;
  hasSignedInFrom(userId: string, fingerprint: string): Promise<boolean>;
}

/** What the sign-in routes need of the sessions feature: rotate a refresh token, end the caller's session. */
export interface SessionTokenRotation {
  /** `proof`: the x-session-proof header (bound sessions); `actor`: who asked (named in the events of a failed proof). */
  /** `boundCookie`: the DBSC bound cookie (td_bound); `skipped`: the reasons of a Secure-Session-Skipped header. */
  refresh(
    refreshToken: string,
    request?: { proof?: string | undefined; actor?: Actor; boundCookie?: string | undefined; skipped?: readonly string[] },
  ): Promise<SessionTokens>;
  logout(userId: string, sessionId: string, refreshToken: string | undefined, actor: Actor): Promise<void>;
}

/** What the sign-in needs of the MFA feature: whether a second factor is due, and checking one under the attempt limits. */
export interface SecondFactorGate {
  isEnabled(userId: string): Promise<boolean>;
  methods(userId: string): Promise<string[]>;
  /** Throws 429 TOO_MANY_ATTEMPTS while the user's second factor is locked. */
  assertNotLocked(userId: string): Promise<void>;
  /** Counts an attempt against the per-user limit (throws 429 past it). */
  beginAttempt(userId: string): Promise<{ lockedUntil: number | null }>;
  attemptSucceeded(userId: string): Promise<unknown>;
  lockedError(until: number): Error;
  /** A TOTP or backup code, checked once. */
  checkSecondFactor(userId: string, factor: SecondFactor): Promise<boolean>;
  /** A right TOTP code of a time step already used: refused as MFA_CODE_ALREADY_USED before any attempt is counted. */
  isUsedCode(userId: string, factor: SecondFactor): Promise<boolean>;
}

/** Whether a user has a second factor (admin lookups). */
export interface MfaStatus {
  isEnabled(userId: string): Promise<boolean>;
}

/** The proof challenge of a device-bound login (issued before sign-in). */
export interface DeviceChallenges {
  issueChallenge(): Promise<{ challenge: string; expiresIn: number }>;
}

/** A user's devices and history, as the devices feature shows them. */
export interface DeviceDirectory {
  list(userId: string, currentDeviceToken: string | undefined): Promise<DeviceView[]>;
  events(userId: string, limit: number, before: string | undefined): Promise<{ events: StoredEvent[]; nextBefore: string | null }>;
}

/** A user's live sessions, as the sessions feature shows them. */
export interface SessionDirectory {
  list(userId: string, currentSessionId: string): Promise<SessionView[]>;
}

/** The signed-in user's own account, for features that need the email or a password check. */
export interface AccountLookup {
  me(userId: string): Promise<{ email: string; display_name: string | null }>;
  /** Throws 401 INVALID_CREDENTIALS when the password is not the user's. */
  requirePassword(userId: string, password: string): Promise<unknown>;
}

/** Security mail about the account (queued; never throws). */
export interface AccountAlerts {
  backupCodesRegenerated(userId: string, actor: Actor): Promise<void>;
  mfaDisabled(userId: string, actor: Actor): Promise<void>;
  mfaEnabled(userId: string, actor: Actor): Promise<void>;
}

/** Mail about passkeys (docs/security-center.md): a passkey signs in with no password at all. */
export interface PasskeyAlerts {
  passkeyAdded(userId: string, actor: Actor, passkeyName: string): Promise<void>;
  passkeyRemoved(userId: string, actor: Actor, passkeyName: string): Promise<void>;
}

/** An admin API key, for features other than admin that take one (the Shared Signals streams). */
export interface AdminKeyGate {
  /** The live key's id, name and scopes; 401 for anything else. */
  authenticate(key: string): Promise<{ keyId: string; name: string; scopes: ReadonlySet<string> }>;
}
