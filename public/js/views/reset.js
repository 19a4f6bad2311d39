/** #/reset-password?token=…: choose a new password with the token of a reset mail. */
import { api } from '../session.js';
import { clearFormError, h, showFormError, withBusy } from '../dom.js';
import { errorBox, LINK_ERRORS, outcome, takeLinkToken, viewSection } from './link-token.js';

const ROUTE = 'reset-password';
const PASSWORD_RULE = /^(?=.*[a-z])(?=.*[A-Z])(?=.*\d).{8,128}$/s;
const { body } = viewSection(ROUTE, 'Choose a new password');
/** @type {string|null} */
let token = null;

function enter() {
  token = takeLinkToken(ROUTE) ?? token;
  if (!token) {
    body.replaceChildren(...outcome('This page needs the link from your reset email.', 'error', { href: '#/forgot-password', text: 'Ask for a reset link' }));
    return;
  }
  body.replaceChildren(
    h(
      'form',
      { novalidate: true, onsubmit: onSubmit },
      h('p', { class: 'hint', text: 'Resetting signs you out everywhere and un-trusts every device. Two-step verification stays on.' }),
      errorBox(),
      h('div', { class: 'field' },
        h('label', { for: 'reset-new', text: 'New password' }),
        h('input', { id: 'reset-new', name: 'new_password', type: 'password', autocomplete: 'new-password', required: true, minlength: '8', maxlength: '128', 'aria-describedby': 'reset-new-hint' }),
        h('p', { class: 'hint', id: 'reset-new-hint', text: '8–128 characters, with an upper-case letter, a lower-case letter and a digit.' })),
      h('div', { class: 'field' },
        h('label', { for: 'reset-confirm', text: 'Confirm new password' }),
        h('input', { id: 'reset-confirm', name: 'confirm_password', type: 'password', autocomplete: 'new-password', required: true })),
      h('button', { type: 'submit', class: 'btn btn-primary btn-block', 'data-busy-text': 'Saving…', text: 'Set new password' }),
    ),
  );
}

/** @param {SubmitEvent} event */
async function onSubmit(event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const password = form.new_password.value;
  clearFormError(form);
  if (!PASSWORD_RULE.test(password)) return showFormError(form, 'Choose a password of 8 to 128 characters with an upper-case letter, a lower-case letter and a digit.', { field: 'new_password' });
  if (password !== form.confirm_password.value) return showFormError(form, 'The two passwords don’t match.', { field: 'confirm_password' });
  await withBusy(form.querySelector('[type=submit]'), async () => {
    try {
      await api('POST', '/auth/password/reset', { body: { token, new_password: password }, auth: false });
      token = null;
      body.replaceChildren(...outcome('Your password was changed. Sign in with the new one; you’ll be asked for your second factor.'));
    } catch (error) {
      showFormError(form, error, { overrides: LINK_ERRORS });
    }
  });
}

export const resetPasswordView = { title: 'Choose a new password', enter };
