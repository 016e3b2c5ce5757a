/**
 * The probe publisher a target profile's `publish` block asks for (DESIGN.md "Target profiles"): any HTTP API
 * (http-template.ts), Redis PUBLISH (redis.ts) or NATS (nats.ts). Every template is compiled here or in those modules
 * once, when the publisher is made, so an unknown placeholder fails before the run starts and a message costs joins.
 */
import { usageError } from '../errors.js';
import { FIELD_PLACEHOLDERS, Template, type TemplateValues } from '../targets/template.js';
import type { TargetProfile } from '../targets/schema.js';
import { tokenMinter } from '../targets/token.js';
import type { ProbeItem, ProbePublisher } from './probe-publisher.js';
import { createHttpPublisher } from './http-template.js';
import { createNatsPublisher } from './nats.js';
import { createRedisPublisher } from './redis.js';

export interface ProbePublisherOptions {
  /**
   * The bearer token of a user (`{token}`); undefined when the run has none. Without it, `jwtSecret` mints them: the
   * user's own token, as its subscribers have it.
   */
  token?: (user: string) => string | undefined;
  /** `--jwt-secret`: `{token}` of a probe to a user is that user's HS256 JWT (targets/token.ts). */
  jwtSecret?: string;
  /** Per request or command, ms. Default 30000. */
  timeoutMs?: number;
  /** HTTP: most sockets per origin. Default 32. */
  connections?: number;
  /** `--payload-bytes`: `{pad}` in the payload fills it up to this many bytes. */
  payloadBytes?: number;
  /** HTTP: accept any certificate on https:// (`--insecure-tls`). */
  insecureTls?: boolean;
}

const PAYLOAD_PLACEHOLDERS = FIELD_PLACEHOLDERS.payload;

/** The values of one item's templates, `payload` already expanded. */
export type MessageValues = (item: ProbeItem) => TemplateValues;

/**
 * `base`: the --url value without its trailing slash (`{base}`). Throws a usage error naming the field when a
 * template uses a placeholder it cannot have.
 */
export function createProbePublisher(profile: TargetProfile, base: string, options: ProbePublisherOptions = {}): ProbePublisher {
  const payload = new Template(profile.payload, 'payload', PAYLOAD_PLACEHOLDERS);
  if (options.payloadBytes !== undefined && !payload.uses('pad')) {
    throw usageError(`--payload-bytes: the target profile's payload has no {pad} to fill (payload: ${profile.payload})`);
  }
  const values = messageValues(payload, options.payloadBytes ?? 0);
  const { http, redis, nats } = profile.publish;
  const token = options.token ?? (options.jwtSecret === undefined ? undefined : tokenMinter(options.jwtSecret));
  if (http) return createHttpPublisher(http, base, values, { ...options, token });
  if (redis) return createRedisPublisher(redis, values, options);
  if (nats) return createNatsPublisher(nats, values, options);
  // Unreachable for a validated profile: the schema admits exactly one of them.
  throw new TypeError('target profile publish: needs exactly one of http, redis, nats');
}

function messageValues(payload: Template, payloadBytes: number): MessageValues {
  let pad = '';
  return (item) => {
    const { probe } = item;
    const values: TemplateValues = {
      probe: JSON.stringify(probe),
      id: `${probe.run}-${item.stream}-${probe.seq}`,
      now: new Date().toISOString(),
      user: item.user,
      stream: item.stream,
    };
    if (payloadBytes > 0) {
      // As long as the rest leaves room for: the rest varies (seq, time, user) by a few bytes only.
      const want = Math.max(0, payloadBytes - payload.render(values).length);
      if (want !== pad.length) pad = 'x'.repeat(want);
      values.pad = pad;
    }
    values.payload = payload.render(values);
    return values;
  };
}
