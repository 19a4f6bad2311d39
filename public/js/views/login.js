/** #/login: email + password. Also the step shared with sign-up: what to do after a password was accepted. */
import { api, saveSession } from '../session.js';
import { deviceProof } from '../device-key.js';
import { $, clearFormError, showFormError, withBusy } from '../dom.js';
import { go } from '../router.js';
import { state } from '../state.js';
import { flash } from '../ui.js';

export const loginView = {
  title: 'Sign in',
  enter() {
    clearFormError($('#login-form'));
  },
  wire() {
    $('#login-form').addEventListener('submit', onSubmit);
  },
};

async function onSubmit(event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const email = form.email.value.trim();
  const password = form.password.value;
  clearFormError(form);
  if (!email) return showFormError(form, 'Enter your email address.', { field: 'email' });
  if (!password) return showFormError(form, 'Enter your password.', { field: 'password' });
  await withBusy(form.querySelector('[type=submit]'), async () => {
    try {
      // A key-bound device proves it holds its key (docs/trust-model.md); without one the server asks for a code.
      const proof = await deviceProof(email, () => api('POST', '/auth/device-challenge', { auth: false }));
      const headers = proof ? { 'x-device-proof': proof } : {};
      const data = await api('POST', '/auth/login', { body: { email, password }, auth: false, headers });
      form.password.value = '';
      afterPasswordStep(data);
      // The code step proves the device key again (an unusual location asks for a code even on a trusted device).
      if (state.pendingMfa) state.pendingMfa.email = email;
    } catch (error) {
      showFormError(form, error);
    }
  });
}

/** Continue after a successful /auth/login answer: the code page, or signed in. */
export function afterPasswordStep(data) {
  if (data?.mfa_required) {
    state.pendingMfa = { temporary_token: data.temporary_token, methods: data.methods ?? ['totp', 'backup_code'], mfa_reason: data.mfa_reason ?? null };
    state.useBackupCode = false;
    go('mfa');
    return;
  }
  saveSession(data);
  if (data.mfa_bypassed) flash('Welcome back. This device is trusted, so no code was needed.');
  go('devices');
}
