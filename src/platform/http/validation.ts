/**
 * Request validation: input is taken as typed (docs/security.md). A JSON body has
 * types, so a number where a string is required is 422, never coerced
 * (`{"code": 135258}` must not become "135258"). The query string and path
 * parameters have no types in HTTP: there, strings are coerced to the
 * schema's type ("?limit=20" → 20).
 *
 * Coercion alone is not enough: ajv 8 skips minimum/maximum on a value it has
 * just coerced, so "?limit=Infinity" (or 1e400) came out as Infinity and
 * reached SQL. Coerced parts are therefore validated twice: once to coerce,
 * once more, strictly, on the typed result.
 */
import { AjvCompiler } from '@fastify/ajv-compiler';

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

const COMMON = { allErrors: true, removeAdditional: true, useDefaults: true };

/** For Fastify's `schemaController.compilersFactory.buildValidator`. */
export function createValidatorFactory(): ReturnType<typeof AjvCompiler> {
  const pool = AjvCompiler() as unknown as (externalSchemas: unknown, options: AjvOptions) => (context: ValidatorContext) => Validate;
  const buildValidator = (externalSchemas: unknown, options: AjvOptions = {}) => {
    const strict = pool(externalSchemas, { ...options, customOptions: { ...options.customOptions, ...COMMON, coerceTypes: false } });
    const coercing = pool(externalSchemas, { ...options, customOptions: { ...options.customOptions, ...COMMON, coerceTypes: 'array' } });
    return (context: ValidatorContext): Validate => {
      const check = strict(context) as Validate;
      if (context.httpPart === 'body') return check;
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
