/**
 * A real SMTP server in the test process (smtp-server), whose messages are
 * parsed with mailparser, and a mail sender wired like src/app/main.ts wires it
 * but on the test app's database, clock and captured log.
 */
import type { AddressInfo } from 'node:net';
import { type ParsedMail, simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { createAccountMailComposer } from '../../src/features/account/account-mail.ts';
import { createAccountRepository } from '../../src/store/account.repository.ts';
import { createMailSender } from '../../src/features/account/mail.sender.ts';
import { createSmtpTransport, type MailTransport } from '../../src/platform/mail/transport.ts';
import { createOutboxRepository } from '../../src/store/mail-outbox.repository.ts';
import { createHistory } from '../../src/store/history.ts';
import type { TestApp } from './app.ts';

export const TEST_PUBLIC_URL = 'http://app.test:8080';
export const TEST_MAIL_FROM = 'Trusted Devices <no-reply@app.test>';

export interface CapturedMail {
  parsed: ParsedMail;
  raw: string;
  to: string;
  subject: string;
  text: string;
  html: string;
  mailId: string;
}

export class TestSmtpServer {
  readonly mails: CapturedMail[] = [];
  private server: SMTPServer | undefined;
  port = 0;

  /** Starts (or restarts, on the same port) the server. */
  async start(): Promise<this> {
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData: (stream, _session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const raw = Buffer.concat(chunks);
          simpleParser(raw)
            .then((parsed) => {
              const to = Array.isArray(parsed.to) ? parsed.to[0]?.text : parsed.to?.text;
              this.mails.push({
                parsed,
                raw: raw.toString('utf8'),
                to: to ?? '',
                subject: parsed.subject ?? '',
                text: parsed.text ?? '',
                html: typeof parsed.html === 'string' ? parsed.html : '',
                mailId: String(parsed.headers.get('x-mail-id') ?? ''),
              });
              callback();
            })
            .catch(callback);
        });
      },
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = ((server as unknown as { server: { address(): AddressInfo } }).server.address()).port;
    this.server = server;
    return this;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  /** Mails to one address, oldest first. */
  to(address: string): CapturedMail[] {
    return this.mails.filter((m) => m.to.toLowerCase() === address.toLowerCase());
  }
}

export function testSender(t: TestApp, transport: MailTransport, instanceId?: string) {
  const db = t.db.handle.db;
  return createMailSender({
    // As src/app/main.ts: sent alerts are recorded (`alert_sent`); no webhook outbox here.
    outbox: createOutboxRepository(db, createHistory({ webhooks: false })),
    transport,
    compose: createAccountMailComposer({ repository: createAccountRepository(db), clock: t.clock, publicUrl: TEST_PUBLIC_URL }),
    clock: t.clock,
    log: t.app.log,
    ...(instanceId ? { instanceId } : {}),
  });
}

export const smtpTransport = (smtp: TestSmtpServer) => createSmtpTransport(smtp.url, TEST_MAIL_FROM);

/** Sends everything due, batch after batch. */
export async function drain(sender: ReturnType<typeof testSender>): Promise<void> {
  for (let i = 0; i < 20; i++) {
    const { sent, failed, dropped } = await sender.runOnce();
    if (sent + failed + dropped === 0) return;
  }
}

/** The token of the first link in a mail's text part that carries one. */
export function linkToken(mail: CapturedMail): string {
  const match = /token=([A-Za-z0-9_%-]+)/.exec(mail.text);
  if (!match) throw new Error(`no link with a token in: ${mail.text}`);
  return decodeURIComponent(match[1]!);
}

export function linkUrl(mail: CapturedMail): string {
  const match = /(https?:\/\/\S*token=\S+)/.exec(mail.text);
  if (!match) throw new Error('no link');
  return match[1]!;
}
