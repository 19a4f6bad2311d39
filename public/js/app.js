/**
 * Trusted Devices web app: the entry module (no build step).
 *
 * Wires the page-wide parts (log out, skip link, confirm dialog, password
 * visibility toggles), registers one module per view with the router
 * (views/*.js, sharing state.js and session.js, the session over the TypeScript client), restores a
 * sign-in from the refresh cookie in a new tab, and starts routing.
 */
import { logout, restoreSession, saveSession, setSessionExpiredHandler, takeStartupReason } from './session.js';
import { $, withBusy } from './dom.js';
import { collectFingerprint } from './vendor/trusted-devices-browser.js';
import { showPasswordPolicy } from './password-policy.js';
import { go, registerView, startRouter } from './router.js';
import { resetState, state } from './state.js';
import { announce, confirmDialog, flash, wireConfirmDialog } from './ui.js';
import { describeError, signedOutSentence } from './errors.js';
import { devicesView, EVENT_LABELS } from './views/devices.js';
import { loginView } from './views/login.js';
import { mfaView } from './views/mfa.js';
import { PASSKEY_EVENT_LABELS, setupPasskeys } from './views/passkeys.js';
import { hideBackupCodes, loadMfaStatus, securityView } from './views/security.js';
import { signupView } from './views/signup.js';
import { trustView } from './views/trust.js';
import { forgotPasswordView } from './views/forgot.js';
import { reportView } from './views/report.js';
import { resetPasswordView } from './views/reset.js';
import { verifyEmailView } from './views/verify-email.js';

const VIEWS = {
  login: loginView,
  signup: signupView,
  mfa: mfaView,
  trust: trustView,
  devices: devicesView,
  security: securityView,
  // Pages reached from the links in account mail (docs/email.md).
  'forgot-password': forgotPasswordView,
  'reset-password': resetPasswordView,
  'verify-email': verifyEmailView,
  report: reportView,
};

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
    view.wire?.();
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
  wirePasskeys();
  setSessionExpiredHandler((reason) => {
    resetSignedInState();
    flash(signedOutSentence(reason), 'error');
    go('login');
  });
}

/** Passkeys (views/passkeys.js) end where a code would: at the same trust prompt or signed in. */
function wirePasskeys() {
  Object.assign(EVENT_LABELS, PASSKEY_EVENT_LABELS);
  setupPasskeys({
    pendingMfa: () => state.pendingMfa,
    onSignedIn(data, how) {
      state.pendingMfa = null;
      saveSession(data);
      if (data?.trusted_device?.activation_token) {
        state.pendingTrust = data.trusted_device;
        go('trust');
        return;
      }
      flash(how === 'passwordless' && data?.trusted_device_id ? 'Welcome back. Signed in with your passkey on a trusted device.' : 'You’re signed in.');
      go('devices');
    },
    onMfaTokenGone(error) {
      state.pendingMfa = null;
      flash(describeError(error), 'error');
      go('login');
    },
    onFactorsChanged: () => void loadMfaStatus(),
    announce,
    confirm: confirmDialog,
  });
}

wire();
void collectFingerprint(); // warm up: the first sign-in should not wait for the canvas hash
void showPasswordPolicy();
restoreSession()
  .then((signedIn) => {
    // A session that ended while the browser was away: say why on the sign-in page.
    const reason = signedIn ? undefined : takeStartupReason();
    if (reason) flash(signedOutSentence(reason), 'error');
  })
  .finally(startRouter);
