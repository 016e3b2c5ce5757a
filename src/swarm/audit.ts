/**
 * Delivery audit: which probes each subscriber was owed, got, got twice, got out of order or got back by replay.
 *
 * Rules (DESIGN.md "notify swarm measurement definitions", made precise). Per subscriber (one logical connection,
 * across its reconnects) and per stream it subscribes to:
 * - watermark W: the publisher's seq on the stream at the subscriber's first successful open (`opened()` reads
 *   `published(stream)`). Expected = probes with W < seq <= final seq at the end of publishing. A subscriber that
 *   never opened expects nothing (its failure shows in the connection figures, not here).
 * - A receipt of seq <= W is `early` (published before the subscription; e.g. racing the open): not expected, not
 *   delivered, not checked for duplicates or order.
 * - delivered: distinct expected seqs received (a bitset from W+1, so a subscriber costs 1 bit per probe of its
 *   streams: 90 MB for 720 M deliveries). lost = expected - delivered.
 * - duplicated: every receipt of a seq already received.
 * - out-of-order: a first receipt whose seq is below the highest seq already received on the stream by this
 *   subscriber, across reconnects. A replay after a resume starts after the cursor, i.e. after the last event
 *   received, so a normal replay is in order.
 * - recovered: at every re-open (an `opened()` after a `closed()`) the audit notes R = `published(stream)`. A first
 *   receipt with seq <= R on a re-opened connection was published before that connection existed and was not
 *   received before: it was missed live and came back through replay. Recovered probes are also delivered.
 *   Probes published after the re-open (seq > R) arrive live. If the publisher runs late, a probe counted as
 *   published may reach the server after the re-open and be misfiled as recovered; it is still delivered.
 * - ignored: receipts of another run's probes, of a stream the subscriber did not subscribe to, with a malformed
 *   seq or one far ahead of the publisher, or before the first open. Counted, never expected.
 * All figures are plain counts, summable across subscribers, workers and machines (`addCounts`, `AuditTally`).
 */
import type { EventCounts } from '../metrics/summary.js';

/** The probe a swarm message carries in `data.probe`. */
export interface Probe {
  /** Run id: probes of another run are ignored. */
  run: string;
  /** `broadcast` or `user:<id>`. */
  stream: string;
  /** The publisher's per-stream probe number: 1, 2, 3... */
  seq: number;
  /** Intended send time, epoch ms with fractions. */
  t: number;
}

/** Returns a probe when `value` has the probe's shape (positive integer seq, finite t); else undefined. */
export function parseProbe(value: unknown): Probe | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const p = value as Record<string, unknown>;
  if (typeof p.run !== 'string' || typeof p.stream !== 'string') return undefined;
  if (typeof p.seq !== 'number' || !Number.isInteger(p.seq) || p.seq < 1) return undefined;
  if (typeof p.t !== 'number' || !Number.isFinite(p.t)) return undefined;
  return { run: p.run, stream: p.stream, seq: p.seq, t: p.t };
}

/**
 * Probes published so far on a stream (its highest seq), 0 before the first. Count a probe as published when its
 * request is sent, not when it is acknowledged: a probe sent before a subscriber opened is then never expected.
 */
export type PublishedLookup = (stream: string) => number;

/**
 * What one receipt was, as bit flags. `New` is set on the first receipt of an expected probe (record its latency
 * then); `OutOfOrder` and `Recovered` come with `New`.
 */
export const Receipt = {
  New: 1,
  OutOfOrder: 2,
  Recovered: 4,
  Duplicate: 8,
  Early: 16,
  Ignored: 32,
} as const;

/** Audit figures (counts of probes or receipts). */
export interface AuditCounts {
  expected: number;
  delivered: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  recovered: number;
  early: number;
  ignored: number;
}

/** Audit figures of one subscriber on one stream. */
export interface StreamAuditCounts extends AuditCounts {
  stream: string;
}

export function emptyCounts(): AuditCounts {
  return { expected: 0, delivered: 0, lost: 0, duplicated: 0, outOfOrder: 0, recovered: 0, early: 0, ignored: 0 };
}

const COUNT_KEYS = ['expected', 'delivered', 'lost', 'duplicated', 'outOfOrder', 'recovered', 'early', 'ignored'] as const;

/** Adds `from` into `into` (mutates and returns `into`). */
export function addCounts(into: AuditCounts, from: AuditCounts): AuditCounts {
  for (const k of COUNT_KEYS) into[k] += from[k];
  return into;
}

/** The event figures of a run summary from audit totals and the publisher's probe count. */
export function toEventCounts(c: AuditCounts, published: number): EventCounts {
  const { expected, delivered, lost, duplicated, outOfOrder, recovered } = c;
  return { published, expected, delivered, lost, duplicated, outOfOrder, recovered };
}

/** How far a received seq may run ahead of the publisher's known progress (which may lag in another process). */
const MAX_SEQ_AHEAD = 1_000_000;

class StreamTrack {
  watermark = 0;
  resumeMark = 0;
  highest = 0;
  /** Bit i set = seq watermark+1+i received. */
  bits = new Uint32Array(8);
  duplicated = 0;
  outOfOrder = 0;
  recovered = 0;
  early = 0;
  ignored = 0;
  constructor(readonly stream: string) {}
}

function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
}

/** Number of set bits among the first `n` bits. */
function countBits(bits: Uint32Array, n: number): number {
  const words = Math.min(bits.length, n >>> 5);
  let total = 0;
  for (let i = 0; i < words; i++) total += popcount32(bits[i]!);
  const rest = n & 31;
  if (rest !== 0 && words < bits.length) total += popcount32(bits[words]! & ((1 << rest) - 1));
  return total;
}

/**
 * The audit of one subscriber: feed it the transport's opens, closes and probe receipts, then `finish`.
 * Nothing here allocates per receipt except when a bitset doubles.
 */
export class SubscriberAudit {
  private readonly tracks: StreamTrack[];
  private hasOpened = false;
  private open = false;
  private reopened = false;

  /**
   * @param run this run's id; probes of other runs are ignored.
   * @param streams the streams this subscriber listens to, e.g. `['broadcast', 'user:42']` (at least one).
   * @param published the publisher's progress, read at every open.
   */
  constructor(private readonly run: string, streams: readonly string[], private readonly published: PublishedLookup) {
    if (streams.length === 0) throw new Error('SubscriberAudit needs at least one stream');
    this.tracks = streams.map((s) => new StreamTrack(s));
  }

  /** The stream is open (first open or a re-open after `closed`). A second call without `closed` is a no-op. */
  opened(): void {
    if (this.open) return;
    this.open = true;
    if (!this.hasOpened) {
      this.hasOpened = true;
      for (const t of this.tracks) t.watermark = this.published(t.stream);
    } else {
      this.reopened = true;
      for (const t of this.tracks) t.resumeMark = this.published(t.stream);
    }
  }

  /** The connection was lost or closed. Receipts after this and before the next `opened` are still audited. */
  closed(): void {
    this.open = false;
  }

  /** True between `opened` and `closed`. */
  get isOpen(): boolean {
    return this.open;
  }

  /** Audits one receipt; returns `Receipt` flags. */
  receive(run: string, stream: string, seq: number): number {
    const tracks = this.tracks;
    let t: StreamTrack | undefined;
    for (let i = 0; i < tracks.length; i++) {
      if (tracks[i]!.stream === stream) {
        t = tracks[i];
        break;
      }
    }
    if (t === undefined || run !== this.run || !this.hasOpened || !Number.isInteger(seq) || seq < 1) {
      // Charged to the first stream when the stream is not ours, so that totals still add up.
      (t ?? tracks[0]!).ignored++;
      return Receipt.Ignored;
    }
    if (seq <= t.watermark) {
      t.early++;
      return Receipt.Early;
    }
    const index = seq - t.watermark - 1;
    const word = index >>> 5;
    const mask = 1 << (index & 31);
    if (word >= t.bits.length) {
      // A seq far beyond anything published is a corrupt probe; growing the bitset for it could take gigabytes.
      if (seq > this.published(stream) + MAX_SEQ_AHEAD) {
        t.ignored++;
        return Receipt.Ignored;
      }
      const grown = new Uint32Array(Math.max(word + 1, t.bits.length * 2));
      grown.set(t.bits);
      t.bits = grown;
    } else if ((t.bits[word]! & mask) !== 0) {
      t.duplicated++;
      return Receipt.Duplicate;
    }
    t.bits[word]! |= mask;
    let flags: number = Receipt.New;
    if (seq < t.highest) {
      t.outOfOrder++;
      flags |= Receipt.OutOfOrder;
    } else {
      t.highest = seq;
    }
    if (this.reopened && seq <= t.resumeMark) {
      t.recovered++;
      flags |= Receipt.Recovered;
    }
    return flags;
  }

  /**
   * Final figures per stream, given the publisher's last seq per stream at the end of publishing. Receipts of seqs
   * above it are not counted as delivered. May be called more than once (e.g. for a mid-run snapshot).
   */
  finish(finalPublished: PublishedLookup): StreamAuditCounts[] {
    return this.tracks.map((t) => {
      const expected = this.hasOpened ? Math.max(0, finalPublished(t.stream) - t.watermark) : 0;
      const delivered = countBits(t.bits, expected);
      return {
        stream: t.stream,
        expected,
        delivered,
        lost: expected - delivered,
        duplicated: t.duplicated,
        outOfOrder: t.outOfOrder,
        recovered: t.recovered,
        early: t.early,
        ignored: t.ignored,
      };
    });
  }
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
