/**
 * The response envelope (README "API overview") as TypeBox schemas. Routes declare
 * `response: withErrors({ 200: success(Data) })`; fast-json-stringify then
 * compiles one serializer per status, which also guarantees that no field
 * outside the schema (a hash, a secret) can ever reach a client.
 */
import { type Static, Type, type TSchema, type TUnknown } from 'typebox';
import type { ErrorCode } from '../errors.ts';

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

/**
 * A `$ref` to a named component schema (one with a `$id`, registered by
 * src/app/openapi.ts) that keeps the schema's static type for the route
 * handlers. The OpenAPI document then shows `#/components/schemas/<$id>`, so
 * generated clients get named types.
 */
export function ref<T extends TSchema>(schema: T) {
  const id = (schema as { $id?: unknown }).$id;
  if (typeof id !== 'string') throw new Error('ref() needs a schema with a $id');
  return Type.Unsafe<Static<T>>(Type.Ref(id));
}

export const NoContent = Type.Null({ description: 'No content' });

/** Where withErrors() leaves a route's declaration for ./error-responses.ts (a symbol: Fastify and the document never see it). */
export const DECLARED_ERRORS = Symbol('declared error codes');

export interface ErrorDeclaration {
  /** The route's own codes (EMAIL_TAKEN, DEVICE_NOT_FOUND, …); the generic ones are added from the route itself. */
  codes?: readonly ErrorCode[];
  /** False for the few routes that never touch storage (no 503 SERVICE_UNAVAILABLE). */
  storage?: boolean;
}

/**
 * A route's responses: its success responses plus, per status, the error
 * codes it can answer with. The route names only its own codes; the generic
 * ones (VALIDATION_ERROR for any input, UNAUTHORIZED for a bearer route,
 * RATE_LIMITED for a limited one, the body's 400/413/415, 500 and 503) are
 * added by ./error-responses.ts from the route's schema and config, and every
 * status becomes one documented response whose `code` is an enum of exactly
 * those codes (messages from the ERRORS catalogue).
 */
export function withErrors<R extends Record<number, TSchema>>(responses: R, codes: readonly ErrorCode[] = [], options: Omit<ErrorDeclaration, 'codes'> = {}) {
  // For the handlers' types, error replies stay what they were (any envelope, sent by the error handler); the real statuses are written at onRoute.
  return { ...responses, [DECLARED_ERRORS]: { codes, ...options } satisfies ErrorDeclaration } as unknown as R & { '4xx': TUnknown; '5xx': TUnknown };
}

export function ok<T>(data: T, message = 'OK'): { success: true; data: T; message: string } {
  return { success: true, data, message };
}

/**
 * No control characters (NUL included) in text that is stored or looked up:
 * PostgreSQL refuses NUL in text, SQLite would store it; both databases must
 * answer alike. The patterns are portable (no lookaround, no surrogate
 * ranges, which validators outside JavaScript refuse). A lone UTF-16
 * surrogate (JSON allows "\ud800") is not text either: it cannot be encoded
 * as UTF-8 and would be stored as U+FFFD. That rule is not a pattern but
 * code, for every string of every body (`refuseLoneSurrogates` in
 * ./validation.ts), and the document says so in its description.
 */
export const PRINTABLE = '^[^\\u0000-\\u001f\\u007f]*$';

/** A name people read (device names, the authenticator label): printable and not only white space. */
export const NAME = '^[^\\u0000-\\u001f\\u007f]*[^\\s\\u0000-\\u001f\\u007f][^\\u0000-\\u001f\\u007f]*$';

export const IsoTime = Type.String({ format: 'date-time', examples: ['2026-01-01T12:00:00.000Z'] });
const DAY_MS = 86_400_000;
const MAX_4_DIGIT_YEAR_MS = 253_402_300_800_000; // 10000-01-01: beyond it toISOString writes a 6-digit year
const dayPrefixes = new Map<number, string>();
const pad2 = (n: number) => (n < 10 ? `0${n}` : `${n}`);
const pad3 = (n: number) => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : `${n}`);

/**
 * Epoch milliseconds → `2026-01-01T12:00:00.000Z`, equal to
 * `new Date(ms).toISOString()` (the tests compare them). A device list
 * formats 20 timestamps and a Date per call cost ~1.4 µs each here, so the
 * calendar part is formatted once per day and the time of day is arithmetic.
 */
export function iso(ms: number): string {
  if (!Number.isInteger(ms) || ms < 0 || ms >= MAX_4_DIGIT_YEAR_MS) return new Date(ms).toISOString();
  const day = Math.floor(ms / DAY_MS);
  let prefix = dayPrefixes.get(day);
  if (prefix === undefined) {
    if (dayPrefixes.size >= 4096) dayPrefixes.clear();
    prefix = new Date(day * DAY_MS).toISOString().slice(0, 11);
    dayPrefixes.set(day, prefix);
  }
  let rest = ms - day * DAY_MS;
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = Math.floor(rest / 1000);
  return `${prefix}${pad2(hours)}:${pad2(minutes)}:${pad2(seconds)}.${pad3(rest - seconds * 1000)}Z`;
}
