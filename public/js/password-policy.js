/**
 * The password policy, as served by the API (GET /auth/password-policy), so
 * the page checks exactly what the server enforces (src/platform/crypto/passwords.ts):
 * length in Unicode code points, and Unicode letter/digit categories, so
 * "Ärger123x" has its upper-case letter.
 */
import { api } from './session.js';

/** Used only until the API has answered (or if it cannot be reached); the server still decides. */
const FALLBACK = {
  min_length: 8,
  max_length: 128,
  require_uppercase: true,
  require_lowercase: true,
  require_digit: true,
  description: '8 to 128 characters, with an upper-case letter, a lower-case letter and a digit.',
};

/** @type {Promise<typeof FALLBACK>|undefined} */
let loading;

export function passwordPolicy() {
  loading ??= api('GET', '/auth/password-policy', { auth: false })
    .then((policy) => (policy && typeof policy.min_length === 'number' ? policy : FALLBACK))
    .catch(() => {
      loading = undefined; // try again next time
      return FALLBACK;
    });
  return loading;
}

/** What the password lacks, in the server's words ([] when it is fine). */
export function passwordProblems(policy, password) {
  const problems = [];
  const length = [...password].length;
  if (length < policy.min_length || length > policy.max_length) problems.push(`must be ${policy.min_length} to ${policy.max_length} characters long`);
  if (policy.require_uppercase && !/\p{Lu}/u.test(password)) problems.push('must contain an upper-case letter');
  if (policy.require_lowercase && !/\p{Ll}/u.test(password)) problems.push('must contain a lower-case letter');
  if (policy.require_digit && !/\p{Nd}/u.test(password)) problems.push('must contain a digit');
  return problems;
}

/** An error shaped like the API's INVALID_PASSWORD answer, so it is shown the same way. */
export function passwordError(field, problems) {
  return { code: 'INVALID_PASSWORD', details: problems.map((message) => ({ field, message })) };
}

/** Fill every hint marked data-password-policy with the served description. */
export async function showPasswordPolicy() {
  const policy = await passwordPolicy();
  for (const hint of document.querySelectorAll('[data-password-policy]')) hint.textContent = policy.description;
}
