/**
 * Reads a subject's retained history from JetStream: an ephemeral pull consumer filtered on the subject, read up to
 * the subject's last message. What was read is kept for the most recently read subjects, so the next read of one
 * only fetches what came after (a fresh subscriber's snapshot does not fetch the whole broadcast window each time).
 */
import { AckPolicy, DeliverPolicy, nanos, type JetStreamClient, type JetStreamManager } from 'nats';
import type { StreamEvent } from './broker.js';
import { decodeEvent, nanosToAcceptedAt, NATS_STREAM, unavailable, type Head } from './nats-subjects.js';

/** Subjects whose retained events are kept here, so the next read only fetches what came after (least recent go). */
const MAX_WINDOWS = 256;

export class NatsHistory {
  /** Retained events of recently read subjects, up to stream sequence `until`. */
  private readonly windows = new Map<string, { until: number; events: StreamEvent[] }>();

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    /** `--history`: events kept per subject. */
    private readonly history: number,
    /** Throws 503 while the broker is down. */
    private readonly assertUp: () => void,
  ) {}

  /** Forgets every window: the stream was recreated (a new epoch). */
  clear(): void {
    this.windows.clear();
  }

  /**
   * Every retained event of a subject up to its head, oldest first. A subject read before is only read from where
   * that read ended: a fresh subscriber's snapshot does not fetch the whole broadcast window each time.
   */
  async retained(subject: string, head: Head): Promise<StreamEvent[]> {
    const cached = this.windows.get(subject);
    let events: StreamEvent[] | undefined;
    if (cached && cached.until === head.streamSeq) events = cached.events;
    else if (cached && cached.until < head.streamSeq) {
      const more = await this.scan(subject, cached.until + 1, head.streamSeq);
      const last = cached.events[cached.events.length - 1];
      // Seqs are gapless per subject: anything else means the subject changed under us (purged): read it whole.
      if (last && more.length > 0 && more[0]!.seq === last.seq + 1) events = [...cached.events, ...more].slice(-this.history);
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
        const batch = await consumer.fetch({ max_messages: Math.min(1000, this.history + 1), expires: 2000 });
        let got = 0;
        let done = false;
        for await (const m of batch) {
          got++;
          const ev = decodeEvent({ subject: m.subject, data: m.data, headers: m.headers, streamSeq: m.seq }, nanosToAcceptedAt(m.info.timestampNanos));
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
}
