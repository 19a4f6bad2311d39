/**
 * Response serialisers: Fastify compiles one fast-json-stringify function per
 * route and status from the response schemas. Every error status of every
 * operation has its own schema (./error-responses.ts: the envelope with
 * `code` limited to that operation's codes, for the document), yet every
 * error body is the same ErrorEnvelope, and a serialiser does not check an
 * enum. So all error statuses share ONE serialiser compiled from the
 * envelope; success statuses keep their own. Measured at start: 589
 * compiled serialisers (2.6 MB of generated source, plus their code) became
 * 68 (docs/performance.md, "Memory").
 */
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler';

interface SerializerContext {
  schema: object;
  method: string;
  url: string;
  httpStatus: string;
}
type Serialize = (data: unknown) => string;
type Compiler = (context: SerializerContext) => Serialize;

/** Statuses answered with the error envelope: 4xx and 5xx, and the ranges `4xx`/`5xx`. */
const isErrorStatus = (status: string) => status.startsWith('4') || status.startsWith('5');

/** For Fastify's `schemaController.compilersFactory.buildSerializer`. */
export function createSerializerFactory() {
  const selector = SerializerSelector() as unknown as (externalSchemas: unknown, options: unknown) => Compiler;
  return (externalSchemas: unknown, options: unknown): Compiler => {
    const compile = selector(externalSchemas, options);
    let envelope: Serialize | undefined;
    return (context) => {
      if (!isErrorStatus(String(context.httpStatus))) return compile(context);
      envelope ??= compile({ ...context, schema: { $ref: 'ErrorEnvelope#' } });
      return envelope;
    };
  };
}
