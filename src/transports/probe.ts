/**
 * The swarm's probe (`data.probe = {run, stream, seq, t}`) and the clock to compare it with. Transports stamp
 * receipts with `performance.now()` (monotonic, cheap); probes carry epoch ms, so latency needs `epochMs(at)`.
 */
import type { ReceivedNotification } from './transport.js';

export interface Probe {
  /** Run id: probes of other runs on the same server are not ours. */
  run: string;
  /** Stream the probe was published on (`broadcast` or `user:<id>`). */
  stream: string;
  /** Publisher's sequence number within (run, stream). */
  seq: number;
  /** Intended send time, epoch ms with sub-ms precision. */
  t: number;
}

/** The probe a notification carries, or undefined when it has none or it is malformed (seq an integer >= 1, t finite). */
export function probeOf(n: ReceivedNotification): Probe | undefined {
  const data = n.data;
  if (typeof data !== 'object' || data === null) return undefined;
  const p = (data as { probe?: unknown }).probe as Partial<Probe> | null | undefined;
  if (typeof p !== 'object' || p === null) return undefined;
  if (typeof p.run !== 'string' || typeof p.stream !== 'string') return undefined;
  // Same shape rules as the audit's parseProbe; the object is returned as is, not copied (once per receipt).
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

/** Now as epoch ms on the same clock as `epochMs` (what a publisher should put in `t`). */
export function nowEpochMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Latency of a receipt in ms: receive time minus the probe's intended send time. */
export function latencyMs(probe: Probe, at: number): number {
  return performance.timeOrigin + at - probe.t;
}
