/**
 * Passkey UI (docs/passkeys.md), kept out of app.js: app.js calls setupPasskeys()
 * once with its navigation callbacks, and the three hooks below when a view
 * is entered.
 *
 * - Sign in: a "Use a passkey" button under the password form (not "Sign in …": the password form's button keeps its unique name).
 * - Second step: "Use a passkey or security key" when the login offers
 *   `webauthn` (and only that, when the account has no authenticator app).
 * - Security page: a card listing passkeys and security keys, to add,
 *   rename and remove them.
 * After a passkey, the same "Remember this device?" prompt follows as after
 * a code (the app's onSignedIn callback decides).
 */
import { describeError } from '../errors.js';
import { $, clearFormError, h, showFormError, withBusy } from '../dom.js';
import { formatDate, formatRelative } from '../format.js';
import { stepUpCancelled, withStepUp } from '../step-up.js';
import { addPasskey, listPasskeys, removePasskey, renamePasskey, signInWithPasskey, verifySecondFactor, webauthnSupported } from '../webauthn.js';

/**
 * @typedef {object} PasskeyHooks
 * @property {() => ({temporary_token: string, methods: string[]}|null)} pendingMfa
 * @property {(data: any, how: 'second_factor'|'passwordless') => void} onSignedIn  after tokens were issued
 * @property {(error: unknown) => void} onMfaTokenGone  the temporary token is spent: start over
 * @property {() => void} onFactorsChanged  a credential was added or removed (MFA status may have changed)
 * @property {(text: string, kind?: string) => void} announce
 * @property {(options: {title: string, text: string, confirm: string}) => Promise<boolean>} confirm
 */

/** @type {PasskeyHooks} */
let hooks;

/** Device-history labels of the WebAuthn events (merged into the app's labels). */
export const PASSKEY_EVENT_LABELS = {
  webauthn_registered: 'Passkey or security key added',
  webauthn_removed: 'Passkey or security key removed',
  webauthn_counter_error: 'Passkey refused: its signature counter went backwards (possible copy)',
};

/** @param {PasskeyHooks} appHooks */
export function setupPasskeys(appHooks) {
  hooks = appHooks;
  mountLoginButton();
  mountMfaButton();
  mountSecurityCard();
}

// ───────────────────────────── sign in ─────────────────────────────

function mountLoginButton() {
  const form = $('#login-form');
  const button = h('button', { type: 'button', class: 'btn btn-secondary btn-block', id: 'passkey-login', 'data-busy-text': 'Waiting for your passkey…' }, 'Use a passkey');
  const box = h('div', { class: 'passkey-login' }, h('p', { class: 'or', text: 'or' }), button);
  form.after(box);
  button.addEventListener('click', () =>
    withBusy(button, async () => {
      clearFormError(form);
      try {
        const data = await signInWithPasskey();
        hooks.onSignedIn(data, 'passwordless');
      } catch (error) {
        showFormError(form, error);
      }
    }),
  );
  box.hidden = !webauthnSupported();
}

// ───────────────────────────── second step ─────────────────────────────

function mountMfaButton() {
  const form = $('#mfa-form');
  const button = h('button', { type: 'button', class: 'btn btn-secondary btn-block', id: 'mfa-passkey', 'data-busy-text': 'Waiting for your key…', hidden: true }, 'Use a passkey or security key');
  $('#mfa-switch').before(button);
  button.addEventListener('click', () =>
    withBusy(button, async () => {
      clearFormError(form);
      const pending = hooks.pendingMfa();
      if (!pending) return;
      try {
        const data = await verifySecondFactor(pending.temporary_token);
        hooks.onSignedIn(data, 'second_factor');
      } catch (error) {
        const code = /** @type {any} */ (error)?.code;
        if (code === 'INVALID_TOKEN' || (code === 'TOO_MANY_ATTEMPTS' && /** @type {any} */ (error)?.status === 429)) return hooks.onMfaTokenGone(error);
        showFormError(form, error);
      }
    }),
  );
}

/** Hook: the second-step view was entered. Offers the key when the login does; only the key when codes are not set up. */
export function passkeyMfaEntered(pending) {
  const methods = pending?.methods ?? [];
  const withKey = methods.includes('webauthn') && webauthnSupported();
  const codes = methods.includes('totp') || !methods.includes('webauthn');
  $('#mfa-passkey').hidden = !withKey;
  for (const selector of ['#mfa-code-field', '#mfa-form [type=submit]']) $(selector).hidden = !codes;
  if (!codes) {
    $('#mfa-backup-field').hidden = true;
    $('#mfa-switch').hidden = true;
  }
}

// ───────────────────────────── security page ─────────────────────────────

function mountSecurityCard() {
  const card = h(
    'section',
    { class: 'card', id: 'passkeys-card', 'aria-labelledby': 'passkeys-card-title' },
    h('div', { class: 'card-head' }, h('h2', { id: 'passkeys-card-title', text: 'Passkeys and security keys' })),
    h('p', {
      class: 'hint',
      text: 'A passkey or security key can replace the code at the second step, and a passkey can sign you in without your password. Removing one revokes the devices you trusted with it.',
    }),
    h('div', { class: 'form-error', role: 'alert', id: 'passkeys-error' }),
    h('ul', { class: 'passkey-list', id: 'passkey-list', 'aria-live': 'polite' }),
    h(
      'form',
      { class: 'form', id: 'passkey-add-form', novalidate: true },
      h('div', { class: 'form-error', role: 'alert', 'data-form-error': true }),
      h(
        'div',
        { class: 'field' },
        h('label', { for: 'passkey-name' }, 'Name ', h('span', { class: 'optional', text: '(optional)' })),
        h('input', { id: 'passkey-name', name: 'name', type: 'text', maxlength: '100', placeholder: 'e.g. YubiKey or this laptop', autocomplete: 'off' }),
      ),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn btn-primary', id: 'passkey-add', 'data-busy-text': 'Waiting for your key…' }, 'Add a passkey or security key')),
    ),
  );
  $('#view-security section.card').after(card);
  $('#passkey-add-form').addEventListener('submit', onAdd);
  if (!webauthnSupported()) {
    $('#passkey-add-form').hidden = true;
    $('#passkeys-error').append(h('p', { text: 'This browser cannot use passkeys or security keys.' }));
  }
}

/** Hook: the security page was entered. */
export async function passkeysSecurityEntered() {
  $('#passkeys-error').replaceChildren();
  clearFormError($('#passkey-add-form'));
  await loadList();
}

async function loadList() {
  const list = $('#passkey-list');
  try {
    const credentials = await listPasskeys();
    list.replaceChildren(...(credentials.length === 0 ? [h('li', { class: 'muted', text: 'None yet.' })] : credentials.map(item)));
  } catch (error) {
    $('#passkeys-error').replaceChildren(h('p', { text: describeError(error) }));
  }
}

function item(credential) {
  const used = credential.last_used_at ? `last used ${formatRelative(credential.last_used_at)}` : 'never used';
  const kind = credential.discoverable === false ? 'Security key' : credential.device_type === 'multi_device' ? 'Synced passkey' : 'Passkey';
  const name = h('strong', { class: 'passkey-name', text: credential.name });
  const rename = h('button', { type: 'button', class: 'btn btn-link', text: 'Rename', 'aria-label': `Rename ${credential.name}` });
  const remove = h('button', { type: 'button', class: 'btn btn-link btn-danger-link', text: 'Remove', 'aria-label': `Remove ${credential.name}`, 'data-busy-text': 'Removing…' });
  const li = h(
    'li',
    { class: 'passkey-item', 'data-credential-id': credential.id },
    h('div', {}, name, h('p', { class: 'muted', text: `${kind} · added ${formatDate(credential.created_at)} · ${used}` })),
    h('div', { class: 'actions' }, rename, remove),
  );
  rename.addEventListener('click', async () => {
    const next = window.prompt('New name', credential.name)?.trim();
    if (!next || next === credential.name) return;
    try {
      await renamePasskey(credential.id, next);
      hooks.announce('Renamed.');
      await loadList();
    } catch (error) {
      $('#passkeys-error').replaceChildren(h('p', { text: describeError(error) }));
    }
  });
  remove.addEventListener('click', async () => {
    const ok = await hooks.confirm({
      title: `Remove ${credential.name}?`,
      text: 'Devices you trusted with it will ask for a second factor again. If it is your last second factor, two-step verification turns off and every trusted device is revoked.',
      confirm: 'Remove',
    });
    if (!ok) return;
    await withBusy(remove, async () => {
      try {
        // A sensitive action (docs/step-up.md): without a recent second factor, one is asked for inline first.
        const result = await withStepUp(remove, () => removePasskey(credential.id));
        hooks.announce(
          result.mfa_enabled
            ? `Removed. ${result.devices_revoked} trusted device${result.devices_revoked === 1 ? '' : 's'} revoked.`
            : 'Removed. Two-step verification is now off and your trusted devices were revoked.',
        );
        await loadList();
        hooks.onFactorsChanged();
      } catch (error) {
        if (!stepUpCancelled(error)) $('#passkeys-error').replaceChildren(h('p', { text: describeError(error) }));
      }
    });
  });
  return li;
}

async function onAdd(event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  clearFormError(form);
  await withBusy(form.querySelector('[type=submit]'), async () => {
    try {
      const credential = await withStepUp(form, () => addPasskey(form.elements.namedItem('name').value.trim()));
      form.reset();
      hooks.announce(`${credential.name} added. You can use it at the second step${credential.discoverable === false ? '' : ', or to sign in without your password'}.`);
      await loadList();
      hooks.onFactorsChanged();
    } catch (error) {
      if (stepUpCancelled(error)) return;
      showFormError(form, error, { field: /** @type {any} */ (error)?.code === 'VALIDATION_ERROR' ? 'name' : undefined });
    }
  });
}
