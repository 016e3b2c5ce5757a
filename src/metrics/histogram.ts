/**
 * HDR histogram of durations (latency, connect time, reconnect time) over hdr-histogram-js.
 *
 * Values are recorded in integer microseconds and reported in milliseconds. Workers ship histograms as compressed
 * base64 strings (HdrHistogram V2 encoding, readable by every HdrHistogram port) and the main process adds them up,
 * so results from several workers or machines merge exactly.
 *
 * Implementation choice: the pure-JS histogram with 64-bit (Float64Array) counts. The WASM build is about twice as
 * fast to record (~60 ns vs ~150 ns per value on this machine), but each WASM histogram must be `destroy()`ed by
 * hand or it leaks, and WASM and JS histograms cannot be added to each other. 64-bit counts instead of 32-bit so
 * that a merge of many long runs can never silently wrap a bucket; the cost is memory (~190 KB per histogram), and
 * a swarm worker holds a handful of histograms, not one per connection.
 */
import { build, decodeFromCompressedBase64, encodeIntoCompressedBase64, type Histogram } from 'hdr-histogram-js';
import { z } from 'zod';
import { ExitCode, NotifyError } from '../errors.js';

/** One hour in microseconds: the range allocated up front. Larger values still fit (the histogram grows). */
export const HIGHEST_TRACKABLE_US = 3_600_000_000;
/** Values keep 3 significant decimal digits: exact below 2.048 ms, within 0.1% above. */
export const SIGNIFICANT_DIGITS = 3;

const ms = z.number().finite();

/**
 * Percentiles of a duration histogram, all in milliseconds (3 decimals, i.e. microsecond resolution): the schema
 * result files are checked with, and the type derived from it.
 */
export const durationSummarySchema = z.object({
  /** Number of recorded values. */
  count: ms,
  min: ms,
  p50: ms,
  p90: ms,
  p99: ms,
  /** 99.9th percentile. */
  p999: ms,
  max: ms,
  mean: ms,
});
export type DurationSummary = z.infer<typeof durationSummarySchema>;

/** The summary of a histogram with no values: all zeros, never NaN or Infinity. */
export const EMPTY_DURATION_SUMMARY: Readonly<DurationSummary> = Object.freeze({
  count: 0,
  min: 0,
  p50: 0,
  p90: 0,
  p99: 0,
  p999: 0,
  max: 0,
  mean: 0,
});

function newHdr(): Histogram {
  return build({
    bitBucketSize: 64,
    autoResize: true,
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_TRACKABLE_US,
    numberOfSignificantValueDigits: SIGNIFICANT_DIGITS,
    useWebAssembly: false,
  });
}

const usToMs = (us: number): number => Math.round(us) / 1000;

/** A histogram of durations recorded in microseconds. */
export class DurationHistogram {
  private readonly hdr: Histogram;

  /** @param hdr an existing JS histogram with 64-bit counts (from `decode`); a fresh one when omitted. */
  constructor(hdr: Histogram = newHdr()) {
    this.hdr = hdr;
    // Decoded histograms come back with autoResize off; a later add() of a wider histogram must not throw.
    this.hdr.autoResize = true;
  }

  /**
   * Decodes a compressed base64 histogram (as produced by `encode`).
   * @throws NotifyError `E_HISTOGRAM` (exit 2) when the string is not an HdrHistogram V2 compressed encoding.
   */
  static decode(encoded: string): DurationHistogram {
    try {
      return new DurationHistogram(decodeFromCompressedBase64(encoded, 64, false));
    } catch (err) {
      const shown = encoded.length > 24 ? `${encoded.slice(0, 24)}...` : encoded;
      throw new NotifyError('E_HISTOGRAM', `not an encoded HDR histogram: "${shown}" (${(err as Error).message})`, {
        hint: 'histograms in result files are compressed base64 HdrHistogram V2; was the file edited or truncated?',
        exitCode: ExitCode.usage,
        cause: err,
      });
    }
  }

  /** Number of recorded values. */
  get count(): number {
    return this.hdr.totalCount;
  }

  /**
   * Records one duration in microseconds. Rounded to an integer; values below 1 us (including negative ones from
   * clock skew between publisher and subscriber) count as 1 us. NaN/Infinity are dropped: never throws, because
   * this runs once per received message.
   */
  record(us: number): void {
    if (!Number.isFinite(us)) return;
    this.hdr.recordValue(us < 1 ? 1 : Math.round(us));
  }

  /** Records one duration given in milliseconds (fractions kept down to the microsecond). */
  recordMs(ms: number): void {
    this.record(ms * 1000);
  }

  /** Adds every value of `other` (a histogram or its encoded form) to this one. Exact: counts are summed per bucket. */
  add(other: DurationHistogram | string): void {
    const src = typeof other === 'string' ? DurationHistogram.decode(other) : other;
    this.hdr.add(src.hdr);
  }

  /** Forgets every recorded value (e.g. at the start of a timeline interval). */
  reset(): void {
    this.hdr.reset();
  }

  /**
   * Percentiles in milliseconds. min/max are the lowest/highest value equivalent to the recorded extremes at the
   * histogram's resolution, so a histogram and its decoded copy give identical summaries.
   */
  summary(): DurationSummary {
    const h = this.hdr;
    if (h.totalCount === 0) return { ...EMPTY_DURATION_SUMMARY };
    return {
      count: h.totalCount,
      min: usToMs(h.getValueAtPercentile(0)),
      p50: usToMs(h.getValueAtPercentile(50)),
      p90: usToMs(h.getValueAtPercentile(90)),
      p99: usToMs(h.getValueAtPercentile(99)),
      p999: usToMs(h.getValueAtPercentile(99.9)),
      max: usToMs(h.getValueAtPercentile(100)),
      mean: usToMs(meanOf(h)),
    };
  }

  /** Compressed base64 HdrHistogram V2 encoding: what result files and worker messages carry. */
  encode(): string {
    return encodeIntoCompressedBase64(this.hdr);
  }
}

/** The bucket-level methods of hdr-histogram-js's JsHistogram that its `Histogram` type does not declare. */
interface JsBuckets {
  getCountAtIndex(index: number): number;
  valueFromIndex(index: number): number;
  highestEquivalentValue(value: number): number;
  medianEquivalentValue(value: number): number;
}

/**
 * `h.mean` without its iterator: the same terms added in the same order (every bucket with a count, lowest first,
 * until all values are seen), so the same number to the last bit. The iterator's object per step made `mean` 95% of
 * the main process's per-second snapshot (5 ms a call on a ~190 KB histogram, profiled at 2,000 SSE connections).
 */
function meanOf(h: Histogram): number {
  const total = h.totalCount;
  if (total === 0) return 0;
  const b = h as unknown as JsBuckets;
  let sum = 0;
  let seen = 0;
  for (let i = 0; seen < total; i++) {
    const c = b.getCountAtIndex(i);
    if (c === 0) continue;
    sum += b.medianEquivalentValue(b.highestEquivalentValue(b.valueFromIndex(i))) * c;
    seen += c;
  }
  return sum / total;
}

/** A new, empty histogram (microsecond values, 3 significant digits). */
export function createHistogram(): DurationHistogram {
  return new DurationHistogram();
}

/** Decodes an encoded histogram. @see DurationHistogram.decode */
export function decodeHistogram(encoded: string): DurationHistogram {
  return DurationHistogram.decode(encoded);
}

/** Sums encoded histograms (from workers or result files) into one; empty input gives an empty histogram. */
export function mergeHistograms(parts: Iterable<DurationHistogram | string>): DurationHistogram {
  const total = new DurationHistogram();
  for (const part of parts) total.add(part);
  return total;
}
