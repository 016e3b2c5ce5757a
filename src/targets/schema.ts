/**
 * `notify.target/1`: how the swarm subscribes to and publishes on a server (DESIGN.md "Target profiles"). One schema,
 * the types derived from it; load.ts reads files and built-ins through it and names the field path of any error.
 *
 * Strings marked "template" may hold placeholders (template.ts): `{base}`, `{user}`, `{token}`, `{stream}`, `{id}`,
 * `{now}`, `{probe}`, `{payload}` and `{var.NAME}`.
 */
import { z } from 'zod';

export const TARGET_SCHEMA = 'notify.target/1';

/** How a reconnecting subscriber says where it was: `last-event-id` (header), `query:NAME` (the last id or cursor), `none`. */
const resume = z
  .string()
  .regex(/^(?:last-event-id|none|query:[A-Za-z0-9_.~-]+)$/, 'expected last-event-id, none or query:NAME')
  .default('last-event-id');

const headers = z.record(z.string(), z.string());
const eventNames = z.array(z.string().min(1)).min(1);

/**
 * `notify`: the notify serve dialect (init / reset / read / close events, WS `{type, cursor}` envelopes, long-poll
 * `{cursor, notifications}` answers), decoded by the transports' fast path. `generic` (the default): every message
 * is searched for probes wherever they are (probe-find.ts).
 */
const dialect = z.enum(['notify', 'generic']).default('generic');

const sse = z
  .object({
    url: z.string().min(1),
    /** Used instead of `url` when the profile's streams are `[broadcast]` only. */
    broadcastUrl: z.string().min(1).optional(),
    headers: headers.optional(),
    /** SSE event names that carry notifications; default every event. */
    events: eventNames.optional(),
    /** Events whose data is an array of notifications. */
    batchEvents: eventNames.optional(),
    resume,
  })
  .strict();

const ws = z
  .object({
    url: z.string().min(1),
    /** Used instead of `url` when the profile's streams are `[broadcast]` only. */
    broadcastUrl: z.string().min(1).optional(),
    headers: headers.optional(),
    /** WebSocket subprotocols to offer (e.g. `ws+meta.nchan`). */
    protocols: z.array(z.string().min(1)).optional(),
    /**
     * `json` (default): each text frame is a message. `nchan-meta`: nchan's `ws+meta.nchan` frames, `id: <id>` and
     * `content-type:` lines, a blank line, then the message; the id is the cursor.
     */
    frames: z.enum(['json', 'nchan-meta']).default('json'),
    /** Text frames sent after the socket opens (templates). */
    send: z.array(z.string()).optional(),
    resume,
  })
  .strict();

const SOCKETIO_RESERVED = ['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener'];

const socketio = z
  .object({
    url: z.string().min(1),
    /** Used instead of `url` when the profile's streams are `[broadcast]` only. */
    broadcastUrl: z.string().min(1).optional(),
    path: z.string().startsWith('/').default('/socket.io'),
    /** The handshake's `auth` object (templates). */
    auth: z.record(z.string(), z.string()).optional(),
    query: z.record(z.string(), z.string()).optional(),
    headers: headers.optional(),
    /** Event names whose arguments carry notifications; default `notification`. */
    events: eventNames.default(['notification']),
    /** Events emitted after connect, each `[name, ...args]` with string args (templates, JSON-parsed when they are JSON). */
    emit: z
      .array(
        z
          .array(z.string())
          .min(1)
          // socket.io-client throws on emitting these (they are its own): a profile naming one would crash a worker.
          .refine((e) => !SOCKETIO_RESERVED.includes(e[0]!), { message: `must not be an event name Socket.IO reserves (${SOCKETIO_RESERVED.join(', ')})` }),
      )
      .optional(),
    resume: resume.default('none'),
  })
  .strict();

const poll = z
  .object({
    url: z.string().min(1),
    /** Used instead of `url` when the profile's streams are `[broadcast]` only. */
    broadcastUrl: z.string().min(1).optional(),
    headers: headers.optional(),
    resume,
  })
  .strict();

const http = z
  .object({
    method: z.enum(['POST', 'PUT', 'PATCH']).default('POST'),
    /** Templates: {base}, {stream}, {user} on user streams. */
    url: z.string().min(1).optional(),
    userUrl: z.string().min(1).optional(),
    broadcastUrl: z.string().min(1).optional(),
    headers: headers.optional(),
    /** Body templates; default `{payload}`. */
    user: z.string().optional(),
    broadcast: z.string().optional(),
    /** Request bodies for several probes of one stream at once: `array` (one request, a JSON array) or `each`. */
    batch: z.enum(['each', 'array']).default('each'),
    /** Answers that mean accepted; default any 2xx. */
    okStatus: z.array(z.number().int().min(100).max(599)).optional(),
  })
  .strict()
  .refine((h) => h.url !== undefined || (h.userUrl !== undefined && h.broadcastUrl !== undefined), {
    message: 'needs url, or both userUrl and broadcastUrl',
  });

const redis = z
  .object({
    url: z
      .string()
      .regex(/^rediss?:\/\//, 'expected a redis:// URL')
      .default('redis://127.0.0.1:6379'),
    /** Channel templates. */
    user: z.string().min(1),
    broadcast: z.string().min(1),
  })
  .strict();

const nats = z
  .object({
    url: z
      .string()
      .regex(/^(?:nats|tls):\/\//, 'expected a nats:// URL')
      .default('nats://127.0.0.1:4222'),
    /** Subject templates. */
    user: z.string().min(1),
    broadcast: z.string().min(1),
    /** Publish through JetStream (an ack per message) instead of core NATS. */
    jetstream: z.boolean().default(false),
  })
  .strict();

const publish = z
  .object({ http: http.optional(), redis: redis.optional(), nats: nats.optional() })
  .strict()
  .refine((p) => [p.http, p.redis, p.nats].filter((x) => x !== undefined).length === 1, {
    message: 'needs exactly one of http, redis, nats',
  });

export const targetSchema = z
  .object({
    schema: z.literal(TARGET_SCHEMA),
    name: z.string().min(1),
    description: z.string().optional(),
    /** Default values of `{var.NAME}`; `--target-var NAME=VALUE` overrides them. */
    vars: z.record(z.string(), z.string()).optional(),
    dialect,
    /** The streams a subscriber receives. */
    streams: z
      .array(z.enum(['user', 'broadcast']))
      .min(1)
      .refine((s) => new Set(s).size === s.length, 'names a stream twice')
      .default(['user', 'broadcast']),
    subscribe: z
      .object({ sse: sse.optional(), ws: ws.optional(), poll: poll.optional(), socketio: socketio.optional() })
      .strict()
      .refine((s) => Object.values(s).some((v) => v !== undefined), 'needs at least one of sse, ws, poll, socketio'),
    /** The notification each probe travels in (template); `{probe}` must appear in it; `{pad}` is `--payload-bytes`' filler. */
    payload: z.string().default('{"type":"system","title":"swarm probe","body":"{pad}","data":{"probe":{probe}}}'),
    publish,
  })
  .strict();

export type TargetProfile = z.infer<typeof targetSchema>;
export type SubscribeBlocks = TargetProfile['subscribe'];
export type HttpPublish = z.infer<typeof http>;
export type RedisPublish = z.infer<typeof redis>;
export type NatsPublish = z.infer<typeof nats>;
