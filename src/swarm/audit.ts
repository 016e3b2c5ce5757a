/**
 * Delivery audit: which probes each subscriber was owed, got, got twice, got out of order or got back by replay.
 *
 * Rules (DESIGN.md "notify swarm measurement definitions", made precise). Per subscriber (one logical connection,
 * across its reconnects) and per stream it subscribes to:
 * - watermark W: the number of probes of the stream the publisher had *sent* before the subscriber's first successful
 *   open (`opened(at)` notes the time; the publisher's send log turns it into W at `finish`, because the publisher
 *   lives in another process and its live progress cannot be read without lag). Expected = probes with
 *   W < seq <= final seq at the end of publishing. A subscriber that never opened expects nothing (its failure shows
 *   in the connection figures, not here).
 * - A receipt of seq <= W is `early` (sent before the subscription opened, e.g. racing the open): not expected, not
 *   delivered.
 * - delivered: distinct expected seqs received (a bitset from seq 1, so a subscriber costs 1 bit per probe of its
 *   streams: 90 MB for 720 M deliveries). lost = expected - delivered.
 * - duplicated: every receipt of a seq already received.
 * - out-of-order: a first receipt whose seq is below the highest seq already received on the stream by this
 *   subscriber, across reconnects. A replay after a resume starts after the cursor, i.e. after the last event
 *   received, so a normal replay is in order.
 * - recovered: at every re-open (an `opened(at)` after a `closed()`) the audit notes the time R. A first receipt,
 *   after that re-open, of a probe whose intended send time t is before R was published before that connection
 *   existed and was not received before: it was missed live and came back through replay. Recovered probes are
 *   also delivered. If the publisher runs late, a probe may reach the server after the re-open and be misfiled as
 *   recovered; it is still delivered. A target that cannot resume (`resume: none`) recovers nothing: what it sends
 *   after a re-open is live, even a probe that was in flight across it.
 * - refused: a probe whose publish request the server answered with an error, or that never left this machine (no
 *   connection: ECONNREFUSED, DNS, connect timeout), was never stored; it is not expected and, if it arrives anyway,
 *   not delivered. (A publish sent but not answered, e.g. a timeout or a reset, stays expected: the server may have
 *   stored it.)
 * - misrouted: receipts of this run's probes of a stream the subscriber must not receive (the publisher's `user:7`
 *   at the subscriber of user 3; `broadcast` goes to everyone): a server leaking one user's notifications to another.
 *   Counted per receipt, whenever it arrives (before the first open too); never expected, never delivered.
 * - ignored: receipts of another run's probes, with a malformed seq or one far ahead of the publisher, or before
 *   the first open. Counted, never expected.
 * All figures are plain counts, summable across subscribers, workers and machines (`addCounts`, `AuditTally`).
 */
import type { LiveAudit } from '../metrics/snapshot.js';
import type { EventCounts } from '../metrics/summary.js';

/**
 * The publisher's log as the audit needs it at the end: per stream, how many probes had been sent before an
 * epoch-ms time (`sentBefore`), and how many were sent in all by the end of publishing (`final`).
 */
export interface PublishLog {
  sentBefore(stream: string, atMs: number): number;
  final(stream: string): number;
  /**
   * Seqs (ascending) whose publish the server refused with an HTTP error or that never reached a server (no
   * connection): never stored, so owed to nobody. A receipt
   * of one is not counted as delivered.
   */
  refused?(stream: string): readonly number[];
}

/**
 * What one receipt was, as bit flags. `New` is set on the first receipt of a probe (record its latency then; whether
 * it was expected or early is known only at `finish`); `OutOfOrder` and `Recovered` come with `New`.
 */
export const Receipt = {
  New: 1,
  OutOfOrder: 2,
  Recovered: 4,
  Duplicate: 8,
  Misrouted: 16,
  Ignored: 32,
} as const;

/** Audit figures (counts of probes or receipts). */
export interface AuditCounts extends Omit<EventCounts, 'published'> {
  early: number;
  ignored: number;
}

/** Audit figures of one subscriber on one stream. */
export interface StreamAuditCounts extends AuditCounts {
  stream: string;
}

export function emptyCounts(): AuditCounts {
  return { expected: 0, delivered: 0, lost: 0, duplicated: 0, outOfOrder: 0, recovered: 0, misrouted: 0, early: 0, ignored: 0 };
}

const COUNT_KEYS = ['expected', 'delivered', 'lost', 'duplicated', 'outOfOrder', 'recovered', 'misrouted', 'early', 'ignored'] as const;

/** Adds `from` into `into` (mutates and returns `into`). */
export function addCounts(into: AuditCounts, from: AuditCounts): AuditCounts {
  for (const k of COUNT_KEYS) into[k] += from[k];
  return into;
}

/** The event figures of a run summary from audit totals and the publisher's probe count. */
export function toEventCounts(c: AuditCounts, published: number): EventCounts {
  const { expected, delivered, lost, duplicated, outOfOrder, recovered, misrouted } = c;
  return { published, expected, delivered, lost, duplicated, outOfOrder, recovered, misrouted };
}

/** How far a received seq may run ahead of the publisher's known progress (which may lag in another process). */
const MAX_SEQ_AHEAD = 1_000_000;

/**
 * Set bits among the first `n` bits of a bitset, remembered at two points and kept up to date by `receive`: a count
 * moves from a point to a nearby `n` by scanning only the words in between. The live audit asks each tick for the
 * watermark (fixed after the first open) and for the head of the log (a little further on each tick), so with one
 * point parked at each, a tick costs the probes sent since the last tick, not every probe of the run so far.
 */
class PrefixCounts {
  /** Points (bit counts) and the set bits below each. */
  lowN = 0;
  lowCount = 0;
  highN = 0;
  highCount = 0;

  /** Bit `index` was just set. */
  set(index: number): void {
    if (index < this.lowN) this.lowCount++;
    if (index < this.highN) this.highCount++;
  }

  /** Set bits among the first `n` of `bits`, from the nearer point, which then moves to `n`. */
  count(bits: Uint32Array, n: number): number {
    if (n <= 0) return 0; // `early` asks from 0: that must not pull the point parked at the watermark away
    if (Math.abs(n - this.lowN) <= Math.abs(n - this.highN)) {
      this.lowCount = moveCount(bits, this.lowN, this.lowCount, n);
      this.lowN = n;
      return this.lowCount;
    }
    this.highCount = moveCount(bits, this.highN, this.highCount, n);
    this.highN = n;
    return this.highCount;
  }
}

/** Set bits below `to`, given `known` set bits below `from`. */
function moveCount(bits: Uint32Array, from: number, known: number, to: number): number {
  return to >= from ? known + bitsIn(bits, from, to) : known - bitsIn(bits, to, from);
}

/**
 * One subscriber's receipts on one stream. It holds its prefix counts as its own fields (it is a PrefixCounts): a
 * receipt touches the memory of thousands of subscribers in turn, so each object less to reach is a cache miss less.
 */
class StreamTrack extends PrefixCounts {
  highest = 0;
  /** Bit i set = seq i+1 received. */
  bits = new Uint32Array(8);
  duplicated = 0;
  outOfOrder = 0;
  recovered = 0;
  misrouted = 0;
  early = 0;
  ignored = 0;
  constructor(readonly stream: string) {
    super();
  }
}

function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}

/** Set bits with index in [from, to) (bits past the end of the array are unset). */
function bitsIn(bits: Uint32Array, from: number, to: number): number {
  to = Math.min(to, bits.length * 32);
  if (to <= from) return 0;
  const first = from >>> 5;
  const last = to >>> 5;
  const head = ~((1 << (from & 31)) - 1);
  if (first === last) return popcount32(bits[first]! & head & ((1 << (to & 31)) - 1));
  let total = popcount32(bits[first]! & head);
  for (let i = first + 1; i < last; i++) total += popcount32(bits[i]!);
  if ((to & 31) !== 0) total += popcount32(bits[last]! & ((1 << (to & 31)) - 1));
  return total;
}

/**
 * The audit of one subscriber: feed it the transport's opens, closes and probe receipts, then `finish`.
 * Nothing here allocates per receipt except when a bitset doubles.
 */
export class SubscriberAudit {
  private readonly tracks: StreamTrack[];
  /** The first two tracks (a subscriber has one or two streams), looked up per receipt without the array. */
  private readonly track0: StreamTrack;
  private readonly track1: StreamTrack | undefined;
  /** Epoch ms of the first successful open; NaN before it. */
  private firstOpenAt = NaN;
  /** Epoch ms of the latest re-open; NaN until one happens. */
  private reopenAt = NaN;
  private open = false;

  /**
   * @param run this run's id; probes of other runs are ignored.
   * @param streams the streams this subscriber listens to, e.g. `['broadcast', 'user:42']` (at least one).
   * @param canResume false for a target that cannot resume (`resume: none`): nothing it sends is a replay, so a probe
   *   sent before a re-open that arrives after it was in flight, not recovered.
   */
  constructor(
    private readonly run: string,
    streams: readonly string[],
    private readonly canResume = true,
  ) {
    if (streams.length === 0) throw new Error('SubscriberAudit needs at least one stream');
    this.tracks = streams.map((s) => new StreamTrack(s));
    this.track0 = this.tracks[0]!;
    this.track1 = this.tracks[1];
  }

  /** The stream is open at `at` (epoch ms): first open or a re-open after `closed`. Without `closed`: a no-op. */
  opened(at: number): void {
    if (this.open) return;
    this.open = true;
    if (Number.isNaN(this.firstOpenAt)) this.firstOpenAt = at;
    else this.reopenAt = at;
  }

  /** The connection was lost or closed. Receipts after this and before the next `opened` are still audited. */
  closed(): void {
    this.open = false;
  }

  /** Epoch ms of the first successful open (NaN before it). */
  get firstOpened(): number {
    return this.firstOpenAt;
  }

  /** The per-stream state, for `windowCounts`. */
  streamTracks(): readonly StreamTrack[] {
    return this.tracks;
  }

  /** True once the subscriber has opened at least once. */
  get hasOpened(): boolean {
    return !Number.isNaN(this.firstOpenAt);
  }

  /** Audits one receipt of probe (`run`, `stream`, `seq`) with intended send time `t` (epoch ms); returns `Receipt` flags. */
  receive(run: string, stream: string, seq: number, t: number): number {
    let tr: StreamTrack | undefined = this.track0.stream === stream ? this.track0 : this.track1?.stream === stream ? this.track1 : undefined;
    const tracks = this.tracks;
    for (let i = 2; tr === undefined && i < tracks.length; i++) if (tracks[i]!.stream === stream) tr = tracks[i];
    if (tr === undefined && run === this.run) {
      // Our run's probe of a stream that is not ours: charged to the first stream, so that totals still add up.
      tracks[0]!.misrouted++;
      return Receipt.Misrouted;
    }
    if (tr === undefined || run !== this.run || !this.hasOpened || !Number.isInteger(seq) || seq < 1) {
      (tr ?? tracks[0]!).ignored++;
      return Receipt.Ignored;
    }
    const index = seq - 1;
    const word = index >>> 5;
    const mask = 1 << (index & 31);
    if (word >= tr.bits.length) {
      // A seq far beyond anything seen is a corrupt probe; growing the bitset for it could take gigabytes.
      if (seq > tr.highest + MAX_SEQ_AHEAD) {
        tr.ignored++;
        return Receipt.Ignored;
      }
      const grown = new Uint32Array(Math.max(word + 1, tr.bits.length * 2));
      grown.set(tr.bits);
      tr.bits = grown;
    } else if ((tr.bits[word]! & mask) !== 0) {
      tr.duplicated++;
      return Receipt.Duplicate;
    }
    tr.bits[word]! |= mask;
    tr.set(index);
    let flags: number = Receipt.New;
    if (seq < tr.highest) {
      tr.outOfOrder++;
      flags |= Receipt.OutOfOrder;
    } else {
      tr.highest = seq;
    }
    if (this.canResume && t < this.reopenAt) {
      tr.recovered++;
      flags |= Receipt.Recovered;
    }
    return flags;
  }

  /**
   * Final figures per stream from the publisher's log. Receipts of seqs above its final count are not delivered;
   * receipts at or below the watermark are early. May be called more than once (e.g. for a mid-run snapshot).
   */
  finish(log: PublishLog): StreamAuditCounts[] {
    return this.tracks.map((tr) => ({
      stream: tr.stream,
      ...settle(trackReceived(tr), this.firstOpenAt, tr.stream, log),
      duplicated: tr.duplicated,
      outOfOrder: tr.outOfOrder,
      recovered: tr.recovered,
      misrouted: tr.misrouted,
      ignored: tr.ignored,
    }));
  }

  /**
   * What `finish` needs of the log-dependent figures, for a shard that has no publisher's log (`--shard` without
   * publishing): per stream, the first open and the seqs received, as ranges. `notify report --merge` settles them
   * with the publishing shard's log by the same rules (`settle`).
   */
  ledger(): LedgerEntry[] {
    const firstOpenAt = this.hasOpened ? this.firstOpenAt : null;
    return this.tracks.map((tr) => ({ stream: tr.stream, firstOpenAt, ranges: bitsToRanges(tr.bits) }));
  }
}

/** Which seqs a subscriber received on one stream: a bitset in the swarm, ranges in a shard's ledger. */
export interface Received {
  /** How many seqs in (after, upTo] were received. */
  count(after: number, upTo: number): number;
  has(seq: number): boolean;
}

/** The log-dependent figures of one subscriber on one stream. */
export interface Settled {
  expected: number;
  delivered: number;
  lost: number;
  early: number;
}

/** One subscriber's stream as a shard without the log keeps it: first open (null: never), seqs received as ranges. */
export interface LedgerEntry {
  stream: string;
  firstOpenAt: number | null;
  /** Inclusive [from, to] pairs, flat and ascending: [1, 40, 42, 90] is seqs 1..40 and 42..90. */
  ranges: number[];
}

/** The watermark W: probes of the stream sent before the first open (all of them for one that never opened). */
function watermark(firstOpenAt: number | null, stream: string, log: PublishLog): number {
  const final = log.final(stream);
  return firstOpenAt === null || Number.isNaN(firstOpenAt) ? final : Math.min(final, log.sentBefore(stream, firstOpenAt));
}

/** Expected and delivered among seqs in (lo, hi], refused seqs owed to nobody. */
function owedIn(received: Received, lo: number, hi: number, refused: readonly number[]): { expected: number; delivered: number } {
  let expected = hi - lo;
  let delivered = received.count(lo, hi);
  // Refused seqs are ascending: only those in (lo, hi] are looked at, so a tick does not walk the run's refusals.
  let k = 0;
  for (let top = refused.length; k < top;) {
    const mid = (k + top) >>> 1;
    if (refused[mid]! <= lo) k = mid + 1;
    else top = mid;
  }
  for (; k < refused.length && refused[k]! <= hi; k++) {
    expected--;
    if (received.has(refused[k]!)) delivered--;
  }
  return { expected, delivered };
}

/**
 * The rules of the audit (see the top of this file) that need the publisher's log, in one place.
 * @param firstOpenAt epoch ms of the subscriber's first open; NaN or null if it never opened.
 */
export function settle(received: Received, firstOpenAt: number | null, stream: string, log: PublishLog): Settled {
  const final = log.final(stream);
  const w = watermark(firstOpenAt, stream, log);
  const { expected, delivered } = owedIn(received, w, final, log.refused?.(stream) ?? []);
  return { expected, delivered, lost: expected - delivered, early: received.count(0, w) };
}

/** A stream's bitset as `Received`, counted through its cached prefix counts. */
function trackReceived(tr: StreamTrack): Received {
  const { bits } = tr;
  return {
    count: (after, upTo) => (upTo <= after ? 0 : -tr.count(bits, after) + tr.count(bits, upTo)),
    has: (seq) => {
      const i = seq - 1;
      return i >>> 5 < bits.length && (bits[i >>> 5]! & (1 << (i & 31))) !== 0;
    },
  };
}

function bitsToRanges(bits: Uint32Array): number[] {
  const out: number[] = [];
  let start = 0;
  for (let w = 0; w < bits.length; w++) {
    const word = bits[w]!;
    if (word === 0 && start === 0) continue;
    for (let b = 0; b < 32; b++) {
      const seq = w * 32 + b + 1;
      const set = (word & (1 << b)) !== 0;
      if (set && start === 0) start = seq;
      else if (!set && start !== 0) {
        out.push(start, seq - 1);
        start = 0;
      }
    }
  }
  if (start !== 0) out.push(start, bits.length * 32);
  return out;
}

/** A ledger's ranges as `Received`. */
export function rangesReceived(ranges: readonly number[]): Received {
  const count = (after: number, upTo: number) => {
    let n = 0;
    for (let i = 0; i < ranges.length; i += 2) n += Math.max(0, Math.min(upTo, ranges[i + 1]!) - Math.max(after + 1, ranges[i]!) + 1);
    return n;
  };
  return { count, has: (seq) => count(seq - 1, seq) === 1 };
}

/** Expected, delivered and lost of the probes sent within one window of the run (a scenario phase). */
export interface WindowCounts {
  expected: number;
  delivered: number;
  lost: number;
}

/** A window of the run, epoch ms: probes sent at `from <= sent < to` are its own. */
export type Window = readonly [from: number, to: number];

/**
 * Splits a subscriber's expected probes by the window they were sent in, so each scenario phase has its own lost:
 * the same rules as `finish` (watermark, final, refused), applied to the seqs each window's sends cover.
 */
export function windowCounts(audit: SubscriberAudit, log: PublishLog, windows: readonly Window[], into: WindowCounts[]): void {
  for (const tr of audit.streamTracks()) {
    const final = log.final(tr.stream);
    const w = watermark(audit.firstOpened, tr.stream, log);
    const refused = log.refused?.(tr.stream) ?? [];
    const received = trackReceived(tr);
    windows.forEach(([from, to], k) => {
      const lo = Math.max(w, log.sentBefore(tr.stream, from));
      const hi = Math.min(final, log.sentBefore(tr.stream, to));
      if (hi <= lo) return;
      const { expected, delivered } = owedIn(received, lo, hi, refused);
      const c = (into[k] ??= { expected: 0, delivered: 0, lost: 0 });
      c.expected += expected;
      c.delivered += delivered;
      c.lost += expected - delivered;
    });
  }
}

/** A PublishLog over per-stream arrays of send times (epoch ms, ascending, index i = seq i+1) and refused seqs. */
export function publishLogFromTimes(times: ReadonlyMap<string, ArrayLike<number>>, refused: ReadonlyMap<string, readonly number[]> = new Map()): PublishLog {
  return {
    refused: (stream) => refused.get(stream) ?? [],
    final: (stream) => times.get(stream)?.length ?? 0,
    sentBefore(stream, atMs) {
      const a = times.get(stream);
      if (!a) return 0;
      let lo = 0;
      let hi = a.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (a[mid]! < atMs) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    },
  };
}

/**
 * The audit so far (a worker's tick): every subscriber against the probes of `log` sent before `cutoffMs`, by the
 * same rules as `finish`, which, after the drain, is exact. With every probe sent before the cutoff it is the sum of
 * `finish` over the subscribers.
 */
export function liveCounts(audits: Iterable<SubscriberAudit>, log: PublishLog, cutoffMs: number): LiveAudit {
  const sum: LiveAudit = { expected: 0, lost: 0, duplicated: 0, outOfOrder: 0, recovered: 0 };
  const upToCutoff: PublishLog = {
    refused: (stream) => log.refused?.(stream) ?? [],
    sentBefore: (stream, at) => log.sentBefore(stream, at),
    final: (stream) => log.sentBefore(stream, cutoffMs),
  };
  for (const audit of audits) {
    for (const c of audit.finish(upToCutoff)) {
      sum.expected += c.expected;
      sum.lost += c.lost;
      sum.duplicated += c.duplicated;
      sum.outOfOrder += c.outOfOrder;
      sum.recovered += c.recovered;
    }
  }
  return sum;
}

/** `user:42` -> `user`, `broadcast` -> `broadcast`: the default grouping of an `AuditTally`. */
export function streamKind(stream: string): string {
  const colon = stream.indexOf(':');
  return colon < 0 ? stream : stream.slice(0, colon);
}

/**
 * Audit totals grouped by a key of the stream (by default its kind, so 10 000 user streams make one `user` row).
 * Its JSON is plain counts: workers send it, the main process `merge`s it.
 */
export class AuditTally {
  private readonly groups = new Map<string, AuditCounts>();

  constructor(private readonly keyOf: (stream: string) => string = streamKind) {}

  /** Adds one subscriber's figures for one stream. */
  add(stream: string, counts: AuditCounts): void {
    this.addKeyed(this.keyOf(stream), counts);
  }

  /** Adds the result of `SubscriberAudit.finish`. */
  addAll(perStream: readonly StreamAuditCounts[]): void {
    for (const c of perStream) this.add(c.stream, c);
  }

  /** Adds another tally, or its JSON form (keys are taken as they are). */
  merge(other: AuditTally | Record<string, AuditCounts>): void {
    const entries = other instanceof AuditTally ? other.groups.entries() : Object.entries(other);
    for (const [key, counts] of entries) this.addKeyed(key, counts);
  }

  /** Sum over every group. */
  total(): AuditCounts {
    const sum = emptyCounts();
    for (const c of this.groups.values()) addCounts(sum, c);
    return sum;
  }

  toJSON(): Record<string, AuditCounts> {
    return Object.fromEntries([...this.groups].map(([k, c]) => [k, { ...c }]));
  }

  private addKeyed(key: string, counts: AuditCounts): void {
    let into = this.groups.get(key);
    if (into === undefined) this.groups.set(key, (into = emptyCounts()));
    addCounts(into, counts);
  }
}
