/**
 * #/report?token=…: the "This wasn't me" page of a security alert. Opening it
 * changes nothing (mail scanners open links): it asks what the link is about
 * (POST /security/report/details, which only reads) and names that sign-in or
 * device as the mail did. Only a usable link offers the red button; a used or
 * expired one says what happened instead. The session or device is ended only
 * when the person confirms (POST /security/report consumes the link).
 */
import { api } from '../session.js';
import { clearFormError, h, showFormError, withBusy } from '../dom.js';
import { formatDateTime, formatLocation, timeEl } from '../format.js';
import { deviceIcon } from '../ui.js';
import { errorBox, LINK_ERRORS, outcome, takeLinkToken, viewSection } from './link-token.js';

const ROUTE = 'report';
const { body } = viewSection(ROUTE, 'This wasn’t me');
/** @type {string|null} */
let token = null;
/** What the link names ('session' | 'device'), once known: the outcome is worded for it. */
let kind = null;

/**
 * @typedef {{kind: 'session'|'device', name: string, browser: string, os: string, device_type: string,
 *   ip_address: string, location: object|null, at: string, ended_at: string|null}} Subject
 * @typedef {{status: 'usable'|'used'|'expired', used_at: string|null, expires_at: string, subject: Subject|null}} Details
 */

async function enter() {
  token = takeLinkToken(ROUTE) ?? token;
  kind = null;
  if (!token) {
    body.replaceChildren(...outcome('This page needs the “This wasn’t me” link from a security email.', 'error'));
    return;
  }
  body.replaceChildren(h('p', { class: 'loading', text: 'Checking the link…' }));
  /** @type {Details|null} */
  let details = null;
  try {
    details = await api('POST', '/security/report/details', { body: { token }, auth: false });
  } catch (error) {
    if (error?.code === 'LINK_INVALID') {
      token = null;
      body.replaceChildren(...outcome(LINK_ERRORS.LINK_INVALID, 'error'));
      return;
    }
    // Details are a courtesy: without them the page still offers what the link does.
  }
  render(details);
}

/** The device or sign-in the link names: icon, name, then browser/OS, location, IP and time. */
function subjectFacts(subject) {
  const place = formatLocation(subject.location);
  const rows = [
    ['Browser', `${subject.browser} on ${subject.os}`],
    ...(place ? [['Approximate location', place]] : []),
    ['IP address', subject.ip_address],
    [subject.kind === 'session' ? 'Signed in' : 'Trusted', timeEl(subject.at)],
  ];
  return [
    h('p', { class: 'report-subject' }, deviceIcon(subject.device_type), h('span', { text: subject.name })),
    h('dl', { class: 'report-facts' }, ...rows.flatMap(([term, value]) => [h('dt', { text: term }), h('dd', {}, value)])),
    ...(place
      ? [h('p', { class: 'hint report-attribution' }, 'Locations are approximate. ', h('a', { href: 'https://db-ip.com', rel: 'noopener', text: 'IP Geolocation by DB-IP' }))]
      : []),
  ];
}

/** @param {Details|null} details */
function render(details) {
  const subject = details?.subject ?? null;
  const facts = subject ? subjectFacts(subject) : [];
  const isSession = subject?.kind === 'session';
  const what = isSession ? 'session' : 'device';
  kind = subject?.kind ?? null;

  if (details?.status === 'used') {
    token = null;
    const when = subject?.ended_at ?? details.used_at;
    const ended = isSession ? `that session was ended on ${formatDateTime(when)}` : `that device was revoked on ${formatDateTime(when)}`;
    body.replaceChildren(
      h('p', { class: 'notice notice-info', role: 'status', text: `This link was already used: ${ended}. There is nothing more to do here.` }),
      ...facts,
      h('p', { class: 'hint', text: 'If you still don’t recognise it, change your password: whoever used it may know it.' }),
      h('p', { class: 'aside' }, h('a', { href: '#/forgot-password', text: 'Reset your password' })),
    );
    return;
  }
  if (details?.status === 'expired') {
    token = null;
    const already = subject?.ended_at ? ` That ${what} has ended since (${formatDateTime(subject.ended_at)}).` : '';
    body.replaceChildren(
      h('p', { class: 'notice notice-error', role: 'status', text: `This link has expired: “This wasn’t me” links work for 7 days.${already}` }),
      ...facts,
      h('p', {
        class: 'hint',
        text: isSession || !subject
          ? 'If you don’t recognise it, sign in and sign it out from Your devices, then change your password.'
          : 'If you don’t recognise it, sign in and revoke it from Your devices, then change your password.',
      }),
      h('p', { class: 'aside' }, h('a', { href: '#/login', text: 'Sign in' })),
    );
    return;
  }

  const explain = subject?.ended_at
    ? isSession
      ? 'Confirming also stops trusting a device that was trusted from that session, if there is one. Anyone using it will need your password and your second factor again.'
      : 'There is nothing more to end: confirming only closes this link.'
    : isSession
    ? 'We’ll sign that session out, and stop trusting its device if it was trusted from there. Anyone using it will need your password and your second factor again.'
    : 'We’ll stop trusting this device and sign it out. Anyone using it will need your password and your second factor again.';
  const endedAlready = subject?.ended_at
    ? [h('p', { class: 'notice notice-info', text: isSession ? `That session has already ended (${formatDateTime(subject.ended_at)}).` : `That device was already revoked (${formatDateTime(subject.ended_at)}).` })]
    : [];
  body.replaceChildren(
    ...(subject ? [h('p', { text: `The security email was about this ${isSession ? 'sign-in' : 'device'}:` }), ...facts, ...endedAlready] : []),
    h(
      'form',
      { class: 'form', novalidate: true, onsubmit: onSubmit },
      h('p', { text: subject ? explain : 'We’ll stop trusting the device named in the email and sign it out. Anyone using it will need your password and your second factor again.' }),
      h('p', { class: 'hint', text: 'Then change your password: whoever used it may know it.' }),
      errorBox(),
      h('button', {
        type: 'submit',
        class: 'btn btn-danger btn-block',
        id: 'report-confirm',
        'data-busy-text': 'Securing your account…',
        text: isSession ? 'Yes, sign it out' : 'Yes, revoke that device',
      }),
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
      const result = await api('POST', '/security/report', { body: { token }, auth: false });
      token = null;
      const done = result?.device_revoked
        ? kind === 'session'
          ? 'Done: that session was signed out, and the device trusted from it is no longer trusted. Now change your password.'
          : 'Done: that device is no longer trusted and has been signed out. Now change your password.'
        : result?.sessions_ended > 0
          ? 'Done: that session has been signed out. Now change your password.'
          : kind === 'session'
            ? 'That session had already ended, and no device trusted from it is left: nothing more to end. Now change your password.'
            : 'Done: that device had already been revoked and signed out. Now change your password.';
      body.replaceChildren(...outcome(done, 'success', { href: '#/forgot-password', text: 'Reset your password' }));
    } catch (error) {
      showFormError(form, error, { overrides: LINK_ERRORS });
    }
  });
}

export const reportView = { title: 'This wasn’t me', enter };
