/** #/verify-email?token=…: confirms the address as soon as the page runs (a harmless, idempotent step). */
import { api, isSignedIn } from '../session.js';
import { describeError } from '../errors.js';
import { h } from '../dom.js';
import { LINK_ERRORS, outcome, takeLinkToken, viewSection } from './link-token.js';

const ROUTE = 'verify-email';
const { body } = viewSection(ROUTE, 'Confirm your email address');
const onward = () => (isSignedIn() ? { href: '#/devices', text: 'Continue' } : { href: '#/login', text: 'Sign in' });

async function enter() {
  const token = takeLinkToken(ROUTE);
  if (!token) {
    body.replaceChildren(...outcome('This page needs the link from your confirmation email.', 'error', onward()));
    return;
  }
  body.replaceChildren(h('p', { class: 'loading', text: 'Confirming…' }));
  try {
    await api('POST', '/auth/email/verify', { body: { token }, auth: false });
    body.replaceChildren(...outcome('Thank you: your email address is confirmed.', 'success', onward()));
  } catch (error) {
    body.replaceChildren(...outcome(describeError(error, LINK_ERRORS), 'error', onward()));
  }
}

export const verifyEmailView = { title: 'Confirm your email address', enter };
