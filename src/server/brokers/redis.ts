/**
 * Redis broker (`--broker redis://HOST:PORT[/DB]`): instances share seq numbers, history and epoch through Redis.
 *
 * - One Lua script per publish (redis-history.ts) numbers every item, appends it to the stream's history and
 *   PUBLISHes the whole publish on `notify:live`. Being one script, the publish is in history before it resolves
 *   (202), and every instance receives the live messages in exactly the order the seqs were given, whoever published.
 * - Every instance, this one too, delivers live events from `notify:live` only: delivering its own publishes
 *   locally at once could overtake another instance's earlier seq on the same stream. `publish` resolves once its
 *   own events came back and were fanned out (so `delivered` is right), or after ECHO_WAIT_MS.
 * - A per-stream sequencer drops what was already delivered and fills a gap (seq > last + 1: a lost message or an
 *   outage) from history; after a reconnect it reads each tracked stream's head and fills what was missed. What the
 *   window no longer holds, or an epoch change, is reported through `onLost` so those subscribers come back by cursor
 *   and get their `reset`.
 * - History reads: redis-history.ts too. `--history-bytes` is not enforced here: Redis holds the history.
 * - Read marks and receipts, and the counts behind `delivered`, go between instances through redis-peers.ts.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { NotifyError } from '../../errors.js';
import type { Notification } from '../../protocol/notification.js';
import { HttpError } from '../http-error.js';
import type * as B from './broker.js';
import { PeerSharingBroker } from './peer-sharing.js';
import { parseNotification, sortForDelivery } from './redis-entries.js';
import { EPOCH_KEY, LIVE_CHANNEL, RedisHistory, seqKey } from './redis-history.js';
import { RedisPeers } from './redis-peers.js';
import { READS_CHANNEL } from './redis-reads.js';

/** How long a publish waits for its own live message before resolving anyway (it is in history already). */
const ECHO_WAIT_MS = 1000;
/** Streams whose last delivered seq is remembered; past it the least recently used are forgotten. */
const MAX_TRACKED = 200_000;
/** How often the epoch is re-read (catches a FLUSHALL that no publish ran into). */
const EPOCH_CHECK_MS = 2000;

function unavailable(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  return new HttpError(503, 'E_BROKER_UNAVAILABLE', `the broker (redis) is unavailable: ${(err as Error).message}`, { 'Retry-After': '1' });
}

function randomTag(bytes: number): string {
  return randomBytes(bytes).toString('base64url').replace(/[-_]/g, 'x');
}

export class RedisBroker extends PeerSharingBroker implements B.Broker, B.LossReporting, B.ReadinessReporting, B.ReadSharing {
  readonly kind = 'redis';
  private readonly client: Redis;
  private readonly sub: Redis;
  private epochId = '';
  private readonly instance = randomTag(6);
  private nextId = 0;
  private readonly listeners: ((events: B.StreamEvent[]) => void)[] = [];
  private readonly lossListeners: ((loss: B.Loss) => void)[] = [];
  /** Last seq delivered per stream (insertion order = least recently used first). */
  private readonly last = new Map<string, number>();
  /** Live messages and catch-ups run one after another, so delivery stays in seq order. */
  private chain: Promise<void> = Promise.resolve();
  /** Publishes waiting for their own events to come back live, by `stream\nseq`. */
  private readonly echoes = new Map<string, (ev: B.StreamEvent) => void>();
  private subReady = false;
  /** A connection was lost since the last complete catch-up. */
  private behind = false;
  private closed = false;
  /** The connection's last error (ECONNREFUSED ...), for a start that fails. */
  private lastError: string | undefined;
  private epochTimer: NodeJS.Timeout | undefined;
  /** Read receipts and audience questions between instances. */
  protected readonly peers: RedisPeers;
  private readonly history: RedisHistory;

  constructor(
    private readonly url: string,
    options: B.BrokerOptions,
  ) {
    super();
    const common = { lazyConnect: true, retryStrategy: (times: number) => Math.min(times * 100, 1000), maxRetriesPerRequest: 0 };
    // Publishes fail at once while Redis is away (503) instead of queueing behind a connection that may not return.
    this.client = new Redis(url, { ...common, enableOfflineQueue: false, commandTimeout: 3000 });
    this.sub = new Redis(url, { ...common, autoResubscribe: false });
    this.peers = new RedisPeers(this.client, this.instance, unavailable);
    this.history = new RedisHistory(this.client, options.history, unavailable);
    this.client.on('error', (err: Error) => (this.lastError = err.message));
    this.sub.on('error', () => undefined);
    this.sub.on('message', (channel: string, text: string) => {
      if (channel === LIVE_CHANNEL) this.enqueue(() => this.onLive(text));
      // Receipts keep their place behind live events and catch-ups, theirs included (RedisReadStore.catchUp).
      else if (channel === READS_CHANNEL) this.enqueue(() => this.peers.reads.onMessage(text));
      else this.peers.onMessage(channel, text);
    });
    const lost = (): void => {
      this.behind = true;
    };
    this.sub.on('close', () => {
      this.subReady = false;
      lost();
    });
    this.client.on('close', lost);
    // Every (re)connect: subscribe, then read what was published while away; live messages queue behind it.
    this.sub.on('ready', () => this.enqueue(() => this.resubscribe()));
    this.client.on('ready', () =>
      this.enqueue(async () => {
        if (this.behind) await this.catchUp();
        if (this.subReady) await this.peers.reads.catchUp();
      }),
    );
  }

  async start(): Promise<void> {
    try {
      await this.client.connect();
      await this.client.set(EPOCH_KEY, randomTag(6), 'NX');
      this.epochId = (await this.client.get(EPOCH_KEY)) ?? '';
      await this.sub.connect();
      await this.chain;
    } catch (err) {
      this.client.disconnect();
      this.sub.disconnect();
      throw new NotifyError('E_BROKER', `cannot reach the broker at ${this.url}: ${this.lastError ?? (err as Error).message}`, {
        hint: 'start redis-server or fix --broker redis://HOST:PORT[/DB]',
      });
    }
    if (!this.subReady) throw new NotifyError('E_BROKER', `cannot subscribe to ${LIVE_CHANNEL} at ${this.url}`);
    this.epochTimer = setInterval(() => this.enqueue(() => this.checkEpoch()), EPOCH_CHECK_MS);
    this.epochTimer.unref();
  }

  epoch(): string {
    return this.epochId;
  }

  ready(): boolean {
    return !this.closed && this.client.status === 'ready' && this.subReady;
  }

  async publish(items: B.PublishItem[]): Promise<B.StreamEvent[]> {
    const prepared = items.map((item) => {
      const notification = { id: `${this.instance}-${(++this.nextId).toString(36)}`, ...item.notification } as Notification;
      return { stream: item.stream, notification, json: JSON.stringify(notification) };
    });
    let seqs: number[] | undefined;
    // A publish that finds a new epoch (Redis lost its data) learns it and goes into the new history, once.
    for (let attempt = 1; !seqs; attempt++) {
      try {
        seqs = await this.history.append(this.epochId, prepared);
      } catch (err) {
        if (!/^EPOCH/.test((err as Error).message) || attempt > 1) throw unavailable(err);
        await this.checkEpoch();
      }
    }
    const acceptedAt = performance.now();
    const events: B.StreamEvent[] = prepared.map((p, i) => ({ ...p, seq: seqs[i]!, acceptedAt }));
    return this.echoed(events);
  }

  /** The events as the live path delivered them (with `delivered` set), or as published if they take too long. */
  private echoed(events: B.StreamEvent[]): Promise<B.StreamEvent[]> {
    if (!this.subReady) return Promise.resolve(events); // the live feed is away: they come with its catch-up
    return new Promise((resolve) => {
      const out = events.slice();
      let pending = events.length;
      const keys = events.map((ev) => `${ev.stream}\n${ev.seq}`);
      const done = (): void => {
        clearTimeout(timer);
        for (const k of keys) this.echoes.delete(k);
        resolve(out);
      };
      const timer = setTimeout(done, ECHO_WAIT_MS);
      events.forEach((ev, i) => {
        if ((this.last.get(ev.stream) ?? 0) >= ev.seq && this.last.has(ev.stream)) pending--;
        else
          this.echoes.set(keys[i]!, (live) => {
            out[i] = live;
            if (--pending === 0) done();
          });
      });
      if (pending <= 0) done();
    });
  }

  async readAfter(stream: string, after: number): Promise<B.HistoryRead> {
    const r = await this.history.readAfter(stream, after);
    // A subscriber starts from what a read said: live events of this stream from there on are new to this process.
    if (!this.last.has(stream)) this.track(stream, r.lastSeq);
    return r;
  }

  async lastSeq(stream: string): Promise<number> {
    const seq = await this.history.lastSeq(stream);
    if (!this.last.has(stream)) this.track(stream, seq);
    return seq;
  }

  recent(stream: string, limit: number): Promise<B.StreamEvent[]> {
    return this.history.recent(stream, limit);
  }

  find(id: string): Promise<B.StreamEvent | undefined> {
    return this.history.find(id);
  }

  onEvents(listener: (events: B.StreamEvent[]) => void): void {
    this.listeners.push(listener);
  }

  onLost(listener: (loss: B.Loss) => void): void {
    this.lossListeners.push(listener);
  }

  get reads(): RedisPeers['reads'] {
    return this.peers.reads;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.epochTimer) clearInterval(this.epochTimer);
    this.listeners.length = 0;
    this.lossListeners.length = 0;
    // Not QUIT: while Redis is away it would wait for a reconnect that may never come.
    this.client.disconnect();
    this.sub.disconnect();
  }

  private enqueue(task: () => Promise<void> | void): void {
    this.chain = this.chain.then(task).catch(() => undefined);
  }

  /** A live message: in the current epoch, each stream's events go through the sequencer. */
  private async onLive(text: string): Promise<void> {
    let msg: { e?: unknown; v?: unknown };
    try {
      msg = JSON.parse(text) as { e?: unknown; v?: unknown };
    } catch {
      return;
    }
    if (typeof msg.e !== 'string' || !Array.isArray(msg.v)) return;
    if (msg.e !== this.epochId) {
      await this.checkEpoch();
      if (msg.e !== this.epochId) return;
    }
    const now = performance.now();
    const events: B.StreamEvent[] = [];
    for (const raw of msg.v as { s?: unknown; q?: unknown; j?: unknown }[]) {
      if (typeof raw?.s !== 'string' || typeof raw.q !== 'number' || typeof raw.j !== 'string') continue;
      const notification = parseNotification(raw.j);
      if (notification) events.push({ stream: raw.s, seq: raw.q, notification, json: raw.j, acceptedAt: now });
    }
    await this.accept(events);
  }

  /** Delivers events in order, dropping ones already delivered and filling gaps from history first. */
  private async accept(events: B.StreamEvent[]): Promise<void> {
    const out: B.StreamEvent[] = [];
    for (const ev of events) {
      const known = this.last.get(ev.stream);
      if (known !== undefined && ev.seq <= known) continue;
      if (known !== undefined && ev.seq > known + 1) {
        this.emit(out.splice(0));
        await this.fill(ev.stream, known);
        if ((this.last.get(ev.stream) ?? 0) >= ev.seq) continue;
      }
      this.track(ev.stream, ev.seq);
      out.push(ev);
    }
    this.emit(out);
  }

  /** Reads a stream's history after `known` and delivers it. */
  private async fill(stream: string, known: number): Promise<void> {
    const events = await this.missed(stream, known);
    if (events) this.emit(events);
    else this.lose('unavailable', [stream]);
  }

  /**
   * A stream's events after `known` from history, now counted as delivered; [] when the window lost some (reported
   * as a loss), undefined when Redis could not be read (the caller decides).
   */
  private async missed(stream: string, known: number): Promise<B.StreamEvent[] | undefined> {
    let r: B.HistoryRead;
    try {
      r = await this.readAfter(stream, known);
    } catch {
      return undefined;
    }
    if (!r.complete) {
      this.track(stream, r.lastSeq);
      this.lose('window', [stream]);
      return [];
    }
    const events = r.events.filter((ev) => ev.seq > known);
    if (events.length) this.track(stream, events[events.length - 1]!.seq);
    return events;
  }

  private lose(reason: B.Loss['reason'], streams?: string[]): void {
    for (const l of this.lossListeners) l(streams ? { reason, streams } : { reason });
  }

  private track(stream: string, seq: number): void {
    this.last.delete(stream);
    this.last.set(stream, seq);
    if (this.last.size > MAX_TRACKED) this.last.delete(this.last.keys().next().value!);
  }

  private emit(events: B.StreamEvent[]): void {
    if (events.length === 0) return;
    for (const l of this.listeners) l(events);
    for (const ev of events) this.echoes.get(`${ev.stream}\n${ev.seq}`)?.(ev);
  }

  /** After the live connection (re)connected: subscribe, then catch up on what was published meanwhile. */
  private async resubscribe(): Promise<void> {
    try {
      await this.sub.subscribe(LIVE_CHANNEL, ...this.peers.channels);
    } catch {
      return; // the next 'ready' tries again
    }
    this.subReady = true;
    if (this.epochId) await this.catchUp(); // at start there is nothing to catch up on
    await this.peers.reads.catchUp(); // at start: only where the receipts' log is
  }

  /**
   * Checks the epoch, then fills every tracked stream that moved on since its last delivered event, in publish order
   * across streams. Runs after either connection came back; until one run has finished, `behind` stays set and the
   * next 'ready' runs it again.
   */
  private async catchUp(): Promise<void> {
    if (!this.subReady || this.client.status !== 'ready') return;
    await this.checkEpoch();
    const streams = [...this.last.keys()];
    const missed: B.StreamEvent[] = [];
    for (let i = 0; i < streams.length; i += 1000) {
      const chunk = streams.slice(i, i + 1000);
      let heads: (string | null)[];
      try {
        heads = await this.client.mget(...chunk.map(seqKey));
      } catch {
        this.emit(sortForDelivery(missed));
        return;
      }
      for (let j = 0; j < chunk.length; j++) {
        const s = chunk[j]!;
        const known = this.last.get(s);
        if (known === undefined || (Number(heads[j]) || 0) <= known) continue;
        const events = await this.missed(s, known);
        if (events) missed.push(...events);
        else this.lose('unavailable', [s]);
      }
    }
    this.behind = false;
    this.emit(sortForDelivery(missed));
  }

  /** Re-reads the epoch; if the key is gone (history lost) a new one is set, and every subscriber must reset. */
  private async checkEpoch(): Promise<void> {
    if (this.closed || this.client.status !== 'ready') return;
    let current: string | null;
    try {
      await this.client.set(EPOCH_KEY, randomTag(6), 'NX');
      current = await this.client.get(EPOCH_KEY);
    } catch {
      return;
    }
    if (!current || current === this.epochId) return;
    this.epochId = current;
    this.last.clear();
    for (const l of this.lossListeners) l({ reason: 'epoch' });
  }
}
