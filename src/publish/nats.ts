/**
 * Publishes probes on NATS, as a target profile's `publish.nats` describes it: the app under test subscribes to the
 * subjects and relays what arrives. One connection, made at the first send. Core NATS: the items of a send are
 * published in order and then flushed (a PING answered means the server has read everything before it). JetStream:
 * one publish at a time, each waiting for its PubAck, so the stream stores them in order.
 */
import { connect, ErrorCode, NatsError, type ConnectionOptions, type JetStreamClient, type NatsConnection } from 'nats';
import { FIELD_PLACEHOLDERS, Template } from '../targets/template.js';
import type { NatsPublish } from '../targets/schema.js';
import { errorCode, slug } from '../transports/codes.js';
import type { ItemOutcome, ProbeItem, ProbePublisher } from './probe-publisher.js';
import type { MessageValues, ProbePublisherOptions } from './probe-publishers.js';

const SUBJECT_PLACEHOLDERS = FIELD_PLACEHOLDERS.channel;
const OK: ItemOutcome = { ok: true };

/** Codes of errors raised before anything is written: the server cannot have the message. */
const NOT_SENT = new Set<string>([ErrorCode.BadSubject, ErrorCode.BadPayload, ErrorCode.MaxPayloadExceeded]);

interface Link {
  nc: NatsConnection;
  js: JetStreamClient | undefined;
}

export function createNatsPublisher(nats: NatsPublish, values: MessageValues, options: ProbePublisherOptions): ProbePublisher {
  return new NatsProbePublisher(nats, values, options.timeoutMs ?? 30_000);
}

class NatsProbePublisher implements ProbePublisher {
  readonly describe: string;
  private readonly user: Template;
  private readonly broadcast: Template;
  private readonly connectOptions: ConnectionOptions;
  private link: Promise<Link> | undefined;
  private destroyed = false;
  /** Rejects on destroy, so that nothing awaited here outlives the publisher. */
  private readonly aborted: Promise<never>;
  private abort!: (err: Error) => void;

  constructor(
    private readonly nats: NatsPublish,
    private readonly values: MessageValues,
    private readonly timeoutMs: number,
  ) {
    this.user = new Template(nats.user, 'publish.nats.user', SUBJECT_PLACEHOLDERS);
    this.broadcast = new Template(nats.broadcast, 'publish.nats.broadcast', SUBJECT_PLACEHOLDERS);
    const url = new URL(nats.url);
    this.describe = `${url.protocol}//${url.host}${nats.jetstream ? ' (JetStream)' : ''}`;
    this.connectOptions = {
      servers: url.host,
      name: 'notify swarm publisher',
      timeout: Math.min(5000, timeoutMs),
      // Keep reconnecting through a broker restart, soon after it is back (nats.js waits 2 s and gives up after 10).
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      ...credentials(url),
      ...(url.protocol === 'tls:' ? { tls: {} } : {}),
    };
    this.aborted = new Promise<never>((_, reject) => (this.abort = reject));
    this.aborted.catch(() => undefined);
  }

  async send(items: readonly ProbeItem[]): Promise<ItemOutcome[]> {
    if (items.length === 0) return [];
    if (this.destroyed) return items.map(() => ({ ok: false, cause: 'aborted', stored: false }));
    let link: Link;
    try {
      link = await this.bounded(this.connection());
    } catch (err) {
      // No connection, so nothing was sent.
      const cause = this.destroyed ? 'aborted' : natsCause(err);
      return items.map(() => ({ ok: false, cause, stored: false }));
    }
    return link.js ? this.sendJetStream(link.js, items) : this.sendCore(link.nc, items);
  }

  async destroy(): Promise<void> {
    this.destroyed = true;
    this.abort(new Error('destroyed'));
    const link = this.link;
    this.link = undefined;
    await link?.then(
      ({ nc }) => nc.close(),
      () => undefined,
    );
  }

  private async sendCore(nc: NatsConnection, items: readonly ProbeItem[]): Promise<ItemOutcome[]> {
    const outcomes = items.map((item): ItemOutcome => {
      const values = this.values(item);
      try {
        nc.publish(this.subject(item), values.payload!);
        return OK;
      } catch (err) {
        // publish() throws before writing (closed connection, bad subject, too large).
        return { ok: false, cause: this.destroyed ? 'aborted' : natsCause(err), stored: false };
      }
    });
    if (!outcomes.includes(OK)) return outcomes;
    try {
      await this.bounded(nc.flush());
      return outcomes;
    } catch (err) {
      const failed: ItemOutcome = { ok: false, cause: this.destroyed ? 'aborted' : natsCause(err) };
      return outcomes.map((o) => (o === OK ? failed : o));
    }
  }

  private async sendJetStream(js: JetStreamClient, items: readonly ProbeItem[]): Promise<ItemOutcome[]> {
    const outcomes: ItemOutcome[] = [];
    for (const item of items) {
      if (this.destroyed) {
        outcomes.push({ ok: false, cause: 'aborted', stored: false });
        continue;
      }
      try {
        await this.bounded(js.publish(this.subject(item), this.values(item).payload!));
        outcomes.push(OK);
      } catch (err) {
        outcomes.push(this.destroyed ? { ok: false, cause: 'aborted' } : jetStreamFailure(err));
      }
    }
    return outcomes;
  }

  private subject(item: ProbeItem): string {
    return (item.user === undefined ? this.broadcast : this.user).render({ user: item.user, stream: item.stream });
  }

  /** The connection, made on first use and again after it closed for good. */
  private connection(): Promise<Link> {
    if (this.link) return this.link;
    const link = connect(this.connectOptions).then((nc) => {
      void nc.closed().then(() => this.forget(link));
      return { nc, js: this.nats.jetstream ? nc.jetstream({ timeout: this.timeoutMs }) : undefined };
    });
    link.catch(() => this.forget(link));
    this.link = link;
    return link;
  }

  private forget(link: Promise<Link>): void {
    if (this.link === link) this.link = undefined;
  }

  /** `p`, or a timeout after timeoutMs, or a rejection once destroyed. */
  private bounded<T>(p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(NatsError.errorForCode(ErrorCode.Timeout)), this.timeoutMs);
    });
    return Promise.race([p, timeout, this.aborted]).finally(() => clearTimeout(timer));
  }
}

/** `nats://user:pass@host` and `nats://token@host` as nats.js options. */
function credentials(url: URL): Pick<ConnectionOptions, 'user' | 'pass' | 'token'> {
  if (url.username === '') return {};
  const user = decodeURIComponent(url.username);
  return url.password === '' ? { token: user } : { user, pass: decodeURIComponent(url.password) };
}

/** A stable cause: `ECONNREFUSED`, `timeout`, `nats-no-responders`, `nats-<code>` (`nats-authorization-violation`). */
function natsCause(err: unknown): string {
  if (!(err instanceof NatsError)) return errorCode(err);
  switch (err.code) {
    case ErrorCode.ConnectionRefused:
      return 'ECONNREFUSED';
    case ErrorCode.Timeout:
    case ErrorCode.ConnectionTimeout:
      return 'timeout';
    case ErrorCode.NoResponders:
      return 'nats-no-responders';
    default:
      return `nats-${slug(err.code)}`;
  }
}

/**
 * A JetStream publish that failed. Certainly not stored: no stream listens on the subject (no responders), the
 * stream answered with an error (limits, expected sequence, ...), or it failed before sending. A timeout or a lost
 * connection leaves it unknown.
 */
function jetStreamFailure(err: unknown): ItemOutcome {
  const cause = natsCause(err);
  const refused = err instanceof NatsError && (err.code === ErrorCode.NoResponders || err.api_error !== undefined || NOT_SENT.has(err.code));
  return refused ? { ok: false, cause, stored: false } : { ok: false, cause };
}
