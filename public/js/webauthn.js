/**
 * Passkeys and security keys (docs/passkeys.md) on the browser side: the API calls
 * around @simplewebauthn/browser's startRegistration / startAuthentication.
 * The library is served by the service itself from /vendor/simplewebauthn/
 * (its ESM build, no bundler); nothing here touches a secret: the private
 * key never leaves the authenticator, and the challenge is the server's.
 */
import { deviceProofForOnlyKey } from './device-key.js';
import {
  browserSupportsWebAuthn,
  startAuthentication,
  startRegistration,
  WebAuthnAbortService,
} from '/vendor/simplewebauthn/index.js';
import { api } from './session.js';

export const webauthnSupported = () => browserSupportsWebAuthn();

/** A browser-side failure (cancelled, timed out, no authenticator) as the app's error shape. */
function browserError(error) {
  const name = error?.name ?? '';
  if (name === 'NotAllowedError' || name === 'AbortError') {
    return { code: 'WEBAUTHN_CANCELLED', message: 'The passkey prompt was cancelled or timed out. Try again.' };
  }
  if (name === 'InvalidStateError') {
    return { code: 'WEBAUTHN_CREDENTIAL_EXISTS', message: 'This passkey or security key is already registered.' };
  }
  return { code: 'WEBAUTHN_BROWSER_ERROR', message: error?.message || 'This browser could not use a passkey.' };
}

async function inBrowser(fn) {
  try {
    return await fn();
  } catch (error) {
    throw browserError(error);
  }
}

/** Registers a new passkey or security key for the signed-in user; returns the credential. */
export async function addPasskey(name) {
  const { options } = await api('POST', '/mfa/webauthn/register/options', { body: {} });
  const response = await inBrowser(() => startRegistration({ optionsJSON: options }));
  const body = { response };
  if (name) body.name = name;
  const data = await api('POST', '/mfa/webauthn/register/verify', { body });
  return data.credential;
}

/** The second step of a login: sign this MFA challenge; returns the /auth/mfa/verify answer. */
export async function verifySecondFactor(temporaryToken) {
  const { options } = await api('POST', '/auth/mfa/webauthn/options', { body: { temporary_token: temporaryToken }, auth: false });
  const webauthn = await inBrowser(() => startAuthentication({ optionsJSON: options }));
  return api('POST', '/auth/mfa/verify', { body: { temporary_token: temporaryToken, webauthn }, auth: false });
}

/** Passwordless sign-in with a discoverable credential; returns the /auth/passkey/verify answer. */
export async function signInWithPasskey() {
  const { options, attempt_token } = await api('POST', '/auth/passkey/options', { body: {}, auth: false });
  const response = await inBrowser(() => startAuthentication({ optionsJSON: options }));
  // A key-bound trusted device proves it holds its key here too (docs/trust-model.md, public/js/device-key.js).
  const proof = await deviceProofForOnlyKey(() => api('POST', '/auth/device-challenge', { auth: false }));
  return api('POST', '/auth/passkey/verify', { body: { attempt_token, response }, auth: false, headers: proof ? { 'x-device-proof': proof } : {} });
}

/** A step-up of this session with a passkey or security key (docs/step-up.md); the client keeps the new access token. */
export async function stepUpWithPasskey() {
  const { options } = await api('POST', '/auth/step-up/webauthn/options');
  const webauthn = await inBrowser(() => startAuthentication({ optionsJSON: options }));
  return api('POST', '/auth/step-up', { body: { webauthn } });
}

export const listPasskeys = async () => (await api('GET', '/mfa/webauthn/credentials')).credentials;
export const renamePasskey = async (id, name) => (await api('PATCH', `/mfa/webauthn/credentials/${encodeURIComponent(id)}`, { body: { name } })).credential;
export const removePasskey = (id) => api('DELETE', `/mfa/webauthn/credentials/${encodeURIComponent(id)}`);

/** Leaving a view: close a prompt that is still open. */
export const cancelPrompt = () => WebAuthnAbortService.cancelCeremony();
