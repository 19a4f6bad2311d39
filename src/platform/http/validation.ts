/**
 * Request validation: input is taken as typed (docs/security.md). A JSON body has
 * types, so a number where a string is required is 422, never coerced
 * (`{"code": 135258}` must not become "135258"). The query string and path
 * parameters have no types in HTTP: there, strings are coerced to the
 * schema's type ("?limit=20" → 20).
 *
 * Unknown body fields are refused, never dropped: a body schema with
 * `additionalProperties: false` answers 422 VALIDATION_ERROR naming each
 * unknown field (a misspelt `displayName` must not be lost silently). The
 * query string keeps ajv's removal of unknown parameters (links and caches
 * add their own: `?utm_source=…`).
 *
 * Coercion alone is not enough: ajv 8 skips minimum/maximum on a value it has
 * just coerced, so "?limit=Infinity" (or 1e400) came out as Infinity and
 * reached SQL. Coerced parts are therefore validated twice: once to coerce,
 * once more, strictly, on the typed result.
 */
import { AjvCompiler } from '@fastify/ajv-compiler';
import type { FastifyInstance } from 'fastify';
import { ValidationError } from '../errors.ts';

interface Validate {
  (data: unknown, context?: unknown): boolean;
  errors?: unknown;
  schemaEnv?: unknown;
}

interface ValidatorContext {
  schema: object;
  method: string;
  url: string;
  httpPart?: string;
}

interface AjvOptions {
  customOptions?: Record<string, unknown>;
  plugins?: unknown[];
}

// verbose: an error carries its keyword's value (a oneOf's alternatives name the fields in the 422's details).
const COMMON = { allErrors: true, useDefaults: true, verbose: true };

/** For Fastify's `schemaController.compilersFactory.buildValidator`. */
export function createValidatorFactory(): ReturnType<typeof AjvCompiler> {
  const pool = AjvCompiler() as unknown as (externalSchemas: unknown, options: AjvOptions) => (context: ValidatorContext) => Validate;
  const buildValidator = (externalSchemas: unknown, options: AjvOptions = {}) => {
    const body = pool(externalSchemas, { ...options, customOptions: { ...options.customOptions, ...COMMON, removeAdditional: false, coerceTypes: false } });
    const strict = pool(externalSchemas, { ...options, customOptions: { ...options.customOptions, ...COMMON, removeAdditional: true, coerceTypes: false } });
    const coercing = pool(externalSchemas, { ...options, customOptions: { ...options.customOptions, ...COMMON, removeAdditional: true, coerceTypes: 'array' } });
    return (context: ValidatorContext): Validate => {
      if (context.httpPart === 'body') return body(context) as Validate;
      const check = strict(context) as Validate;
      const coerce = coercing(context) as Validate;
      const validate: Validate = (data, parent) => {
        for (const step of [coerce, check]) {
          if (!step(data, parent)) {
            validate.errors = step.errors;
            return false;
          }
        }
        validate.errors = null;
        return true;
      };
      // Fastify passes the parent (so ajv can replace a coerced root value) only to functions that carry this.
      validate.schemaEnv = coerce.schemaEnv;
      return validate;
    };
  };
  // Fastify's type names ajv's own function types; this wrapper has their shape (data → boolean, errors).
  return buildValidator as unknown as ReturnType<typeof AjvCompiler>;
}

/**
 * Every string of a JSON body (values and member names) must be well-formed
 * Unicode: a lone surrogate ("\ud800") is refused with 422 naming the field.
 * A rule the schemas cannot say portably, so it is said here once, for every
 * route, before validation (docs/integration.md).
 */
// With the u flag a well-formed pair is one code point, so this matches lone surrogates only.
const LONE_SURROGATE = /[\ud800-\udfff]/u;
const wellFormed = (text: string) => !LONE_SURROGATE.test(text);

export function firstLoneSurrogate(value: unknown, path: string[] = []): string | null {
  if (typeof value === 'string') return wellFormed(value) ? null : path.join('.') || 'body';
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = firstLoneSurrogate(value[i], [...path, String(i)]);
      if (found !== null) return found;
    }
    return null;
  }
  if (value !== null && typeof value === 'object') {
    for (const [key, member] of Object.entries(value)) {
      if (!wellFormed(key)) return [...path, key.replace(/[\ud800-\udfff]/gu, '\ufffd')].join('.');
      const found = firstLoneSurrogate(member, [...path, key]);
      if (found !== null) return found;
    }
  }
  return null;
}

export function refuseLoneSurrogates(app: FastifyInstance): void {
  app.addHook('preValidation', (request, _reply, done) => {
    const body = request.body;
    if (body === null || typeof body !== 'object') return done();
    const field = firstLoneSurrogate(body);
    if (field === null) return done();
    done(new ValidationError([{ field, message: 'must be well-formed Unicode (no lone surrogate)' }]));
  });
}
