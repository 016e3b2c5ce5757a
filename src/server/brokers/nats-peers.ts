/**
 * What NATS carries between gateway instances besides live events: read receipts (`notify.reads`, kept in the
 * JetStream stream NOTIFY_READS, so that an instance that was away from NATS when a read was made elsewhere gets it
 * when it is back: its ordered consumer goes on from the last receipt it had), and, on core subjects, instance
 * announcements (`notify.peers.hello`, every HELLO_MS, answered by every
 * instance when a new one says hello, so it knows the others at once) and the audience questions behind
 * `delivered` (`notify.audience`, answered on `notify.audience.<asker>`; see audience.ts). Core NATS does not say
 * how many got a message, so the asker waits for as many answers as instances it heard from within GONE_MS.
 */
import { randomBytes } from 'node:crypto';
import { DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type NatsConnection, type Subscription } from 'nats';
import { decodeRemoteRead, encodeRemoteRead, type ReadReceipt } from '../read-store.js';
import { AudiencePoll } from './audience.js';
import type { Peers } from './peer-sharing.js';
import { openStream } from './nats-subjects.js';

const READS_SUBJECT = 'notify.reads';
const READS_STREAM = 'NOTIFY_READS';
/** Receipts the stream keeps for an instance that comes back (older ones: their marks are in the snapshot). */
const READS_KEPT = 10_000;
const HELLO_SUBJECT = 'notify.peers.hello';
const ASK_SUBJECT = 'notify.audience';
const answerSubject = (instance: string): string => `${ASK_SUBJECT}.${instance}`;
const HELLO_MS = 2000;
/** An instance not heard from for this long is taken as gone (not waited for). */
const GONE_MS = 3 * HELLO_MS;
/** How long a closing instance waits for its goodbye to leave. */
const BYE_FLUSH_MS = 500;

export class NatsPeers implements Peers {
  readonly instance = randomBytes(6).toString('hex');
  private readonly poll = new AudiencePoll(this.instance);
  private readonly readListeners: ((receipt: ReadReceipt) => void)[] = [];
  /** Other instances, by when they were last heard from (Date.now()). */
  private readonly seen = new Map<string, number>();
  private readonly subs: Subscription[] = [];
  private reads: ConsumerMessages | undefined;
  private timer: NodeJS.Timeout | undefined;
  private nc: NatsConnection | undefined;
  private readonly decoder = new TextDecoder();

  async start(nc: NatsConnection, js: JetStreamClient, jsm: JetStreamManager): Promise<void> {
    this.nc = nc;
    const on = (subject: string, handle: (text: string) => void): void => {
      this.subs.push(nc.subscribe(subject, { callback: (err, msg) => err || handle(this.decoder.decode(msg.data)) }));
    };
    const info = await openStream(jsm, { name: READS_STREAM, subjects: [READS_SUBJECT], max_msgs: READS_KEPT });
    const consumer = await js.consumers.get(READS_STREAM, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: info.state.last_seq + 1 });
    this.reads = await consumer.consume({ callback: (m) => this.onRead(this.decoder.decode(m.data)) });
    on(HELLO_SUBJECT, (text) => this.onHello(text));
    on(ASK_SUBJECT, (text) => {
      const a = this.poll.answer(text);
      if (a) this.send(answerSubject(a.to), a.text);
    });
    on(answerSubject(this.instance), (text) => this.poll.onAnswer(text));
    await nc.flush();
    this.send(HELLO_SUBJECT, JSON.stringify({ i: this.instance, r: 1 }));
    this.timer = setInterval(() => this.send(HELLO_SUBJECT, JSON.stringify({ i: this.instance })), HELLO_MS);
    this.timer.unref();
  }

  /** Says goodbye, so that the others stop waiting for this instance's answers at once. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.send(HELLO_SUBJECT, JSON.stringify({ i: this.instance, bye: 1 }));
    for (const s of this.subs) s.unsubscribe();
    this.reads?.stop();
    // close() does not flush what is still queued; while NATS is away there is nobody to tell anyway.
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, BYE_FLUSH_MS)));
    await Promise.race([this.nc?.flush().catch(() => undefined), late]);
    clearTimeout(timer);
  }

  /** Tells the other instances about a read made here (this one hears it too, and skips it); NOTIFY_READS keeps it. */
  announceRead(receipt: ReadReceipt): void {
    this.send(READS_SUBJECT, encodeRemoteRead(this.instance, receipt));
  }

  onRemoteRead(listener: (receipt: ReadReceipt) => void): void {
    this.readListeners.push(listener);
  }

  countLocal(count: (streams: string[]) => number[]): void {
    this.poll.countLocal(count);
  }

  audience(streams: string[]): Promise<number[]> {
    return this.poll.ask(streams, async (question) => {
      if (!this.nc || this.nc.isClosed()) throw new Error('not connected');
      this.nc.publish(ASK_SUBJECT, question);
      const now = Date.now();
      let live = 1;
      for (const [id, at] of this.seen) {
        if (now - at < GONE_MS) live++;
        else this.seen.delete(id);
      }
      return live;
    });
  }

  private send(subject: string, text: string): void {
    try {
      this.nc?.publish(subject, text);
    } catch {
      // closed or draining: the next hello, the next read, or the asker's timeout covers it
    }
  }

  private onHello(text: string): void {
    let m: { i?: unknown; r?: unknown; bye?: unknown };
    try {
      m = JSON.parse(text) as typeof m;
    } catch {
      return;
    }
    if (typeof m.i !== 'string' || m.i === this.instance) return;
    if (m.bye === 1) return void this.seen.delete(m.i);
    this.seen.set(m.i, Date.now());
    if (m.r === 1) this.send(HELLO_SUBJECT, JSON.stringify({ i: this.instance }));
  }

  private onRead(text: string): void {
    const receipt = decodeRemoteRead(text, this.instance);
    if (receipt) for (const l of this.readListeners) l(receipt);
  }
}
