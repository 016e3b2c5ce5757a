/**
 * Publishes probes with Redis PUBLISH, as a target profile's `publish.redis` describes it: the app under test
 * subscribes to the channels and relays what arrives. One connection, made at the first send; the items of a send
 * go out as one pipeline, so they reach Redis in order. PUBLISH answers with the number of subscribers that got it;
 * 0 is still a success, since which of the app's instances listen is the app's business.
 */
import { Redis } from 'ioredis';
import { FIELD_PLACEHOLDERS, Template } from '../targets/template.js';
import type { RedisPublish } from '../targets/schema.js';
import { errorCode } from '../transports/codes.js';
import type { ItemOutcome, ProbeItem, ProbePublisher } from './probe-publisher.js';
import type { MessageValues, ProbePublisherOptions } from './probe-publishers.js';

const CHANNEL_PLACEHOLDERS = FIELD_PLACEHOLDERS.channel;
const OK: ItemOutcome = { ok: true };

export function createRedisPublisher(redis: RedisPublish, values: MessageValues, options: ProbePublisherOptions): ProbePublisher {
  return new RedisProbePublisher(redis, values, options.timeoutMs ?? 30_000);
}

class RedisProbePublisher implements ProbePublisher {
  readonly describe: string;
  private readonly client: Redis;
  private readonly user: Template;
  private readonly broadcast: Template;
  private connecting: Promise<void> | undefined;
  /** The last connection error, for the cause of sends refused while disconnected (ECONNREFUSED, ...). */
  private lastError: unknown;
  private destroyed = false;

  constructor(
    redis: RedisPublish,
    private readonly values: MessageValues,
    timeoutMs: number,
  ) {
    this.user = new Template(redis.user, 'publish.redis.user', CHANNEL_PLACEHOLDERS);
    this.broadcast = new Template(redis.broadcast, 'publish.redis.broadcast', CHANNEL_PLACEHOLDERS);
    this.describe = withoutCredentials(redis.url);
    this.client = new Redis(redis.url, {
      lazyConnect: true,
      // While disconnected a PUBLISH fails at once, certainly not executed, rather than waiting in a queue for a
      // reconnect that may come too late to mean anything.
      enableOfflineQueue: false,
      // A PUBLISH in flight when the connection drops fails at once (it may or may not have run) and is never sent
      // again after the reconnect: a second copy would show up as the server's duplicate.
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      connectTimeout: Math.min(5000, timeoutMs),
      commandTimeout: timeoutMs,
      // Back soon after a broker restart (ioredis's default backs off to 5 s).
      retryStrategy: (times) => Math.min(times * 50, 500),
      // destroy() aborts: no waiting (2 s by default) for a server that may not answer to close its side.
      disconnectTimeout: 0,
    });
    this.client.on('error', (err) => (this.lastError = err));
    this.client.on('ready', () => (this.lastError = undefined));
  }

  async send(items: readonly ProbeItem[]): Promise<ItemOutcome[]> {
    if (items.length === 0) return [];
    if (!(await this.ready())) {
      const cause = this.destroyed ? 'aborted' : this.lastError !== undefined ? errorCode(this.lastError) : 'redis-not-connected';
      return items.map(() => ({ ok: false, cause, stored: false }));
    }
    const pipeline = this.client.pipeline();
    for (const item of items) {
      const values = this.values(item);
      pipeline.publish((item.user === undefined ? this.broadcast : this.user).render(values), values.payload!);
    }
    let results: [Error | null, unknown][] | null;
    try {
      results = await pipeline.exec();
    } catch (err) {
      const outcome = this.outcome(err);
      return items.map(() => outcome);
    }
    return items.map((_, i) => {
      const r = results?.[i];
      if (!r) return { ok: false, cause: 'redis-no-reply' };
      return r[0] ? this.outcome(r[0]) : OK;
    });
  }

  async destroy(): Promise<void> {
    this.destroyed = true;
    // Only a connection with a socket emits `end` once closed; a client waiting to reconnect just stops.
    const open = ['connecting', 'connect', 'ready'].includes(this.client.status);
    const ended = open ? new Promise((resolve) => this.client.once('end', resolve)) : undefined;
    this.client.disconnect();
    await ended;
  }

  /** True once connected; the first send connects (and later sends wait for that first attempt). */
  private async ready(): Promise<boolean> {
    if (this.destroyed) return false;
    const { status } = this.client;
    if (status === 'wait' || status === 'end') {
      this.connecting ??= this.client
        .connect()
        .catch(() => undefined)
        .finally(() => (this.connecting = undefined));
    }
    await this.connecting;
    return this.client.status === 'ready';
  }

  /** The outcome of a failed command. */
  private outcome(err: unknown): ItemOutcome {
    const e = err as { name?: unknown; message?: unknown; code?: unknown };
    const message = typeof e?.message === 'string' ? e.message : '';
    // An error reply (NOAUTH, NOPERM, ...): Redis refused the command.
    if (e?.name === 'ReplyError') return { ok: false, cause: `redis-${message.split(' ')[0] || 'error'}`, stored: false };
    if (this.destroyed) return { ok: false, cause: 'aborted' };
    if (message === 'Command timed out') return { ok: false, cause: 'timeout' };
    // The connection went down between the check and the write: the command never left.
    if (message.includes('enableOfflineQueue')) return { ok: false, cause: 'redis-not-connected', stored: false };
    // Otherwise the connection closed with the command in flight (MaxRetriesPerRequestError, "Connection is closed.").
    return { ok: false, cause: typeof e?.code === 'string' ? errorCode(err) : 'socket-closed' };
  }
}

/** `redis://user:secret@host:6379/0` as `redis://host:6379/0`, for messages. */
function withoutCredentials(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return url;
  }
}
