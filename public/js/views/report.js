/**
 * #/report?token=…: the "This wasn't me" page of a security alert. Opening it
 * changes nothing (mail scanners open links); the device is revoked only
 * when the person confirms.
 */
import { api } from '../session.js';
import { clearFormError, h, showFormError, withBusy } from '../dom.js';
import { errorBox, LINK_ERRORS, outcome, takeLinkToken, viewSection } from './link-token.js';

const ROUTE = 'report';
const { body } = viewSection(ROUTE, 'This wasn’t me');
/** @type {string|null} */
let token = null;

function enter() {
  token = takeLinkToken(ROUTE) ?? token;
  if (!token) {
    body.replaceChildren(...outcome('This page needs the “This wasn’t me” link from a security email.', 'error'));
    return;
  }
  body.replaceChildren(
    h(
      'form',
      { novalidate: true, onsubmit: onSubmit },
      h('p', { text: 'We’ll stop trusting the device named in the email and sign it out. Anyone using it will need your password and your second factor again.' }),
      h('p', { class: 'hint', text: 'Then change your password: whoever used that device may know it.' }),
      errorBox(),
      h('button', { type: 'submit', class: 'btn btn-danger btn-block', id: 'report-confirm', 'data-busy-text': 'Securing your account…', text: 'Yes, revoke that device' }),
    ),
    h('p', { class: 'aside' }, h('a', { href: '#/login', text: 'It was me — do nothing' })),
  );
}

/** @param {SubmitEvent} event */
async function onSubmit(event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  clearFormError(form);
  await withBusy(form.querySelector('[type=submit]'), async () => {
    try {
      await api('POST', '/security/report', { body: { token }, auth: false });
      token = null;
      body.replaceChildren(...outcome('Done: that device is no longer trusted and has been signed out. Now change your password.', 'success', { href: '#/forgot-password', text: 'Reset your password' }));
    } catch (error) {
      showFormError(form, error, { overrides: LINK_ERRORS });
    }
  });
}

export const reportView = { title: 'This wasn’t me', enter };
