/**
 * #/security: the email address (confirmed or not, with Resend), two-step
 * verification (set up with QR + key + an otpauth:// link, backup codes
 * shown once with copy / download / print, new backup codes, turn off after
 * a confirmation) and password change (the API's password policy).
 */
import { api, currentUser } from '../session.js';
import { $, clearFormError, copyText, h, showFormError, withBusy } from '../dom.js';
import { describeError, FIELD_OF_CODE } from '../errors.js';
import { passwordError, passwordPolicy, passwordProblems } from '../password-policy.js';
import { state, stillOn } from '../state.js';
import { announce, APP_NAME, confirmDialog } from '../ui.js';
import { totpCodeFrom } from './mfa.js';
import { passkeysSecurityEntered } from './passkeys.js';
import { stepUpCancelled, withStepUp } from '../step-up.js';

export const securityView = {
  title: 'Security',
  nav: true,
  enter() {
    for (const id of ['#mfa-status-error', '#mfa-setup-start-error', '#email-error', '#email-sent']) $(id).replaceChildren();
    for (const form of document.querySelectorAll('#view-security form')) clearFormError(form);
    // Hidden username fields let password managers match the password forms to the account.
    for (const input of /** @type {NodeListOf<HTMLInputElement>} */ (document.querySelectorAll('[data-current-email]'))) {
      input.value = currentUser()?.email ?? '';
    }
    // A setup left half-way is restarted (its secret leaves the page); backup codes shown once are not kept.
    closeSetup();
    hideBackupCodes();
    void loadEmailStatus(state.renderSeq);
    void loadMfaStatus(state.renderSeq);
    void passkeysSecurityEntered();
  },
  wire() {
    $('#email-resend').addEventListener('click', onResend);
    $('#mfa-setup-begin').addEventListener('click', onSetupBegin);
    $('#mfa-setup-cancel').addEventListener('click', onSetupCancel);
    $('#mfa-confirm-form').addEventListener('submit', onSetupConfirm);
    $('#setup-key-copy').addEventListener('click', onCopySetupKey);
    $('#backup-codes-copy').addEventListener('click', onCopyBackupCodes);
    $('#backup-codes-download').addEventListener('click', onDownloadBackupCodes);
    $('#backup-codes-print').addEventListener('click', () => window.print());
    $('#backup-codes-done').addEventListener('click', onBackupCodesDone);
    $('#regen-form').addEventListener('submit', onRegenerate);
    $('#deactivate-form').addEventListener('submit', onDeactivate);
    $('#password-form').addEventListener('submit', onPasswordChange);
  },
};

export function hideBackupCodes() {
  $('#backup-codes').replaceChildren();
  $('#backup-codes-panel').hidden = true;
  document.body.classList.remove('printing-codes');
}

export async function loadMfaStatus(seq = state.renderSeq) {
  const pill = $('#mfa-status-pill');
  const text = $('#mfa-status-text');
  try {
    const status = await api('GET', '/mfa/status');
    if (!stillOn(seq)) return;
    const on = Boolean(status?.mfa_enabled);
    // Passkeys count as a second factor too: the TOTP controls follow TOTP itself.
    const totpOn = Array.isArray(status?.methods) ? status.methods.includes('totp') : on;
    pill.textContent = on ? 'On' : 'Off';
    pill.className = `pill ${on ? 'pill-on' : 'pill-off'}`;
    if (on) {
      const left = Number(status?.backup_codes_remaining);
      const codes = Number.isFinite(left) ? ` You have ${left} unused backup code${left === 1 ? '' : 's'}${left <= 3 ? '; consider getting new ones' : ''}.` : '';
      text.textContent = totpOn
        ? `Signing in asks for a code from your authenticator app, unless the device is trusted.${codes}`
        : 'Signing in asks for your passkey or security key, unless the device is trusted.';
    } else {
      text.textContent = 'Your account is protected by your password only.';
    }
    const setupOpen = !$('#mfa-setup').hidden;
    const codesOpen = !$('#backup-codes-panel').hidden;
    $('#mfa-setup-start').hidden = totpOn || setupOpen;
    $('#mfa-manage').hidden = !totpOn || codesOpen;
    $('#mfa-status-error').replaceChildren();
  } catch (error) {
    if (!stillOn(seq)) return;
    pill.textContent = '?';
    pill.className = 'pill';
    text.textContent = '';
    $('#mfa-status-error').replaceChildren(h('p', { text: describeError(error) }));
  }
}

/** Whether the address is confirmed (GET /auth/me): the pill, a sentence, and Resend while it is not. */
async function loadEmailStatus(seq = state.renderSeq) {
  try {
    const me = await api('GET', '/auth/me');
    if (!stillOn(seq)) return;
    showEmailStatus(String(me?.email ?? currentUser()?.email ?? ''), me?.email_verified === true);
  } catch (error) {
    if (!stillOn(seq)) return;
    $('#email-status-pill').textContent = '?';
    $('#email-status-pill').className = 'pill';
    $('#email-status-text').textContent = '';
    $('#email-error').replaceChildren(h('p', { text: describeError(error) }));
  }
}

function showEmailStatus(email, confirmed) {
  const pill = $('#email-status-pill');
  pill.textContent = confirmed ? 'Confirmed' : 'Not confirmed';
  pill.className = `pill ${confirmed ? 'pill-on' : 'pill-off'}`;
  $('#email-status-text').replaceChildren(
    h('span', { class: 'email-address', text: email }),
    confirmed
      ? ' is confirmed: security alerts and password-reset links reach you there.'
      : ' is not confirmed yet. Open the link in the email we sent you, so security alerts and password-reset links are sure to reach you.',
  );
  $('#email-resend-box').hidden = confirmed;
}

async function onResend(event) {
  const button = /** @type {HTMLButtonElement} */ (event.currentTarget);
  $('#email-error').replaceChildren();
  $('#email-sent').replaceChildren();
  await withBusy(button, async () => {
    try {
      const data = await api('POST', '/auth/email/resend');
      const email = currentUser()?.email ?? 'your address';
      if (data?.email_verified === true) {
        showEmailStatus(email, true);
        $('#email-sent').replaceChildren(h('p', { class: 'notice notice-success', text: 'Your address is already confirmed: nothing to send.' }));
        return;
      }
      $('#email-sent').replaceChildren(
        h('p', { class: 'notice notice-success', text: `Sent: a new confirmation link is on its way to ${email}. Earlier links no longer work.` }),
      );
    } catch (error) {
      $('#email-error').replaceChildren(h('p', { text: describeError(error) }));
    }
  });
}

async function onSetupBegin(event) {
  const button = /** @type {HTMLButtonElement} */ (event.currentTarget);
  $('#mfa-setup-start-error').replaceChildren();
  await withBusy(button, async () => {
    try {
      const data = await api('POST', '/mfa/totp/setup', { body: {} });
      const qr = /** @type {HTMLImageElement} */ ($('#mfa-qr'));
      if (typeof data?.qr_code === 'string' && data.qr_code.startsWith('data:image/')) {
        qr.src = data.qr_code;
        qr.hidden = false;
      } else {
        qr.hidden = true;
      }
      /** @type {HTMLTextAreaElement} */ ($('#setup-key')).value = data?.manual_entry_key || data?.secret || '';
      // On a phone the app is on the same device: one tap adds the account (the otpauth:// key URI that authenticator apps open).
      const url = typeof data?.otpauth_url === 'string' && data.otpauth_url.startsWith('otpauth://') ? data.otpauth_url : null;
      $('#setup-open-app').setAttribute('href', url ?? '#');
      $('#setup-open-app-row').hidden = url === null;
      // A phone cannot scan its own screen: there the link comes first, before the QR code.
      const touch = matchMedia('(pointer: coarse)').matches;
      if (touch) $('#mfa-qr').before($('#setup-open-app-row'));
      else $('#setup-key').closest('.field').after($('#setup-open-app-row'));
      $('#setup-step-add').textContent = touch && url ? 'Add this account to your authenticator app' : 'Scan this QR code with your authenticator app';
      $('#mfa-setup-start').hidden = true;
      $('#mfa-setup').hidden = false;
      clearFormError($('#mfa-confirm-form'));
      $('#mfa-confirm-form').code.value = '';
      $('#mfa-confirm-code').focus();
      $('#mfa-setup').scrollIntoView({ block: 'start' });
    } catch (error) {
      $('#mfa-setup-start-error').replaceChildren(h('p', { text: describeError(error) }));
      if (error?.code === 'TOTP_ALREADY_ENABLED') void loadMfaStatus();
    }
  });
}

/** Hides the TOTP setup and takes its secret (QR code, key) off the page. */
function closeSetup() {
  $('#mfa-setup').hidden = true;
  /** @type {HTMLImageElement} */ ($('#mfa-qr')).removeAttribute('src');
  /** @type {HTMLTextAreaElement} */ ($('#setup-key')).value = '';
  $('#setup-open-app').setAttribute('href', '#');
  $('#setup-open-app-row').hidden = true;
}

function onSetupCancel() {
  closeSetup();
  $('#mfa-setup-start').hidden = false;
  $('#mfa-setup-begin').focus();
}

async function onSetupConfirm(event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  clearFormError(form);
  const code = totpCodeFrom(form);
  if (code === null) return;
  await withBusy(form.querySelector('[type=submit]'), async () => {
    try {
      const data = await api('POST', '/mfa/totp/verify', { body: { code } });
      form.reset();
      closeSetup();
      announce('Two-step verification is on.');
      showBackupCodes(data?.backup_codes ?? []);
      void loadMfaStatus();
    } catch (error) {
      if (error?.code === 'NO_PENDING_SETUP') onSetupCancel();
      showFormError(form, error, { field: 'code' });
    }
  });
}

function showBackupCodes(codes) {
  const panel = $('#backup-codes-panel');
  $('#backup-codes').replaceChildren(...codes.map((c) => h('li', { text: String(c) })));
  panel.hidden = false;
  $('#mfa-manage').hidden = true;
  document.body.classList.add('printing-codes'); // print only the codes (css/app.css @media print)
  panel.focus();
}

const backupCodes = () => [...$('#backup-codes').querySelectorAll('li')].map((li) => li.textContent ?? '');

async function onCopyBackupCodes(event) {
  const button = /** @type {HTMLButtonElement} */ (event.currentTarget);
  const ok = await copyText(backupCodes().join('\n'));
  button.textContent = ok ? 'Copied' : 'Copy failed: select and copy the codes';
  announce(ok ? 'Backup codes copied to the clipboard.' : 'Could not copy automatically. Select the codes and copy them.', ok ? 'success' : 'error');
  setTimeout(() => {
    button.textContent = 'Copy codes';
  }, 2500);
}

/** A .txt file made in the page (a blob: URL): the codes never go back to the server. */
function onDownloadBackupCodes() {
  const email = currentUser()?.email ?? '';
  const text = [
    `${APP_NAME} backup codes${email ? ` for ${email}` : ''}`,
    `Created ${new Date().toISOString().slice(0, 10)}. Each code works once.`,
    '',
    ...backupCodes(),
    '',
  ].join('\r\n');
  const url = URL.createObjectURL(new Blob([text], { type: 'text/plain;charset=utf-8' }));
  const link = h('a', { href: url, download: 'trusted-devices-backup-codes.txt', hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  announce('Backup codes downloaded as trusted-devices-backup-codes.txt.');
}

async function onCopySetupKey(event) {
  const button = /** @type {HTMLButtonElement} */ (event.currentTarget);
  const input = /** @type {HTMLTextAreaElement} */ ($('#setup-key'));
  const ok = await copyText(input.value.replace(/\s+/g, ''));
  button.textContent = ok ? 'Copied' : 'Copy failed';
  if (!ok) input.select();
  setTimeout(() => {
    button.textContent = 'Copy key';
  }, 2500);
}

function onBackupCodesDone() {
  hideBackupCodes();
  void loadMfaStatus();
  $('#mfa-card-title').setAttribute('tabindex', '-1');
  $('#mfa-card-title').focus();
}

async function onRegenerate(event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  clearFormError(form);
  const code = totpCodeFrom(form);
  if (code === null) return;
  await withBusy(form.querySelector('[type=submit]'), async () => {
    try {
      // A sensitive action (docs/step-up.md): without a recent second factor, one is asked for inline first.
      const data = await withStepUp(form, () => api('POST', '/mfa/backup-codes/regenerate', { body: { code } }));
      form.reset();
      form.closest('details')?.removeAttribute('open');
      announce('New backup codes created; the old ones no longer work. Your trusted devices were revoked.');
      showBackupCodes(data?.backup_codes ?? []);
      void loadMfaStatus();
    } catch (error) {
      if (!stepUpCancelled(error)) showFormError(form, error, { field: 'code' });
    }
  });
}

async function onDeactivate(event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  clearFormError(form);
  const password = form.password.value;
  if (!password) return showFormError(form, 'Enter your password to confirm.', { field: 'password' });
  const submit = /** @type {HTMLButtonElement} */ (form.querySelector('[type=submit]'));
  const ok = await confirmDialog({
    title: 'Turn off two-step verification?',
    text: 'Signing in will only need your password, and every trusted device is revoked. You can turn it on again later with a new setup.',
    confirm: 'Turn off',
  });
  if (!ok) return submit.focus();
  await withBusy(submit, async () => {
    try {
      await withStepUp(form, () => api('POST', '/mfa/deactivate', { body: { password } }));
      form.reset();
      form.closest('details')?.removeAttribute('open');
      announce('Two-step verification is off, and your trusted devices were revoked.');
      $('#mfa-manage').hidden = true;
      void loadMfaStatus();
    } catch (error) {
      if (!stepUpCancelled(error)) showFormError(form, error, { field: 'password' });
    }
  });
}

async function onPasswordChange(event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  clearFormError(form);
  const current = form.current_password.value;
  const next = form.new_password.value;
  const confirm = form.confirm_password.value;
  if (!current) return showFormError(form, 'Enter your current password.', { field: 'current_password' });
  const problems = passwordProblems(await passwordPolicy(), next);
  if (problems.length > 0) return showFormError(form, passwordError('new_password', problems), { field: 'new_password' });
  if (next !== confirm) return showFormError(form, 'The new passwords don’t match.', { field: 'confirm_password' });
  await withBusy(form.querySelector('[type=submit]'), async () => {
    try {
      await withStepUp(form, () => api('POST', '/auth/password/change', { body: { current_password: current, new_password: next } }));
      form.reset();
      announce('Password changed. Your other sessions were signed out and every trusted device was revoked.');
    } catch (error) {
      if (stepUpCancelled(error)) return;
      const field = error?.code === 'INVALID_PASSWORD' ? 'new_password' : FIELD_OF_CODE[error?.code];
      showFormError(form, error, { field });
    }
  });
}
