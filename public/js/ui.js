/** Page-wide UI pieces shared by the views: status messages, the confirm dialog, device icons. */
import { $, h, icon } from './dom.js';
import { state } from './state.js';

export const APP_NAME = 'Trusted Devices';

/** A status message that survives exactly one navigation. */
export function flash(text, kind = 'success') {
  $('#flash').replaceChildren(h('p', { class: `notice notice-${kind}`, text }));
  state.flashSticky = true;
}

export function clearFlash() {
  $('#flash').replaceChildren();
}

/** A status message on the current page (does not survive navigation). */
export function announce(text, kind = 'success') {
  const box = $('#flash');
  box.replaceChildren(h('p', { class: `notice notice-${kind}`, text }));
  if (box.getBoundingClientRect().top < 0) box.scrollIntoView({ block: 'nearest' });
}

/**
 * A modal confirmation (native <dialog>: focus is trapped, Escape cancels).
 * @param {{title: string, text: string, confirm: string, danger?: boolean}} options
 * @returns {Promise<boolean>}
 */
export function confirmDialog({ title, text, confirm, danger = true }) {
  const dialog = /** @type {HTMLDialogElement} */ ($('#confirm-dialog'));
  $('#confirm-title').textContent = title;
  $('#confirm-text').textContent = text;
  const ok = $('#confirm-ok');
  ok.textContent = confirm;
  ok.className = `btn ${danger ? 'btn-danger' : 'btn-primary'}`;
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

export function wireConfirmDialog() {
  const dialog = /** @type {HTMLDialogElement} */ ($('#confirm-dialog'));
  $('#confirm-ok').addEventListener('click', (e) => {
    e.preventDefault();
    dialog.close('ok');
  });
  $('#confirm-cancel').addEventListener('click', (e) => {
    e.preventDefault();
    dialog.close('cancel');
  });
}

const ICON_PATHS = {
  desktop: 'M4 4h16a2 2 0 0 1 2 2v9a2 2 0 0 1-2 2h-6v2h3v2H7v-2h3v-2H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2Zm0 2v9h16V6H4Z',
  mobile: 'M8 2h8a2 2 0 0 1 2 2v16a2 2 0 0 1-2 2H8a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2Zm0 2v14h8V4H8Zm3 15v1h2v-1h-2Z',
  tablet: 'M5 2h14a2 2 0 0 1 2 2v16a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2Zm0 2v14h14V4H5Zm6 15v1h2v-1h-2Z',
};

/** 'mobile' | 'tablet' | 'desktop' for a device_type from the API (anything else counts as desktop). */
export const deviceKind = (type) => (type === 'mobile' || type === 'tablet' ? type : 'desktop');

const KIND_LABEL = { mobile: 'Phone', tablet: 'Tablet', desktop: 'Computer' };

/** The device-type icon (phone / tablet / computer), with its name for screen readers. */
export function deviceIcon(type, className = 'icon') {
  const kind = deviceKind(type);
  return h('span', { class: `device-icon device-icon-${kind}`, role: 'img', 'aria-label': KIND_LABEL[kind] }, icon(ICON_PATHS[kind], className));
}
