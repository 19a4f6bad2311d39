/**
 * Trusted Devices web app: a hash-routed single page (no build step).
 *
 * Routes: #/login, #/signup, #/mfa, #/trust, #/devices, #/security.
 * Views are <section>s in index.html; this module shows one at a time, fills
 * it from the API and moves focus to its heading so keyboard and screen
 * reader users land at the start of the new content.
 */
import {
  api,
  clearSession,
  currentUser,
  isSignedIn,
  refreshToken,
  saveSession,
  setSessionExpiredHandler,
} from './api.js';
import { collectFingerprint } from './fingerprint.js';
import { describeError } from './errors.js';
import { $, clearFormError, copyText, h, icon, showFormError, srOnly, withBusy } from './dom.js';
import { formatDate, formatDateTime, formatRelative, formatTime, summarizeUserAgent, timeEl } from './format.js';
// Account email views (each builds its own section; see public/js/views/link-token.js).
import { forgotPasswordView } from './views/forgot.js';
import { reportView } from './views/report.js';
import { resetPasswordView } from './views/reset.js';
import { verifyEmailView } from './views/verify-email.js';
import { PASSKEY_EVENT_LABELS, passkeyMfaEntered, passkeysSecurityEntered, setupPasskeys } from './views/passkeys.js';

const APP_NAME = 'Trusted Devices';
const PASSWORD_RULE = /^(?=.*[a-z])(?=.*[A-Z])(?=.*\d).{8,128}$/s;
const EVENTS_PAGE = 20;

const ICONS = {
  desktop: 'M4 4h16a2 2 0 0 1 2 2v9a2 2 0 0 1-2 2h-6v2h3v2H7v-2h3v-2H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2Zm0 2v9h16V6H4Z',
  mobile: 'M8 2h8a2 2 0 0 1 2 2v16a2 2 0 0 1-2 2H8a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2Zm0 2v14h8V4H8Zm3 15v1h2v-1h-2Z',
  tablet: 'M5 2h14a2 2 0 0 1 2 2v16a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2Zm0 2v14h14V4H5Zm6 15v1h2v-1h-2Z',
};

/** In-memory state for multi-step flows. Secrets here never touch storage. */
const state = {
  /** @type {{temporary_token: string, methods: string[]}|null} */
  pendingMfa: null,
  /** @type {any} the trusted_device object from /auth/mfa/verify */
  pendingTrust: null,
  useBackupCode: false,
  /** @type {any[]} */
  devices: [],
  /** @type {string|null} */
  eventsBefore: null,
  booted: false,
  flashSticky: false,
  renderSeq: 0,
};

// ───────────────────────────── routing ─────────────────────────────

const VIEWS = {
  login: { title: 'Sign in', enter: enterLogin },
  signup: { title: 'Create your account', enter: enterSignup },
  mfa: { title: 'Two-step verification', enter: enterMfa },
  trust: { title: 'Remember this device?', enter: enterTrust },
  devices: { title: 'Your devices', enter: enterDevices, nav: true },
  security: { title: 'Security', enter: enterSecurity, nav: true },
  'forgot-password': forgotPasswordView,
  'reset-password': resetPasswordView,
  'verify-email': verifyEmailView,
  report: reportView,
};

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
  if (state.booted) focusHeading(route);
  state.booted = true;
}

function focusHeading(route) {
  const heading = $(`#view-${route} h1`);
  heading?.focus({ preventScroll: false });
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

// ───────────────────────────── flash messages ─────────────────────────────

/** A status message that survives exactly one navigation. */
function flash(text, kind = 'success') {
  const box = $('#flash');
  box.replaceChildren(h('p', { class: `notice notice-${kind}`, text }));
  state.flashSticky = true;
}

function clearFlash() {
  $('#flash').replaceChildren();
}

// ───────────────────────────── sign in / sign up ─────────────────────────────

function enterLogin() {
  clearFormError($('#login-form'));
}

async function onLoginSubmit(event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const email = form.email.value.trim();
  const password = form.password.value;
  clearFormError(form);
  if (!email) return showFormError(form, 'Enter your email address.', { field: 'email' });
  if (!password) return showFormError(form, 'Enter your password.', { field: 'password' });
  await withBusy(form.querySelector('[type=submit]'), async () => {
    try {
      const data = await api('POST', '/auth/login', { body: { email, password }, auth: false });
      form.password.value = '';
      afterPasswordStep(data);
    } catch (error) {
      showFormError(form, error);
    }
  });
}

/** Continue after a successful /auth/login answer. */
function afterPasswordStep(data) {
  if (data?.mfa_required) {
    state.pendingMfa = { temporary_token: data.temporary_token, methods: data.methods ?? ['totp', 'backup_code'] };
    state.useBackupCode = false;
    go('mfa');
    return;
  }
  saveSession(data);
  if (data.mfa_bypassed) flash('Welcome back. This device is trusted, so no code was needed.');
  go('devices');
}

function enterSignup() {
  clearFormError($('#signup-form'));
}

async function onSignupSubmit(event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const email = form.email.value.trim();
  const displayName = form.display_name.value.trim();
  const password = form.password.value;
  clearFormError(form);
  if (!email || !form.email.checkValidity()) {
    return showFormError(form, 'Enter a valid email address, like name@example.com.', { field: 'email' });
  }
  if (!PASSWORD_RULE.test(password)) {
    return showFormError(form, { code: 'INVALID_PASSWORD' }, { field: 'password' });
  }
  await withBusy(form.querySelector('[type=submit]'), async () => {
    try {
      const body = { email, password };
      if (displayName) body.display_name = displayName;
      await api('POST', '/auth/signup', { body, auth: false });
    } catch (error) {
      const field = error?.code === 'EMAIL_TAKEN' ? 'email' : error?.code === 'INVALID_PASSWORD' ? 'password' : undefined;
      return showFormError(form, error, { field });
    }
    // The new account has no MFA yet: sign straight in.
    try {
      const data = await api('POST', '/auth/login', { body: { email, password }, auth: false });
      form.reset();
      if (data?.mfa_required) return afterPasswordStep(data);
      saveSession(data);
      flash('Your account is ready. Next, turn on two-step verification so you can trust your devices.');
      go('security');
    } catch {
      form.reset();
      flash('Your account is ready. Sign in to continue.');
      go('login');
    }
  });
}

// ───────────────────────────── second factor ─────────────────────────────

function enterMfa() {
  const form = $('#mfa-form');
  clearFormError(form);
  form.code.value = '';
  form.backup_code.value = '';
  const canBackup = state.pendingMfa?.methods?.includes('backup_code') ?? true;
  $('#mfa-switch').hidden = !canBackup;
  setBackupMode(false);
  passkeyMfaEntered(state.pendingMfa); // passkeys hook
}

function setBackupMode(on) {
  state.useBackupCode = on;
  $('#mfa-code-field').hidden = on;
  $('#mfa-backup-field').hidden = !on;
  $('#mfa-switch').textContent = on ? 'Use a code from your app instead' : 'Use a backup code instead';
}

async function onMfaSubmit(event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  clearFormError(form);
  const pending = state.pendingMfa;
  if (!pending) return go('login');
  const body = { temporary_token: pending.temporary_token };
  if (state.useBackupCode) {
    const backup = form.backup_code.value.trim();
    if (!backup) return showFormError(form, 'Enter one of your backup codes.', { field: 'backup_code' });
    body.backup_code = backup;
  } else {
    const code = totpCodeFrom(form);
    if (code === null) return;
    body.code = code;
  }
  await withBusy(form.querySelector('[type=submit]'), async () => {
    let data;
    try {
      data = await api('POST', '/auth/mfa/verify', { body, auth: false });
    } catch (error) {
      if (error?.code === 'INVALID_TOKEN' || (error?.code === 'TOO_MANY_ATTEMPTS' && error?.status === 429)) {
        // The temporary token is gone (expired, used, or invalidated): start over.
        state.pendingMfa = null;
        flash(describeError(error), 'error');
        go('login');
        return;
      }
      showFormError(form, error, { field: state.useBackupCode ? 'backup_code' : 'code' });
      return;
    }
    state.pendingMfa = null;
    form.reset();
    saveSession(data);
    if (data?.trusted_device?.activation_token) {
      state.pendingTrust = data.trusted_device;
      go('trust');
    } else {
      flash('You’re signed in.');
      go('devices');
    }
  });
}

// ───────────────────────────── remember this device? ─────────────────────────────

function trustDays(device) {
  const days = Number(device?.trust_ttl_days);
  return Number.isFinite(days) && days > 0 ? days : null;
}

function enterTrust() {
  const device = state.pendingTrust;
  const form = $('#trust-form');
  clearFormError(form);
  const days = trustDays(device);
  const period = days ? `${days} day${days === 1 ? '' : 's'}` : null;
  $('#trust-title').textContent = period ? `Remember this device for ${period}?` : 'Remember this device?';
  document.title = `${$('#trust-title').textContent} · ${APP_NAME}`;
  $('#trust-explainer').textContent = period
    ? `If you trust this device, signing in here won’t ask for a code for the next ${period}. Only do this on a device you own and don’t share.`
    : 'If you trust this device, signing in here won’t ask for a code. Only do this on a device you own and don’t share.';
  $('#trust-device-summary').replaceChildren(
    icon(ICONS[device?.device_type] ?? ICONS.desktop, 'icon icon-sm'),
    h('span', { text: device?.device_name || 'This browser' }),
  );
  form.device_name.value = device?.device_name ?? '';
  form.device_name.placeholder = device?.device_name ?? '';
  $('#trust-deadline').textContent = device?.expires_at
    ? `You can decide until ${formatTime(device.expires_at)}. After that, this device won’t be remembered.`
    : '';
  $('#trust-actions').hidden = false;
  $('#trust-name-field').hidden = false;
  $('#trust-deadline').hidden = false;
  $('#trust-continue-actions').hidden = true;
}

const TERMINAL_TRUST_ERRORS = new Set([
  'ACTIVATION_TOKEN_EXPIRED',
  'ACTIVATION_TOKEN_USED',
  'ACTIVATION_TOKEN_NOT_FOUND',
  'FINGERPRINT_MISMATCH',
]);

async function onTrustSubmit(event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const device = state.pendingTrust;
  if (!device) return go('devices');
  clearFormError(form);
  const name = form.device_name.value.trim();
  if (name.length > 100) return showFormError(form, 'Use at most 100 characters for the name.', { field: 'device_name' });
  const body = { activation_token: device.activation_token };
  if (name) body.device_name = name;
  await withBusy($('#trust-yes'), async () => {
    try {
      const data = await api('POST', '/devices/activate', { body });
      state.pendingTrust = null;
      const until = data?.device?.expires_at;
      flash(until ? `This device is now trusted until ${formatDate(until)}.` : 'This device is now trusted.');
      go('devices');
    } catch (error) {
      onTrustError(form, error);
    }
  });
}

async function onTrustSkip() {
  const form = $('#trust-form');
  const device = state.pendingTrust;
  if (!device) return go('devices');
  clearFormError(form);
  await withBusy($('#trust-no'), async () => {
    try {
      await api('POST', '/devices/skip', { body: { activation_token: device.activation_token } });
    } catch (error) {
      if (!TERMINAL_TRUST_ERRORS.has(error?.code)) return onTrustError(form, error);
      // Already expired or answered: nothing will be remembered either way.
    }
    state.pendingTrust = null;
    flash('OK. This device won’t be remembered; you’ll be asked for a code next time you sign in here.');
    go('devices');
  });
}

function onTrustError(form, error) {
  showFormError(form, error);
  if (TERMINAL_TRUST_ERRORS.has(error?.code)) {
    state.pendingTrust = null;
    $('#trust-actions').hidden = true;
    $('#trust-name-field').hidden = true;
    $('#trust-deadline').hidden = true;
    $('#trust-continue-actions').hidden = false;
    $('#trust-continue').focus();
  }
}

// ───────────────────────────── your devices ─────────────────────────────

function enterDevices() {
  $('#devices-error').replaceChildren();
  $('#events-error').replaceChildren();
  const seq = state.renderSeq;
  void loadMfaBanner(seq);
  void loadDevices(seq).then(() => loadEvents(seq, { reset: true }));
}

const stillOn = (seq) => seq === state.renderSeq;

async function loadMfaBanner(seq) {
  try {
    const status = await api('GET', '/mfa/status');
    if (stillOn(seq)) $('#mfa-off-banner').hidden = Boolean(status?.mfa_enabled);
  } catch {
    if (stillOn(seq)) $('#mfa-off-banner').hidden = true;
  }
}

async function loadDevices(seq = state.renderSeq) {
  const list = $('#device-list');
  const loading = $('#devices-loading');
  loading.hidden = list.childElementCount > 0; // keep showing stale cards while reloading
  list.setAttribute('aria-busy', 'true');
  try {
    const data = await api('GET', '/devices');
    if (!stillOn(seq)) return;
    state.devices = Array.isArray(data?.devices) ? data.devices : [];
    renderDevices();
    $('#devices-error').replaceChildren();
  } catch (error) {
    if (!stillOn(seq)) return;
    $('#devices-error').replaceChildren(h('p', { text: describeError(error) }));
    if (state.devices.length === 0) $('#devices-empty').hidden = true;
  } finally {
    loading.hidden = true;
    list.removeAttribute('aria-busy');
  }
}

function renderDevices() {
  const list = $('#device-list');
  const devices = state.devices;
  list.replaceChildren(...devices.map(deviceCard));
  $('#devices-empty').hidden = devices.length > 0;
  $('#revoke-all').hidden = devices.length === 0;
}

function deviceName(device) {
  return device.device_name || [device.browser, device.os].filter(Boolean).join(' on ') || 'Unnamed device';
}

function deviceCard(device) {
  const name = deviceName(device);
  const kind = ICONS[device.device_type] ? device.device_type : 'desktop';
  const type = device.device_type && device.device_type !== 'unknown' ? capitalize(device.device_type) : null;
  const browserOs = [device.browser, device.os].filter(Boolean).join(' on ') || 'Unknown';
  const ip = device.last_ip_address || device.ip_address || '—';

  const meta = h(
    'dl',
    { class: 'device-meta' },
    metaRow('Browser and OS', [browserOs, type ? h('span', { class: 'sub', text: type }) : null]),
    metaRow('Last used', device.last_used_at ? timeEl(device.last_used_at, formatRelative(device.last_used_at)) : 'Not used yet'),
    metaRow('IP address', h('span', { class: 'mono', text: ip })),
    metaRow('Trusted since', timeEl(device.trusted_at || device.created_at, formatDate(device.trusted_at || device.created_at))),
    metaRow('Expires', [timeEl(device.expires_at, formatDate(device.expires_at)), h('span', { class: 'sub', text: formatRelative(device.expires_at) })]),
  );

  const titleId = `device-${device.id}-name`;
  const heading = h(
    'div',
    { class: 'device-head' },
    h('span', { class: `device-icon device-icon-${kind}` }, icon(ICONS[kind])),
    h(
      'div',
      { class: 'device-title' },
      h('h3', { id: titleId, class: 'device-name', text: name }),
      device.is_current ? h('span', { class: 'badge', text: 'This device' }) : null,
    ),
  );

  const renameButton = h('button', { type: 'button', class: 'btn btn-secondary btn-sm' }, 'Rename', srOnly(` ${name}`));
  const revokeButton = h('button', { type: 'button', class: 'btn btn-danger-outline btn-sm' }, 'Revoke', srOnly(` ${name}`));
  const actions = h('div', { class: 'device-actions' }, renameButton, revokeButton);
  const card = h('li', { class: `device-card${device.is_current ? ' is-current' : ''}`, 'aria-labelledby': titleId }, heading, meta, actions);

  renameButton.addEventListener('click', () => openRename(card, device, renameButton));
  revokeButton.addEventListener('click', () => revokeDevice(device, revokeButton));
  return card;
}

const capitalize = (text) => String(text).charAt(0).toUpperCase() + String(text).slice(1);

function metaRow(label, value) {
  return h('div', { class: 'meta-row' }, h('dt', { text: label }), h('dd', {}, value));
}

function openRename(card, device, renameButton) {
  if (card.querySelector('.rename-form')) return;
  const inputId = `rename-${device.id}`;
  const input = /** @type {HTMLInputElement} */ (
    h('input', { id: inputId, name: 'device_name', type: 'text', maxlength: 100, required: true, autocomplete: 'off' })
  );
  input.value = device.device_name ?? '';
  const cancel = h('button', { type: 'button', class: 'btn btn-secondary btn-sm' }, 'Cancel');
  const save = /** @type {HTMLButtonElement} */ (h('button', { type: 'submit', class: 'btn btn-primary btn-sm', 'data-busy-text': 'Saving…' }, 'Save'));
  const form = /** @type {HTMLFormElement} */ (
    h(
      'form',
      { class: 'rename-form form', novalidate: true },
      h('div', { class: 'form-error', role: 'alert', 'data-form-error': true }),
      h('div', { class: 'field' }, h('label', { for: inputId, text: 'New device name' }), input),
      h('div', { class: 'actions' }, save, cancel),
    )
  );
  const close = () => {
    form.remove();
    renameButton.hidden = false;
    renameButton.focus();
  };
  cancel.addEventListener('click', close);
  form.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') close();
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const name = input.value.trim();
    clearFormError(form);
    if (name.length < 1 || name.length > 100) {
      return showFormError(form, 'Enter a name of 1 to 100 characters.', { field: 'device_name' });
    }
    await withBusy(save, async () => {
      try {
        const data = await api('PATCH', `/devices/${encodeURIComponent(device.id)}`, { body: { device_name: name } });
        const updated = data?.device ?? { ...device, device_name: name };
        state.devices = state.devices.map((d) => (d.id === device.id ? { ...d, ...updated } : d));
        renderDevices();
        announce(`Renamed to “${name}”.`);
        // Put focus back on the (re-rendered) card's Rename button.
        const idx = state.devices.findIndex((d) => d.id === device.id);
        $('#device-list').children[idx]?.querySelector('button')?.focus();
      } catch (error) {
        showFormError(form, error, { field: 'device_name' });
      }
    });
  });
  renameButton.hidden = true;
  card.querySelector('.device-actions')?.before(form);
  input.focus();
  input.select();
}

async function revokeDevice(device, button) {
  const name = deviceName(device);
  const ok = await confirmDialog({
    title: `Revoke “${name}”?`,
    text: device.is_current
      ? 'This is the device you are using now. You stay signed in, but your next sign-in here will ask for a code.'
      : 'The next sign-in from that device will ask for a code.',
    confirm: 'Revoke device',
  });
  if (!ok) return button.focus();
  await withBusy(button, async () => {
    try {
      await api('DELETE', `/devices/${encodeURIComponent(device.id)}`);
      announce(`Revoked “${name}”. It will need a code at its next sign-in.`);
    } catch (error) {
      if (error?.code !== 'DEVICE_NOT_FOUND') {
        $('#devices-error').replaceChildren(h('p', { text: describeError(error) }));
        return;
      }
      announce(describeError(error), 'info');
    }
    await refreshDevicesPage();
    $('#devices-title').focus();
  });
}

async function onRevokeAll() {
  const button = /** @type {HTMLButtonElement} */ ($('#revoke-all'));
  const ok = await confirmDialog({
    title: 'Revoke all trusted devices?',
    text: 'Every device, including this one, will ask for a code at its next sign-in. You stay signed in here.',
    confirm: 'Revoke all',
  });
  if (!ok) return button.focus();
  await withBusy(button, async () => {
    try {
      const data = await api('DELETE', '/devices/');
      const n = Number(data?.revoked_count ?? 0);
      announce(`Revoked ${n} device${n === 1 ? '' : 's'}.`);
    } catch (error) {
      $('#devices-error').replaceChildren(h('p', { text: describeError(error) }));
      return;
    }
    await refreshDevicesPage();
    $('#devices-title').focus();
  });
}

async function refreshDevicesPage() {
  const seq = state.renderSeq;
  await loadDevices(seq);
  await loadEvents(seq, { reset: true });
}

/** A status message on the current page (does not survive navigation). */
function announce(text, kind = 'success') {
  const box = $('#flash');
  box.replaceChildren(h('p', { class: `notice notice-${kind}`, text }));
  if (box.getBoundingClientRect().top < 0) box.scrollIntoView({ block: 'nearest' });
}

// ───────────────────────────── device history ─────────────────────────────

const EVENT_LABELS = {
  activation_created: 'Signed in with a code; offered to remember the device',
  activated: 'Device trusted',
  activation_skipped: 'Chose “Not now”; device not remembered',
  trust_used: 'Signed in without a code (trusted device)',
  fingerprint_mismatch: 'Device didn’t match its record; a code was required',
  revoked: 'Device revoked',
  revoked_all: 'All devices revoked',
  evicted: 'Removed to make room for a newer device',
  expired: 'Trust expired',
};

async function loadEvents(seq, { reset = false } = {}) {
  const list = $('#event-list');
  const more = /** @type {HTMLButtonElement} */ ($('#events-more'));
  if (reset) state.eventsBefore = null;
  const params = new URLSearchParams({ limit: String(EVENTS_PAGE) });
  if (!reset && state.eventsBefore) params.set('before', state.eventsBefore);
  $('#events-loading').hidden = !reset || list.childElementCount > 0;
  try {
    const data = await api('GET', `/devices/events?${params}`);
    if (!stillOn(seq)) return;
    const events = Array.isArray(data?.events) ? data.events : [];
    const items = events.map(eventItem);
    if (reset) list.replaceChildren(...items);
    else list.append(...items);
    state.eventsBefore = data?.next_before ?? null;
    more.hidden = !state.eventsBefore;
    $('#events-empty').hidden = list.childElementCount > 0;
    list.hidden = list.childElementCount === 0;
    $('#events-error').replaceChildren();
    if (!reset && items[0]) items[0].focus();
  } catch (error) {
    if (!stillOn(seq)) return;
    $('#events-error').replaceChildren(h('p', { text: describeError(error) }));
  } finally {
    $('#events-loading').hidden = true;
  }
}

function eventItem(event) {
  const label = EVENT_LABELS[event.type] ?? String(event.type ?? 'Event').replace(/_/g, ' ');
  const device = state.devices.find((d) => d.id === event.device_id);
  const who = device ? deviceName(device) : summarizeUserAgent(event.user_agent);
  const meta = [who, event.ip_address].filter(Boolean).join(' · ');
  return h(
    'li',
    { class: `event event-${String(event.type).replace(/[^a-z_]/g, '')}`, tabindex: -1 },
    h('span', { class: 'event-dot', 'aria-hidden': 'true' }),
    h(
      'div',
      { class: 'event-body' },
      h('p', { class: 'event-title', text: label }),
      h('p', { class: 'event-meta' }, meta ? `${meta} · ` : '', timeEl(event.created_at, formatDateTime(event.created_at))),
    ),
  );
}

async function onEventsMore(event) {
  await withBusy(/** @type {HTMLButtonElement} */ (event.currentTarget), () => loadEvents(state.renderSeq));
}

// ───────────────────────────── security ─────────────────────────────

function enterSecurity() {
  for (const id of ['#mfa-status-error', '#mfa-setup-start-error']) $(id).replaceChildren();
  for (const form of document.querySelectorAll('#view-security form')) clearFormError(form);
  // Hidden username fields let password managers match the password forms to the account.
  for (const input of /** @type {NodeListOf<HTMLInputElement>} */ (document.querySelectorAll('[data-current-email]'))) {
    input.value = currentUser()?.email ?? '';
  }
  // A setup left half-way is restarted; backup codes shown once are not kept.
  $('#mfa-setup').hidden = true;
  hideBackupCodes();
  void loadMfaStatus(state.renderSeq);
  void passkeysSecurityEntered(); // passkeys hook
}

async function loadMfaStatus(seq = state.renderSeq) {
  const pill = $('#mfa-status-pill');
  const text = $('#mfa-status-text');
  try {
    const status = await api('GET', '/mfa/status');
    if (!stillOn(seq)) return;
    const on = Boolean(status?.mfa_enabled);
    // Passkeys count as a second factor too: the TOTP controls follow TOTP itself (passkeys hook).
    const totpOn = Array.isArray(status?.methods) ? status.methods.includes('totp') : on;
    pill.textContent = on ? 'On' : 'Off';
    pill.className = `pill ${on ? 'pill-on' : 'pill-off'}`;
    if (on) {
      const left = Number(status?.backup_codes_remaining);
      const codes = Number.isFinite(left)
        ? ` You have ${left} unused backup code${left === 1 ? '' : 's'}${left <= 3 ? '; consider getting new ones' : ''}.`
        : '';
      text.textContent = totpOn
        ? `Signing in asks for a code from your authenticator app, unless the device is trusted.${codes}`
        : 'Signing in asks for your passkey or security key, unless the device is trusted.';
    } else {
      text.textContent = 'Your account is protected by your password only.';
    }
    const setupOpen = !$('#mfa-setup').hidden;
    const codesOpen = !$('#backup-codes-panel').hidden;
    $('#mfa-setup-start').hidden = totpOn || setupOpen;
    $('#mfa-manage').hidden = !totpOn || codesOpen;
    $('#mfa-status-error').replaceChildren();
  } catch (error) {
    if (!stillOn(seq)) return;
    pill.textContent = '?';
    pill.className = 'pill';
    text.textContent = '';
    $('#mfa-status-error').replaceChildren(h('p', { text: describeError(error) }));
  }
}

async function onSetupBegin(event) {
  const button = /** @type {HTMLButtonElement} */ (event.currentTarget);
  $('#mfa-setup-start-error').replaceChildren();
  await withBusy(button, async () => {
    try {
      const data = await api('POST', '/mfa/totp/setup', { body: {} });
      const qr = /** @type {HTMLImageElement} */ ($('#mfa-qr'));
      if (typeof data?.qr_code === 'string' && data.qr_code.startsWith('data:image/')) {
        qr.src = data.qr_code;
        qr.hidden = false;
      } else {
        qr.hidden = true;
      }
      /** @type {HTMLInputElement} */ ($('#setup-key')).value = data?.manual_entry_key || data?.secret || '';
      $('#mfa-setup-start').hidden = true;
      $('#mfa-setup').hidden = false;
      clearFormError($('#mfa-confirm-form'));
      $('#mfa-confirm-form').code.value = '';
      $('#mfa-confirm-code').focus();
      $('#mfa-setup').scrollIntoView({ block: 'start' });
    } catch (error) {
      $('#mfa-setup-start-error').replaceChildren(h('p', { text: describeError(error) }));
      if (error?.code === 'TOTP_ALREADY_ENABLED') void loadMfaStatus();
    }
  });
}

function onSetupCancel() {
  $('#mfa-setup').hidden = true;
  $('#mfa-setup-start').hidden = false;
  /** @type {HTMLImageElement} */ ($('#mfa-qr')).removeAttribute('src');
  /** @type {HTMLInputElement} */ ($('#setup-key')).value = '';
  $('#mfa-setup-begin').focus();
}

/**
 * The 6-digit TOTP code typed into `form.code` (spaces ignored), or null
 * after showing the form error when it is not one.
 * @param {HTMLFormElement} form
 */
function totpCodeFrom(form) {
  const code = form.code.value.replace(/\s+/g, '');
  if (/^\d{6}$/.test(code)) return code;
  showFormError(form, 'Enter the 6 digits shown in your authenticator app.', { field: 'code' });
  return null;
}

async function onSetupConfirm(event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  clearFormError(form);
  const code = totpCodeFrom(form);
  if (code === null) return;
  await withBusy(form.querySelector('[type=submit]'), async () => {
    try {
      const data = await api('POST', '/mfa/totp/verify', { body: { code } });
      form.reset();
      $('#mfa-setup').hidden = true;
      /** @type {HTMLImageElement} */ ($('#mfa-qr')).removeAttribute('src');
      /** @type {HTMLInputElement} */ ($('#setup-key')).value = '';
      announce('Two-step verification is on.');
      showBackupCodes(data?.backup_codes ?? []);
      void loadMfaStatus();
    } catch (error) {
      if (error?.code === 'NO_PENDING_SETUP') onSetupCancel();
      showFormError(form, error, { field: 'code' });
    }
  });
}

function showBackupCodes(codes) {
  const panel = $('#backup-codes-panel');
  $('#backup-codes').replaceChildren(...codes.map((c) => h('li', { text: String(c) })));
  panel.hidden = false;
  $('#mfa-manage').hidden = true;
  panel.focus();
}

function hideBackupCodes() {
  $('#backup-codes').replaceChildren();
  $('#backup-codes-panel').hidden = true;
}

async function onCopyBackupCodes(event) {
  const button = /** @type {HTMLButtonElement} */ (event.currentTarget);
  const codes = [...$('#backup-codes').querySelectorAll('li')].map((li) => li.textContent).join('\n');
  const ok = await copyText(codes);
  button.textContent = ok ? 'Copied' : 'Copy failed: select and copy the codes';
  announce(ok ? 'Backup codes copied to the clipboard.' : 'Could not copy automatically. Select the codes and copy them.', ok ? 'success' : 'error');
  setTimeout(() => {
    button.textContent = 'Copy codes';
  }, 2500);
}

async function onCopySetupKey(event) {
  const button = /** @type {HTMLButtonElement} */ (event.currentTarget);
  const input = /** @type {HTMLInputElement} */ ($('#setup-key'));
  const ok = await copyText(input.value.replace(/\s+/g, ''));
  button.textContent = ok ? 'Copied' : 'Copy failed';
  if (!ok) input.select();
  setTimeout(() => {
    button.textContent = 'Copy key';
  }, 2500);
}

function onBackupCodesDone() {
  hideBackupCodes();
  void loadMfaStatus();
  $('#mfa-card-title').setAttribute('tabindex', '-1');
  $('#mfa-card-title').focus();
}

async function onRegenerate(event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  clearFormError(form);
  const code = totpCodeFrom(form);
  if (code === null) return;
  await withBusy(form.querySelector('[type=submit]'), async () => {
    try {
      const data = await api('POST', '/mfa/backup-codes/regenerate', { body: { code } });
      form.reset();
      form.closest('details')?.removeAttribute('open');
      announce('New backup codes created; the old ones no longer work. Your trusted devices were revoked.');
      showBackupCodes(data?.backup_codes ?? []);
      void loadMfaStatus();
    } catch (error) {
      showFormError(form, error, { field: 'code', overrides: { INVALID_CODE: 'That code isn’t right. Enter the code your app shows now.' } });
    }
  });
}

async function onDeactivate(event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  clearFormError(form);
  const password = form.password.value;
  if (!password) return showFormError(form, 'Enter your password to confirm.', { field: 'password' });
  await withBusy(form.querySelector('[type=submit]'), async () => {
    try {
      await api('POST', '/mfa/deactivate', { body: { password } });
      form.reset();
      form.closest('details')?.removeAttribute('open');
      announce('Two-step verification is off, and your trusted devices were revoked.');
      $('#mfa-manage').hidden = true;
      void loadMfaStatus();
    } catch (error) {
      showFormError(form, error, {
        field: 'password',
        overrides: { INVALID_CREDENTIALS: 'That password isn’t correct.', INVALID_PASSWORD: 'That password isn’t correct.' },
      });
    }
  });
}

async function onPasswordChange(event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  clearFormError(form);
  const current = form.current_password.value;
  const next = form.new_password.value;
  const confirm = form.confirm_password.value;
  if (!current) return showFormError(form, 'Enter your current password.', { field: 'current_password' });
  if (!PASSWORD_RULE.test(next)) return showFormError(form, { code: 'INVALID_PASSWORD' }, { field: 'new_password' });
  if (next !== confirm) return showFormError(form, 'The new passwords don’t match.', { field: 'confirm_password' });
  await withBusy(form.querySelector('[type=submit]'), async () => {
    try {
      const data = await api('POST', '/auth/password/change', { body: { current_password: current, new_password: next } });
      if (data && typeof data === 'object') saveSession(data);
      form.reset();
      announce('Password changed. Your other sessions were signed out and every trusted device was revoked.');
    } catch (error) {
      const wrongCurrent = 'Your current password isn’t correct.';
      const field = error?.code === 'INVALID_PASSWORD' ? 'new_password' : error?.code === 'INVALID_CREDENTIALS' ? 'current_password' : undefined;
      showFormError(form, error, { field, overrides: { INVALID_CREDENTIALS: wrongCurrent, INVALID_CURRENT_PASSWORD: wrongCurrent } });
    }
  });
}

// ───────────────────────────── log out ─────────────────────────────

async function onLogout(event) {
  const button = /** @type {HTMLButtonElement} */ (event.currentTarget);
  await withBusy(button, async () => {
    const token = refreshToken();
    try {
      await api('POST', '/auth/logout', { body: token ? { refresh_token: token } : undefined });
    } catch {
      // Signing out locally is what matters; the server-side session expires anyway.
    }
    resetSignedInState();
    flash('You’re signed out.');
    go('login');
  });
}

function resetSignedInState() {
  clearSession();
  state.pendingMfa = null;
  state.pendingTrust = null;
  state.devices = [];
  state.eventsBefore = null;
  $('#device-list').replaceChildren();
  $('#event-list').replaceChildren();
  hideBackupCodes();
}

// ───────────────────────────── confirm dialog ─────────────────────────────

/** A modal confirmation (native <dialog>: focus is trapped, Escape cancels). */
function confirmDialog({ title, text, confirm }) {
  const dialog = /** @type {HTMLDialogElement} */ ($('#confirm-dialog'));
  $('#confirm-title').textContent = title;
  $('#confirm-text').textContent = text;
  $('#confirm-ok').textContent = confirm;
  return new Promise((resolve) => {
    const onClose = () => {
      dialog.removeEventListener('close', onClose);
      resolve(dialog.returnValue === 'ok');
    };
    dialog.addEventListener('close', onClose);
    dialog.returnValue = '';
    dialog.showModal();
    $('#confirm-cancel').focus();
  });
}

// ───────────────────────────── wiring ─────────────────────────────

function wire() {
  $('#login-form').addEventListener('submit', onLoginSubmit);
  $('#signup-form').addEventListener('submit', onSignupSubmit);
  $('#mfa-form').addEventListener('submit', onMfaSubmit);
  $('#mfa-switch').addEventListener('click', () => {
    setBackupMode(!state.useBackupCode);
    clearFormError($('#mfa-form'));
    $(state.useBackupCode ? '#mfa-backup' : '#mfa-code').focus();
  });
  $('#mfa-cancel').addEventListener('click', () => {
    state.pendingMfa = null;
  });
  $('#trust-form').addEventListener('submit', onTrustSubmit);
  $('#trust-no').addEventListener('click', onTrustSkip);
  $('#revoke-all').addEventListener('click', onRevokeAll);
  $('#events-more').addEventListener('click', onEventsMore);
  $('#mfa-setup-begin').addEventListener('click', onSetupBegin);
  $('#mfa-setup-cancel').addEventListener('click', onSetupCancel);
  $('#mfa-confirm-form').addEventListener('submit', onSetupConfirm);
  $('#setup-key-copy').addEventListener('click', onCopySetupKey);
  $('#backup-codes-copy').addEventListener('click', onCopyBackupCodes);
  $('#backup-codes-done').addEventListener('click', onBackupCodesDone);
  $('#regen-form').addEventListener('submit', onRegenerate);
  $('#deactivate-form').addEventListener('submit', onDeactivate);
  $('#password-form').addEventListener('submit', onPasswordChange);
  $('#logout-button').addEventListener('click', onLogout);
  for (const toggle of document.querySelectorAll('[data-toggle-password]')) {
    toggle.addEventListener('change', (e) => {
      const target = document.getElementById(/** @type {HTMLElement} */ (e.currentTarget).dataset.togglePassword ?? '');
      if (target instanceof HTMLInputElement) target.type = /** @type {HTMLInputElement} */ (e.currentTarget).checked ? 'text' : 'password';
    });
  }
  const dialog = /** @type {HTMLDialogElement} */ ($('#confirm-dialog'));
  $('#confirm-ok').addEventListener('click', (e) => {
    e.preventDefault();
    dialog.close('ok');
  });
  $('#confirm-cancel').addEventListener('click', (e) => {
    e.preventDefault();
    dialog.close('cancel');
  });
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
  window.addEventListener('hashchange', render);
  // passkeys hook: the passkey UI (views/passkeys.js) ends where a code would, at the same trust prompt.
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
    onFactorsChanged: () => void loadMfaStatus(state.renderSeq),
    announce,
    confirm: confirmDialog,
  });
}

wire();
void collectFingerprint(); // warm up: the first sign-in should not wait for the canvas hash
render();
