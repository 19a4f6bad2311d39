/**
 * Step-up in the page (docs/step-up.md). A sensitive action (turn two-step
 * verification off, new backup codes, add or remove a passkey, change the
 * password, revoke every device, sign out everywhere) that the API answers
 * 401 STEP_UP_REQUIRED asks, inline right under the form or button that was
 * used, for a code from the authenticator app (or a backup code, or a
 * passkey; the password on an account without a second factor), steps up
 * (`POST /auth/step-up`: the client keeps the new access token) and runs the
 * action again. Cancelling rejects with the code STEP_UP_CANCELLED, which
 * callers ignore.
 */
import { h } from './dom.js';
import { describeError } from './errors.js';
import { api } from './session.js';
import { stepUpWithPasskey, webauthnSupported } from './webauthn.js';

/** Runs `action`; on STEP_UP_REQUIRED asks for a factor next to `anchor`, then runs it once more. */
export async function withStepUp(anchor, action) {
  try {
    return await action();
  } catch (error) {
    if (error?.code !== 'STEP_UP_REQUIRED') throw error;
    await askForStepUp(anchor, error);
    return action();
  }
}

export const stepUpCancelled = (error) => error?.code === 'STEP_UP_CANCELLED';

/** The inline prompt; resolves once the session stepped up, rejects when cancelled. */
function askForStepUp(anchor, error) {
  const methods = Array.isArray(error?.details?.methods) ? error.details.methods : ['totp'];
  const byPassword = methods.includes('password');
  const hasCode = methods.includes('totp');
  const hasBackup = methods.includes('backup_code');
  const hasKey = methods.includes('webauthn') && webauthnSupported();
  const minutes = Math.max(1, Math.round(Number(error?.details?.max_age ?? 600) / 60));
  anchor.parentElement?.querySelector(':scope > .step-up')?.remove();

  return new Promise((resolve, reject) => {
    const errorBox = h('div', { class: 'form-error', role: 'alert', 'data-form-error': true });
    let useBackup = false;
    const input = h('input', byPassword
      ? { id: 'step-up-secret', name: 'password', type: 'password', autocomplete: 'current-password', required: true }
      : { id: 'step-up-secret', name: 'code', type: 'text', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: '7', pattern: '[0-9 ]*', spellcheck: 'false', required: true });
    const label = h('label', { for: 'step-up-secret', text: byPassword ? 'Your password' : 'Code from your authenticator app' });
    const field = h('div', { class: 'field' }, label, input);
    const switchToBackup = hasBackup && !byPassword
      ? h('button', { type: 'button', class: 'btn-link', text: 'Use a backup code instead', onclick: () => {
          useBackup = true;
          label.textContent = 'Backup code';
          input.removeAttribute('pattern');
          input.setAttribute('name', 'backup_code');
          input.setAttribute('maxlength', '32');
          input.setAttribute('inputmode', 'text');
          input.setAttribute('autocomplete', 'off');
          /** @type {HTMLInputElement} */ (input).value = '';
          switchToBackup?.remove();
          input.focus();
        } })
      : null;
    const confirm = h('button', { type: 'submit', class: 'btn btn-primary', 'data-busy-text': 'Checking…', text: 'Confirm' });
    const passkey = hasKey
      ? h('button', { type: 'button', class: 'btn btn-secondary', text: 'Use a passkey or security key', onclick: () => finish(() => stepUpWithPasskey()) })
      : null;
    const cancel = h('button', { type: 'button', class: 'btn btn-secondary', text: 'Cancel', onclick: () => {
      panel.remove();
      reject({ code: 'STEP_UP_CANCELLED', message: 'Cancelled.' });
    } });
    const onTrustedDevice = /trusted device/i.test(String(error?.details?.reason ?? ''));
    const intro = byPassword
      ? `For your safety, enter your password again to do this (it has been more than ${minutes} minutes since you last did).`
      : onTrustedDevice
        ? 'You signed in on a trusted device, without a code. For your safety, confirm it’s you with your second factor to do this.'
        : `For your safety, confirm it’s you with your second factor: this needs one from the last ${minutes} minutes.`;
    const panel = h(
      'form',
      { class: 'form step-up', novalidate: true, 'aria-labelledby': 'step-up-title' },
      h('h3', { id: 'step-up-title', text: 'Confirm it’s you' }),
      h('p', { class: 'hint', text: intro }),
      errorBox,
      hasCode || hasBackup || byPassword ? [field, switchToBackup] : null,
      h('div', { class: 'actions' }, hasCode || hasBackup || byPassword ? confirm : null, passkey, cancel),
    );

    async function finish(step) {
      errorBox.replaceChildren();
      const buttons = [...panel.querySelectorAll('button')];
      for (const b of buttons) b.disabled = true;
      try {
        await step();
        panel.remove();
        resolve(undefined);
      } catch (stepError) {
        errorBox.append(h('p', { text: describeError(stepError) }));
        input.setAttribute('aria-invalid', 'true');
        if (panel.isConnected && (hasCode || hasBackup || byPassword)) input.focus();
      } finally {
        for (const b of buttons) b.disabled = false;
      }
    }

    panel.addEventListener('submit', (event) => {
      event.preventDefault();
      const value = /** @type {HTMLInputElement} */ (input).value.trim();
      if (!value) {
        errorBox.replaceChildren(h('p', { text: byPassword ? 'Enter your password.' : 'Enter the code.' }));
        return;
      }
      const body = byPassword ? { password: value } : useBackup || !hasCode ? { backup_code: value } : { code: value.replace(/\s+/g, '') };
      void finish(() => api('POST', '/auth/step-up', { body }));
    });

    anchor.after(panel);
    if (hasCode || hasBackup || byPassword) input.focus();
    else passkey?.focus();
    panel.scrollIntoView({ block: 'nearest' });
  });
}
