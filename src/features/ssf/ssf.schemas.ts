/**
 * The Shared Signals Framework's own JSON (docs/integration.md "Shared
 * Signals"): transmitter metadata, stream configuration, status,
 * verification, and RFC 8936 poll. These bodies are the SSF ones, not the
 * API's envelope, so any SSF receiver reads them; errors are the usual
 * ErrorEnvelope with an HTTP status the SSF tables name.
 */
import { Type } from 'typebox';
import { PRINTABLE } from '../../platform/http/envelope.ts';

const Uri = Type.String({ minLength: 1, maxLength: 200, pattern: PRINTABLE });
const StreamId = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$', description: 'The stream_id the transmitter gave.' });

export const TransmitterMetadata = Type.Object(
  {
    spec_version: Type.String({ examples: ['1_0'] }),
    issuer: Type.String(),
    jwks_uri: Type.String(),
    delivery_methods_supported: Type.Array(Type.String()),
    configuration_endpoint: Type.String(),
    status_endpoint: Type.String(),
    add_subject_endpoint: Type.String(),
    remove_subject_endpoint: Type.String(),
    verification_endpoint: Type.String(),
    authorization_schemes: Type.Array(Type.Object({ spec_urn: Type.String() })),
    default_subjects: Type.Literal('ALL'),
  },
  { $id: 'SsfTransmitterMetadata', description: 'OpenID Shared Signals transmitter configuration metadata.' },
);

const DeliveryIn = Type.Object(
  {
    method: Type.Union([Type.Literal('urn:ietf:rfc:8935'), Type.Literal('urn:ietf:rfc:8936')], { description: 'Push (RFC 8935) or poll (RFC 8936).' }),
    endpoint_url: Type.Optional(Type.String({ minLength: 1, maxLength: 2000, pattern: '^https?://[^\\s]+$', description: 'Push: where SETs are POSTed. Poll: ignored (the transmitter names it).' })),
    authorization_header: Type.Optional(Type.String({ minLength: 1, maxLength: 2000, pattern: PRINTABLE, description: 'Push: sent as the Authorization header of every POST. Stored encrypted, never shown again.' })),
  },
  { additionalProperties: false },
);

export const StreamConfig = Type.Object(
  {
    stream_id: Type.String(),
    iss: Type.String(),
    aud: Type.String(),
    delivery: Type.Object({ method: Type.String(), endpoint_url: Type.Optional(Type.String()) }),
    events_supported: Type.Array(Type.String()),
    events_requested: Type.Array(Type.String()),
    events_delivered: Type.Array(Type.String()),
    description: Type.Optional(Type.String()),
  },
  { $id: 'SsfStreamConfig', description: 'An event stream (its authorization_header is never shown).' },
);

/** What a receiver supplies (POST), and may send back with the transmitter's own fields (PATCH, PUT). */
const receiverFields = {
  delivery: Type.Optional(DeliveryIn),
  events_requested: Type.Optional(Type.Array(Uri, { maxItems: 20 })),
  description: Type.Optional(Type.String({ maxLength: 200, pattern: PRINTABLE })),
};
const transmitterFields = {
  iss: Type.Optional(Type.String({ maxLength: 2000 })),
  aud: Type.Optional(Type.Union([Type.String({ maxLength: 2000 }), Type.Array(Type.String({ maxLength: 2000 }), { maxItems: 10 })])),
  events_supported: Type.Optional(Type.Array(Uri, { maxItems: 20 })),
  events_delivered: Type.Optional(Type.Array(Uri, { maxItems: 20 })),
};

export const CreateStreamBody = Type.Object(receiverFields, { additionalProperties: false, examples: [{ delivery: { method: 'urn:ietf:rfc:8936' }, description: 'Example relying service' }] });
export const UpdateStreamBody = Type.Object({ stream_id: StreamId, ...receiverFields, ...transmitterFields }, { additionalProperties: false, examples: [{ stream_id: 'from-the-create-answer', description: 'Example relying service' }] });
export const StreamQuery = Type.Object({ stream_id: Type.Optional(StreamId) }, { additionalProperties: false });
export const RequiredStreamQuery = Type.Object({ stream_id: StreamId }, { additionalProperties: false });
const Status = Type.Union([Type.Literal('enabled'), Type.Literal('paused'), Type.Literal('disabled')], {
  description: 'enabled: SETs are delivered. paused: SETs are held and delivered once enabled again. disabled: SETs are dropped.',
});
const Reason = Type.String({ minLength: 1, maxLength: 200, pattern: PRINTABLE, description: "The receiver's reason for the status." });
export const StreamStatus = Type.Object({ stream_id: Type.String(), status: Status, reason: Type.Optional(Type.String()) }, { $id: 'SsfStreamStatus' });
export const UpdateStatusBody = Type.Object(
  { stream_id: StreamId, status: Status, reason: Type.Optional(Reason) },
  { additionalProperties: false, examples: [{ stream_id: 'from-the-create-answer', status: 'paused', reason: 'maintenance' }] },
);

// A subject this transmitter knows: a user of this issuer (RFC 9493 iss_sub; sub = the access tokens' sub).
const IssSub = Type.Object(
  {
    format: Type.Literal('iss_sub'),
    iss: Type.String({ minLength: 1, maxLength: 2000, pattern: PRINTABLE, description: 'This transmitter\'s issuer.' }),
    sub: Type.String({ pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$', description: 'The user id.' }),
  },
  { additionalProperties: false },
);
const Subject = Type.Union([IssSub, Type.Object({ format: Type.Literal('complex'), user: IssSub }, { additionalProperties: false })], {
  description: 'A user: iss_sub with this issuer, alone or as the user of a complex subject.',
});
const subjectExample = { format: 'iss_sub', iss: 'https://auth.example.com', sub: '0190a8a2-7f3c-7c2e-9a51-3c5d2b1e4f60' };
export const AddSubjectBody = Type.Object(
  { stream_id: StreamId, subject: Subject, verified: Type.Optional(Type.Boolean({ description: 'Accepted and ignored: every user of this issuer is known to it.' })) },
  { additionalProperties: false, examples: [{ stream_id: 'from-the-create-answer', subject: subjectExample }] },
);
export const RemoveSubjectBody = Type.Object({ stream_id: StreamId, subject: Subject }, { additionalProperties: false, examples: [{ stream_id: 'from-the-create-answer', subject: subjectExample }] });
export const VerifyBody = Type.Object({ stream_id: StreamId, state: Type.Optional(Type.String({ maxLength: 200, pattern: PRINTABLE })) }, { additionalProperties: false, examples: [{ stream_id: 'from-the-create-answer', state: 'check-1' }] });
export const PollParams = Type.Object({ stream_id: StreamId });

const Jti = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' });
export const PollBody = Type.Object(
  {
    maxEvents: Type.Optional(Type.Integer({ minimum: 0, maximum: 100, description: 'At most this many SETs (default 20; 0: acknowledge only).' })),
    returnImmediately: Type.Optional(Type.Boolean({ description: 'false: wait (up to 5 s here) for a SET when none is waiting.' })),
    ack: Type.Optional(Type.Array(Jti, { maxItems: 100 })),
    setErrs: Type.Optional(
      Type.Record(Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }), Type.Object({ err: Type.String({ maxLength: 100, pattern: PRINTABLE }), description: Type.Optional(Type.String({ maxLength: 500, pattern: PRINTABLE })) }), { maxProperties: 100 }),
    ),
  },
  { additionalProperties: false, examples: [{ maxEvents: 10, returnImmediately: true }] },
);
export const PollResponse = Type.Object(
  { sets: Type.Record(Type.String(), Type.String(), { description: 'jti → the signed SET.' }), moreAvailable: Type.Boolean() },
  { $id: 'SsfPollResponse' },
);
