/**
 * The response envelope of SPEC §2 as TypeBox schemas. Routes declare
 * `response: withErrors({ 200: success(Data) })`; fast-json-stringify then
 * compiles one serializer per status, which also guarantees that no field
 * outside the schema (a hash, a secret) can ever reach a client.
 */
import { Type, type TSchema } from 'typebox';

export const ErrorEnvelope = Type.Object(
  {
    success: Type.Literal(false),
    error: Type.Object({
      code: Type.String({ description: 'Stable, UPPER_SNAKE error code.' }),
      message: Type.String(),
      details: Type.Optional(Type.Unknown()),
      request_id: Type.String(),
    }),
  },
  { $id: 'ErrorEnvelope', description: 'Every error, including 404, 429 and 500.' },
);

export const success = <T extends TSchema>(data: T, description = 'Success') =>
  Type.Object({ success: Type.Literal(true), data, message: Type.String() }, { description });

export const NoContent = Type.Null({ description: 'No content' });

export function withErrors<R extends Record<number, TSchema>>(responses: R) {
  const errorRef = Type.Ref('ErrorEnvelope');
  return { ...responses, '4xx': errorRef, '5xx': errorRef };
}

export function ok<T>(data: T, message = 'OK'): { success: true; data: T; message: string } {
  return { success: true, data, message };
}

/**
 * No control characters (NUL included) in text that is stored or looked up:
 * PostgreSQL refuses NUL in text, SQLite would store it; both databases must
 * answer alike.
 */
export const PRINTABLE = '^[^\\u0000-\\u001f\\u007f]*$';

export const IsoTime = Type.String({ format: 'date-time', examples: ['2026-01-01T12:00:00.000Z'] });
export const iso = (ms: number): string => new Date(ms).toISOString();
export const isoOrNull = (ms: number | null): string | null => (ms === null ? null : iso(ms));
