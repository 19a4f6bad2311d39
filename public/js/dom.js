/**
 * Small DOM helpers. Everything user- or server-supplied goes in through
 * textContent / setAttribute, never innerHTML.
 */
import { describeError, fieldProblems } from './errors.js';

/**
 * Create an element. attrs: `class`, `text`, `on<event>` listeners, other
 * attributes (true → present, false/null/undefined → absent).
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** An decorative inline SVG icon from path data. */
export function icon(pathData, className = 'icon') {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('class', className);
  const path = document.createElementNS(SVG_NS, 'path');
  path.setAttribute('d', pathData);
  path.setAttribute('fill', 'currentColor');
  svg.append(path);
  return svg;
}

/**
 * querySelector, typed loosely: ids in index.html are fixed, so callers know the element kind.
 * @param {string} selector
 * @param {ParentNode} [root]
 * @returns {any}
 */
export const $ = (selector, root = document) => root.querySelector(selector);

/** Visually hidden text for screen readers. */
export const srOnly = (text) => h('span', { class: 'sr-only', text });

/**
 * Run `fn` with `button` in its loading state (disabled, aria-busy, busy text).
 * @template T
 * @param {HTMLButtonElement|null} button
 * @param {() => Promise<T>} fn
 * @returns {Promise<T>}
 */
export async function withBusy(button, fn) {
  if (!button) return fn();
  if (button.getAttribute('aria-busy') === 'true') return undefined;
  const label = button.textContent;
  const busyText = button.dataset.busyText;
  button.setAttribute('aria-busy', 'true');
  button.disabled = true;
  if (busyText) button.textContent = busyText;
  try {
    return await fn();
  } finally {
    button.removeAttribute('aria-busy');
    button.disabled = false;
    if (busyText) button.textContent = label;
  }
}

/** Clear a form's error area and field marks. */
export function clearFormError(form) {
  const box = form.querySelector('[data-form-error]');
  if (box) box.replaceChildren();
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
}

/**
 * Show an error in the form's alert area. `error` is a TrustedDevicesError (the client's) or a string;
 * VALIDATION_ERROR details are listed and their inputs marked aria-invalid.
 * @param {HTMLFormElement} form
 * @param {any} error
 * @param {{field?: string}} [options]  field: input name to mark
 */
export function showFormError(form, error, options = {}) {
  clearFormError(form);
  const box = form.querySelector('[data-form-error]');
  const text = typeof error === 'string' ? error : describeError(error);
  const problems = typeof error === 'string' ? [] : fieldProblems(error);
  const marked = [];
  if (options.field) marked.push(options.field);
  for (const p of problems) if (p.field) marked.push(p.field);
  let first = null;
  for (const name of marked) {
    const input = form.elements.namedItem(name);
    if (input instanceof HTMLElement) {
      input.setAttribute('aria-invalid', 'true');
      first ??= input;
    }
  }
  if (box) {
    box.append(h('p', { text }));
    if (problems.length > 0) {
      box.append(h('ul', {}, problems.map((p) => h('li', { text: p.field ? `${humanField(form, p.field)}: ${p.message}` : p.message }))));
    }
  }
  if (first instanceof HTMLInputElement) first.focus();
}

function humanField(form, name) {
  const input = form.elements.namedItem(name);
  if (input instanceof HTMLInputElement && input.labels?.[0]) {
    return input.labels[0].firstChild?.textContent?.trim() || name;
  }
  return name.replace(/_/g, ' ');
}

/** Copy text to the clipboard; falls back to a selection + execCommand where the async API is unavailable. */
export async function copyText(text) {
  try {
    if (navigator.clipboard?.writeText) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // fall through to the legacy path
  }
  const area = /** @type {HTMLTextAreaElement} */ (h('textarea', { class: 'sr-only', readonly: true, 'aria-hidden': 'true' }));
  area.value = text;
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}
