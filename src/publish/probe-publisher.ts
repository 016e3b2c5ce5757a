/**
 * What the swarm's scheduled publisher (src/swarm/publisher.ts) sends probes through: one implementation per
 * `publish` block of a target profile (http, redis, nats). The scheduler keeps the guarantees (intended times, one
 * call in flight per stream, refused vs unanswered); an implementation only delivers the items it is given, in
 * order, and says for each whether the server took it.
 */
import type { Probe } from '../protocol/probe.js';

export interface ProbeItem {
  probe: Probe;
  /** `broadcast` or `user:<id>` (the probe's own stream). */
  stream: string;
  /** The user id on user streams. */
  user?: string;
}

/**
 * `stored: false` when the server certainly did not take it (an error answer, no connection made, a NATS subject
 * with no responder for JetStream); absent when unknown (timeout or reset after sending), so it stays expected.
 * `cause` is stable, to count by: `http-<status>`, `ECONNREFUSED`, `timeout`, `redis-<code>`, `nats-<code>`, ...
 */
export type ItemOutcome = { ok: true } | { ok: false; cause: string; stored?: false };

export interface ProbePublisher {
  /** Human-readable destination for messages (`http://127.0.0.1:8080`, `redis://127.0.0.1:6379`). */
  readonly describe: string;
  /**
   * Sends probes of one stream, oldest first, keeping their order on the wire. Resolves with one outcome per item
   * (same order); never rejects.
   */
  send(items: readonly ProbeItem[]): Promise<ItemOutcome[]>;
  /** Aborts what is in flight (those items resolve as failures) and closes connections. */
  destroy(): Promise<void>;
}
