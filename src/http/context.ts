import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.ts';
import type { AuthService } from '../auth/auth.service.ts';
import type { DevicesService, RequestDevice } from '../devices/devices.service.ts';
import type { MfaService } from '../mfa/mfa.service.ts';
import type { AccountMail } from '../account/account-mail.ts';
import type { AccountService } from '../account/account.service.ts';
import type { SessionsService } from '../sessions/sessions.service.ts';

/** What route plugins receive: the services and the per-request helpers. */
export interface RouteContext {
  config: Readonly<Config>;
  auth: AuthService;
  mfa: MfaService;
  devices: DevicesService;
  /** Account email: verification, reset, report (src/account). */
  account: AccountService;
  /** Queues account mail (alerts); never throws. */
  accountMail: AccountMail;
  sessions: SessionsService;
  requestDevice(request: FastifyRequest): RequestDevice;
  authenticate(request: FastifyRequest, reply: FastifyReply): Promise<void>;
}
