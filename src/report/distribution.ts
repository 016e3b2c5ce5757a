/**
 * Percentile distribution of an encoded HDR histogram, as HdrHistogram's plotter draws it: the x axis is
 * 1 / (1 - percentile) on a log scale, so 90%, 99%, 99.9% ... are evenly spaced and the tail is visible.
 */
import { decodeFromCompressedBase64 } from 'hdr-histogram-js';
import { ExitCode, NotifyError } from '../errors.js';

export interface DistributionPoint {
  /** Percentile, 0..100. */
  percentile: number;
  /** 1 / (1 - percentile/100): the plot's x. */
  x: number;
  /** Value at that percentile, ms. */
  ms: number;
}

/** Ten points per decade of 1/(1-p), up to the percentile the sample size can resolve (at most 99.9999%). */
export function percentileDistribution(encoded: string, where = 'histogram'): { count: number; maxMs: number; points: DistributionPoint[] } {
  let h;
  try {
    h = decodeFromCompressedBase64(encoded, 64, false);
  } catch (err) {
    throw new NotifyError('E_HISTOGRAM', `${where} is not an encoded HDR histogram (${(err as Error).message})`, { exitCode: ExitCode.usage });
  }
  const count = h.totalCount;
  if (count === 0) return { count, maxMs: 0, points: [] };
  // Past 1/(1-p) = count there is no value left to tell apart from the maximum.
  const decades = Math.min(6, Math.max(1, Math.ceil(Math.log10(count))));
  const points: DistributionPoint[] = [];
  for (let k = 0; k <= decades * 10; k++) {
    const x = 10 ** (k / 10);
    const percentile = 100 * (1 - 1 / x);
    points.push({ percentile, x, ms: Math.round(h.getValueAtPercentile(percentile)) / 1000 });
  }
  return { count, maxMs: Math.round(h.getValueAtPercentile(100)) / 1000, points };
}
