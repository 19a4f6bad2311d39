/** #/forgot-password: ask for a reset link. The answer is the same whether or not the address has an account. */
import { api } from '../session.js';
import { clearFormError, h, showFormError, withBusy } from '../dom.js';
import { errorBox, outcome, viewSection } from './link-token.js';

const ROUTE = 'forgot-password';
const { body } = viewSection(ROUTE, 'Reset your password');

function render() {
  const form = h(
    'form',
    { novalidate: true, onsubmit: onSubmit },
    h('p', { class: 'hint', text: 'Enter the email address of your account. We’ll send you a link to choose a new password.' }),
    errorBox(),
    h('div', { class: 'field' },
      h('label', { for: 'forgot-email', text: 'Email' }),
      h('input', { id: 'forgot-email', name: 'email', type: 'email', autocomplete: 'username', required: true, spellcheck: 'false', autocapitalize: 'off' })),
    h('button', { type: 'submit', class: 'btn btn-primary btn-block', 'data-busy-text': 'Sending…', text: 'Send reset link' }),
  );
  body.replaceChildren(form, h('p', { class: 'aside' }, h('a', { href: '#/login', text: 'Back to sign in' })));
}

/** @param {SubmitEvent} event */
async function onSubmit(event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const email = form.email.value.trim();
  clearFormError(form);
  if (!email) return showFormError(form, 'Enter your email address.', { field: 'email' });
  await withBusy(form.querySelector('[type=submit]'), async () => {
    try {
      await api('POST', '/auth/password/forgot', { body: { email }, auth: false });
      body.replaceChildren(...outcome(`If an account uses ${email}, a link to reset its password is on its way. It works for 30 minutes.`, 'success', { href: '#/login', text: 'Back to sign in' }));
    } catch (error) {
      showFormError(form, error);
    }
  });
}

export const forgotPasswordView = { title: 'Reset your password', enter: render };
