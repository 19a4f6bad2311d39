/**
 * Plain-words messages for API error codes (the `error.code` of the error
 * envelope). The server's `message` is only used for codes this table does
 * not know, and a request id is appended for unexpected failures so support
 * can find the log line.
 */

const MESSAGES = {
  INVALID_CREDENTIALS: 'That email and password don’t match. Check both and try again.',
  EMAIL_TAKEN: 'An account with this email already exists. Try signing in instead.',
  INVALID_PASSWORD:
    'Choose a password of 8 to 128 characters with at least one upper-case letter, one lower-case letter and one digit.',
  INVALID_MFA_CODE: 'That code isn’t right. Enter the current code from your app, or one of your unused backup codes.',
  INVALID_TOKEN: 'This sign-in has expired or is no longer valid. Please sign in again.',
  TOO_MANY_ATTEMPTS: 'Too many wrong codes. For your safety, wait {wait} and try again.',
  RATE_LIMITED: 'Too many attempts in a short time. Wait {wait} and try again.',
  INVALID_CODE: 'That code isn’t right. Check that the time on your phone is correct and enter the code shown now.',
  NO_PENDING_SETUP: 'There is no setup in progress (it may have expired). Start the setup again.',
  TOTP_ALREADY_ENABLED: 'Two-step verification is already on for your account.',
  TOTP_NOT_ENABLED: 'Two-step verification is not on for your account.',
  VALIDATION_ERROR: 'Some of the information isn’t valid. Check the highlighted fields.',
  MALFORMED_REQUEST: 'The app sent a request the server could not read. Reload the page and try again.',
  UNSUPPORTED_MEDIA_TYPE: 'The app sent a request the server could not read. Reload the page and try again.',
  PAYLOAD_TOO_LARGE: 'That is too much text. Shorten it and try again.',
  INVALID_FINGERPRINT: 'This browser sent device information the server could not accept. Reload the page and try again.',
  ACTIVATION_TOKEN_EXPIRED:
    'The time to trust this device ran out. You can trust it the next time you sign in with a code.',
  ACTIVATION_TOKEN_USED: 'You have already answered this question for this sign-in.',
  ACTIVATION_TOKEN_NOT_FOUND: 'This request to trust the device was not found. Sign in again to trust this device.',
  FINGERPRINT_MISMATCH:
    'This browser doesn’t match the one that signed in, so it can’t be trusted from here. Sign in again from this browser.',
  DEVICE_NOT_FOUND: 'That device was not found. It may already have been revoked or have expired.',
  NOT_FOUND: 'That wasn’t found.',
  UNAUTHORIZED: 'Your session has ended. Please sign in again.',
  FORBIDDEN: 'You are not allowed to do that.',
  SERVICE_UNAVAILABLE: 'The service is temporarily unavailable. Try again in a moment.',
  INTERNAL_ERROR: 'Something went wrong on our side. Please try again.',
  NETWORK_ERROR: 'Can’t reach the server. Check your connection and try again.',
};

const WITH_REFERENCE = new Set(['INTERNAL_ERROR', 'SERVICE_UNAVAILABLE', 'MALFORMED_REQUEST', 'UNSUPPORTED_MEDIA_TYPE']);

/**
 * @param {any} error  an ApiError (or anything thrown)
 * @param {Record<string, string>} [overrides]  context-specific wording per code
 */
export function describeError(error, overrides = {}) {
  const code = typeof error?.code === 'string' ? error.code : 'INTERNAL_ERROR';
  let text = overrides[code] ?? MESSAGES[code];
  if (!text) {
    text = typeof error?.message === 'string' && error.message && !/^HTTP \d+$/.test(error.message)
      ? error.message
      : MESSAGES.INTERNAL_ERROR;
  }
  text = text.replace('{wait}', formatWait(error?.retryAfter));
  if ((WITH_REFERENCE.has(code) || !MESSAGES[code]) && error?.requestId) {
    text += ` (Reference: ${error.requestId})`;
  }
  return text;
}

/**
 * Field problems from a VALIDATION_ERROR's `details`, as [{field, message}]
 * with `field` reduced to its last segment ("/body/email" → "email").
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

function formatWait(seconds) {
  const s = Number(seconds);
  if (!Number.isFinite(s) || s <= 0) return 'a few minutes';
  if (s < 60) return `${Math.ceil(s)} second${Math.ceil(s) === 1 ? '' : 's'}`;
  const m = Math.ceil(s / 60);
  return `${m} minute${m === 1 ? '' : 's'}`;
}
