/**
 * #/devices, one page for "where am I signed in, and what skips the code":
 * - Where you're signed in: GET /sessions grouped by device (trusted or
 *   not), "Sign out" per session and "Sign out everywhere else";
 * - Devices that skip the code: the trusted devices (rename, revoke, revoke
 *   all; revoking also signs the device out, and the dialog says so);
 * - the history, with what each event was about and who did it.
 * Each device shows its type icon, and a detail line (browser and OS
 * versions, first seen) that tells two devices with the same default name
 * ("Chrome on Linux") apart. The page reloads after every action and when
 * the window regains focus, so it never shows a stale name or a "This
 * device" that was revoked elsewhere.
 */
import { api, clearSession, isSignedIn } from '../session.js';
import { $, clearFormError, h, showFormError, srOnly, withBusy } from '../dom.js';
import { describeError } from '../errors.js';
import { browserVersion, formatDate, formatDateTime, formatLocation, formatRelative, osVersion, timeEl } from '../format.js';
import { currentRoute, go } from '../router.js';
import { resetState, state, stillOn } from '../state.js';
import { announce, confirmDialog, deviceIcon, deviceKind, flash } from '../ui.js';
import { stepUpCancelled, withStepUp } from '../step-up.js';

const EVENTS_PAGE = 20;

export const devicesView = {
  title: 'Your devices',
  nav: true,
  enter() {
    $('#devices-error').replaceChildren();
    $('#events-error').replaceChildren();
    const seq = state.renderSeq;
    void loadMfaBanner(seq);
    void refreshDevicesPage(seq);
  },
  wire() {
    $('#revoke-all').addEventListener('click', onRevokeAll);
    $('#sign-out-others').addEventListener('click', onSignOutOthers);
    // Back to this tab or window: show what changed elsewhere (at most every 2 s).
    let last = 0;
    const onReturn = () => {
      if (document.visibilityState !== 'visible' || currentRoute() !== 'devices' || !isSignedIn() || Date.now() - last < 2000) return;
      last = Date.now();
      void refreshDevicesPage(state.renderSeq);
    };
    window.addEventListener('focus', onReturn);
    document.addEventListener('visibilitychange', onReturn);
    $('#events-more').addEventListener('click', async (event) => {
      await withBusy(/** @type {HTMLButtonElement} */ (event.currentTarget), () => loadEvents(state.renderSeq));
    });
  },
};

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
    // This device first, then the most recently used.
    state.devices = (Array.isArray(data?.devices) ? data.devices : []).sort((a, b) => Number(Boolean(b.is_current)) - Number(Boolean(a.is_current)));
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
  const devices = state.devices;
  $('#device-list').replaceChildren(...devices.map(deviceCard));
  $('#devices-empty').hidden = devices.length > 0;
  $('#revoke-all').hidden = devices.length === 0;
}

export function deviceName(device) {
  return device.device_name || [device.browser, device.os].filter(Boolean).join(' on ') || 'Unnamed device';
}

/** "Chrome 131 · Linux x86_64 · first seen 30 Nov 2026": what tells same-named devices apart. */
function deviceDetail(device) {
  const seen = device.created_at || device.trusted_at;
  return [browserVersion(device.user_agent) || device.browser, osVersion(device.user_agent) || device.os, seen ? `first seen ${formatDate(seen)}` : null]
    .filter(Boolean)
    .join(' · ');
}

const TYPE_LABEL = { mobile: 'Phone', tablet: 'Tablet', desktop: 'Computer' };

function deviceCard(device) {
  const name = deviceName(device);
  const kind = deviceKind(device.device_type);
  const browserOs = [device.browser, device.os].filter(Boolean).join(' on ') || 'Unknown';
  const ip = device.last_ip_address || device.ip_address || '—';

  const meta = h(
    'dl',
    { class: 'device-meta' },
    metaRow('Browser and OS', [browserOs, h('span', { class: 'sub', text: TYPE_LABEL[kind] })]),
    metaRow('Last used', device.last_used_at ? timeEl(device.last_used_at, formatRelative(device.last_used_at)) : 'Not used yet'),
    metaRow('Approximate location', formatLocation(device.location) ?? 'Unknown'),
    metaRow('IP address', h('span', { class: 'mono', text: ip })),
    metaRow('Trusted since', timeEl(device.trusted_at || device.created_at, formatDate(device.trusted_at || device.created_at))),
    metaRow('Expires', [timeEl(device.expires_at, formatDate(device.expires_at)), h('span', { class: 'sub', text: formatRelative(device.expires_at) })]),
    // "This browser" only on this browser's own card: another device's key lives in that device's browser.
    metaRow(
      'Key',
      device.key_bound
        ? device.is_current
          ? 'Bound to a key stored in this browser'
          : 'Bound to a key stored in that device’s browser'
        : 'Not bound to a key (a copied cookie could be used)',
    ),
  );

  const titleId = `device-${device.id}-name`;
  const heading = h(
    'div',
    { class: 'device-head' },
    deviceIcon(device.device_type),
    h(
      'div',
      { class: 'device-title' },
      h('h3', { id: titleId, class: 'device-name', text: name }),
      device.is_current ? h('span', { class: 'badge', text: 'This device' }) : null,
      h('p', { class: 'device-detail', text: deviceDetail(device) }),
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

function metaRow(label, value) {
  return h('div', { class: 'meta-row' }, h('dt', { text: label }), h('dd', {}, value));
}

function openRename(card, device, renameButton) {
  if (card.querySelector('.rename-form')) return;
  const inputId = `rename-${device.id}`;
  const input = /** @type {HTMLInputElement} */ (h('input', { id: inputId, name: 'device_name', type: 'text', maxlength: 100, required: true, autocomplete: 'off' }));
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
      ? 'This is the device you are using now. It is signed out at once (you too, here), and signing in here will ask for a code again.'
      : 'It is also signed out at once: every session on it ends, and its next sign-in asks for your password and a code.',
    confirm: 'Revoke device',
  });
  if (!ok) return button.focus();
  await withBusy(button, async () => {
    try {
      const data = await api('DELETE', `/devices/${encodeURIComponent(device.id)}`);
      if (device.is_current) return signedOutHere('This device was revoked and signed out. Signing in here will ask for a code again.');
      const ended = Number(data?.sessions_ended ?? 0);
      announce(`Revoked “${name}”${ended > 0 ? ` and signed it out (${ended} session${ended === 1 ? '' : 's'})` : ''}. It will need a code at its next sign-in.`);
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
  const here = state.devices.some((d) => d.is_current);
  const ok = await confirmDialog({
    title: 'Revoke all trusted devices?',
    text: `Every trusted device is signed out at once and asks for a code at its next sign-in${here ? ', this one included: you will be signed out here too' : ''}.`,
    confirm: 'Revoke all',
  });
  if (!ok) return button.focus();
  await withBusy(button, async () => {
    try {
      // A sensitive action (docs/step-up.md): without a recent second factor, one is asked for inline first.
      const data = await withStepUp(button, () => api('DELETE', '/devices/'));
      const n = Number(data?.revoked_count ?? 0);
      if (here) return signedOutHere(`Revoked ${n} device${n === 1 ? '' : 's'}, this one included, and signed them out.`);
      announce(`Revoked ${n} device${n === 1 ? '' : 's'} and signed ${n === 1 ? 'it' : 'them'} out.`);
    } catch (error) {
      if (!stepUpCancelled(error)) $('#devices-error').replaceChildren(h('p', { text: describeError(error) }));
      return;
    }
    await refreshDevicesPage();
    $('#devices-title').focus();
  });
}

async function refreshDevicesPage(seq = state.renderSeq) {
  await Promise.all([loadSessions(seq), loadDevices(seq)]);
  await loadEvents(seq, { reset: true });
}

/** This browser's session ended by the user's own action: back to Sign in, saying why. */
function signedOutHere(message) {
  clearSession();
  resetState();
  flash(message, 'info');
  go('login');
}

// ───────────────────────────── where you're signed in ─────────────────────────────

const METHOD_LABEL = { none: 'password only', totp: 'password + code', backup_code: 'password + backup code', trusted_device: 'trusted device, no code' };

async function loadSessions(seq) {
  try {
    const data = await api('GET', '/sessions');
    if (!stillOn(seq)) return;
    const sessions = Array.isArray(data?.sessions) ? data.sessions : [];
    $('#session-groups').replaceChildren(...groupByDevice(sessions).map(sessionGroup));
    $('#sign-out-others').hidden = !sessions.some((x) => !x.is_current);
    $('#sessions-error').replaceChildren();
  } catch (error) {
    if (!stillOn(seq)) return;
    $('#sessions-error').replaceChildren(h('p', { text: describeError(error) }));
  }
}

/**
 * Sessions of one trusted device together. A session on an untrusted device
 * is its own group: the server knows no device identity for it, and two
 * machines with the same browser must not look like one. The current one's group first.
 */
function groupByDevice(sessions) {
  /** @type {Map<string, any[]>} */
  const groups = new Map();
  for (const x of sessions) {
    const key = x.device_id ? `device:${x.device_id}` : `session:${x.id}`;
    groups.set(key, [...(groups.get(key) ?? []), x]);
  }
  return [...groups.values()].sort((a, b) => Number(b.some((x) => x.is_current)) - Number(a.some((x) => x.is_current)));
}

function sessionGroup(sessions) {
  const first = sessions[0];
  const trusted = sessions.some((x) => x.device_trusted);
  const titleId = `session-group-${first.id}`;
  return h(
    'li',
    { class: `session-group${sessions.some((x) => x.is_current) ? ' is-current' : ''}`, 'aria-labelledby': titleId },
    h(
      'div',
      { class: 'device-head' },
      deviceIcon(first.device_type),
      h(
        'div',
        { class: 'device-title' },
        h('h3', { id: titleId, class: 'device-name', text: first.device_name }),
        trusted ? h('span', { class: 'badge badge-trusted', text: 'Skips the code' }) : h('span', { class: 'badge badge-plain', text: 'Asks for a code' }),
      ),
    ),
    h('ul', { class: 'session-list' }, [...sessions].sort((a, b) => Number(Boolean(b.is_current)) - Number(Boolean(a.is_current))).map(sessionRow)),
  );
}

function sessionRow(session) {
  const where = [[session.browser, session.os].filter(Boolean).join(' on '), formatLocation(session.location), session.ip_address].filter(Boolean).join(' · ');
  const row = h(
    'li',
    { class: 'session-row' },
    h(
      'div',
      { class: 'session-info' },
      h('p', { class: 'session-where' }, where, session.is_current ? h('span', { class: 'badge', text: 'This session' }) : null),
      h(
        'p',
        { class: 'session-meta' },
        'Signed in ',
        timeEl(session.created_at, formatDateTime(session.created_at)),
        ` (${METHOD_LABEL[session.mfa_method] ?? session.mfa_method}) · active `,
        timeEl(session.last_active_at, formatRelative(session.last_active_at)),
        // docs/sessions.md "Bound sessions": a bound session cannot be refreshed from a copy of its cookie.
        session.bound ? ' · bound to its browser’s key' : ' · not bound to a key',
      ),
    ),
  );
  if (!session.is_current) {
    const button = h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'data-busy-text': 'Signing out…' }, 'Sign out', srOnly(` ${session.device_name}, ${where}`));
    button.addEventListener('click', () => signOutSession(session, button));
    row.append(button);
  }
  return row;
}

async function signOutSession(session, button) {
  await withBusy(button, async () => {
    try {
      await api('DELETE', `/sessions/${encodeURIComponent(session.id)}`);
      announce(`Signed out “${session.device_name}”. It needs to sign in again${session.device_trusted ? ' (it stays trusted: no code needed)' : ''}.`);
    } catch (error) {
      $('#sessions-error').replaceChildren(h('p', { text: describeError(error) }));
      return;
    }
    await refreshDevicesPage();
    $('#sessions-title').setAttribute('tabindex', '-1');
    $('#sessions-title').focus();
  });
}

async function onSignOutOthers() {
  const button = /** @type {HTMLButtonElement} */ ($('#sign-out-others'));
  const ok = await confirmDialog({
    title: 'Sign out everywhere else?',
    text: 'Every other browser and app signed in to your account is signed out at once. You stay signed in here. Trusted devices stay trusted.',
    confirm: 'Sign out everywhere else',
  });
  if (!ok) return button.focus();
  await withBusy(button, async () => {
    try {
      const data = await withStepUp(button, () => api('DELETE', '/sessions?except_current=true'));
      const n = Number(data?.revoked_count ?? 0);
      announce(`Signed out ${n} other session${n === 1 ? '' : 's'}.`);
    } catch (error) {
      if (!stepUpCancelled(error)) $('#sessions-error').replaceChildren(h('p', { text: describeError(error) }));
      return;
    }
    await refreshDevicesPage();
    $('#sessions-title').setAttribute('tabindex', '-1');
    $('#sessions-title').focus();
  });
}

// ───────────────────────────── device history ─────────────────────────────

/** Plain-words labels per event type (passkeys add theirs at start-up). */
export const EVENT_LABELS = {
  activation_created: 'Signed in with a code; offered to remember the device',
  activated: 'Device trusted',
  activation_skipped: 'Chose “Not now”; device not remembered',
  trust_used: 'Signed in without a code (trusted device)',
  fingerprint_mismatch: 'Device didn’t match its record; a code was required',
  proof_failed: 'Device couldn’t prove it holds its key; a code was required',
  reuse_detected: 'An old copy of the device’s token was used; device revoked',
  token_resynced: 'Signed in with an older cookie after a crash; the device proved its key, nothing was revoked',
  session_proof_failed: 'A copy of this browser’s session was used; that session was signed out',
  fingerprint_updated: 'Code entered on a trusted device; its record was updated',
  activation_revoked: 'Offer to remember the device withdrawn',
  signed_in: 'Signed in',
  signed_out: 'Signed out',
  session_revoked: 'Signed out remotely',
  session_expired: 'Signed out after the session expired',
  step_up: 'Confirmed it’s you for a sensitive change',
  revoked: 'Device revoked',
  revoked_all: 'All devices revoked',
  evicted: 'Removed to make room for a newer device',
  expired: 'Trust expired',
  impossible_travel: 'Sign-in from an unusual location (too far from the previous one); a code was required',
};

async function loadEvents(seq, { reset = false } = {}) {
  const list = $('#event-list');
  const more = /** @type {HTMLButtonElement} */ ($('#events-more'));
  if (reset) state.eventsBefore = null;
  const params = new URLSearchParams({ limit: String(EVENTS_PAGE) });
  if (!reset && state.eventsBefore) params.set('before', state.eventsBefore);
  $('#events-loading').hidden = !reset || list.childElementCount > 0;
  try {
    const data = await api('GET', `/security/events?${params}`);
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

/** One line of the security history: the service's own sentence, then who did it, where and when. */
function eventItem(event) {
  const label = event.summary || String(event.kind ?? 'Event').replace(/_/g, ' ');
  const actor = event.actor ?? {};
  // Who did it, by the name of their device (the service falls back to browser and system); nothing for the service itself.
  const by = actor.type === 'admin' ? `by an administrator${actor.name ? ` (${actor.name})` : ''}` : actor.type === 'user' && actor.name ? `by ${actor.name}` : null;
  // What it was about when the sentence does not say and it was not the actor itself (the session another one signed out).
  const subject = event.subject?.name;
  const about = subject && event.kind !== 'alert_sent' && subject !== actor.name && !label.includes(subject) ? subject : null;
  const device = state.devices.find((d) => d.id === (actor.device_id ?? event.subject?.device_id));
  const meta = [about, by, formatLocation(event.location), event.ip_address].filter(Boolean).join(' · ');
  return h(
    'li',
    { class: `event event-${String(event.kind).replace(/[^a-z_]/g, '')}`, tabindex: -1 },
    device ? deviceIcon(device.device_type, 'icon icon-sm') : h('span', { class: 'event-dot', 'aria-hidden': 'true' }),
    h(
      'div',
      { class: 'event-body' },
      h('p', { class: 'event-title', text: label }),
      h('p', { class: 'event-meta' }, meta ? `${meta} · ` : '', timeEl(event.occurred_at, formatDateTime(event.occurred_at))),
    ),
  );
}
