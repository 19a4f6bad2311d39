/**
 * Request and response schemas of passkey registration and management
 * (docs/passkeys.md); the credential JSON shapes are in
 * src/platform/http/webauthn-json.ts.
 */
import { Type } from 'typebox';
import { IsoTime, PRINTABLE } from '../../platform/http/envelope.ts';
import { PublicKeyOptions, REGISTRATION_EXAMPLE, RegistrationResponse } from '../../platform/http/webauthn-json.ts';

const CredentialName = Type.String({ minLength: 1, maxLength: 100, pattern: PRINTABLE });

export const RegisterOptionsBody = Type.Union([Type.Object({}, { additionalProperties: false }), Type.Null()], { examples: [{}] });
export const RegisterVerifyBody = Type.Object(
  { response: RegistrationResponse, name: Type.Optional(CredentialName) },
  { additionalProperties: false, examples: [{ response: REGISTRATION_EXAMPLE, name: 'YubiKey' }] },
);
export const RenameBody = Type.Object({ name: CredentialName }, { additionalProperties: false, examples: [{ name: 'YubiKey' }] });
// Any string: an id that is not a credential's is 404, like an unknown one.
export const CredentialIdParams = Type.Object({ credential_id: Type.String({ maxLength: 100 }) });

export const Credential = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  device_type: Type.Union([Type.Literal('single_device'), Type.Literal('multi_device')], { description: 'multi_device: a synced passkey.' }),
  backed_up: Type.Boolean(),
  discoverable: Type.Union([Type.Boolean(), Type.Null()], { description: 'Can sign in without a password (null: the browser did not say).' }),
  transports: Type.Array(Type.String()),
  created_at: IsoTime,
  last_used_at: Type.Union([IsoTime, Type.Null()]),
});

export const OptionsData = Type.Object({ options: PublicKeyOptions });
export const CredentialData = Type.Object({ credential: Credential });
export const CredentialListData = Type.Object({ credentials: Type.Array(Credential), total_count: Type.Integer() });
export const RemovedData = Type.Object({
  removed: Type.Literal(true),
  devices_revoked: Type.Integer({ description: 'Trusted devices whose trust this credential granted (all of them when MFA turned off).' }),
  sessions_ended: Type.Integer({ description: 'Other sessions signed out because MFA turned off; 0 otherwise.' }),
  mfa_enabled: Type.Boolean(),
});
