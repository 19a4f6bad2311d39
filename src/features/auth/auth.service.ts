/**
 * Sign-up, login (with the MFA challenge and the trusted-device bypass),
 * second-factor verification and password change. Sessions, their tokens,
 * refresh and logout are src/sessions; what a password change ends is
 * src/domain/ledger.ts.
 *
 * Lifetimes: MFA challenge (temporary token) MFA_CHALLENGE_TTL_SECONDS,
 * single use, bound to the login request's fingerprint, burnt after 5 wrong
 * codes, ended by the security events of what ends what (docs/sessions.md).
 * Storage: argon2id password hashes; SHA-256 of every opaque token.
 * Threats: user enumeration (one answer and the same argon2 cost for an
 * unknown email and a wrong password), brute force of the second factor
 * (per-token and per-user limits), token theft (short lifetimes, rotation,
 * prefixes that never cross kinds).
 */
import type { AuthenticationResponseJSON } from '@simplewebauthn/server';
import type { FastifyBaseLogger } from 'fastify';
import type { Clock } from '../../platform/clock.ts';
import { AppError, TooManyAttemptsError, UnauthorizedError, ValidationError } from '../../platform/errors.ts';
import type { Db } from '../../store/schema.ts';
import type {
  DeviceTrust,
  MfaReason,
  PendingDevice,
  RecognisedDevice,
  SecondFactor,
  SecondFactorGate,
  SessionAuthentication,
  SessionBinding,
  SessionOpener,
  SessionTokens,
  SignInHistory,
  StepUpResult,
  TrustDecision,
  TrustGrantInput,
  WebauthnFactor,
} from '../../domain/contracts.ts';
import { parsePublicKey } from '../../platform/crypto/device-keys.ts';
import { type Amr, amrAfter } from '../../platform/authn-methods.ts';
import { attemptActor, defaultDeviceName, EMAIL_SHAPE, normaliseEmail, type RequestDevice } from '../../platform/context.ts';
import { HOUR } from '../../platform/clock.ts';
import { CITY_ACCURACY_KM, describeLocation, distanceKm, type GeoLocator, NO_GEO, publicLocation, type StoredLocation } from '../../platform/geo.ts';
import type { History } from '../../store/history.ts';
import { GATE_COMPONENTS } from '../../platform/crypto/fingerprint.ts';
import type { Actor } from '../../store/history.ts';
import type { MfaRepository } from '../../store/mfa.repository.ts';
import type { Revocation } from '../../domain/ledger.ts';
import { type PasswordHasher, passwordProblems } from '../../platform/crypto/passwords.ts';
import { generateToken, hashToken, looksLike, newId } from '../../platform/crypto/tokens.ts';
import type { User, UsersRepository } from '../../store/users.repository.ts';

export const CHALLENGE_MAX_FAILURES = 5;

export interface AuthServiceOptions {
  users: UsersRepository;
  mfaRepository: MfaRepository;
  mfa: SecondFactorGate;
  deviceTrust: DeviceTrust;
  sessions: SessionOpener;
  /** Step-up (docs/step-up.md): a factor performed again in the caller's session. */
  sessionAuthentication: SessionAuthentication;
  revocation: Revocation;
  passwords: PasswordHasher;
  clock: Clock;
  mfaChallengeTtlSeconds: number;
  log: FastifyBaseLogger;
  /** Account mail (src/features/account/account-mail.ts): queued, never awaited for delivery, never throws. */
  accountMail?: {
    verifyEmail(userId: string): Promise<void>;
    passwordChanged(userId: string, actor: Actor): Promise<void>;
    backupCodeUsed(userId: string, context: { ipAddress: string | null; userAgent: string | null; sessionId: string | null }): Promise<void>;
    newSignIn(
      userId: string,
      signIn: { sessionId: string; ipAddress: string; userAgent: string; deviceName: string; newDevice: boolean; travel: { from: string | null; km: number } | null },
    ): Promise<void>;
  };
  /**
   * The security center (docs/security-center.md): where sign-ins come from
   * (offline lookup), earlier sign-ins, and the one event writer for the
   * `impossible_travel` events. Without them no travel is checked and no
   * new-sign-in alert is sent.
   */
  securityCenter?: {
    db: Db;
    history: History;
    geo: GeoLocator;
    signIns: SignInHistory;
    /** IMPOSSIBLE_TRAVEL_KMH; 0 turns the check off. */
    impossibleTravelKmh: number;
  };
  /** Passkeys and security keys (docs/passkeys.md): a second factor and passwordless sign-in. */
  webauthn?: WebauthnFactor;
}

/** A second factor at /auth/mfa/verify: a TOTP code, a backup code, or a WebAuthn assertion. */
export type LoginFactor = SecondFactor | { webauthn: AuthenticationResponseJSON };

/** A factor at /auth/step-up: a second factor, or the password on an account without one. */
export type StepUpFactor = LoginFactor | { password: string };

/** The caller of a step-up: its session and that session's authentication (from the bearer check). */
export interface StepUpCaller {
  userId: string;
  sessionId: string;
  amr: readonly Amr[];
}

export interface Profile {
  user_id: string;
  email: string;
  display_name: string | null;
}

/**
 * A login's device as recognised before its password is checked
 * (docs/security.md, "Strangers never lock out the owner"): `known` when it
 * is a usable device of the email's account whose proof, if key-bound, held.
 */
export interface LoginRecognition {
  userId: string;
  device: RecognisedDevice;
  known: boolean;
}

/** Where the login's password hash waits: its client's key (address, IPv6 /64), and what was recognised. */
export interface LoginContext {
  client: string;
  recognition?: LoginRecognition | undefined;
  /** The browser's public session key (a bound session), as sent; checked here. */
  sessionKey?: unknown;
}

export type LoginResult =
  | ({
      kind: 'session';
      mfa_bypassed: boolean;
      trusted_device_id: string | null;
      /** docs/trust-model.md: the rotated device token (null: a token within the reuse grace was used and stays). Only on a bypass. */
      device_token?: string | null;
      /** Seconds the rotated token's cookie lives (what remains of the device's trust). */
      deviceCookieMaxAge?: number;
    } & SessionTokens &
      Profile)
  | { kind: 'mfa_required'; temporary_token: string; methods: string[]; expires_in: number; mfa_reason: MfaReason };

/** Why the second factor is asked, from the trust check's answer (docs/security-center.md). */
export function mfaReasonOf(decision: Exclude<TrustDecision, { trusted: true }> | { trusted: false; reason: 'error' }): MfaReason {
  switch (decision.reason) {
    case 'no_token':
    case 'unknown_token':
      return 'new_device';
    case 'expired':
      return 'trust_expired';
    case 'inactive':
    case 'reuse_detected':
      return 'device_revoked';
    case 'fingerprint_mismatch':
      return 'fingerprint_mismatch';
    case 'proof_failed':
      return decision.why === 'missing' ? 'proof_missing' : 'proof_failed';
    case 'error':
      return 'trust_check_failed';
  }
}

/** Impossible travel: the previous sign-in's place and how far it is from this one. */
export interface Travel {
  from: StoredLocation;
  here: StoredLocation;
  km: number;
}


const invalidCredentials = () => new AppError('INVALID_CREDENTIALS');
const invalidToken = (what = 'The token') => new AppError('INVALID_TOKEN', `${what} is not valid or has expired.`);

export function createAuthService(options: AuthServiceOptions) {
  const { users, mfaRepository, mfa, deviceTrust, sessions, sessionAuthentication, revocation, passwords, clock, log, webauthn } = options;
  const challengeTtlMs = options.mfaChallengeTtlSeconds * 1000;

  const profile = (user: User): Profile => ({ user_id: user.id, email: user.email, display_name: user.display_name });

  /**
   * The trust check, and on a trusted device the session it opens, in one
   * transaction (DeviceTrust.check). Fail closed: a check that cannot
   * complete means "not trusted" (the second factor is asked), never
   * "trusted"; nothing of it is left behind.
   */
  async function checkTrust<T>(
    userId: string,
    device: RequestDevice,
    openSession: (trx: Db, trusted: { id: string; name: string }) => Promise<T>,
    recognised?: RecognisedDevice,
  ) {
    try {
      return await deviceTrust.check(userId, device, openSession, recognised);
    } catch (error) {
      log.warn({ err: error }, 'trust check failed; MFA required');
      return { decision: { trusted: false as const, reason: 'error' as const }, session: undefined };
    }
  }

  /**
   * After a verified second factor, the trusted device this sign-in counts
   * as: the one already recognised, or one whose valid device token came
   * with a drifted fingerprint of the same browser family and OS, which is
   * re-anchored on the current components (the code just proved the user,
   * so the record follows the browser's ordinary changes). Otherwise none:
   * a pending device is offered.
   */
  async function trustedDeviceAfterMfa(userId: string, device: RequestDevice): Promise<{ id: string; name: string } | undefined> {
    const decision = await deviceTrust.evaluate(userId, device);
    if (decision.trusted) return { id: decision.deviceId, name: decision.deviceName };
    if (
      decision.reason === 'fingerprint_mismatch' &&
      !decision.differing.some((name) => GATE_COMPONENTS.includes(name)) &&
      (await deviceTrust.reanchor(userId, { id: decision.deviceId, device_name: decision.deviceName }, device))
    ) {
      return { id: decision.deviceId, name: decision.deviceName };
    }
    return undefined;
  }

  /** The open MFA challenge behind a temporary token, presented from the device it was issued to. */
  async function openChallenge(temporaryToken: string, device: RequestDevice) {
    if (!looksLike('mfaChallenge', temporaryToken)) throw invalidToken('The temporary token');
    const challenge = await mfaRepository.findChallenge(hashToken(temporaryToken));
    if (
      challenge === undefined ||
      challenge.consumed_at !== null ||
      challenge.expires_at <= clock.now() ||
      challenge.fingerprint !== device.fingerprint.fingerprint
    ) {
      throw invalidToken('The temporary token');
    }
    return challenge;
  }

  /** The session's binding from a `session_key` (docs/sessions.md, "Bound sessions"): the checks of a device key; 422 INVALID_PUBLIC_KEY otherwise. */
  const bindingOf = async (sessionKey: unknown): Promise<SessionBinding | undefined> => {
    if (sessionKey === undefined) return undefined;
    const key = await parsePublicKey(sessionKey, 'session_key');
    return { kind: 'webcrypto', jwk: key.stored, thumbprint: key.thumbprint };
  };

  const noWebauthn = () => new AppError('WEBAUTHN_NOT_REGISTERED', 'Passkeys are not available on this service.');

  const center = options.securityCenter;
  const geo = center?.geo ?? NO_GEO;

  /**
   * Impossible travel (docs/security-center.md): this sign-in's place is
   * farther from the previous sign-in's than IMPOSSIBLE_TRAVEL_KMH allows in
   * the time between. Skipped (null) when the check is off, when either
   * place is unknown, private or only a country (no point), and measured
   * minus both places' accuracy, so two ends of one metropolitan area never
   * count. A failure to check is logged and counts as no travel: the check
   * adds a second factor, its absence never removes one.
   */
  async function impossibleTravel(userId: string, device: RequestDevice): Promise<Travel | null> {
    if (center === undefined || center.impossibleTravelKmh <= 0) return null;
    try {
      const here = await geo.locate(device.fingerprint.ipAddress);
      if (here === null || here.latitude === null || here.longitude === null) return null;
      const previous = await center.signIns.latestSignIn(userId);
      const from = previous?.location;
      if (previous === undefined || from == null || from.latitude === null || from.longitude === null) return null;
      const km = distanceKm({ latitude: from.latitude, longitude: from.longitude }, { latitude: here.latitude, longitude: here.longitude });
      const margin = (here.accuracy_km ?? CITY_ACCURACY_KM) + (from.accuracy_km ?? CITY_ACCURACY_KM);
      const hours = Math.max(0, clock.now() - previous.at) / HOUR;
      return km - margin > center.impossibleTravelKmh * hours ? { from, here, km } : null;
    } catch (error) {
      log.warn({ err: error }, 'impossible-travel check failed; not flagged');
      return null;
    }
  }

  /** The `impossible_travel` event: the attempt, where it came from (the event's location), and the flag. */
  async function recordTravel(userId: string, device: RequestDevice): Promise<void> {
    if (center === undefined) return;
    const fp = device.fingerprint;
    await center.history.append(
      center.db,
      [{ userId, type: 'impossible_travel', actor: attemptActor(device), subjectName: defaultDeviceName(fp.browser, fp.os), reason: 'impossible_travel' }],
      clock.now(),
    );
  }

  /** Before the session opens (it records the fingerprint): has the account signed in from this device before? */
  async function seenBefore(userId: string, device: RequestDevice): Promise<boolean> {
    if (center === undefined) return true;
    try {
      // The account's very first sign-in is no news to its owner.
      if ((await center.signIns.latestSignIn(userId)) === undefined) return true;
      return await center.signIns.hasSignedInFrom(userId, device.fingerprint.fingerprint);
    } catch (error) {
      log.warn({ err: error }, 'new-device check failed; no alert');
      return true;
    }
  }

  /** The new-sign-in alert (docs/security-center.md): a device the account had not seen, or impossible travel. Never throws. */
  async function announce(userId: string, device: RequestDevice, sessionId: string, newDevice: boolean, travel: Travel | null): Promise<void> {
    if (!newDevice && travel === null) return;
    const fp = device.fingerprint;
    await options.accountMail?.newSignIn(userId, {
      sessionId,
      ipAddress: fp.ipAddress,
      userAgent: device.userAgent,
      deviceName: defaultDeviceName(fp.browser, fp.os),
      newDevice,
      travel: travel === null ? null : { from: describeLocation(publicLocation(travel.from)), km: travel.km },
    });
  }

  return {
    async signup(input: { email: string; password: string; display_name?: string }) {
      const email = normaliseEmail(input.email);
      if (!EMAIL_SHAPE.test(email)) throw new ValidationError([{ field: 'email', message: 'must be an email address' }]);
      const problems = passwordProblems(input.password);
      if (problems.length > 0) {
        throw new ValidationError(
problems.map((message) => ({ field: 'password', message })), 'INVALID_PASSWORD');
      }
      const now = clock.now();
      const displayName = input.display_name?.trim() || null;
      const user: User = { id: newId(), email, password_hash: await passwords.hash(input.password), display_name: displayName, created_at: now, updated_at: now, email_verified_at: null };
      if (!(await users.insert(user))) throw new AppError('EMAIL_TAKEN');
      await options.accountMail?.verifyEmail(user.id);
      return { ...profile(user), created_at: now };
    },

    /**
     * Before the password (and the rate limits) of a login: whether it comes
     * from a known device of the email's account. Cheap: the user by email,
     * the token by its hash (and, when key-bound, one conditional UPDATE and
     * one signature check). A wrong token, another account's token, a drifted
     * fingerprint or a failed proof is not known. Fails closed: an error
     * means "not known" (no exemption, the shared lane).
     */
    async recogniseDevice(email: string, device: RequestDevice): Promise<LoginRecognition | undefined> {
      if (device.deviceToken === undefined) return undefined;
      try {
        const user = await users.findByEmail(normaliseEmail(email));
        if (!user) return undefined;
        const recognised = await deviceTrust.recognise(user.id, device);
        return recognised && { userId: user.id, device: recognised, known: recognised.proof === undefined };
      } catch (error) {
        log.warn({ err: error }, 'device recognition failed; the login is treated as from an unknown device');
        return undefined;
      }
    },

    async login(input: { email: string; password: string }, device: RequestDevice, context: LoginContext = { client: '-' }): Promise<LoginResult> {
      const binding = await bindingOf(context.sessionKey);
      const user = await users.findByEmail(normaliseEmail(input.email));
      // A known device of this account is hashed in the priority lane; everyone else shares the line per client.
      const recognition = user && context.recognition?.userId === user.id ? context.recognition : undefined;
      const lane = recognition?.known ? ({ priority: true } as const) : { client: context.client };
      const passwordOk = user ? await passwords.verify(user.password_hash, input.password, lane) : await passwords.verifyDummy(input.password, lane);
      if (!user || !passwordOk) throw invalidCredentials();

      const travel = await impossibleTravel(user.id, device);
      if (travel !== null) await recordTravel(user.id, device);

      if (!(await mfa.isEnabled(user.id))) {
        const seen = await seenBefore(user.id, device);
        const { tokens, sessionId } = await sessions.open({ userId: user.id, device, mfaMethod: 'none', amr: ['pwd'], binding, reason: travel ? 'unusual_location' : null });
        await announce(user.id, device, sessionId, !seen, travel);
        return { kind: 'session', ...tokens, ...profile(user), mfa_bypassed: false, trusted_device_id: null };
      }

      // Impossible travel: a trusted device does not stand in for the second factor (no trust check, nothing rotated).
      const { decision: trust, session } =
        travel !== null
          ? { decision: undefined, session: undefined }
          : await checkTrust(
              user.id,
              device,
              // The password was performed; the device stood in for the second factor (never counted as one, docs/step-up.md).
              (trx, trustedDevice) => sessions.openIn(trx, { userId: user.id, device, mfaMethod: 'trusted_device', amr: ['pwd', 'device'], trustedDevice, binding }),
              recognition?.device,
            );
      if (trust?.trusted && session) {
        const { tokens } = session;
        return {
          kind: 'session',
          ...tokens,
          ...profile(user),
          mfa_bypassed: true,
          trusted_device_id: trust.deviceId,
          device_token: trust.newDeviceToken ?? null,
          deviceCookieMaxAge: (trust.expiresAt - clock.now()) / 1000,
        };
      }

      const mfaReason: MfaReason = travel !== null || trust === undefined || trust.trusted ? 'unusual_location' : mfaReasonOf(trust);
      const now = clock.now();
      const temporaryToken = generateToken('mfaChallenge');
      await mfaRepository.insertChallenge({
        id: newId(),
        user_id: user.id,
        token_hash: hashToken(temporaryToken),
        fingerprint: device.fingerprint.fingerprint,
        created_at: now,
        expires_at: now + challengeTtlMs,
        consumed_at: null,
        failed_attempts: 0,
        reason: mfaReason,
      });
      return { kind: 'mfa_required', temporary_token: temporaryToken, methods: await mfa.methods(user.id), expires_in: options.mfaChallengeTtlSeconds, mfa_reason: mfaReason };
    },

    /** WebAuthn options for the second step of a login (docs/passkeys.md), bound to its MFA challenge. */
    async webauthnSecondFactorOptions(temporaryToken: string, device: RequestDevice) {
      const challenge = await openChallenge(temporaryToken, device);
      await mfa.assertNotLocked(challenge.user_id);
      if (!webauthn) throw noWebauthn();
      return webauthn.secondFactorOptions(challenge.user_id, challenge.id);
    },

    async verifyMfa(temporaryToken: string, factor: LoginFactor, device: RequestDevice, sessionKey?: unknown): Promise<SessionTokens & Profile & { trusted_device: PendingDevice | null }> {
      // A refused key is answered before the code is checked: the temporary token and the code stay usable.
      const binding = await bindingOf(sessionKey);
      const challenge = await openChallenge(temporaryToken, device);
      const now = clock.now();
      const userId = challenge.user_id;
      // Both counters move before the code is checked (see SecondFactorGate.beginAttempt).
      await mfa.assertNotLocked(userId);
      // The right code of a time step already used (e.g. the one that just turned MFA on) is no guess: not counted.
      if (!('webauthn' in factor) && (await mfa.isUsedCode(userId, factor))) {
        throw new AppError('MFA_CODE_ALREADY_USED', undefined, { details: { attempts_remaining: CHALLENGE_MAX_FAILURES - challenge.failed_attempts } });
      }
      const attempt = await mfaRepository.reserveChallengeAttempt(challenge.id, now, CHALLENGE_MAX_FAILURES);
      if (attempt === null) throw invalidToken('The temporary token');
      const { lockedUntil } = await mfa.beginAttempt(userId);

      // The trust this factor would grant remembers it (docs/passkeys.md); null when the factor is refused.
      let grant: TrustGrantInput | null;
      // The method the factor was (RFC 8176): otp for a TOTP or backup code, hwk/swk for a key.
      let performed: Amr = 'otp';
      if ('webauthn' in factor) {
        const verified = webauthn ? await webauthn.checkSecondFactor(userId, challenge.id, factor.webauthn, device) : null;
        grant = verified && { factor: 'webauthn', credentialId: verified.credentialId };
        if (verified) performed = verified.amr;
      } else {
        grant = (await mfa.checkSecondFactor(userId, factor)) ? { factor: 'code' in factor ? 'totp' : 'backup_code' } : null;
      }
      if (grant === null) {
        if (lockedUntil !== null) throw mfa.lockedError(lockedUntil);
        // The last allowed attempt: the counter already refuses any further one
        // (without consuming the token, so a right code checked concurrently still wins).
        if (attempt >= CHALLENGE_MAX_FAILURES) {
          // The challenge is used up: waiting does not help, a new sign-in does (restart_sign_in tells clients so).
          throw new TooManyAttemptsError(1, 'Too many wrong codes for this sign-in. Sign in again.', {
            details: { attempts_remaining: 0, restart_sign_in: true },
          });
        }
        throw new AppError('webauthn' in factor ? 'WEBAUTHN_VERIFICATION_FAILED' : 'INVALID_MFA_CODE', undefined, {
          details: { attempts_remaining: CHALLENGE_MAX_FAILURES - attempt },
        });
      }
      if (!(await mfaRepository.consumeChallenge(challenge.id, now))) throw invalidToken('The temporary token');
      await mfa.attemptSucceeded(userId);

      const user = await users.findById(userId);
      if (!user) throw invalidToken('The temporary token');
      const trustedDevice = await trustedDeviceAfterMfa(userId, device);
      // A new device: no valid device token of the account, and a fingerprint the account never signed in from.
      const newDevice = trustedDevice === undefined && challenge.reason === 'new_device' && !(await seenBefore(userId, device));
      const travel = challenge.reason === 'unusual_location' ? await impossibleTravel(userId, device) : null;
      const { tokens, sessionId, extra: pending } = await sessions.open(
        { userId, device, mfaMethod: grant.factor, amr: amrAfter(['pwd'], performed), trustedDevice, binding, reason: challenge.reason },
        async (trx, sessionId) => (trustedDevice ? null : deviceTrust.createPendingDevice(trx, userId, device, sessionId, grant)),
      );
      await announce(userId, device, sessionId, newDevice, travel);
      if (grant.factor === 'backup_code') await options.accountMail?.backupCodeUsed(userId, { ipAddress: device.fingerprint.ipAddress, userAgent: device.userAgent, sessionId });
      return { ...tokens, ...profile(user), trusted_device: pending };
    },

    /** Options for a passwordless sign-in with a passkey (docs/passkeys.md). */
    async passkeyOptions(device: RequestDevice) {
      if (!webauthn) throw noWebauthn();
      return webauthn.passwordlessOptions(device);
    },

    /**
     * Passwordless sign-in: a verified passkey (user verification required)
     * opens a session (mfa_method "webauthn"). It then goes through the
     * trusted-device logic like a login: on a trusted device the trust is used
     * (and recorded) and the session is opened on it; elsewhere a pending
     * device, granted by this credential, waits to be activated.
     */
    async passkeySignIn(attemptToken: string, response: AuthenticationResponseJSON, device: RequestDevice, sessionKey?: unknown) {
      if (!webauthn) throw noWebauthn();
      const binding = await bindingOf(sessionKey);
      const { userId, credentialId, amr: keyAmr } = await webauthn.verifyPasswordless(attemptToken, response, device);
      // A passkey with user verification (required here): possession and the PIN or biometric, two factors; on a trusted device too.
      const amr: Amr[] = [keyAmr, 'mfa'];
      const user = await users.findById(userId);
      if (!user) throw invalidToken('The passkey sign-in attempt');
      // A passkey with user verification is itself the second factor: impossible travel is recorded and told, not asked again.
      const travel = await impossibleTravel(userId, device);
      if (travel !== null) await recordTravel(userId, device);
      const reason = travel !== null ? 'unusual_location' : null;
      const seen = await seenBefore(userId, device);
      // On a trusted device the session opens in the trust check's transaction; elsewhere with a pending device, granted by this credential.
      const { decision: trust, session } = await checkTrust(userId, device, (trx, trustedDevice) =>
        sessions.openIn(trx, { userId, device, mfaMethod: 'webauthn', amr, trustedDevice, binding, reason }),
      );
      const trustedDevice = trust.trusted && session ? { id: trust.deviceId, name: trust.deviceName } : undefined;
      const { tokens, sessionId, extra: pending } = session
        ? { tokens: session.tokens, sessionId: session.sessionId, extra: null }
        : await sessions.open({ userId, device, mfaMethod: 'webauthn', amr, binding, reason }, (trx, sessionId) =>
            deviceTrust.createPendingDevice(trx, userId, device, sessionId, { factor: 'webauthn', credentialId }),
          );
      const newDevice = !trust.trusted && (trust.reason === 'no_token' || trust.reason === 'unknown_token') && !seen;
      await announce(userId, device, sessionId, newDevice, travel);
      return {
        ...tokens,
        ...profile(user),
        mfa_method: 'webauthn' as const,
        trusted_device_id: trustedDevice?.id ?? null,
        trusted_device: pending,
        // The trust check rotated the device token (docs/trust-model.md): the client must get the new one.
        ...(trust.trusted && session ? { device_token: trust.newDeviceToken ?? null, deviceCookieMaxAge: (trust.expiresAt - clock.now()) / 1000 } : {}),
      };
    },

    /** WebAuthn options for a step-up of the caller's session (docs/step-up.md). */
    async stepUpWebauthnOptions(caller: StepUpCaller) {
      await mfa.assertNotLocked(caller.userId);
      if (!webauthn) throw noWebauthn();
      return webauthn.stepUpOptions(caller.userId, caller.sessionId);
    },

    /**
     * Step-up (docs/step-up.md): a factor performed again in the caller's
     * session. A second factor (TOTP, backup code, WebAuthn) on an account
     * that has one; the password on an account without one. Every attempt
     * counts toward the user's second-factor limit (10 wrong in 15 minutes
     * lock it for 15 minutes, as at sign-in) before it is checked. On
     * success the session's auth_time and amr move (with a `step_up` event)
     * and a new access token of the same session carries them.
     */
    async stepUp(caller: StepUpCaller, factor: StepUpFactor, device: RequestDevice, actor: Actor): Promise<StepUpResult> {
      const { userId, sessionId } = caller;
      const methods = await mfa.methods(userId);
      if ('password' in factor && methods.length > 0) {
        throw new AppError('STEP_UP_METHOD_NOT_AVAILABLE', `This account has a second factor: confirm it is you with it (${methods.join(', ')}).`, { details: { methods } });
      }
      if (!('password' in factor) && methods.length === 0) {
        throw new AppError('STEP_UP_METHOD_NOT_AVAILABLE', 'This account has no second factor: confirm it is you with the password.', { details: { methods: ['password'] } });
      }
      if (!('password' in factor) && !('webauthn' in factor) && (await mfa.isUsedCode(userId, factor))) throw new AppError('MFA_CODE_ALREADY_USED');
      const { lockedUntil } = await mfa.beginAttempt(userId);
      let performed: Amr | null = null;
      if ('password' in factor) {
        const user = await users.findById(userId);
        if (user && (await passwords.verify(user.password_hash, factor.password))) performed = 'pwd';
      } else if ('webauthn' in factor) {
        const verified = webauthn ? await webauthn.checkStepUp(userId, sessionId, factor.webauthn, device) : null;
        performed = verified?.amr ?? null;
      } else if (await mfa.checkSecondFactor(userId, factor)) {
        performed = 'otp';
      }
      if (performed === null) {
        if (lockedUntil !== null) throw mfa.lockedError(lockedUntil);
        throw new AppError('password' in factor ? 'INVALID_CURRENT_PASSWORD' : 'webauthn' in factor ? 'WEBAUTHN_VERIFICATION_FAILED' : 'INVALID_MFA_CODE');
      }
      await mfa.attemptSucceeded(userId);
      return sessionAuthentication.stepUp({ userId, sessionId, earlier: caller.amr, performed, actor });
    },

    async me(userId: string) {
      const user = await users.findById(userId);
      if (!user) throw new UnauthorizedError('This account no longer exists.');
      return { ...profile(user), email_verified: user.email_verified_at !== null, mfa_enabled: await mfa.isEnabled(userId), created_at: user.created_at };
    },

    /** Checks the password of a signed-in user (password change, MFA deactivation). */
    async requirePassword(userId: string, password: string): Promise<User> {
      const user = await users.findById(userId);
      // Shared lane, keyed by the user: a stolen access token cannot take another client's share.
      if (!user || !(await passwords.verify(user.password_hash, password, { client: `user:${userId}` }))) {
        throw new AppError('INVALID_CURRENT_PASSWORD');
      }
      return user;
    },

    /** Changes the password and, in the same transaction, runs the "password change" row of what ends what (docs/sessions.md). */
    async changePassword(userId: string, currentPassword: string, newPassword: string, actor: Actor) {
      const user = await this.requirePassword(userId, currentPassword);
      const problems = passwordProblems(newPassword);
      if (problems.length > 0) {
        throw new ValidationError(problems.map((message) => ({ field: 'new_password', message })), 'INVALID_PASSWORD', 'The new password is too weak.');
      }
      const passwordHash = await passwords.hash(newPassword);
      const ended = await revocation.run({ kind: 'password_changed', userId, actor }, (trx) => users.updatePassword(trx, user.id, passwordHash, clock.now()));
      await options.accountMail?.passwordChanged(user.id, actor);
      return { password_changed: true, devices_revoked: ended.devices.length, sessions_ended: ended.sessions.length };
    },
  };
}

export type AuthService = ReturnType<typeof createAuthService>;
