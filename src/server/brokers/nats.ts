/**
 * NATS JetStream broker (`--broker nats://HOST:PORT`). One stream `NOTIFY` holds every notify stream's history, one
 * subject each (`notify.broadcast`, `notify.user.<id>`), `max_msgs_per_subject` = `--history`, on file storage so a
 * restart of nats-server keeps history and epoch (memory storage would turn every broker restart into an epoch reset).
 *
 * - seq: each message carries its notify seq in a `Notify-Seq` header. A publish reads the subject's last message
 *   (seq S at stream sequence L, cached after our own publishes) and publishes S + 1 with "expected last subject
 *   sequence L"; JetStream refuses it if anyone stored another message on the subject since, and we read again and
 *   retry. So seqs stay distinct and gapless per stream whatever number of gateways publish at once.
 * - epoch: derived from the stream's creation time, so every instance agrees on it and a stream deleted and
 *   recreated is a new epoch (checked on reconnect and every few seconds).
 * - live: one ordered consumer per process over the whole stream. It only sees what JetStream stored (a core
 *   subscription would also see publishes JetStream refused), in stream order (so in seq order per notify stream),
 *   and after a disconnect it picks up from the last stream sequence it delivered: the gap comes from history.
 * - history reads: nats-history.ts; the subject layout and message decoding: nats-subjects.ts.
 */
import { performance } from 'node:perf_hooks';
import {
  connect,
  DeliverPolicy,
  headers as natsHeaders,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type NatsConnection,
  type StreamInfo,
} from 'nats';
import { NotifyError } from '../../errors.js';
import { BROADCAST, USER_ID, USER_STREAM_PREFIX } from '../../protocol/streams.js';
import { HttpError } from '../http-error.js';
import type * as B from './broker.js';
import type { BrokerOptions, HistoryRead, PublishItem, StreamEvent } from './broker.js';
import { NatsHistory } from './nats-history.js';
import { NatsPeers } from './nats-peers.js';
import { NatsReadStore } from './nats-reads.js';
import { PeerSharingBroker } from './peer-sharing.js';
import {
  decodeEvent,
  epochOf,
  isNotFound,
  isoToAcceptedAt,
  isWrongLast,
  NATS_STREAM,
  openStream,
  NATS_SUBJECTS,
  SEQ_HEADER,
  streamSubject,
  unavailable,
  type Head,
} from './nats-subjects.js';

/** A publish's ack must arrive within this; past it the publish answers 503. */
const PUBLISH_TIMEOUT_MS = 3000;
/** Publishes from other gateways to the same stream at the same moment: read the head again this many times. */
const CONFLICT_RETRIES = 200;
/** Heads cached after our own publishes; past this many subjects the cache starts over. */
const MAX_HEADS = 100_000;
/** How often the stream is checked for having been deleted and recreated (a new epoch). */
const WATCH_MS = 2000;

export class NatsBroker extends PeerSharingBroker implements B.Broker, B.ReadinessReporting, B.LossReporting, B.ReadSharing {
  readonly kind = 'nats';
  private nc: NatsConnection | undefined;
  private js!: JetStreamClient;
  private jsm!: JetStreamManager;
  private epochId = '';
  private up = false;
  /** Set at a disconnect; cleared once the stream was read again after the reconnect (JetStream answers again). */
  private stale = false;
  private closed = false;
  private live: ConsumerMessages | undefined;
  private watch: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  private readonly listeners: ((events: StreamEvent[]) => void)[] = [];
  private readonly lossListeners: ((loss: B.Loss) => void)[] = [];
  /** Read receipts and audience questions between instances. */
  protected readonly peers = new NatsPeers();
  private store: NatsReadStore | undefined;
  private readonly heads = new Map<string, Head>();
  private history!: NatsHistory;
  /** Publishes to one subject from this process go one at a time (they would only conflict with each other). */
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(
    private readonly url: string,
    private readonly options: BrokerOptions,
  ) {
    super();
  }

  async start(): Promise<void> {
    const servers = this.url.replace(/^nats:\/\//, '');
    try {
      this.nc = await connect({ servers, name: 'notify-serve', maxReconnectAttempts: -1, reconnectTimeWait: 250, timeout: 5000 });
    } catch (err) {
      throw new NotifyError('E_BROKER_CONNECT', `cannot connect to the NATS broker at ${this.url} (--broker): ${(err as Error).message}`, {
        hint: 'start nats-server with JetStream (-js), or check --broker',
      });
    }
    this.up = true;
    this.js = this.nc.jetstream();
    try {
      this.jsm = await this.nc.jetstreamManager();
      this.history = new NatsHistory(this.js, this.jsm, this.options.history, () => this.assertUp());
      const info = await this.ensureStream(true);
      this.epochId = epochOf(info);
      await this.startLive(info.state.last_seq + 1);
      this.store = new NatsReadStore(this.js, unavailable, (r) => this.peers.announceRead(r));
      await this.store.start();
      await this.peers.start(this.nc, this.js, this.jsm);
    } catch (err) {
      await this.nc.close();
      throw new NotifyError('E_BROKER_CONNECT', `the NATS broker at ${this.url} has no usable JetStream: ${(err as Error).message}`, {
        hint: 'nats-server needs -js (JetStream enabled)',
      });
    }
    void this.watchStatus(this.nc);
    this.watch = setInterval(() => void this.refresh(), WATCH_MS);
    this.watch.unref();
  }

  epoch(): string {
    return this.epochId;
  }

  /** For /readyz: connected, and JetStream answered since the last reconnect. */
  ready(): boolean {
    return !this.closed && this.up && !this.stale;
  }

  get reads(): NatsReadStore {
    if (!this.store) throw unavailable(new Error('not started'));
    return this.store;
  }

  onLost(listener: (loss: B.Loss) => void): void {
    this.lossListeners.push(listener);
  }

  /**
   * Creates the stream if missing. At start (`adjust`) it also sets the per-subject limit to `--history`: gateways
   * given different values share one limit, the last one started.
   */
  private async ensureStream(adjust: boolean): Promise<StreamInfo> {
    const history = this.options.history;
    const info = await openStream(this.jsm, { name: NATS_STREAM, subjects: NATS_SUBJECTS, max_msgs_per_subject: history });
    if (!adjust || info.config.max_msgs_per_subject === history) return info;
    return await this.jsm.streams.update(NATS_STREAM, { ...info.config, max_msgs_per_subject: history });
  }

  /** The live feed from stream sequence `from` on: every event any instance stored, in stream order. */
  private async startLive(from: number): Promise<void> {
    this.live?.stop();
    const consumer = await this.js.consumers.get(NATS_STREAM, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: Math.max(1, from) });
    const epoch = this.epochId;
    this.live = await consumer.consume({
      max_messages: 512,
      callback: (m) => {
        if (this.epochId !== epoch) return;
        const ev = decodeEvent({ subject: m.subject, data: m.data, headers: m.headers, streamSeq: m.seq }, performance.now());
        if (!ev) return;
        const head = this.heads.get(m.subject);
        if (head && head.streamSeq < m.seq) this.heads.set(m.subject, { seq: ev.seq, streamSeq: m.seq });
        // A listener that throws must not reach nats.js's callback (it would end the live feed, or the process).
        for (const listener of this.listeners) {
          try {
            listener([ev]);
          } catch {
            // the hub's own failure: nothing the broker can do for it
          }
        }
      },
    });
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        this.up = false;
        this.stale = true;
      } else if (s.type === 'reconnect') {
        this.up = true;
        void this.refresh();
      }
    }
  }

  /** Notices a stream deleted (and maybe recreated elsewhere): a new epoch, a fresh live feed, no stale heads. */
  private refresh(): Promise<void> {
    if (this.closed || !this.up) return Promise.resolve();
    this.refreshing ??= (async () => {
      try {
        const info = await this.ensureStream(false);
        const epoch = epochOf(info);
        if (epoch !== this.epochId) {
          this.epochId = epoch;
          this.heads.clear();
          this.history.clear();
          // The history is gone: every subscriber comes back by cursor and is told so (`reset` epoch). Told in the
          // same tick as the epoch changes, so that one connecting meanwhile (already on the new epoch) is not sent
          // away too; those that come back read the new stream's history, which the live feed then continues.
          for (const l of this.lossListeners) l({ reason: 'epoch' });
          await this.startLive(info.state.first_seq);
        }
        this.stale = false;
      } catch {
        // Broker unreachable: the next reconnect or tick tries again.
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  private assertUp(): void {
    if (this.closed) throw unavailable(new Error('broker closed'));
    if (!this.up) throw unavailable(new Error('disconnected, reconnecting'));
  }

  /** The subject's last message (fresh from JetStream), or none. */
  private async readHead(subject: string): Promise<{ head: Head; ev?: StreamEvent }> {
    this.assertUp();
    let sm;
    try {
      sm = await this.jsm.streams.getMessage(NATS_STREAM, { last_by_subj: subject });
    } catch (err) {
      if (isNotFound(err)) return { head: { seq: 0, streamSeq: 0 } };
      throw unavailable(err);
    }
    const ev = decodeEvent({ subject: sm.subject, data: sm.data, headers: sm.header, streamSeq: sm.seq }, isoToAcceptedAt(sm.timestamp));
    if (!ev) throw new HttpError(500, 'E_BROKER_DATA', `NATS subject ${subject} ends with a message notify did not write (no ${SEQ_HEADER})`);
    return { head: { seq: ev.seq, streamSeq: sm.seq }, ev };
  }

  async publish(items: PublishItem[]): Promise<StreamEvent[]> {
    this.assertUp();
    // In request order per subject; subjects side by side. Not all-or-nothing: JetStream has no multi-subject batch.
    const bySubject = new Map<string, number[]>();
    items.forEach((item, i) => {
      const subject = streamSubject(item.stream);
      const list = bySubject.get(subject);
      if (list) list.push(i);
      else bySubject.set(subject, [i]);
    });
    const out: StreamEvent[] = new Array<StreamEvent>(items.length);
    await Promise.all(
      [...bySubject].map(([subject, indexes]) =>
        this.locked(subject, async () => {
          for (const i of indexes) out[i] = await this.publishOne(subject, items[i]!);
        }),
      ),
    );
    return out;
  }

  private async locked<T>(subject: string, fn: () => Promise<T>): Promise<T> {
    const before = this.locks.get(subject) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(subject, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(subject) === tail) this.locks.delete(subject);
    }
  }

  private async publishOne(subject: string, item: PublishItem): Promise<StreamEvent> {
    for (let attempt = 0; ; attempt++) {
      this.assertUp();
      const head = this.heads.get(subject) ?? (await this.readHead(subject)).head;
      const seq = head.seq + 1;
      const notification = { id: `${this.epochId}-${seq.toString(36)}-${Buffer.from(item.stream).toString('base64url')}`, ...item.notification };
      const json = JSON.stringify(notification);
      const h = natsHeaders();
      h.set(SEQ_HEADER, String(seq));
      try {
        const ack = await this.js.publish(subject, json, { headers: h, expect: { lastSubjectSequence: head.streamSeq }, timeout: PUBLISH_TIMEOUT_MS });
        if (this.heads.size >= MAX_HEADS) this.heads.clear();
        this.heads.set(subject, { seq, streamSeq: ack.seq });
        return { stream: item.stream, seq, notification, json, acceptedAt: performance.now() };
      } catch (err) {
        this.heads.delete(subject);
        if (isWrongLast(err) && attempt < CONFLICT_RETRIES) continue;
        // No stream to take it (deleted under us): recreate it once, as a new epoch.
        if (/no responders|503/i.test((err as Error).message) && attempt === 0) {
          await this.refresh();
          continue;
        }
        throw unavailable(err);
      }
    }
  }

  async readAfter(stream: string, after: number): Promise<HistoryRead> {
    const subject = streamSubject(stream);
    const { head, ev } = await this.readHead(subject);
    if (after >= head.seq) return { events: [], complete: after === head.seq, lastSeq: head.seq };
    if (ev && after + 1 === head.seq) return { events: [ev], complete: true, lastSeq: head.seq };
    const all = await this.history.retained(subject, head);
    const first = all[0]?.seq ?? head.seq + 1;
    return { events: all.filter((e) => e.seq > after && e.seq <= head.seq), complete: first <= after + 1, lastSeq: head.seq };
  }

  async lastSeq(stream: string): Promise<number> {
    return (await this.readHead(streamSubject(stream))).head.seq;
  }

  async recent(stream: string, limit: number): Promise<StreamEvent[]> {
    if (limit <= 0) return [];
    const subject = streamSubject(stream);
    const { head, ev } = await this.readHead(subject);
    if (!ev) return [];
    if (limit === 1) return [ev];
    const all = await this.history.retained(subject, head);
    return all.slice(-limit);
  }

  /** Ids are `<epoch>-<seq base 36>-<stream base64url>`: the stream and seq say where to look. */
  async find(id: string): Promise<StreamEvent | undefined> {
    const m = /^([A-Za-z0-9]+)-([0-9a-z]{1,11})-([A-Za-z0-9_-]{1,400})$/.exec(id);
    if (!m || m[1] !== this.epochId) return undefined;
    const stream = Buffer.from(m[3]!, 'base64url').toString('utf8');
    const valid = stream === BROADCAST || (stream.startsWith(USER_STREAM_PREFIX) && USER_ID.test(stream.slice(USER_STREAM_PREFIX.length)));
    if (!valid) return undefined;
    const seq = parseInt(m[2]!, 36);
    const read = await this.readAfter(stream, seq - 1);
    const ev = read.events.find((e) => e.seq === seq);
    return ev?.notification.id === id ? ev : undefined;
  }

  onEvents(listener: (events: StreamEvent[]) => void): void {
    this.listeners.push(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.length = 0;
    this.lossListeners.length = 0;
    await this.peers.stop();
    if (this.watch) clearInterval(this.watch);
    this.live?.stop();
    await this.nc?.close().catch(() => undefined);
  }
}
