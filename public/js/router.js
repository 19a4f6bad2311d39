/**
 * Hash router: #/login, #/signup, #/mfa, #/trust, #/devices, #/security.
 * Views are <section>s in index.html; the router shows one at a time, lets
 * the view fill itself (`enter`), sets the document title and moves focus to
 * the view's heading (or the field the view names), so keyboard and screen
 * reader users land at the start of the new content.
 */
import { currentUser, isSignedIn } from './session.js';
import { $ } from './dom.js';
import { state } from './state.js';
import { APP_NAME, clearFlash } from './ui.js';

/**
 * @typedef {{title: string, enter: () => void, nav?: boolean, focus?: string}} View
 * nav: a signed-in page in the main navigation; focus: selector to focus instead of the h1
 */

/** @type {Record<string, View>} */
const VIEWS = {};

export function registerView(route, view) {
  VIEWS[route] = view;
}

function routeFromHash() {
  const match = /^#\/([a-z-]*)/.exec(location.hash);
  return match ? match[1] : location.hash ? null : '';
}

function guard(route) {
  const signedIn = isSignedIn();
  if (!(route in VIEWS)) return signedIn ? 'devices' : 'login';
  if ((route === 'login' || route === 'signup') && signedIn) return 'devices';
  if (route === 'mfa' && !state.pendingMfa) return signedIn ? 'devices' : 'login';
  if (route === 'trust' && !state.pendingTrust) return signedIn ? 'devices' : 'login';
  if (VIEWS[route].nav && !signedIn) return 'login';
  return route;
}

export function go(route) {
  if (location.hash === `#/${route}`) render();
  else location.hash = `#/${route}`;
}

export function currentRoute() {
  return routeFromHash();
}

function render() {
  const requested = routeFromHash();
  if (requested === null) return; // an in-page anchor, not a route
  const route = guard(requested);
  if (route !== requested) {
    location.replace(`#/${route}`);
    return;
  }
  state.renderSeq += 1;
  const view = VIEWS[route];
  $('#boot').hidden = true;
  for (const section of /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll('.view'))) section.hidden = section.id !== `view-${route}`;
  document.title = `${view.title} · ${APP_NAME}`;
  updateNav(route);
  if (state.flashSticky) state.flashSticky = false;
  else clearFlash();
  view.enter();
  const target = view.focus ? $(view.focus) : null;
  if (target instanceof HTMLElement && !target.closest('[hidden]')) target.focus();
  else if (state.booted) focusHeading(route);
  state.booted = true;
}

function focusHeading(route) {
  $(`#view-${route} h1`)?.focus({ preventScroll: false });
  window.scrollTo({ top: 0 });
}

function updateNav(route) {
  const nav = $('#nav');
  nav.hidden = !(isSignedIn() && VIEWS[route].nav);
  $('#account').hidden = nav.hidden;
  for (const link of /** @type {NodeListOf<HTMLAnchorElement>} */ (nav.querySelectorAll('a[data-route]'))) {
    if (link.dataset.route === route) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const user = currentUser();
  $('#nav-user').textContent = user ? user.display_name || user.email || '' : '';
}

export function startRouter() {
  window.addEventListener('hashchange', render);
  render();
}
