/** Redis Stream entries (and live messages) of the Redis broker back into notify's events. */
import { performance } from 'node:perf_hooks';
import type { Notification } from '../../protocol/notification.js';
import type { StreamEvent } from './broker.js';

/** An XRANGE entry: `<seq>-0` and its fields `t` (Redis' clock, µs) and `j` (the notification's JSON). */
export type RedisEntry = [id: string, fields: string[]];

/** Entries to events; one that does not parse (written by something else) is skipped, never thrown. */
export function toEvents(stream: string, entries: RedisEntry[]): StreamEvent[] {
  const out: StreamEvent[] = [];
  for (const [id, fields] of entries) {
    const seq = Number.parseInt(id, 10);
    let t: string | undefined;
    let json: string | undefined;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] === 't') t = fields[i + 1];
      else if (fields[i] === 'j') json = fields[i + 1];
    }
    const notification = json === undefined ? undefined : parseNotification(json);
    if (!notification || !Number.isSafeInteger(seq)) continue;
    // Redis' clock (µs) on this process' performance clock: comparable across streams and instances.
    const acceptedAt = Number(t ?? 0) / 1000 - performance.timeOrigin;
    out.push({ stream, seq, notification, json: json!, acceptedAt });
  }
  return out;
}

/** In publish order across streams (Redis' clock), as they would have arrived live; then stamped as received now. */
export function sortForDelivery(events: StreamEvent[]): StreamEvent[] {
  events.sort((x, y) => x.acceptedAt - y.acceptedAt);
  const now = performance.now();
  for (const ev of events) ev.acceptedAt = now;
  return events;
}

export function parseNotification(json: string): Notification | undefined {
  try {
    const n = JSON.parse(json) as unknown;
    return n && typeof n === 'object' && typeof (n as { id?: unknown }).id === 'string' ? (n as Notification) : undefined;
  } catch {
    return undefined;
  }
}
