/**
 * The swarm's probe, `data.probe = {run, stream, seq, t}`, and the clock it is read with. Transports stamp receipts
 * with `performance.now()` (monotonic, cheap); probes carry epoch ms, so latency needs `epochMs(at)`.
 */
export interface Probe {
  /** Run id: probes of other runs on the same server are not ours. */
  run: string;
  /** Stream the probe was published on (`broadcast` or `user:<id>`). */
  stream: string;
  /** Publisher's sequence number within (run, stream): 1, 2, 3... */
  seq: number;
  /** Intended send time, epoch ms with sub-ms precision. */
  t: number;
}

/**
 * `value` as a probe when it has the probe's shape (strings run and stream, integer seq >= 1, finite t); else
 * undefined. The object itself is returned, not a copy: this runs once per receipt.
 */
export function asProbe(value: unknown): Probe | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const p = value as Partial<Probe>;
  if (typeof p.run !== 'string' || typeof p.stream !== 'string') return undefined;
  if (typeof p.seq !== 'number' || !Number.isInteger(p.seq) || p.seq < 1) return undefined;
  if (typeof p.t !== 'number' || !Number.isFinite(p.t)) return undefined;
  return p as Probe;
}

/**
 * A `performance.now()` reading as epoch ms. `timeOrigin` is the wall clock at process start, so two processes on
 * one host agree to well under a millisecond; over hours the monotonic clock and NTP-slewed wall clock may drift.
 */
export function epochMs(at: number): number {
  return performance.timeOrigin + at;
}

/** Now as epoch ms on the same clock as `epochMs` (what a publisher puts in `t`). */
export function nowEpochMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Latency of a receipt in ms: receive time minus the probe's intended send time. */
export function latencyMs(probe: Probe, at: number): number {
  return performance.timeOrigin + at - probe.t;
}
