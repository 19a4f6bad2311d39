/**
 * WebAuthn credentials (passkeys and security keys) as a second factor and
 * for passwordless sign-in (docs/passkeys.md). Verification is @simplewebauthn/server's;
 * this module decides which challenge and which credential an answer may use.
 *
 * Lifetimes: every challenge lives 5 minutes and is used once (consumed by
 * one conditional UPDATE before the answer is verified, so a failed answer
 * burns it too). Registration and second-factor challenges are bound to the
 * user (and the second-factor one to its MFA challenge, i.e. the temporary
 * token); a passwordless challenge is bound to its sign-in attempt: an
 * attempt token (`tdp_…`, 256 bits) handed to the client and the fingerprint
 * of the request that asked for it.
 * Storage: challenges and attempt tokens only as SHA-256; credentials as their
 * public COSE key (nothing secret) and the last signature counter.
 * Threats: phishing (origin and RP ID checked against WEBAUTHN_ORIGINS /
 * WEBAUTHN_RP_ID), replay (single-use challenges, counters that must grow),
 * cloned authenticators (a counter that does not grow is refused and
 * recorded as `webauthn_counter_error`), a credential id registered twice (unique
 * across users), another user's credential answering a challenge (refused),
 * a stolen unlocked security key without PIN signing in alone (user
 * verification REQUIRED for passwordless).
 */
import { randomBytes } from 'node:crypto';
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import type { FastifyBaseLogger } from 'fastify';
import type { Clock } from '../../platform/clock.ts';
import { MINUTE } from '../../platform/clock.ts';
import type { Transaction } from 'kysely';
import { lockUser } from '../../store/locks.ts';
import type { Database, Db, DeviceEventType } from '../../store/schema.ts';
import type { WebauthnFactor } from '../../domain/contracts.ts';
import { attemptActor, type RequestDevice } from '../../platform/context.ts';
import { webauthnAmr } from '../../platform/authn-methods.ts';
import { AppError } from '../../platform/errors.ts';
import type { Actor, EventInput } from '../../store/history.ts';
import type { Revocation } from '../../domain/ledger.ts';
import { generateToken, hashToken, looksLike, newId } from '../../platform/crypto/tokens.ts';
import type { WebauthnChallenge, WebauthnCredential, WebauthnRepository } from '../../store/webauthn.repository.ts';


/**
 * @simplewebauthn/server (and its ASN.1 and CBOR parsers) is loaded on the first passkey
 * operation, not at start: a process that never sees one (an API serving device lists)
 * does not carry its ~4 MB of heap and code (docs/performance.md, "Memory").
 */
let library: Promise<typeof import('@simplewebauthn/server')> | undefined;
const simpleWebAuthn = () => (library ??= import('@simplewebauthn/server'));
/** base64url without padding, as WebAuthn's JSON encodes bytes. */
const base64url = {
  toBuffer: (text: string) => new Uint8Array(Buffer.from(text, 'base64url')),
  fromBuffer: (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url'),
};
/** clientDataJSON (base64url of a JSON object) decoded; throws when it is not. */
const decodeClientDataJSON = (clientDataJSON: string): { challenge?: unknown } => {
  const decoded: unknown = JSON.parse(Buffer.from(clientDataJSON, 'base64url').toString('utf8'));
  if (decoded === null || typeof decoded !== 'object') throw new TypeError('clientDataJSON is not an object');
  return decoded as { challenge?: unknown };
};

export const CHALLENGE_TTL_MS = 5 * MINUTE;
/** How long the browser may keep its prompt open; shorter than the challenge's life. */
export const PROMPT_TIMEOUT_MS = 2 * MINUTE;
export const MAX_CREDENTIALS_PER_USER = 20;
/** Ed25519, ES256, RS256: what passkeys and security keys use. */
export const SUPPORTED_ALGORITHMS = [-8, -7, -257];

export interface RelyingParty {
  rpId: string;
  rpName: string;
  origins: string[];
}

/** What the service needs from the rest of the second factor and from trusted devices. */
export interface WebauthnServiceOptions {
  repository: WebauthnRepository;
  clock: Clock;
  relyingParty: RelyingParty;
  log: FastifyBaseLogger;
  /** What ends what (docs/sessions.md): the first credential of an account turns MFA on; removing the last second factor turns it off. */
  revocation: Revocation;
  /** Whether the user's TOTP is on (then a credential is not the account's only factor). */
  totpEnabled(userId: string): Promise<boolean>;
  /** Revokes the trust a credential granted (devices and their sessions, pending activations), in the caller's transaction. */
  revokeGrantedBy(trx: Transaction<Database>, userId: string, credentialId: string, actor: Actor): Promise<number>;
}

export interface CredentialView {
  id: string;
  name: string;
  device_type: 'single_device' | 'multi_device';
  backed_up: boolean;
  discoverable: boolean | null;
  transports: string[];
  created_at: number;
  last_used_at: number | null;
}

/** The WebAuthn user handle: the user id's bytes (no email, no name). */
export const userHandle = (userId: string): Uint8Array<ArrayBuffer> => new Uint8Array(Buffer.from(userId, 'utf8'));

const verificationFailed = (message = 'The passkey or security key response could not be verified.') => new AppError('WEBAUTHN_VERIFICATION_FAILED', message);

export function createWebauthnService(options: WebauthnServiceOptions) {
  const { repository, clock, relyingParty, log, revocation } = options;
  const { rpId, rpName, origins } = relyingParty;

  /** An event about a credential: no device, the credential's name as the subject. */
  const event = (userId: string, type: DeviceEventType, actor: Actor, subjectName?: string): EventInput => ({ userId, type, actor, subjectName: subjectName ?? null });

  const view = (row: WebauthnCredential): CredentialView => ({
    id: row.id,
    name: row.name,
    device_type: row.device_type === 'multiDevice' ? 'multi_device' : 'single_device',
    backed_up: row.backed_up === 1,
    discoverable: row.discoverable === null ? null : row.discoverable === 1,
    transports: JSON.parse(row.transports) as string[],
    created_at: row.created_at,
    last_used_at: row.last_used_at,
  });

  /** The challenge the client says it signed; undefined when clientDataJSON is not even decodable. */
  function clientChallenge(clientDataJSON: string): string | undefined {
    try {
      const challenge = decodeClientDataJSON(clientDataJSON).challenge;
      return typeof challenge === 'string' && challenge.length > 0 && challenge.length <= 128 ? challenge : undefined;
    } catch {
      return undefined;
    }
  }

  /** 256 fresh bits; stored only as the SHA-256 of their base64url (what clientDataJSON carries). */
  const newChallenge = () => new Uint8Array(randomBytes(32));

  /** Stores a ceremony's challenge (the base64url the options carry) as SHA-256, single-use, CHALLENGE_TTL_MS, bound as given. */
  async function storeChallenge(
    encodedChallenge: string,
    binding: Pick<WebauthnChallenge, 'purpose' | 'user_id' | 'mfa_challenge_id' | 'attempt_hash' | 'fingerprint'>,
  ): Promise<void> {
    const now = clock.now();
    await repository.insertChallenge({
      id: newId(),
      ...binding,
      challenge_hash: hashToken(encodedChallenge),
      created_at: now,
      expires_at: now + CHALLENGE_TTL_MS,
      consumed_at: null,
    });
  }

  /** Logs why an answer was refused; quoted values (challenges, origins) are left out of the log line. */
  function refused(reason: string, context: Record<string, unknown> = {}): null {
    log.info({ ...context, reason: reason.replace(/"[^"]*"/g, '"…"').slice(0, 200) }, 'webauthn response refused');
    return null;
  }

  /**
   * Verifies an assertion by `credential` over `expectedChallenge` and moves
   * its counter forward. The library is given counter 0 so that the counter
   * rule is applied here, after the signature is known to be genuine: only a
   * real signature with a counter that did not grow is worth an event.
   */
  async function verifyAssertion(
    credential: WebauthnCredential,
    response: AuthenticationResponseJSON,
    expectedChallenge: string,
    requireUserVerification: boolean,
    actor: Actor,
  ): Promise<boolean> {
    let result;
    try {
      result = await (await simpleWebAuthn()).verifyAuthenticationResponse({
        response,
        expectedChallenge,
        expectedOrigin: origins,
        expectedRPID: rpId,
        credential: {
          id: credential.credential_id,
          publicKey: base64url.toBuffer(credential.public_key),
          counter: 0,
          transports: JSON.parse(credential.transports) as string[],
        },
        requireUserVerification,
      });
    } catch (error) {
      return refused((error as Error).message, { userId: credential.user_id }) ?? false;
    }
    if (!result.verified) return refused('signature not verified', { userId: credential.user_id }) ?? false;
    const counter = result.authenticationInfo.newCounter;
    const now = clock.now();
    if ((credential.counter > 0 || counter > 0) && counter <= credential.counter) {
      // A genuine signature whose counter did not grow: a clone of the authenticator, or a replay.
      await repository.recordEvents([event(credential.user_id, 'webauthn_counter_error', actor, credential.name)], now);
      log.warn({ userId: credential.user_id, credential: credential.id }, 'webauthn signature counter did not grow; refused');
      return false;
    }
    // Conditional: a concurrent assertion that already moved the counter (or a removal) wins.
    return repository.advanceCounter(credential.id, counter, now);
  }

  /**
   * A second factor for this user, bound to what it completes: a sign-in's MFA
   * challenge (`second_factor`) or a session's step-up (`step_up`; the session id is
   * kept in mfa_challenge_id, so another session cannot use it). The first factor is
   * done, so a key without PIN is enough (as with TOTP).
   */
  async function boundOptions(userId: string, purpose: 'second_factor' | 'step_up', boundTo: string) {
    const credentials = await repository.listForUser(userId);
    if (credentials.length === 0) throw new AppError('WEBAUTHN_NOT_REGISTERED');
    const publicKey = await (await simpleWebAuthn()).generateAuthenticationOptions({
      rpID: rpId,
      challenge: newChallenge(),
      timeout: PROMPT_TIMEOUT_MS,
      userVerification: 'preferred',
      allowCredentials: credentials.map((c) => ({ id: c.credential_id, transports: JSON.parse(c.transports) as string[] })),
    });
    await storeChallenge(publicKey.challenge, { purpose, user_id: userId, mfa_challenge_id: boundTo, attempt_hash: null, fingerprint: null });
    return publicKey;
  }

  /** The assertion answering boundOptions: its challenge consumed (one conditional UPDATE), the user's own credential, a valid signature. */
  async function checkBound(userId: string, purpose: 'second_factor' | 'step_up', boundTo: string, response: AuthenticationResponseJSON, device: RequestDevice) {
    const challenge = clientChallenge(response.response.clientDataJSON);
    if (challenge === undefined) return refused('clientDataJSON not decodable', { userId });
    const challengeHash = hashToken(challenge);
    const binding =
      purpose === 'second_factor'
        ? ({ purpose, challengeHash, userId, mfaChallengeId: boundTo } as const)
        : ({ purpose, challengeHash, userId, sessionId: boundTo } as const);
    const consumed = await repository.consumeChallenge(binding, clock.now());
    if (consumed === undefined) return refused(`${purpose} challenge unknown, used, expired or issued to another ${purpose === 'step_up' ? 'session' : 'sign-in'}`, { userId });
    const credential = await repository.findByCredentialId(response.id);
    // Another user's credential is refused exactly like an unknown one.
    if (credential === undefined || credential.user_id !== userId) return refused('credential unknown or not this user\'s', { userId });
    if (!(await verifyAssertion(credential, response, challenge, false, attemptActor(device)))) return null;
    return { credentialId: credential.id, amr: webauthnAmr(credential.device_type) };
  }

  const factor: WebauthnFactor = {
    secondFactorOptions: (userId, mfaChallengeId) => boundOptions(userId, 'second_factor', mfaChallengeId),
    checkSecondFactor: (userId, mfaChallengeId, response, device) => checkBound(userId, 'second_factor', mfaChallengeId, response, device),
    stepUpOptions: (userId, sessionId) => boundOptions(userId, 'step_up', sessionId),
    checkStepUp: (userId, sessionId, response, device) => checkBound(userId, 'step_up', sessionId, response, device),

    async passwordlessOptions(device) {
      const attemptToken = generateToken('passkeyAttempt');
      const publicKey = await (await simpleWebAuthn()).generateAuthenticationOptions({
        rpID: rpId,
        challenge: newChallenge(),
        timeout: PROMPT_TIMEOUT_MS,
        // No allowCredentials: the browser offers the user's discoverable credentials (passkeys).
        userVerification: 'required',
      });
      await storeChallenge(publicKey.challenge, { purpose: 'passwordless', user_id: null, mfa_challenge_id: null, attempt_hash: hashToken(attemptToken), fingerprint: device.fingerprint.fingerprint });
      return { options: publicKey, attempt_token: attemptToken, expires_in: CHALLENGE_TTL_MS / 1000 };
    },

    async verifyPasswordless(attemptToken, response, device) {
      const invalidAttempt = () => new AppError('INVALID_TOKEN', 'The passkey sign-in attempt is not valid, was used or has expired. Start again.');
      if (!looksLike('passkeyAttempt', attemptToken)) throw invalidAttempt();
      // The attempt is used once, whatever the outcome: a refused answer means starting again.
      const attempt = await repository.consumeChallenge({ purpose: 'passwordless', attemptHash: hashToken(attemptToken) }, clock.now());
      if (attempt === undefined) throw invalidAttempt();
      if (attempt.fingerprint !== device.fingerprint.fingerprint) throw invalidAttempt();
      const challenge = clientChallenge(response.response.clientDataJSON);
      if (challenge === undefined || hashToken(challenge) !== attempt.challenge_hash) {
        refused('the passkey signed another challenge than this attempt\'s');
        throw verificationFailed();
      }
      const credential = await repository.findByCredentialId(response.id);
      if (credential === undefined) {
        refused('unknown credential');
        throw verificationFailed();
      }
      // A passkey names its user: the handle it returns must be the one we registered it with.
      const handle = response.response.userHandle;
      if (handle === undefined || handle !== base64url.fromBuffer(userHandle(credential.user_id))) {
        refused('user handle missing or not the credential\'s user', { userId: credential.user_id });
        throw verificationFailed();
      }
      if (!(await verifyAssertion(credential, response, challenge, true, attemptActor(device)))) throw verificationFailed();
      return { userId: credential.user_id, credentialId: credential.id, amr: webauthnAmr(credential.device_type) };
    },
  };

  return {
    factor,

    async registrationOptions(user: { userId: string; email: string; displayName: string | null }) {
      const existing = await repository.listForUser(user.userId);
      if (existing.length >= MAX_CREDENTIALS_PER_USER) throw new AppError('WEBAUTHN_CREDENTIAL_LIMIT');
      const publicKey = await (await simpleWebAuthn()).generateRegistrationOptions({
        rpName,
        rpID: rpId,
        userName: user.email,
        userDisplayName: user.displayName ?? user.email,
        userID: userHandle(user.userId),
        challenge: newChallenge(),
        timeout: PROMPT_TIMEOUT_MS,
        attestationType: 'none',
        excludeCredentials: existing.map((c) => ({ id: c.credential_id, transports: JSON.parse(c.transports) as string[] })),
        // Discoverable when the authenticator can (then it also signs in without a password).
        authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
        supportedAlgorithmIDs: SUPPORTED_ALGORITHMS,
      });
      await storeChallenge(publicKey.challenge, { purpose: 'registration', user_id: user.userId, mfa_challenge_id: null, attempt_hash: null, fingerprint: null });
      return publicKey;
    },

    async verifyRegistration(userId: string, response: RegistrationResponseJSON, name: string | undefined, actor: Actor): Promise<CredentialView> {
      const challenge = clientChallenge(response.response.clientDataJSON);
      if (challenge === undefined) throw verificationFailed();
      const consumed = await repository.consumeChallenge({ purpose: 'registration', challengeHash: hashToken(challenge), userId }, clock.now());
      if (consumed === undefined) {
        refused('registration challenge unknown, used, expired or another user\'s', { userId });
        throw verificationFailed('This registration is not valid, was used or has expired. Start again.');
      }
      let verification;
      try {
        verification = await (await simpleWebAuthn()).verifyRegistrationResponse({
          response,
          expectedChallenge: challenge,
          expectedOrigin: origins,
          expectedRPID: rpId,
          // A security key without PIN is a fine second factor; passwordless sign-in requires UV at sign-in.
          requireUserVerification: false,
          supportedAlgorithmIDs: SUPPORTED_ALGORITHMS,
        });
      } catch (error) {
        refused((error as Error).message, { userId });
        throw verificationFailed();
      }
      if (!verification.verified) throw verificationFailed();
      const info = verification.registrationInfo;
      const existing = await repository.countForUser(userId);
      if (existing >= MAX_CREDENTIALS_PER_USER) throw new AppError('WEBAUTHN_CREDENTIAL_LIMIT');
      // The account's first second factor turns MFA on: the "MFA turned on" row of what ends what (docs/sessions.md) runs in the same transaction.
      const turnsMfaOn = existing === 0 && !(await options.totpEnabled(userId));
      const rk = response.clientExtensionResults?.credProps?.rk;
      const now = clock.now();
      const row: WebauthnCredential = {
        id: newId(),
        user_id: userId,
        credential_id: info.credential.id,
        public_key: base64url.fromBuffer(info.credential.publicKey),
        counter: info.credential.counter,
        transports: JSON.stringify((response.response.transports ?? []).filter((t) => typeof t === 'string').slice(0, 8)),
        name: name ?? (info.credentialDeviceType === 'multiDevice' ? 'Passkey' : 'Security key'),
        device_type: info.credentialDeviceType,
        backed_up: info.credentialBackedUp ? 1 : 0,
        discoverable: typeof rk === 'boolean' ? (rk ? 1 : 0) : null,
        aaguid: info.aaguid,
        created_at: now,
        last_used_at: null,
      };
      const insert = async (trx: Db) => {
        if (!(await repository.insertCredential(trx, row, event(userId, 'webauthn_registered', actor, row.name)))) throw new AppError('WEBAUTHN_CREDENTIAL_EXISTS');
      };
      if (turnsMfaOn) await revocation.run({ kind: 'mfa_enabled', userId, actor }, insert);
      else await repository.transaction(insert);
      return view(row);
    },

    async list(userId: string): Promise<CredentialView[]> {
      return (await repository.listForUser(userId)).map(view);
    },

    countForUser: (userId: string) => repository.countForUser(userId),

    async rename(userId: string, id: string, name: string, actor: Actor): Promise<CredentialView> {
      const row = await repository.rename(userId, id, name, actor, clock.now());
      if (row === undefined) throw new AppError('WEBAUTHN_CREDENTIAL_NOT_FOUND');
      return view(row);
    },

    /**
     * Removes a credential and the trust it granted (docs/passkeys.md). When it was
     * the user's last second factor, MFA is off: the "MFA turned off" row of what ends what.
     */
    async remove(userId: string, id: string, actor: Actor): Promise<{ devicesRevoked: number; sessionsEnded: number; mfaEnabled: boolean }> {
      const now = clock.now();
      // Read before the transaction (SQLite has one connection, and the transaction holds it).
      const totpOn = await options.totpEnabled(userId);
      // One transaction: the removal, the trust it granted, and (last factor) the "MFA turned off" row.
      return repository.transaction(async (trx) => {
        // The user's row first, like every what-ends-what row (src/store/locks.ts): no deadlock with a concurrent one.
        await lockUser(trx, userId);
        const left = await repository.deleteCredential(trx, userId, id, event(userId, 'webauthn_removed', actor), now);
        if (left === null) throw new AppError('WEBAUTHN_CREDENTIAL_NOT_FOUND');
        let devicesRevoked = await options.revokeGrantedBy(trx, userId, id, actor);
        let sessionsEnded = 0;
        const mfaEnabled = left > 0 || totpOn;
        if (!mfaEnabled) {
          const ended = await revocation.apply(trx, { kind: 'mfa_disabled', userId, actor });
          devicesRevoked += ended.devices.length;
          sessionsEnded = ended.sessions.length;
        }
        return { devicesRevoked, sessionsEnded, mfaEnabled };
      });
    },
  };
}

export type WebauthnService = ReturnType<typeof createWebauthnService>;
