import { Type } from 'typebox';
import { PRINTABLE } from '../../platform/http/envelope.ts';
import { NullableLocation } from '../../domain/views/location.ts';

const Token = Type.String({ minLength: 1, maxLength: 512, description: 'The token from the link in the mail.' });

export const TokenBody = Type.Object({ token: Token }, { additionalProperties: false, examples: [{ token: 'tdx_from-the-link-in-the-mail' }] });
export const ForgotBody = Type.Object(
  { email: Type.String({ minLength: 3, maxLength: 254, pattern: PRINTABLE, description: 'The account’s address; trimmed and lower-cased.' }) },
  { additionalProperties: false, examples: [{ email: 'ann@example.com' }] },
);
export const ResetBody = Type.Object(
  { token: Token, new_password: Type.String({ maxLength: 1024 }) },
  { additionalProperties: false, examples: [{ token: 'tdx_from-the-link-in-the-mail', new_password: 'Battery-Staple-8' }] },
);

export const VerifiedData = Type.Object({ email_verified: Type.Literal(true) });
export const ResendData = Type.Object({ email_verified: Type.Boolean({ description: 'True when there was nothing to send: the address is already verified.' }) });
export const AcceptedData = Type.Object({ accepted: Type.Literal(true) });
export const ResetData = Type.Object({ password_reset: Type.Literal(true), devices_revoked: Type.Integer(), sessions_ended: Type.Integer() });
export const ReportData = Type.Object({
  device_id: Type.Union([Type.String(), Type.Null()]),
  device_revoked: Type.Boolean({ description: 'False when the device had already been revoked (its sessions ended with it then).' }),
  sessions_ended: Type.Integer({ description: 'Sessions that were opened on that device and ended now.' }),
});

const IsoTime = Type.String({ format: 'date-time' });
export const ReportDetailsData = Type.Object({
  status: Type.Union([Type.Literal('usable'), Type.Literal('used'), Type.Literal('expired')], { description: 'usable: the page may offer to act; used: the link did its work (or a newer copy of the mail replaced it); expired: past its 7 days.' }),
  used_at: Type.Union([IsoTime, Type.Null()]),
  expires_at: IsoTime,
  subject: Type.Union([
    Type.Object({
      kind: Type.Union([Type.Literal('session'), Type.Literal('device')], { description: 'session: a sign-in alert (the link ends that session and the device trusted from it); device: a trusted-device alert.' }),
      name: Type.String({ description: 'The device name (a trusted device’s current name).' }),
      browser: Type.String(),
      os: Type.String(),
      device_type: Type.String(),
      ip_address: Type.String(),
      location: NullableLocation,
      at: Type.String({ format: 'date-time', description: 'When that session signed in, or when that device was trusted.' }),
      ended_at: Type.Union([IsoTime, Type.Null()], { description: 'When that session ended or that device was revoked; null while it goes on.' }),
    }),
    Type.Null(),
  ]),
});
