/**
 * #/mfa: the second factor of a sign-in (6-digit code, or a backup code).
 * Wrong codes show how many attempts this sign-in has left; when the
 * challenge is used up (too many wrong codes, or expired) waiting does not
 * help, so the page says the sign-in must restart and offers it.
 */
import { api, saveSession } from '../session.js';
import { $, clearFormError, showFormError, withBusy } from '../dom.js';
import { mustRestartSignIn } from '../errors.js';
import { go } from '../router.js';
import { state } from '../state.js';
import { flash } from '../ui.js';
import { passkeyMfaEntered } from './passkeys.js';
import { mfaReasonSentence } from '../format.js';
import { deviceProof } from '../device-key.js';

export const mfaView = {
  title: 'Two-step verification',
  focus: '#mfa-code',
  enter() {
    const form = $('#mfa-form');
    clearFormError(form);
    form.code.value = '';
    form.backup_code.value = '';
    const canBackup = state.pendingMfa?.methods?.includes('backup_code') ?? true;
    $('#mfa-switch').hidden = !canBackup;
    // Why the code is asked (docs/security-center.md).
    const reason = mfaReasonSentence(state.pendingMfa?.mfa_reason);
    $('#mfa-reason').textContent = reason ?? '';
    $('#mfa-reason').hidden = reason === null;
    setRestart(false);
    setBackupMode(false);
    passkeyMfaEntered(state.pendingMfa); // offers the passkey / security key when this sign-in allows it
  },
  wire() {
    $('#mfa-form').addEventListener('submit', onSubmit);
    $('#mfa-switch').addEventListener('click', () => {
      setBackupMode(!state.useBackupCode);
      clearFormError($('#mfa-form'));
      $(state.useBackupCode ? '#mfa-backup' : '#mfa-code').focus();
    });
    for (const link of [$('#mfa-cancel'), $('#mfa-restart-link')]) {
      link.addEventListener('click', () => {
        state.pendingMfa = null;
      });
    }
  },
};

function setBackupMode(on) {
  state.useBackupCode = on;
  $('#mfa-code-field').hidden = on;
  $('#mfa-backup-field').hidden = !on;
  $('#mfa-switch').textContent = on ? 'Use a code from your app instead' : 'Use a backup code instead';
}

/** The challenge is gone: hide the inputs, offer "Sign in again". */
function setRestart(on) {
  $('#mfa-restart').hidden = !on;
  $('#mfa-submit').hidden = on;
  $('#mfa-cancel').closest('p').hidden = on; // "Sign in again" says the same
  if (on) {
    $('#mfa-code-field').hidden = true;
    $('#mfa-backup-field').hidden = true;
    $('#mfa-switch').hidden = true;
  }
}

/**
 * The 6-digit TOTP code typed into `form.code` (spaces ignored), or null
 * after showing the form error when it is not one.
 * @param {HTMLFormElement} form
 */
export function totpCodeFrom(form) {
  const code = form.code.value.replace(/\s+/g, '');
  if (/^\d{6}$/.test(code)) return code;
  showFormError(form, 'Enter the 6 digits shown in your authenticator app.', { field: 'code' });
  return null;
}

async function onSubmit(event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  clearFormError(form);
  const pending = state.pendingMfa;
  if (!pending) return go('login');
  const body = { temporary_token: pending.temporary_token };
  if (state.useBackupCode) {
    const backup = form.backup_code.value.trim();
    if (!backup) return showFormError(form, 'Enter one of your backup codes.', { field: 'backup_code' });
    body.backup_code = backup;
  } else {
    const code = totpCodeFrom(form);
    if (code === null) return;
    body.code = code;
  }
  await withBusy(form.querySelector('[type=submit]'), async () => {
    let data;
    try {
      // A key-bound device proves itself here too, so the code counts on it (it stays trusted: docs/security-center.md).
      const proof = pending.email ? await deviceProof(pending.email, () => api('POST', '/auth/device-challenge', { auth: false })) : undefined;
      data = await api('POST', '/auth/mfa/verify', { body, auth: false, headers: proof ? { 'x-device-proof': proof } : {} });
    } catch (error) {
      if (mustRestartSignIn(error)) {
        state.pendingMfa = null;
        showFormError(form, error);
        setRestart(true);
        $('#mfa-restart-link').focus();
        return;
      }
      showFormError(form, error, { field: state.useBackupCode ? 'backup_code' : 'code' });
      return;
    }
    state.pendingMfa = null;
    form.reset();
    saveSession(data);
    if (data?.trusted_device?.activation_token) {
      state.pendingTrust = data.trusted_device;
      go('trust');
    } else {
      flash('You’re signed in. This device is trusted.');
      go('devices');
    }
  });
}
