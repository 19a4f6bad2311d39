/**
 * One layout for every mail: a plain-text part and an HTML part built from
 * the same content. Every value is escaped in the HTML part; links are only
 * ever built from PUBLIC_URL by the caller. No template takes a password, a
 * TOTP secret or a device token: there is no field for one.
 */

export interface MailContent {
  subject: string;
  /** First line, e.g. "Hello Ada,". */
  greeting: string;
  paragraphs: string[];
  /** Label → value rows (device, browser/OS, IP, time). */
  facts?: Array<[string, string]>;
  action?: { label: string; url: string };
  /** Shown after the action, smaller. */
  footnotes?: string[];
}

export interface RenderedMail {
  subject: string;
  text: string;
  html: string;
}

const escapeHtml = (value: string): string =>
  value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export function renderMail(content: MailContent): RenderedMail {
  const text = [
    content.greeting,
    '',
    ...content.paragraphs.flatMap((p) => [p, '']),
    ...(content.facts?.length ? [...content.facts.map(([k, v]) => `  ${k}: ${v}`), ''] : []),
    ...(content.action ? [`${content.action.label}:`, content.action.url, ''] : []),
    ...(content.footnotes ?? []).flatMap((p) => [p, '']),
    '— Trusted Devices',
    '',
  ].join('\n');

  const facts = content.facts?.length
    ? `<table role="presentation" style="border-collapse:collapse;margin:16px 0">${content.facts
        .map(([k, v]) => `<tr><td style="padding:2px 16px 2px 0;color:#555">${escapeHtml(k)}</td><td style="padding:2px 0"><strong>${escapeHtml(v)}</strong></td></tr>`)
        .join('')}</table>`
    : '';
  const action = content.action
    ? `<p style="margin:24px 0"><a href="${escapeHtml(content.action.url)}" style="background:#1d4ed8;color:#fff;padding:10px 18px;border-radius:6px;text-decoration:none;display:inline-block">${escapeHtml(content.action.label)}</a></p>` +
      `<p style="font-size:13px;color:#555">Or paste this link into your browser:<br><span style="word-break:break-all">${escapeHtml(content.action.url)}</span></p>`
    : '';
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(content.subject)}</title></head>
<body style="font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;line-height:1.5;color:#111;max-width:560px;margin:0 auto;padding:24px">
<p>${escapeHtml(content.greeting)}</p>
${content.paragraphs.map((p) => `<p>${escapeHtml(p)}</p>`).join('\n')}
${facts}
${action}
${(content.footnotes ?? []).map((p) => `<p style="font-size:13px;color:#555">${escapeHtml(p)}</p>`).join('\n')}
<p style="color:#555">— Trusted Devices</p>
</body></html>
`;
  return { subject: content.subject, text, html };
}
