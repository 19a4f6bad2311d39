/**
 * The Shared Signals transmitter (docs/integration.md "Shared Signals"):
 * event streams managed by relying services with their admin key (scope
 * `ssf:streams`), the verification event, and poll delivery (RFC 8936). Push
 * delivery is src/features/ssf/ssf.sender.ts; what each event becomes is
 * src/store/ssf-events.ts, written by the one event writer.
 *
 * Ownership: a stream belongs to the admin key that created it. A key reads,
 * changes, verifies, polls and deletes only its own streams; another key's
 * stream id answers 404 as if it did not exist. The SETs' `aud` is the
 * owning key's name (unique forever, like the actor names of the history).
 *
 * Subjects: every stream gets the events of every user (`default_subjects`
 * ALL): the relying services are the operator's own. There is no add/remove
 * subject endpoint.
 *
 * Threats: a receiver reading another's events (ownership above; the SET
 * names only ids, never an email, IP or device name); the push
 * authorization header leaking (encrypted at rest with DATA_ENCRYPTION_KEY,
 * bound to the stream id, never returned or logged); a flood of streams (at
 * most SSF_MAX_STREAMS); a poll receiver acknowledging what is not its own
 * (an ack names jtis of the polled stream only).
 */
import { type Clock, SECOND } from '../../platform/clock.ts';
import type { Encryptor } from '../../platform/crypto/encryption.ts';
import type { SetSigner } from '../../platform/crypto/security-event-tokens.ts';
import { newTimeOrderedId } from '../../platform/crypto/tokens.ts';
import { AppError } from '../../platform/errors.ts';
import { setClaims, SSF_EVENT_TYPES, SSF_EVENTS_SUPPORTED } from '../../store/ssf-events.ts';
import { SSF_MAX_STREAMS, SSF_POLL, SSF_PUSH, type SsfRepository, type SsfStream } from '../../store/ssf.repository.ts';

export const SSF_SCOPE = 'ssf:streams';
export const POLL_DEFAULT_MAX_EVENTS = 20;
/** How long a poll with returnImmediately=false waits for a first SET. */
export const POLL_WAIT_MS = 5 * SECOND;
const POLL_RECHECK_MS = 250;

/** The admin key a request came with (src/domain/contracts.ts AdminKeyGate). */
export interface Receiver {
  keyId: string;
  name: string;
}

export interface SsfServiceOptions {
  repository: SsfRepository;
  encryptor: Encryptor;
  signer: SetSigner;
  clock: Clock;
  /** PUBLIC_URL: the issuer, and the base of every URL the metadata names. */
  issuer: string;
  /** Test seam: how a waiting poll sleeps. */
  sleep?: (ms: number) => Promise<void>;
}

export interface DeliveryInput {
  method: string;
  endpoint_url?: string | undefined;
  authorization_header?: string | undefined;
}

export interface StreamInput {
  delivery?: DeliveryInput | undefined;
  events_requested?: string[] | undefined;
  description?: string | undefined;
}

export interface StreamUpdate extends StreamInput {
  stream_id: string;
  iss?: string | undefined;
  aud?: string | string[] | undefined;
  events_supported?: string[] | undefined;
  events_delivered?: string[] | undefined;
}

export interface PollInput {
  maxEvents?: number | undefined;
  returnImmediately?: boolean | undefined;
  ack?: string[] | undefined;
  setErrs?: Record<string, { err: string; description?: string | undefined }> | undefined;
}

const notFound = () => new AppError('NOT_FOUND', 'No such event stream for this key.');
const invalid = (field: string, message: string) => new AppError('VALIDATION_ERROR', undefined, { details: [{ field, message }] });

export function createSsfService(options: SsfServiceOptions) {
  const { repository, encryptor, signer, clock, issuer } = options;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref()));
  const pollUrl = (streamId: string) => `${issuer}/ssf/poll/${streamId}`;

  function configOf(stream: SsfStream) {
    return {
      stream_id: stream.id,
      iss: issuer,
      aud: stream.audience,
      delivery: { method: stream.delivery_method, endpoint_url: stream.delivery_method === SSF_POLL ? pollUrl(stream.id) : stream.endpoint_url! },
      events_supported: [...SSF_EVENTS_SUPPORTED],
      events_requested: JSON.parse(stream.events_requested) as string[],
      events_delivered: JSON.parse(stream.events_delivered) as string[],
      ...(stream.description !== null ? { description: stream.description } : {}),
    };
  }

  /** The stored delivery of a receiver's `delivery` (poll when none is given, as SSF says). */
  function deliveryOf(streamId: string, delivery: DeliveryInput | undefined): Pick<SsfStream, 'delivery_method' | 'endpoint_url' | 'authorization_header'> {
    if (delivery === undefined || delivery.method === SSF_POLL) return { delivery_method: SSF_POLL, endpoint_url: null, authorization_header: null };
    if (delivery.endpoint_url === undefined) throw invalid('delivery.endpoint_url', 'A push stream needs the URL to push to.');
    return {
      delivery_method: SSF_PUSH,
      endpoint_url: delivery.endpoint_url,
      authorization_header: delivery.authorization_header === undefined ? null : encryptor.encrypt(delivery.authorization_header, `ssf:${streamId}`),
    };
  }

  /** Requested URIs the transmitter does not know are ignored (SSF); none asked for: all of them. */
  const delivered = (requested: readonly string[] | undefined) => (requested === undefined ? [...SSF_EVENTS_SUPPORTED] : SSF_EVENTS_SUPPORTED.filter((uri) => requested.includes(uri)));

  async function owned(receiver: Receiver, streamId: string): Promise<SsfStream> {
    const stream = await repository.findOwned(receiver.keyId, streamId);
    if (!stream) throw notFound();
    return stream;
  }

  return {
    metadata() {
      return {
        spec_version: '1_0',
        issuer,
        jwks_uri: `${issuer}/.well-known/jwks.json`,
        delivery_methods_supported: [SSF_PUSH, SSF_POLL],
        configuration_endpoint: `${issuer}/ssf/streams`,
        status_endpoint: `${issuer}/ssf/streams/status`,
        verification_endpoint: `${issuer}/ssf/streams/verify`,
        authorization_schemes: [{ spec_urn: 'urn:ietf:rfc:6750' }],
        default_subjects: 'ALL' as const,
      };
    },

    async create(receiver: Receiver, input: StreamInput) {
      if ((await repository.countStreams()) >= SSF_MAX_STREAMS) throw new AppError('SSF_STREAM_LIMIT');
      const id = newTimeOrderedId(clock.now()).replaceAll('-', '');
      const now = clock.now();
      const row: SsfStream = {
        id,
        admin_key_id: receiver.keyId,
        audience: receiver.name,
        ...deliveryOf(id, input.delivery),
        events_requested: JSON.stringify(input.events_requested ?? [...SSF_EVENTS_SUPPORTED]),
        events_delivered: JSON.stringify(delivered(input.events_requested)),
        description: input.description ?? null,
        status: 'enabled',
        created_at: now,
        updated_at: now,
      };
      await repository.insertStream(row);
      return configOf(row);
    },

    async read(receiver: Receiver, streamId: string | undefined) {
      if (streamId === undefined) return (await repository.listOwned(receiver.keyId)).map(configOf);
      return configOf(await owned(receiver, streamId));
    },

    /** PATCH (`replace` false: what is missing stays) or PUT (`replace` true: what is missing takes its default). */
    async update(receiver: Receiver, input: StreamUpdate, replace: boolean) {
      const stream = await owned(receiver, input.stream_id);
      // Transmitter-supplied fields may be sent back, but must be what they are.
      const current = configOf(stream);
      if (input.iss !== undefined && input.iss !== issuer) throw invalid('iss', 'iss cannot be changed.');
      if (input.aud !== undefined && (Array.isArray(input.aud) ? input.aud.length !== 1 || input.aud[0] !== current.aud : input.aud !== current.aud)) throw invalid('aud', 'aud cannot be changed.');
      if (input.events_delivered !== undefined && JSON.stringify([...input.events_delivered].sort()) !== JSON.stringify([...current.events_delivered].sort())) {
        throw invalid('events_delivered', 'events_delivered is set by the transmitter.');
      }
      const patch: Parameters<SsfRepository['updateOwned']>[2] = { updated_at: clock.now() };
      if (replace || input.delivery !== undefined) Object.assign(patch, deliveryOf(stream.id, input.delivery));
      if (replace || input.events_requested !== undefined) {
        patch.events_requested = JSON.stringify(input.events_requested ?? [...SSF_EVENTS_SUPPORTED]);
        patch.events_delivered = JSON.stringify(delivered(input.events_requested));
      }
      if (replace || input.description !== undefined) patch.description = input.description ?? null;
      if (!(await repository.updateOwned(receiver.keyId, stream.id, patch))) throw notFound();
      if (patch.delivery_method !== undefined && patch.delivery_method !== stream.delivery_method) await repository.retarget(stream.id, patch.delivery_method === SSF_PUSH, clock.now());
      return configOf((await repository.findOwned(receiver.keyId, stream.id)) ?? stream);
    },

    async remove(receiver: Receiver, streamId: string): Promise<void> {
      if (!(await repository.deleteOwned(receiver.keyId, streamId))) throw notFound();
    },

    async status(receiver: Receiver, streamId: string) {
      const stream = await owned(receiver, streamId);
      return { stream_id: stream.id, status: 'enabled' as const };
    },

    /** Queues a verification SET on the stream (pushed or polled like any other). */
    async verify(receiver: Receiver, streamId: string, state: string | undefined): Promise<void> {
      const stream = await owned(receiver, streamId);
      const now = clock.now();
      const jti = newTimeOrderedId(now);
      const claims = setClaims(issuer, stream.audience, jti, jti, now, {
        eventType: SSF_EVENT_TYPES.verification,
        subId: { format: 'opaque', id: stream.id },
        event: state === undefined ? {} : { state },
      });
      await repository.insertSet({ id: jti, stream_id: stream.id, payload: JSON.stringify(claims), created_at: now, next_attempt_at: stream.delivery_method === SSF_PUSH ? now : null });
    },

    /**
     * RFC 8936: acknowledges `ack` (and `setErrs`: the receiver will not
     * take them, so they are not sent again), then returns up to `maxEvents`
     * unacknowledged SETs, oldest first, each signed now. A SET is returned
     * again by every poll until it is acknowledged.
     */
    async poll(receiver: Receiver, streamId: string, input: PollInput) {
      const stream = await owned(receiver, streamId);
      if (stream.delivery_method !== SSF_POLL) throw new AppError('BAD_REQUEST', 'This stream is delivered by push; change its delivery to poll first.');
      const now = clock.now();
      await repository.acknowledge(stream.id, [...(input.ack ?? []), ...Object.keys(input.setErrs ?? {})], now);
      const max = input.maxEvents ?? POLL_DEFAULT_MAX_EVENTS;
      if (max === 0) return { sets: {}, moreAvailable: (await repository.waiting(stream.id, 1)).length > 0 };
      let rows = await repository.waiting(stream.id, max + 1);
      const deadline = Date.now() + POLL_WAIT_MS;
      while (rows.length === 0 && input.returnImmediately === false && Date.now() < deadline) {
        await sleep(POLL_RECHECK_MS);
        rows = await repository.waiting(stream.id, max + 1);
      }
      const sets: Record<string, string> = {};
      for (const row of rows.slice(0, max)) sets[row.id] = signer.sign(row.payload);
      return { sets, moreAvailable: rows.length > max };
    },
  };
}

export type SsfService = ReturnType<typeof createSsfService>;
