import { Type } from 'typebox';
import { p256PublicJwk } from '../../platform/http/jwk.ts';
import { NAME } from '../../platform/http/envelope.ts';
import { Device, EventsData, EventsQuery } from '../../domain/views/device.ts';

export { Device, EventsData, EventsQuery };

// Any string: an id that is not a device UUID is answered 404 DEVICE_NOT_FOUND, like an unknown one.
export const DeviceId = Type.Object({ device_id: Type.String() });
const DeviceName = Type.String({ minLength: 1, maxLength: 100, pattern: NAME, description: 'Printable, not only white space.' });

// 1024: room for any token a client may send by mistake (an ES256 access token is ~600
// characters), so a wrong token is the same 404 as an unknown one, not a 422.
const ActivationToken = Type.String({ minLength: 1, maxLength: 1024 });
/**
 * A public JWK. Extra members are kept (not stripped) so that the service can
 * refuse a private key (`d`) instead of silently storing its public half;
 * src/platform/crypto/device-keys.ts checks the shape strictly.
 */
export const PublicKeyJwk = p256PublicJwk('The public half of the device key: an EC P-256 JWK for ES256.');

export const ActivateBody = Type.Object(
  {
    activation_token: ActivationToken,
    device_name: Type.Optional(DeviceName),
    public_key: Type.Optional(PublicKeyJwk),
  },
  {
    additionalProperties: false,
    examples: [
      {
        activation_token: 'tda_from-the-mfa-answer',
        device_name: 'Work laptop',
        public_key: { kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' },
      },
    ],
  },
);
export const SkipBody = Type.Object({ activation_token: ActivationToken }, { additionalProperties: false, examples: [{ activation_token: 'tda_from-the-mfa-answer' }] });
export const RenameBody = Type.Object({ device_name: DeviceName }, { additionalProperties: false, examples: [{ device_name: 'Work laptop' }] });


export const ActivateData = Type.Object({ device: Device, device_token: Type.String({ description: 'Shown once; browsers also get it as an HttpOnly cookie.' }) });
export const SkipData = Type.Object({ skipped: Type.Literal(true) });
export const ListData = Type.Object({ devices: Type.Array(Device), total_count: Type.Integer() });
export const RevokedData = Type.Object({ revoked: Type.Literal(true), sessions_ended: Type.Integer({ description: 'Sessions opened on the device, signed out with it' }) });
export const RevokedAllData = Type.Object({ revoked_count: Type.Integer(), sessions_ended: Type.Integer() });
export const DeviceData = Type.Object({ device: Device });
