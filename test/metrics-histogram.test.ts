import { describe, expect, it } from 'vitest';
import { createHistogram, decodeHistogram, DurationHistogram, EMPTY_DURATION_SUMMARY, mergeHistograms } from '../src/metrics/histogram.js';
import { NotifyError } from '../src/errors.js';

/** 1..n microseconds: below 2048 us the histogram is exact, so percentiles are known integers. */
function histogramOf(values: Iterable<number>): DurationHistogram {
  const h = createHistogram();
  for (const v of values) h.record(v);
  return h;
}
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('DurationHistogram', () => {
  it('summarises an empty histogram as zeros, never NaN', () => {
    const s = createHistogram().summary();
    expect(s).toEqual(EMPTY_DURATION_SUMMARY);
    for (const v of Object.values(s)) expect(Number.isFinite(v)).toBe(true);
  });

  it('gives exact percentiles of 1..1000 us, reported in ms', () => {
    const s = histogramOf(range(1, 1000)).summary();
    // The mean, 500.5 us, is reported to the microsecond like every other figure.
    expect(s).toEqual({
      count: 1000,
      min: 0.001,
      p50: 0.5,
      p90: 0.9,
      p99: 0.99,
      p999: 0.999,
      max: 1,
      mean: 0.501,
    });
  });

  it('keeps 3 significant digits on large values and reports the highest equivalent value', () => {
    const h = histogramOf([250_000, 250_000, 250_000, 1_234_567]);
    const s = h.summary();
    expect(s.p50).toBeGreaterThanOrEqual(250);
    expect(s.p50).toBeLessThan(250 * 1.001);
    expect(s.max).toBeGreaterThanOrEqual(1234.567);
    expect(s.max).toBeLessThan(1234.567 * 1.001);
  });

  it('clamps values below 1 us to 1 us, rounds fractions and drops NaN', () => {
    const h = createHistogram();
    h.record(0);
    h.record(-25);
    h.record(0.2);
    h.record(2.6);
    h.record(Number.NaN);
    h.record(Number.POSITIVE_INFINITY);
    expect(h.count).toBe(4);
    expect(h.summary()).toMatchObject({ min: 0.001, max: 0.003 });
  });

  it('records milliseconds with microsecond resolution', () => {
    const h = createHistogram();
    h.recordMs(1.234);
    h.recordMs(0.0004);
    expect(h.summary()).toMatchObject({ count: 2, min: 0.001, max: 1.234 });
  });

  it('grows past one hour instead of throwing', () => {
    const h = createHistogram();
    h.recordMs(2 * 3_600_000);
    expect(h.summary().max).toBeGreaterThanOrEqual(7_200_000);
  });

  it('round-trips through the compressed base64 encoding', () => {
    const h = histogramOf([...range(1, 500), 12_345, 999_999, 42_000_000]);
    const encoded = h.encode();
    expect(encoded).toMatch(/^[A-Za-z0-9+/]+=*$/);
    const back = decodeHistogram(encoded);
    expect(back.count).toBe(h.count);
    expect(back.summary()).toEqual(h.summary());
    expect(back.encode()).toBe(encoded);
  });

  it('merges encoded histograms exactly: same as recording the combined data', () => {
    const a = range(1, 700);
    const b = [...range(300, 2000), 55_555, 3_000_000];
    const merged = mergeHistograms([histogramOf(a).encode(), histogramOf(b).encode()]);
    const combined = histogramOf([...a, ...b]);
    expect(merged.count).toBe(a.length + b.length);
    expect(merged.summary()).toEqual(combined.summary());
    expect(merged.encode()).toBe(combined.encode());
  });

  it('adds a wider decoded histogram into a fresh one', () => {
    const wide = histogramOf([10, 3 * 3_600_000_000]);
    const total = createHistogram();
    total.add(decodeHistogram(wide.encode()));
    total.add(histogramOf([20]));
    expect(total.count).toBe(3);
    expect(total.summary().min).toBe(0.01);
  });

  it('resets to empty', () => {
    const h = histogramOf(range(1, 10));
    h.reset();
    expect(h.summary()).toEqual(EMPTY_DURATION_SUMMARY);
  });

  it('rejects a string that is not an encoded histogram with a usage error', () => {
    for (const bad of ['garbage', '', 'AAAAAAAA']) {
      let err: unknown;
      try {
        decodeHistogram(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(NotifyError);
      expect((err as NotifyError).code).toBe('E_HISTOGRAM');
      expect((err as NotifyError).exitCode).toBe(2);
    }
  });
});
