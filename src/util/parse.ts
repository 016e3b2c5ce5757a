/**
 * Parsers for flag values. Each takes the flag name so that the error names the flag and the value:
 * `--heartbeat must be a duration like 15s, 500ms or 1m (got "soon")`.
 */
import { usageError } from '../errors.js';

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/i;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Duration in milliseconds. Accepts `250ms`, `15s`, `1.5m`, `1h`; a bare number is `defaultUnit`. */
export function parseDuration(flag: string, value: string | number, defaultUnit: 'ms' | 's' = 'ms'): number {
  if (typeof value === 'number') return value;
  const m = DURATION.exec(value.trim());
  if (!m) throw usageError(`${flag} must be a duration like 15s, 500ms or 1m (got "${value}")`);
  return Number(m[1]) * UNIT_MS[(m[2] ?? defaultUnit).toLowerCase()]!;
}

const SIZE = /^(\d+(?:\.\d+)?)\s*(b|kb|kib|k|mb|mib|m|gb|gib|g)?$/i;
const UNIT_BYTES: Record<string, number> = {
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

/** Size in bytes. Accepts `512`, `64kb`, `1mb` (binary units: 1mb = 1 MiB). */
export function parseSize(flag: string, value: string | number): number {
  if (typeof value === 'number') return value;
  const m = SIZE.exec(value.trim());
  if (!m) throw usageError(`${flag} must be a size like 64kb or 1mb (got "${value}")`);
  return Math.floor(Number(m[1]) * UNIT_BYTES[(m[2] ?? 'b').toLowerCase()]!);
}

const RATE = /^(\d+(?:\.\d+)?)\s*(?:\/\s*(s|m|sec|min))?$/i;

/** Rate in events per second. Accepts `20/s`, `600/m`, or a bare number (per second). */
export function parseRate(flag: string, value: string | number): number {
  if (typeof value === 'number') return value;
  const m = RATE.exec(value.trim());
  if (!m) throw usageError(`${flag} must be a rate like 20/s or 600/m (got "${value}")`);
  const n = Number(m[1]);
  const unit = (m[2] ?? 's').toLowerCase();
  return unit.startsWith('m') ? n / 60 : n;
}

/** Integer within bounds. */
export function parseInteger(flag: string, value: string | number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const n = typeof value === 'number' ? value : /^-?\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isInteger(n)) throw usageError(`${flag} must be a whole number (got "${value}")`);
  if (n < min) throw usageError(`${flag} must be >= ${min} (got ${n})`);
  if (n > max) throw usageError(`${flag} must be <= ${max} (got ${n})`);
  return n;
}

/** Percentage as a fraction: `50%` -> 0.5. */
export function parsePercent(flag: string, value: string): number {
  const m = /^(\d+(?:\.\d+)?)%$/.exec(value.trim());
  if (!m || Number(m[1]) > 100) throw usageError(`${flag} must be a percentage like 50% (got "${value}")`);
  return Number(m[1]) / 100;
}

/** One of a fixed set of names; the error lists the valid ones. */
export function parseChoice<T extends string>(flag: string, value: string, choices: readonly T[]): T {
  if ((choices as readonly string[]).includes(value)) return value as T;
  throw usageError(`${flag} must be one of ${choices.join(', ')} (got "${value}")`);
}

/** Formats milliseconds the way flags accept them: 15000 -> "15s". */
export function formatDuration(ms: number): string {
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1000 && ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
