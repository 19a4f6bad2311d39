/**
 * The approximate location of an address as the API shows it (the `Location`
 * component), on every device, session and event (docs/security-center.md).
 */
import { Type } from 'typebox';
import { ref } from '../../platform/http/envelope.ts';
import { GEO_ATTRIBUTION } from '../../platform/geo.ts';

const NullableString = Type.Union([Type.String(), Type.Null()]);

export const LocationSchema = Type.Object(
  {
    city: NullableString,
    region: Type.Union([Type.String(), Type.Null()], { description: 'State, province or region' }),
    country: Type.Union([Type.String(), Type.Null()], { description: 'Country name in English' }),
    country_code: Type.Union([Type.String(), Type.Null()], { description: 'ISO 3166-1 alpha-2' }),
  },
  {
    $id: 'Location',
    description: `Approximate location of an IP address, looked up offline when it was recorded; null for private, reserved or unknown addresses. ${GEO_ATTRIBUTION.text} (${GEO_ATTRIBUTION.url}): show this attribution wherever a location is shown.`,
  },
);
export const NullableLocation = Type.Union([ref(LocationSchema), Type.Null()]);
