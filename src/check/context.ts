/**
 * What every check is given: the config, the profile's subscribe side rendered for the checked user, its probe
 * publisher, and one shared SSE stream that the header, framing, retry and heartbeat checks all read.
 */
import { randomBytes } from 'node:crypto';
import { nowEpochMs } from '../protocol/probe.js';
import { BROADCAST, userStream } from '../protocol/streams.js';
import type { TransportName } from '../protocol/transports.js';
import { createProbePublisher } from '../publish/probe-publishers.js';
import type { ItemOutcome, ProbePublisher } from '../publish/probe-publisher.js';
import { subscribePlan, subscribeRenderer } from '../targets/subscribe.js';
import type { SubscribeTarget } from '../transports/transport.js';
import type { CheckConfig } from './options.js';
import { Skip } from './outcome.js';
import { openRaw, type Head, type RawStream } from './raw-http.js';
import { SseReader } from './sse-reader.js';

export type Rendered = Omit<SubscribeTarget, 'localAddress'>;

export interface SseSession {
  request: { url: URL; headers: Record<string, string> };
  raw: RawStream;
  reader: SseReader;
  /** Undefined when no head came (the error says why). */
  head?: Head;
  error?: string;
}

export interface SseOptions {
  /** `null`: without the token even when --token is given. */
  token?: string | null;
  lastEventId?: string;
  headers?: Record<string, string>;
  method?: string;
}

/** What a browser's EventSource sends, compression offered as browsers do. */
const SSE_REQUEST_HEADERS = { Accept: 'text/event-stream', 'Cache-Control': 'no-cache', 'Accept-Encoding': 'gzip, deflate, br' };

export class CheckContext {
  /** Each check's probes carry a run id of their own: `<runBase>-<check>`. */
  readonly runBase = `check-${randomBytes(4).toString('hex')}`;
  private publisherInstance: ProbePublisher | undefined;
  private shared: Promise<SseSession> | undefined;
  private readonly disposers: (() => unknown)[] = [];

  constructor(readonly config: CheckConfig) {}

  has(transport: TransportName): boolean {
    return this.config.target.subscribe[transport] !== undefined;
  }

  /** The profile's subscribe block for `transport` rendered for the checked user; Skip when it has none. */
  render(transport: TransportName, token: string | null | undefined = this.config.token, user = this.config.user): Rendered {
    if (!this.has(transport)) throw new Skip(`the target profile (${this.config.target.source}) has no subscribe.${transport}`);
    const { base } = this.config;
    return subscribeRenderer(subscribePlan(this.config.target), transport)({ base, user, token: token ?? undefined });
  }

  /** The stream probes go to: the user's own when the profile subscribes to user streams, else broadcast. */
  probeStream(): { stream: string; user?: string } {
    const { target, user } = this.config;
    return target.streams.includes('user') ? { stream: userStream(user), user } : { stream: BROADCAST };
  }

  private publisher(): ProbePublisher {
    const token = this.config.token;
    this.publisherInstance ??= createProbePublisher(this.config.target, this.config.base, {
      token: () => token,
      timeoutMs: this.config.eventWaitMs,
      insecureTls: this.config.insecureTls,
    });
    return this.publisherInstance;
  }

  /** Publishes probe `seq` of `run` through the profile's publish block. */
  async publish(run: string, seq: number): Promise<ItemOutcome> {
    const { stream, user } = this.probeStream();
    const [outcome] = await this.publisher().send([{ probe: { run, stream, seq, t: nowEpochMs() }, stream, user }]);
    return outcome ?? { ok: false, cause: 'no answer' };
  }

  /**
   * A user no check publishes to, for watching an idle connection: the checked user's own stream gets probes from
   * the other checks. With a token the user is the token's, so there is no other.
   */
  quietUser(): string {
    return this.config.token === undefined ? `${this.config.user}-idle` : this.config.user;
  }

  run(check: string): string {
    return `${this.runBase}-${check}`;
  }

  /** Opens an SSE stream the way the profile says (its URL, headers, resume mode), read until disposed. */
  openSse(opts: SseOptions = {}): SseSession {
    const target = this.render('sse', opts.token === null ? null : (opts.token ?? this.config.token));
    const url = new URL(target.url);
    const headers: Record<string, string> = { ...SSE_REQUEST_HEADERS, ...(target.headers ?? {}), ...(opts.headers ?? {}) };
    if (opts.lastEventId !== undefined) {
      const resume = target.resume ?? 'last-event-id';
      if (resume === 'last-event-id') headers['Last-Event-ID'] = opts.lastEventId;
      else if (resume.startsWith('query:')) url.searchParams.set(resume.slice(6), opts.lastEventId);
    }
    const raw = openRaw({ url, headers, method: opts.method, headTimeoutMs: this.config.eventWaitMs, insecureTls: this.config.insecureTls });
    this.onDispose(() => raw.close());
    const session: SseSession = { request: { url, headers }, raw, reader: new SseReader(raw) };
    return session;
  }

  /** Opens an SSE stream and waits for its head (or the failure to get one). */
  async sse(opts: SseOptions = {}): Promise<SseSession> {
    const session = this.openSse(opts);
    try {
      session.head = await session.raw.head;
    } catch (err) {
      session.error = (err as Error).message;
    }
    return session;
  }

  /** The one SSE stream the header, framing, retry and heartbeat checks share. */
  sharedSse(): Promise<SseSession> {
    this.shared ??= this.sse();
    return this.shared;
  }

  /** The shared stream when it opened as an event stream; Skip otherwise (sse-headers reports why). */
  async openStream(): Promise<SseSession & { head: Head }> {
    const s = await this.sharedSse();
    if (!s.head) throw new Skip(`the SSE stream did not open (${s.error}); see sse-headers`);
    if (s.head.status !== 200) throw new Skip(`the SSE stream answered HTTP ${s.head.status}; see sse-headers`);
    return s as SseSession & { head: Head };
  }

  onDispose(fn: () => unknown): void {
    this.disposers.push(fn);
  }

  async dispose(): Promise<void> {
    for (const fn of this.disposers.splice(0).reverse()) {
      try {
        await fn();
      } catch {}
    }
    await this.publisherInstance?.destroy().catch(() => {});
  }
}
