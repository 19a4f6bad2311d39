/**
 * Where mail goes: an SMTP server (SMTP_URL, via nodemailer) or, in the
 * embedded default, one `.eml` file per message in DATA_DIR/outbox/.
 *
 * Both build the same RFC 5322 message with nodemailer (plain-text and HTML
 * alternatives). The file transport logs the address and the subject only:
 * the body carries a single-use link and never reaches a log. Files are
 * written 0600 under a 0700 directory, atomically (temp file + rename), and
 * named after the outbox id, so a retried message replaces its file instead
 * of adding a second one.
 *
 * SMTP timeouts are well below the sender's claim lease (src/features/account/mail.sender.ts),
 * so a hung server cannot make two instances send one message.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import type nodemailerModule from 'nodemailer';

/** nodemailer is loaded when the first transport is made: a process that never mails does not carry its ~2 MB of heap. */
let loaded: typeof nodemailerModule | undefined;
const nodemailer = () => (loaded ??= createRequire(import.meta.url)('nodemailer') as typeof nodemailerModule);

export interface OutgoingMail {
  /** The outbox id, also sent as the X-Mail-Id header (not a secret). */
  id: string;
  to: string;
  subject: string;
  text: string;
  html: string;
}

export interface MailTransport {
  readonly kind: 'smtp' | 'file';
  send(mail: OutgoingMail): Promise<void>;
  close(): void;
}

export const SMTP_TIMEOUTS = { connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 20_000 } as const;

const message = (from: string, mail: OutgoingMail) => ({
  from,
  to: mail.to,
  subject: mail.subject,
  text: mail.text,
  html: mail.html,
  headers: { 'X-Mail-Id': mail.id, 'Auto-Submitted': 'auto-generated' },
});

export function createSmtpTransport(smtpUrl: string, from: string): MailTransport {
  // No pooling: the sender sends small batches every few seconds; a fresh connection each time survives server restarts.
  const transporter = nodemailer().createTransport({ url: smtpUrl, ...SMTP_TIMEOUTS } as never);
  return {
    kind: 'smtp',
    async send(mail) {
      await transporter.sendMail(message(from, mail));
    },
    close: () => transporter.close(),
  };
}

export function createFileTransport(directory: string, from: string, log: FastifyBaseLogger): MailTransport {
  // Made on the first mail: the embedded default starts without nodemailer in memory.
  let builder: ReturnType<typeof nodemailerModule.createTransport> | undefined;
  let ready: Promise<unknown> | undefined;
  return {
    kind: 'file',
    async send(mail) {
      ready ??= mkdir(directory, { recursive: true, mode: 0o700 });
      await ready;
      builder ??= nodemailer().createTransport({ streamTransport: true, buffer: true, newline: 'unix' });
      const info = await builder.sendMail(message(from, mail));
      const file = join(directory, `${mail.id}.eml`);
      const temporary = `${file}.tmp`;
      await writeFile(temporary, info.message as Buffer, { mode: 0o600 });
      await rename(temporary, file);
      log.info({ mailId: mail.id, to: mail.to, subject: mail.subject }, 'mail written to the outbox directory');
    },
    close: () => builder?.close(),
  };
}

export function createMailTransport(config: { smtpUrl: string | undefined; mailFrom: string; dataDir: string }, log: FastifyBaseLogger): MailTransport {
  return config.smtpUrl
    ? createSmtpTransport(config.smtpUrl, config.mailFrom)
    : createFileTransport(join(config.dataDir, 'outbox'), config.mailFrom, log);
}
