import { Type } from 'typebox';
import { NAME, ref } from '../../platform/http/envelope.ts';

const TotpCode = Type.String({ pattern: '^[0-9]{6}$', description: 'A current 6-digit TOTP code.' });

export const SetupBody = Type.Union([
  Type.Object({ device_name: Type.Optional(Type.String({ minLength: 1, maxLength: 100, pattern: NAME })) }, { additionalProperties: false }),
  Type.Null(),
], { examples: [{ device_name: 'Ann’s phone' }] });
export const CodeBody = Type.Object({ code: TotpCode }, { additionalProperties: false, examples: [{ code: '123456' }] });
export const DeactivateBody = Type.Object(
  { code: Type.Optional(TotpCode), password: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })) },
  { additionalProperties: false, description: 'Either a current TOTP code or the account password (exactly one).', oneOf: [{ required: ['code'] }, { required: ['password'] }], examples: [{ code: '123456' }] },
);

export const SetupData = Type.Object({
  secret: Type.String({ description: 'Base32 TOTP secret.' }),
  otpauth_url: Type.String(),
  qr_code: Type.String({ description: 'data:image/png;base64,…' }),
  manual_entry_key: Type.String(),
});
export const BackupCodesData = Type.Object({
  mfa_enabled: Type.Literal(true),
  backup_codes: Type.Array(Type.String(), { minItems: 10, maxItems: 10 }),
  sessions_ended: Type.Integer({ description: 'Other sessions signed out (MFA turned on)' }),
});
export const RegeneratedData = Type.Object({ backup_codes: Type.Array(Type.String(), { minItems: 10, maxItems: 10 }), devices_revoked: Type.Integer() });
export const MfaStatus = Type.Object(
  { mfa_enabled: Type.Boolean(), methods: Type.Array(Type.String()), backup_codes_remaining: Type.Integer() },
  { $id: 'MfaStatus' },
);
export const StatusData = ref(MfaStatus);
export const DeactivatedData = Type.Object({
  mfa_enabled: Type.Boolean({ description: 'Still true when passkeys or security keys remain.' }),
  devices_revoked: Type.Integer(),
  sessions_ended: Type.Integer(),
});
