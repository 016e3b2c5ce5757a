/**
 * The probe publisher a target profile's `publish` block asks for (DESIGN.md "Target profiles"): any HTTP API
 * (http-template.ts), Redis PUBLISH (redis.ts) or NATS (nats.ts). Every template is compiled here or in those modules
 * once, when the publisher is made, so an unknown placeholder fails before the run starts and a message costs joins.
 */
import { Template, type Placeholder, type TemplateValues } from '../targets/template.js';
import type { TargetProfile } from '../targets/schema.js';
import type { ProbeItem, ProbePublisher } from './probe-publisher.js';
import { createHttpPublisher } from './http-template.js';
import { createNatsPublisher } from './nats.js';
import { createRedisPublisher } from './redis.js';

export interface ProbePublisherOptions {
  /** The bearer token of a user (`{token}`); undefined when the run has none. */
  token?: (user: string) => string | undefined;
  /** Per request or command, ms. Default 30000. */
  timeoutMs?: number;
  /** HTTP: most sockets per origin. Default 32. */
  connections?: number;
}

const PAYLOAD_PLACEHOLDERS: readonly Placeholder[] = ['probe', 'id', 'now', 'user', 'stream'];

/** The values of one item's templates, `payload` already expanded. */
export type MessageValues = (item: ProbeItem) => TemplateValues;

/**
 * `base`: the --url value without its trailing slash (`{base}`). Throws a usage error naming the field when a
 * template uses a placeholder it cannot have.
 */
export function createProbePublisher(profile: TargetProfile, base: string, options: ProbePublisherOptions = {}): ProbePublisher {
  const values = messageValues(new Template(profile.payload, 'payload', PAYLOAD_PLACEHOLDERS));
  const { http, redis, nats } = profile.publish;
  if (http) return createHttpPublisher(http, base, values, options);
  if (redis) return createRedisPublisher(redis, values, options);
  if (nats) return createNatsPublisher(nats, values, options);
  // Unreachable for a validated profile: the schema admits exactly one of them.
  throw new TypeError('target profile publish: needs exactly one of http, redis, nats');
}

function messageValues(payload: Template): MessageValues {
  return (item) => {
    const { probe } = item;
    const values: TemplateValues = {
      probe: JSON.stringify(probe),
      id: `${probe.run}-${item.stream}-${probe.seq}`,
      now: new Date().toISOString(),
      user: item.user,
      stream: item.stream,
    };
    values.payload = payload.render(values);
    return values;
  };
}
