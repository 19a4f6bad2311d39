/**
 * Shared by the views that mail links open (verify email, reset password,
 * "This wasn't me"): the token arrives in the URL fragment
 * (`#/reset-password?token=…`), which browsers never send to a server. It is
 * read once, kept in memory only, and removed from the address bar and the
 * history entry at once, so it is not left in the history, a bookmark or a
 * screenshot of the address bar.
 */
import { h } from '../dom.js';

/**
 * @param {string} route  the view's route, e.g. 'reset-password'
 * @returns {string|null} the token, or null when the URL carries none
 */
export function takeLinkToken(route) {
  const query = location.hash.split('?')[1] ?? '';
  const token = new URLSearchParams(query).get('token');
  if (query) history.replaceState(history.state, '', `${location.pathname}#/${route}`);
  return token && /^[A-Za-z0-9_-]{10,100}$/.test(token) ? token : null;
}

/**
 * A view section of its own, appended to <main> once: the mail views need
 * nothing in index.html.
 * @param {string} route
 * @param {string} title
 * @returns {{section: HTMLElement, body: HTMLElement}}
 */
export function viewSection(route, title) {
  const heading = h('h1', { id: `${route}-title`, tabindex: '-1', text: title });
  const body = h('div', { class: 'card form' });
  const section = h('section', { id: `view-${route}`, class: 'view view-narrow', 'aria-labelledby': `${route}-title`, hidden: true }, heading, body);
  document.getElementById('main')?.append(section);
  return { section, body };
}

/** A form's alert area, as dom.js's showFormError expects it. */
export const errorBox = () => h('div', { class: 'form-error', role: 'alert', 'data-form-error': true });

/** A final message with a link on (e.g. "Sign in"). */
export function outcome(text, kind = 'success', link = { href: '#/login', text: 'Sign in' }) {
  return [h('p', { class: `notice notice-${kind}`, role: 'status', text }), h('p', { class: 'aside' }, h('a', { href: link.href, text: link.text }))];
}

export const LINK_ERRORS = {
  LINK_INVALID: 'This link isn’t valid. Use the latest link we sent you, or ask for a new one.',
  LINK_USED: 'This link has already been used.',
  LINK_EXPIRED: 'This link has expired. Ask for a new one.',
};
