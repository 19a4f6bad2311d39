/**
 * #/trust: "Remember this device for N days?" after a verified code.
 * "Trust this device" only reports success once the server recognises this
 * browser as the trusted device (GET /devices shows it with is_current), i.e.
 * the browser really kept the HttpOnly device cookie. If it did not (a Secure
 * cookie on a plain-http page that is not localhost), the page says why
 * instead of "This device is now trusted".
 *
 * The icon is this device's kind (phone, tablet, computer). Before the choice,
 * the page says plainly when trust here would be weaker: no device key can be
 * kept (plain http on a host other than localhost has no WebCrypto and no
 * passkeys; some private modes have no usable IndexedDB), so the trust would
 * rest on the cookie alone.
 */
import { api, currentUser } from '../session.js';
import { createDeviceKey, deviceKeyProblem } from '../device-key.js';
import { $, clearFormError, h, showFormError, withBusy } from '../dom.js';
import { deviceTypeOf, formatDate, formatTime } from '../format.js';
import { go } from '../router.js';
import { state } from '../state.js';
import { APP_NAME, deviceIcon, deviceKind, flash } from '../ui.js';

export const trustView = {
  title: 'Remember this device?',
  enter,
  wire() {
    $('#trust-form').addEventListener('submit', onTrust);
    $('#trust-no').addEventListener('click', onSkip);
  },
};

function trustDays(device) {
  const days = Number(device?.trust_ttl_days);
  return Number.isFinite(days) && days > 0 ? days : null;
}

/**
 * Phone, tablet or computer: the server's device_type of this sign-in (the
 * one device cards show), else this browser's User-Agent, the way history rows
 * are typed. An iPad presents a Mac User-Agent but has a touch screen.
 */
function kindOfThisDevice(device) {
  const type = device?.device_type;
  if (type === 'mobile' || type === 'tablet') return type;
  const ua = navigator.userAgent;
  if (/Macintosh/.test(ua) && navigator.maxTouchPoints > 1) return 'tablet';
  return type === 'desktop' ? 'desktop' : deviceKind(deviceTypeOf(ua));
}

const WEAKER = {
  insecure:
    'This connection isn’t secure (plain http), so this browser can’t keep a device key or use passkeys here. Trusting it relies on a cookie alone: anyone who copies this browser’s cookies could skip the code. For stronger trust, open this site over https.',
  unsupported:
    'This browser can’t keep a device key here (private browsing, or site storage is off). Trusting it relies on a cookie alone: anyone who copies this browser’s cookies could skip the code.',
};

/** Says, before the choice, when trust here would be weaker (no device key): public/js/device-key.js. */
async function showWeakerTrust(seq) {
  const box = $('#trust-weaker');
  box.hidden = true;
  const problem = await deviceKeyProblem();
  if (seq !== state.renderSeq || problem === null) return;
  box.textContent = WEAKER[problem];
  box.hidden = false;
}

function enter() {
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
  const kind = kindOfThisDevice(device);
  $('#trust-icon').replaceChildren(deviceIcon(kind));
  $('#trust-icon').dataset.kind = kind;
  $('#trust-device-summary').replaceChildren(deviceIcon(kind, 'icon icon-sm'), h('span', { text: device?.device_name || 'This browser' }));
  void showWeakerTrust(state.renderSeq);
  form.device_name.value = device?.device_name ?? '';
  form.device_name.placeholder = device?.device_name ?? '';
  $('#trust-deadline').textContent = device?.expires_at
    ? `You can decide until ${formatTime(device.expires_at)}. After that, this device won’t be remembered.`
    : '';
  showChoice(true);
}

function showChoice(on) {
  $('#trust-actions').hidden = !on;
  $('#trust-name-field').hidden = !on;
  $('#trust-deadline').hidden = !on;
  $('#trust-continue-actions').hidden = on;
}

const TERMINAL = new Set(['ACTIVATION_TOKEN_EXPIRED', 'ACTIVATION_TOKEN_USED', 'ACTIVATION_TOKEN_NOT_FOUND', 'FINGERPRINT_MISMATCH', 'DEVICE_NOT_REMEMBERED']);

async function onTrust(event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.currentTarget);
  const pending = state.pendingTrust;
  if (!pending) return go('devices');
  clearFormError(form);
  const name = form.device_name.value.trim();
  if (name.length > 100) return showFormError(form, 'Use at most 100 characters for the name.', { field: 'device_name' });
  const body = { activation_token: pending.activation_token };
  if (name) body.device_name = name;
  await withBusy($('#trust-yes'), async () => {
    try {
      // Bind the trust to a non-extractable key of this browser when it can hold one (public/js/device-key.js).
      const key = await createDeviceKey(currentUser()?.email ?? '');
      if (key) body.public_key = key.publicJwk;
      const data = await api('POST', '/devices/activate', { body });
      if (key) await key.save();
      await confirmRecognised(data?.device?.id);
      state.pendingTrust = null;
      const until = data?.device?.expires_at;
      flash(until ? `This device is now trusted until ${formatDate(until)}.` : 'This device is now trusted.');
      go('devices');
    } catch (error) {
      onError(form, error);
    }
  });
}

/**
 * Ask the server whether it recognises this browser as the new device. The
 * answer is is_current, which the server computes from the device cookie the
 * browser sent: false means the cookie was dropped.
 */
async function confirmRecognised(deviceId) {
  const list = await api('GET', '/devices');
  const mine = (list?.devices ?? []).find((d) => d.id === deviceId);
  if (mine?.is_current) return;
  // Not revoked from here: this session is attached to the new device, and
  // revoking it would sign this tab out too. The list shows it, never as "This device".
  throw { code: 'DEVICE_NOT_REMEMBERED' };
}

async function onSkip() {
  const form = $('#trust-form');
  const pending = state.pendingTrust;
  if (!pending) return go('devices');
  clearFormError(form);
  await withBusy($('#trust-no'), async () => {
    try {
      await api('POST', '/devices/skip', { body: { activation_token: pending.activation_token } });
    } catch (error) {
      if (!TERMINAL.has(error?.code)) return onError(form, error);
      // Already expired or answered: nothing will be remembered either way.
    }
    state.pendingTrust = null;
    flash('OK. This device won’t be remembered; you’ll be asked for a code next time you sign in here.');
    go('devices');
  });
}

function onError(form, error) {
  showFormError(form, error);
  if (TERMINAL.has(error?.code)) {
    state.pendingTrust = null;
    showChoice(false);
    $('#trust-continue').focus();
  }
}
