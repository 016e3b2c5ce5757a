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
 * - history reads: an ephemeral consumer filtered on the subject, read up to the subject's last message.
 */
import { performance } from 'node:perf_hooks';
import {
  AckPolicy,
  connect,
  DeliverPolicy,
  DiscardPolicy,
  headers as natsHeaders,
  nanos,
  RetentionPolicy,
  StorageType,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type MsgHdrs,
  type NatsConnection,
  type StreamInfo,
} from 'nats';
import { NotifyError } from '../../errors.js';
import type { Notification } from '../../protocol/notification.js';
import { BROADCAST, USER_ID, USER_STREAM_PREFIX } from '../../protocol/streams.js';
import { HttpError } from '../http-error.js';
import type { ReadReceipt } from '../read-store.js';
import type * as B from './broker.js';
import type { BrokerOptions, HistoryRead, PublishItem, StreamEvent } from './broker.js';
import { NatsPeers } from './nats-peers.js';
import { NatsReadStore } from './nats-reads.js';

export const NATS_STREAM = 'NOTIFY';
const USER_SUBJECT = 'notify.user.';
const BROADCAST_SUBJECT = 'notify.broadcast';
const SEQ_HEADER = 'Notify-Seq';
/** A publish's ack must arrive within this; past it the publish answers 503. */
const PUBLISH_TIMEOUT_MS = 3000;
/** Publishes from other gateways to the same stream at the same moment: read the head again this many times. */
const CONFLICT_RETRIES = 200;
/** Heads cached after our own publishes; past this many subjects the cache starts over. */
const MAX_HEADS = 100_000;
/** Subjects whose retained events are kept here, so the next read only fetches what came after (least recent go). */
const MAX_WINDOWS = 256;
/** How often the stream is checked for having been deleted and recreated (a new epoch). */
const WATCH_MS = 2000;

interface Head {
  seq: number;
  streamSeq: number;
}

/** A message as read from JetStream, whichever API delivered it. */
interface RawMsg {
  subject: string;
  data: Uint8Array;
  headers: MsgHdrs | undefined;
  streamSeq: number;
}

/** `user:<id>` -> `notify.user.<id>` with every character outside A-Z a-z 0-9 _ - written `~hh` (ids may hold dots). */
export function streamSubject(stream: string): string {
  if (stream === BROADCAST) return BROADCAST_SUBJECT;
  if (!stream.startsWith(USER_STREAM_PREFIX)) throw new HttpError(400, 'E_STREAM', `unknown stream "${stream.slice(0, 80)}"`);
  const id = stream.slice(USER_STREAM_PREFIX.length);
  return USER_SUBJECT + id.replace(/[^A-Za-z0-9_-]/g, (c) => `~${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export function subjectStream(subject: string): string | undefined {
  if (subject === BROADCAST_SUBJECT) return BROADCAST;
  if (!subject.startsWith(USER_SUBJECT)) return undefined;
  const id = subject.slice(USER_SUBJECT.length).replace(/~([0-9a-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  return USER_ID.test(id) ? USER_STREAM_PREFIX + id : undefined;
}

/** The epoch of a stream: its creation time (nanoseconds) in base 36, the same on every instance. */
export function epochOf(info: StreamInfo): string {
  const digits = info.created.replace(/\D/g, '').padEnd(23, '0').slice(0, 23);
  return BigInt(digits).toString(36);
}

function unavailable(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  const why = err instanceof Error ? err.message : String(err);
  return new HttpError(503, 'E_BROKER_UNAVAILABLE', `the NATS broker is unavailable (${why}); try again`, { 'Retry-After': '2' });
}

function isWrongLast(err: unknown): boolean {
  const e = err as { api_error?: { err_code?: number }; message?: string };
  return e.api_error?.err_code === 10071 || /wrong last sequence/i.test(e.message ?? '');
}

function isNotFound(err: unknown): boolean {
  const e = err as { api_error?: { err_code?: number }; message?: string };
  return e.api_error?.err_code === 10037 || e.api_error?.err_code === 10059 || /not found/i.test(e.message ?? '');
}

export class NatsBroker implements B.Broker, B.ReadinessReporting, B.LossReporting, B.ReadSharing, B.AudienceCounting {
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
  private readonly peers = new NatsPeers();
  private store: NatsReadStore | undefined;
  private readonly heads = new Map<string, Head>();
  /** Retained events of recently read subjects, up to stream sequence `until`. */
  private readonly windows = new Map<string, { until: number; events: StreamEvent[] }>();
  /** Publishes to one subject from this process go one at a time (they would only conflict with each other). */
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly decoder = new TextDecoder();

  constructor(
    private readonly url: string,
    private readonly options: BrokerOptions,
  ) {}

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
      const info = await this.ensureStream(true);
      this.epochId = epochOf(info);
      await this.startLive(info.state.last_seq + 1);
      this.store = new NatsReadStore(this.js, unavailable, (r) => this.peers.announceRead(r));
      await this.store.start();
      await this.peers.start(this.nc);
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

  onRemoteRead(listener: (receipt: ReadReceipt) => void): void {
    this.peers.onRemoteRead(listener);
  }

  countLocal(count: (streams: string[]) => number[]): void {
    this.peers.countLocal(count);
  }

  audience(streams: string[]): Promise<number[]> {
    return this.peers.audience(streams);
  }

  onLost(listener: (loss: B.Loss) => void): void {
    this.lossListeners.push(listener);
  }

  /**
   * Creates the stream if missing. At start (`adjust`) it also sets the per-subject limit to `--history`: gateways
   * given different values share one limit, the last one started.
   */
  private async ensureStream(adjust: boolean): Promise<StreamInfo> {
    try {
      const info = await this.jsm.streams.info(NATS_STREAM);
      if (!adjust || info.config.max_msgs_per_subject === this.options.history) return info;
      return await this.jsm.streams.update(NATS_STREAM, { ...info.config, max_msgs_per_subject: this.options.history });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    try {
      return await this.jsm.streams.add({
        name: NATS_STREAM,
        subjects: [`${USER_SUBJECT}>`, BROADCAST_SUBJECT],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        discard: DiscardPolicy.Old,
        max_msgs_per_subject: this.options.history,
        num_replicas: 1,
      });
    } catch {
      // Another instance created it at the same moment.
      return await this.jsm.streams.info(NATS_STREAM);
    }
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
        const ev = this.toEvent({ subject: m.subject, data: m.data, headers: m.headers, streamSeq: m.seq }, performance.now());
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
          this.windows.clear();
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

  private toEvent(m: RawMsg, acceptedAt: number): StreamEvent | undefined {
    const stream = subjectStream(m.subject);
    const seq = Number(m.headers?.get(SEQ_HEADER));
    if (!stream || !Number.isSafeInteger(seq) || seq < 1) return undefined;
    try {
      const json = this.decoder.decode(m.data);
      const notification = JSON.parse(json) as Notification;
      if (typeof notification !== 'object' || notification === null || typeof notification.id !== 'string') return undefined;
      return { stream, seq, notification, json, acceptedAt };
    } catch {
      return undefined; // not written by notify: skipped
    }
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
    const ev = this.toEvent({ subject: sm.subject, data: sm.data, headers: sm.header, streamSeq: sm.seq }, isoToAcceptedAt(sm.timestamp));
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

  /**
   * Every retained event of a subject up to its head, oldest first. A subject read before is only read from where
   * that read ended: a fresh subscriber's snapshot does not fetch the whole broadcast window each time.
   */
  private async retained(subject: string, head: Head): Promise<StreamEvent[]> {
    const cached = this.windows.get(subject);
    let events: StreamEvent[] | undefined;
    if (cached && cached.until === head.streamSeq) events = cached.events;
    else if (cached && cached.until < head.streamSeq) {
      const more = await this.scan(subject, cached.until + 1, head.streamSeq);
      const last = cached.events[cached.events.length - 1];
      // Seqs are gapless per subject: anything else means the subject changed under us (purged): read it whole.
      if (last && more.length > 0 && more[0]!.seq === last.seq + 1) events = [...cached.events, ...more].slice(-this.options.history);
    }
    events ??= await this.scan(subject, 1, head.streamSeq);
    this.windows.delete(subject);
    this.windows.set(subject, { until: head.streamSeq, events });
    if (this.windows.size > MAX_WINDOWS) this.windows.delete(this.windows.keys().next().value!);
    return events;
  }

  /** The retained events of a subject from stream sequence `from` up to `until`, oldest first. */
  private async scan(subject: string, from: number, until: number): Promise<StreamEvent[]> {
    this.assertUp();
    const events: StreamEvent[] = [];
    let name: string | undefined;
    try {
      // A plain ephemeral pull consumer: nats.js's ordered consumer never answers a fetch from nats-server 2.9.
      const info = await this.jsm.consumers.add(NATS_STREAM, {
        filter_subject: subject,
        ...(from > 1 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from } : { deliver_policy: DeliverPolicy.All }),
        ack_policy: AckPolicy.None,
        mem_storage: true,
        inactive_threshold: nanos(10_000),
      });
      name = info.name;
      const consumer = await this.js.consumers.get(NATS_STREAM, name);
      for (;;) {
        const batch = await consumer.fetch({ max_messages: Math.min(1000, this.options.history + 1), expires: 2000 });
        let got = 0;
        let done = false;
        for await (const m of batch) {
          got++;
          const ev = this.toEvent({ subject: m.subject, data: m.data, headers: m.headers, streamSeq: m.seq }, nanosToAcceptedAt(m.info.timestampNanos));
          if (ev) events.push(ev);
          if (m.seq >= until) {
            done = true;
            break;
          }
        }
        batch.stop();
        if (done || got === 0) break;
      }
    } catch (err) {
      throw unavailable(err);
    } finally {
      if (name) this.jsm.consumers.delete(NATS_STREAM, name).catch(() => undefined);
    }
    return events;
  }

  async readAfter(stream: string, after: number): Promise<HistoryRead> {
    const subject = streamSubject(stream);
    const { head, ev } = await this.readHead(subject);
    if (after >= head.seq) return { events: [], complete: after === head.seq, lastSeq: head.seq };
    if (ev && after + 1 === head.seq) return { events: [ev], complete: true, lastSeq: head.seq };
    const all = await this.retained(subject, head);
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
    const all = await this.retained(subject, head);
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

/** JetStream's timestamps on this process's performance.now() scale: history from two streams interleaves by them. */
function nanosToAcceptedAt(nanos: number): number {
  return nanos / 1e6 - performance.timeOrigin;
}

function isoToAcceptedAt(iso: string): number {
  const m = /^(.*?:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(iso);
  if (!m) return Date.parse(iso) - performance.timeOrigin;
  const fraction = Number(`0.${m[2] ?? '0'}`) * 1000;
  return Date.parse(m[1]! + m[3]!) - performance.timeOrigin + fraction;
}
