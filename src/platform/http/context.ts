import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.ts';
import type { AuthService } from '../../features/auth/auth.service.ts';
import type { DevicesService, RequestDevice } from '../../features/devices/devices.service.ts';
import type { MfaService } from '../../features/mfa/mfa.service.ts';
import type { AccountMail } from '../../features/account/account-mail.ts';
import type { AccountService } from '../../features/account/account.service.ts';
import type { SessionsService } from '../../features/sessions/sessions.service.ts';

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
