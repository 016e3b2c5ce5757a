/**
 * The swarm's publisher: sends probes on a fixed schedule (broadcast at `rate`, per-user at `userRate` spread
 * round-robin over the users). Each probe carries its *intended* send time `t`, so a publisher that falls behind
 * shows up in the latency instead of hiding it (no coordinated omission). It keeps the send log per stream: the
 * time each probe was actually sent, which the audit needs to know what every subscriber was owed.
 *
 * Per stream, one publish request is in flight at a time; probes that come due meanwhile go out together as one
 * batch request when it returns. Concurrent requests for one stream could reach the server in another order than
 * their seqs, and the audit would then report the publisher's own reordering as the server's.
 *
 * How a probe reaches the server is the target profile's `publish` block (src/publish/probe-publishers.ts: notify
 * serve's batch POST, any HTTP API, Redis PUBLISH, NATS); this scheduler is the same for all of them.
 */
import { performance } from 'node:perf_hooks';
import { createHistogram } from '../metrics/histogram.js';
import type { Probe } from '../protocol/probe.js';
import { BROADCAST, userStream } from '../protocol/streams.js';
import { createProbePublisher } from '../publish/probe-publishers.js';
import type { ItemOutcome, ProbeItem, ProbePublisher } from '../publish/probe-publisher.js';
import type { TargetProfile } from '../targets/schema.js';

export interface PublisherOptions {
  run: string;
  /** Servers every probe is published to: the first --url, or each of them (`--publish-to each`). */
  urls: string[];
  /**
   * `--publish-to first`: the other --url, in order. When the server published to cannot be reached, the publisher
   * moves on to the next of them (see `sendAll`).
   */
  failoverUrls?: string[];
  /** How to publish on them. */
  target: TargetProfile;
  payloadBytes?: number;
  /** Broadcast probes per second. */
  rate: number;
  /** Per-user probes per second, in total. */
  userRate: number;
  users: number;
  userPrefix: string;
  /** `--insecure-tls`: accept any certificate on https:// URLs. */
  insecureTls?: boolean;
  /** `--jwt-secret`: a publish header's `{token}` is the HS256 JWT of the probe's user. */
  jwtSecret?: string;
}

const nowMs = () => performance.timeOrigin + performance.now();

export class Publisher {
  private readonly publishers: ProbePublisher[];
  /** Send times (epoch ms) per stream; index i is seq i+1. */
  readonly sendTimes = new Map<string, number[]>();
  /**
   * Seqs per stream that certainly were not stored (owed to nobody): a server answered with an error, or the request
   * never left (ECONNREFUSED, DNS, connect timeout). A timeout or reset after sending leaves the probe expected.
   */
  readonly refused = new Map<string, number[]>();
  readonly ack = createHistogram();
  readonly failures: Record<string, number> = {};
  sent = 0;
  accepted = 0;
  /** How much of `sendTimes` and `refused`, per stream, `takeNewLog` has handed out. */
  private readonly logged = new Map<string, number>();
  private readonly loggedRefused = new Map<string, number>();
  /** Sent since the last `takeSent()`. */
  private sentTick = 0;
  private inFlight = new Set<Promise<void>>();
  /** Probes due but not sent yet, per stream, while that stream has a request in flight. */
  private readonly queued = new Map<string, ProbeItem[]>();
  private readonly busy = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  /** Where the next burst's user probes start, so bursts spread over the users too. */
  private burstUser = 0;
  private running = false;
  private finished: (() => void) | undefined;

  constructor(private readonly options: PublisherOptions) {
    // Brokers are one destination whatever the --url; HTTP publishes to each server the run publishes to.
    const bases = options.target.publish.http ? options.urls : options.urls.slice(0, 1);
    this.publishers = bases.map((base) =>
      createProbePublisher(options.target, base, {
        connections: 32,
        timeoutMs: 30_000,
        payloadBytes: options.payloadBytes,
        insecureTls: options.insecureTls,
        jwtSecret: options.jwtSecret,
      }),
    );
  }

  /** Publishes from `startAt` (epoch ms) for `durationMs`. Resolves when the schedule is done (not the answers). */
  run(startAt: number, durationMs: number): Promise<void> {
    const { rate, userRate } = this.options;
    const broadcastTotal = Math.floor((rate * durationMs) / 1000);
    const userTotal = Math.floor((userRate * durationMs) / 1000);
    let b = 0;
    let u = 0;
    this.running = true;
    return new Promise((resolve) => {
      this.finished = resolve;
      const step = () => {
        if (!this.running) return resolve();
        const now = nowMs();
        // Everything due by now goes out now, each with its own intended time.
        while (b < broadcastTotal && startAt + (b * 1000) / rate <= now) this.send(BROADCAST, startAt + (b++ * 1000) / rate);
        while (u < userTotal && startAt + (u * 1000) / userRate <= now) {
          const user = `${this.options.userPrefix}${(u % this.options.users) + 1}`;
          this.send(userStream(user), startAt + (u++ * 1000) / userRate, user);
        }
        if (b >= broadcastTotal && u >= userTotal) return resolve();
        const nextB = b < broadcastTotal ? startAt + (b * 1000) / rate : Infinity;
        const nextU = u < userTotal ? startAt + (u * 1000) / userRate : Infinity;
        this.timer = setTimeout(step, Math.max(0, Math.min(nextB, nextU) - nowMs()));
      };
      step();
    });
  }

  /**
   * A scenario's burst: `count` probes at once on the broadcast stream, on user streams (round-robin over the
   * users), or `count` on each; every one intended for now. Returns how many were queued.
   */
  burst(count: number, streams: 'broadcast' | 'user' | 'both'): number {
    const now = nowMs();
    let sent = 0;
    for (let k = 0; k < count; k++) {
      if (streams !== 'user') {
        this.send(BROADCAST, now);
        sent++;
      }
      if (streams !== 'broadcast') {
        const user = `${this.options.userPrefix}${(this.burstUser++ % this.options.users) + 1}`;
        this.send(userStream(user), now, user);
        sent++;
      }
    }
    return sent;
  }

  private send(stream: string, t: number, user?: string): void {
    const probe: Probe = { run: this.options.run, stream, seq: 0, t };
    let queue = this.queued.get(stream);
    if (!queue) this.queued.set(stream, (queue = []));
    probe.seq = (this.sendTimes.get(stream)?.length ?? 0) + queue.length + 1;
    queue.push({ probe, stream, user });
    if (!this.busy.has(stream)) this.flush(stream);
  }

  /** Sends everything queued for the stream as one request (an array when more than one), in seq order. */
  private flush(stream: string): void {
    const queue = this.queued.get(stream);
    if (!queue || queue.length === 0) {
      this.busy.delete(stream);
      return;
    }
    this.queued.set(stream, []);
    this.busy.add(stream);
    let times = this.sendTimes.get(stream);
    if (!times) this.sendTimes.set(stream, (times = []));
    const sentAt = nowMs();
    for (let i = 0; i < queue.length; i++) times.push(sentAt);
    this.sent += queue.length;
    this.sentTick += queue.length;
    const p = this.sendAll(queue).then((outcomes) => {
      this.account(stream, queue, outcomes, sentAt);
      this.inFlight.delete(p);
      if (this.running || this.queued.get(stream)?.length) this.flush(stream);
      else this.busy.delete(stream);
    });
    this.inFlight.add(p);
  }

  /** With `failoverUrls`: the index into [urls[0], ...failoverUrls] of the server published to now. */
  private active = 0;

  /**
   * One send of a stream's items to every server published to: `outcomes[publisher][item]`. With `failoverUrls` (and
   * an HTTP target: a broker is one destination whatever the --url), a server that cannot be reached (no connection,
   * or 503) is left for the next --url, round-robin, for this send and the following ones; the items it certainly
   * did not store are sent there once more, and their outcome is the retry's. So a probe is refused only when neither
   * server took it, and one that the first may have stored (a reset or a timeout after sending) is never sent twice:
   * a second copy would be a duplicate that the servers did not make.
   */
  private async sendAll(items: readonly ProbeItem[]): Promise<ItemOutcome[][]> {
    const all = this.options.target.publish.http ? [this.options.urls[0]!, ...(this.options.failoverUrls ?? [])] : [];
    if (all.length < 2) return Promise.all(this.publishers.map((c) => c.send(items)));
    const at = this.active;
    const first = await this.publishers[at]!.send(items);
    const unreachable = (o: ItemOutcome) => !o.ok && o.stored === false && (o.cause === 'http-503' || !/^(http-\d+|aborted|bad-url)$/.test(o.cause));
    const again = items.filter((_, k) => unreachable(first[k]!));
    if (again.length === 0) return [first];
    // Several streams' sends fail at once: the first to answer moves on, the others follow it.
    if (this.active === at) this.active = (at + 1) % all.length;
    // Made on first use, with the constructor's client options; `close` destroys it with the others.
    const next = (this.publishers[this.active] ??= createProbePublisher(this.options.target, all[this.active]!, {
      connections: 32,
      timeoutMs: 30_000,
      payloadBytes: this.options.payloadBytes,
      insecureTls: this.options.insecureTls,
      jwtSecret: this.options.jwtSecret,
    }));
    const retried = await next.send(again);
    let r = 0;
    return [first.map((o) => (unreachable(o) ? retried[r++]! : o))];
  }

  /** Counts one send's answers: `outcomes[publisher][item]`. */
  private account(stream: string, items: readonly ProbeItem[], outcomes: ItemOutcome[][], sentAt: number): void {
    let allOk = true;
    for (let i = 0; i < items.length; i++) {
      let ok = true;
      let refused = false;
      for (const list of outcomes) {
        const outcome = list[i]!;
        if (outcome.ok) continue;
        ok = false;
        // An error answer, or no connection at all, means the server did not store it; a timeout or a reset after
        // sending leaves it unknown, so it stays expected.
        if (outcome.stored === false) refused = true;
        this.failures[outcome.cause] = (this.failures[outcome.cause] ?? 0) + 1;
      }
      if (ok) this.accepted++;
      else allOk = false;
      if (refused) {
        let list = this.refused.get(stream);
        if (!list) this.refused.set(stream, (list = []));
        list.push(items[i]!.probe.seq);
      }
    }
    if (allOk) this.ack.recordMs(nowMs() - sentAt);
  }

  /** Resolves once no probe waits to be sent (every stream's queue has left), or after `maxMs`. */
  async flushed(maxMs: number): Promise<void> {
    const deadline = nowMs() + maxMs;
    while (nowMs() < deadline && [...this.queued.values()].some((q) => q.length > 0)) await new Promise((r) => setTimeout(r, 5));
  }

  /**
   * The send log and refusals added since the previous call, per stream: what the workers need to audit live
   * (their copy of the log grows by these each second).
   */
  takeNewLog(): { times: Record<string, number[]>; refused: Record<string, number[]> } {
    const times: Record<string, number[]> = {};
    for (const [stream, all] of this.sendTimes) {
      const from = this.logged.get(stream) ?? 0;
      if (all.length > from) times[stream] = all.slice(from);
      this.logged.set(stream, all.length);
    }
    const refused: Record<string, number[]> = {};
    for (const [stream, all] of this.refused) {
      const from = this.loggedRefused.get(stream) ?? 0;
      if (all.length > from) refused[stream] = all.slice(from);
      this.loggedRefused.set(stream, all.length);
    }
    return { times, refused };
  }

  /** Probes sent since the previous call. */
  takeSent(): number {
    const n = this.sentTick;
    this.sentTick = 0;
    return n;
  }

  /** Stops the schedule (Ctrl-C); what was sent stays in the log. */
  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.finished?.();
  }

  /** Waits for the answers still in flight (bounded), then closes the client. */
  async close(timeoutMs = 5000): Promise<void> {
    this.stop();
    await Promise.race([Promise.all(this.inFlight), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    await Promise.all(this.publishers.map((c) => c.destroy()));
  }

  sendTimesJson(): Record<string, number[]> {
    return Object.fromEntries(this.sendTimes);
  }

  refusedJson(): Record<string, number[]> {
    return Object.fromEntries(this.refused);
  }
}
