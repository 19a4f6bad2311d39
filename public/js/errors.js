/**
 * The one wording of every API error the app can show, keyed by the
 * envelope's `error.code` (the same error reads the same on every page).
 * The server's `message` is only used for codes this table does not know,
 * and a request id is added only for failures support has to look up
 * (server errors, not mistakes the user can fix).
 */

const MESSAGES = {
  INVALID_CREDENTIALS: 'That email and password don’t match. Check both and try again.',
  INVALID_CURRENT_PASSWORD: 'That password isn’t correct.',
  EMAIL_TAKEN: 'An account with this email already exists. Try signing in instead.',
  INVALID_PASSWORD: 'This password doesn’t meet the rules shown under the field.',
  INVALID_MFA_CODE: 'That code isn’t right. Enter the code your app shows now, or one of your unused backup codes.',
  MFA_CODE_ALREADY_USED: 'This code was just used. Wait for the next one in your app.',
  INVALID_CODE: 'That code isn’t right. Enter the code your app shows now (check that your phone’s clock is correct).',
  INVALID_TOKEN: 'This sign-in has expired or is no longer valid. Please sign in again.',
  TOO_MANY_ATTEMPTS: 'Too many wrong codes. For your safety, codes are blocked for {wait}. Try again after that.',
  TOO_MANY_ATTEMPTS_RESTART: 'Too many wrong codes for this sign-in, so it was stopped for your safety. Sign in again to get new attempts.',
  RATE_LIMITED: 'Too many attempts in a short time. Wait {wait} and try again.',
  NO_PENDING_SETUP: 'There is no setup in progress (it may have expired). Start the setup again.',
  TOTP_ALREADY_ENABLED: 'Two-step verification is already on for your account.',
  MFA_NOT_ENABLED: 'Two-step verification is not on for your account.',
  VALIDATION_ERROR: 'Some of the information isn’t valid. Check the highlighted fields.',
  MALFORMED_REQUEST: 'The app sent a request the server could not read. Reload the page and try again.',
  UNSUPPORTED_MEDIA_TYPE: 'The app sent a request the server could not read. Reload the page and try again.',
  PAYLOAD_TOO_LARGE: 'That is too much text. Shorten it and try again.',
  INVALID_FINGERPRINT: 'This browser sent device information the server could not accept. Reload the page and try again.',
  ACTIVATION_TOKEN_EXPIRED: 'The time to trust this device ran out. You can trust it the next time you sign in with a code.',
  ACTIVATION_TOKEN_USED: 'You have already answered this question for this sign-in.',
  ACTIVATION_TOKEN_NOT_FOUND: 'This request to trust the device was not found. Sign in again to trust this device.',
  FINGERPRINT_MISMATCH: 'This browser doesn’t match the one that signed in, so it can’t be trusted from here. Sign in again from this browser.',
  DEVICE_NOT_FOUND: 'That device was not found. It may already have been revoked or have expired.',
  DEVICE_NOT_REMEMBERED:
    'This browser did not keep the device cookie, so it will not be recognised at your next sign-in (it is listed under Your devices, but never as this device). This happens when the site is opened over plain http on an address other than localhost while the server only sets Secure cookies: open it over https or on localhost, or set COOKIE_SECURE=auto on the server.',
  STEP_UP_REQUIRED: 'For your safety, confirm it’s you first: enter a code from your app (or your password).',
  NOT_FOUND: 'That wasn’t found.',
  UNAUTHORIZED: 'Your session has ended. Please sign in again.',
  FORBIDDEN: 'You are not allowed to do that.',
  SERVICE_UNAVAILABLE: 'The service is temporarily unavailable. Try again in a moment.',
  INTERNAL_ERROR: 'Something went wrong on our side. Please try again.',
  NETWORK_ERROR: 'Can’t reach the server. Check your connection and try again.',
};

const WITH_REFERENCE = new Set(['INTERNAL_ERROR', 'SERVICE_UNAVAILABLE', 'MALFORMED_REQUEST', 'UNSUPPORTED_MEDIA_TYPE']);

/** At MFA verify: the challenge is gone (expired, used, or too many wrong codes), so only a new sign-in helps. */
export const mustRestartSignIn = (error) => error?.code === 'INVALID_TOKEN' || error?.code === 'TOO_MANY_ATTEMPTS';

/**
 * The sentence for a session that ended elsewhere (docs/sessions.md, "Signed-out reasons"):
 * `reason` is the `details` of the service's 401 ({cause, ended_at, ended_by}).
 * @param {{cause?: string, ended_at?: string, ended_by?: string|null}|undefined} reason
 */
export function signedOutSentence(reason) {
  const at = reason?.ended_at ? new Date(reason.ended_at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hour12: false }) : '';
  const by = reason?.ended_by;
  const when = at ? ` at ${at}` : '';
  switch (reason?.cause) {
    case 'device_revoked':
      return by ? `This device was removed from the devices page of ${by}${when}. Sign in again.` : `This device was removed from your trusted devices${when}. Sign in again.`;
    case 'password_reset':
      return 'Your password was reset. Sign in with the new password.';
    case 'password_changed':
      return `Your password was changed${by ? ` on ${by}` : ''}${when}. Sign in with the new password.`;
    case 'not_me':
      return 'This device was signed out after “This wasn’t me” was reported for it.';
    case 'proof_failed':
      return 'Signed out after a suspected copy of this browser’s cookie.';
    case 'reuse_detected':
      return 'Signed out: a copy of this device’s sign-in was used somewhere else.';
    case 'signed_out_elsewhere':
      return by ? `Signed out from ${by}${when}.` : `Signed out from another device${when}.`;
    case 'mfa_enabled':
      return 'Two-step verification was turned on. Sign in again.';
    case 'mfa_disabled':
      return 'Two-step verification was turned off. Sign in again.';
    case 'expired':
      return 'Your session expired. Please sign in again.';
    default:
      return 'Your session has ended. Please sign in again.';
  }
}

/** @param {any} error  a TrustedDevicesError (the client's), an {code, details} object, or anything thrown */
export function describeError(error) {
  let code = typeof error?.code === 'string' ? error.code : 'INTERNAL_ERROR';
  // A session that ended elsewhere: say why (docs/sessions.md, "Signed-out reasons").
  if ((code === 'UNAUTHORIZED' || code === 'INVALID_TOKEN') && typeof error?.details?.cause === 'string') return signedOutSentence(error.details);
  if (code === 'TOO_MANY_ATTEMPTS' && error?.details?.restart_sign_in === true) code = 'TOO_MANY_ATTEMPTS_RESTART';
  let text = MESSAGES[code];
  if (!text) {
    text = typeof error?.message === 'string' && error.message && !/^HTTP \d+$/.test(error.message) ? error.message : MESSAGES.INTERNAL_ERROR;
  }
  text = text.replace('{wait}', formatWait(error?.retryAfter));
  const left = Number(error?.details?.attempts_remaining);
  if (code === 'INVALID_MFA_CODE' && Number.isInteger(left) && left > 0) {
    text += ` ${left} attempt${left === 1 ? '' : 's'} left for this sign-in.`;
  }
  if ((WITH_REFERENCE.has(code) || !MESSAGES[code]) && error?.requestId) {
    text += ` (Reference: ${error.requestId})`;
  }
  return text;
}

/**
 * Field problems from a VALIDATION_ERROR / INVALID_PASSWORD `details`, as
 * [{field, message}] with `field` reduced to its last segment ("/body/email" → "email").
 */
export function fieldProblems(error) {
  const details = error?.details;
  if (!Array.isArray(details)) return [];
  return details
    .filter((d) => d && typeof d === 'object')
    .map((d) => ({
      field: String(d.field ?? d.path ?? d.instancePath ?? '').split(/[./[\]]/).filter(Boolean).pop() ?? '',
      message: String(d.message ?? 'is not valid'),
    }));
}

/** The form field an error belongs to, when the code alone says so. */
export const FIELD_OF_CODE = {
  EMAIL_TAKEN: 'email',
  INVALID_CURRENT_PASSWORD: 'current_password',
  INVALID_MFA_CODE: 'code',
  MFA_CODE_ALREADY_USED: 'code',
  INVALID_CODE: 'code',
};

function formatWait(seconds) {
  const s = Number(seconds);
  if (!Number.isFinite(s) || s <= 0) return 'a few minutes';
  if (s < 60) return `${Math.ceil(s)} second${Math.ceil(s) === 1 ? '' : 's'}`;
  const m = Math.ceil(s / 60);
  return `${m} minute${m === 1 ? '' : 's'}`;
}
