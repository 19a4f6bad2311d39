/**
 * Trusted Devices web app: the entry module (no build step).
 *
 * Wires the page-wide parts (log out, skip link, confirm dialog, password
 * visibility toggles), registers one module per view with the router
 * (views/*.js, sharing state.js and the API client api.js), restores a
 * sign-in from the refresh cookie in a new tab, and starts routing.
 */
import { logout, restoreSession, setSessionExpiredHandler } from './api.js';
import { $, withBusy } from './dom.js';
import { collectFingerprint } from './fingerprint.js';
import { showPasswordPolicy } from './password-policy.js';
import { go, registerView, startRouter } from './router.js';
import { resetState } from './state.js';
import { flash, wireConfirmDialog } from './ui.js';
import { devicesView } from './views/devices.js';
import { loginView } from './views/login.js';
import { mfaView } from './views/mfa.js';
import { hideBackupCodes, securityView } from './views/security.js';
import { signupView } from './views/signup.js';
import { trustView } from './views/trust.js';

const VIEWS = { login: loginView, signup: signupView, mfa: mfaView, trust: trustView, devices: devicesView, security: securityView };

function resetSignedInState() {
  resetState();
  $('#device-list').replaceChildren();
  $('#event-list').replaceChildren();
  hideBackupCodes();
}

async function onLogout(event) {
  const button = /** @type {HTMLButtonElement} */ (event.currentTarget);
  await withBusy(button, async () => {
    try {
      await logout();
    } catch {
      // Signing out locally is what matters; the server-side session expires anyway.
    }
    resetSignedInState();
    flash('You’re signed out.');
    go('login');
  });
}

function wire() {
  for (const [route, view] of Object.entries(VIEWS)) {
    registerView(route, view);
    view.wire();
  }
  wireConfirmDialog();
  $('#logout-button').addEventListener('click', onLogout);
  for (const toggle of document.querySelectorAll('[data-toggle-password]')) {
    toggle.addEventListener('change', (e) => {
      const box = /** @type {HTMLInputElement} */ (e.currentTarget);
      const target = document.getElementById(box.dataset.togglePassword ?? '');
      if (target instanceof HTMLInputElement) target.type = box.checked ? 'text' : 'password';
    });
  }
  $('#skip-link').addEventListener('click', (e) => {
    e.preventDefault();
    const visible = document.querySelector('.view:not([hidden]) h1');
    if (visible instanceof HTMLElement) visible.focus();
  });
  setSessionExpiredHandler(() => {
    resetSignedInState();
    flash('Your session has ended. Please sign in again.', 'error');
    go('login');
  });
}

wire();
void collectFingerprint(); // warm up: the first sign-in should not wait for the canvas hash
void showPasswordPolicy();
restoreSession().finally(startRouter);
