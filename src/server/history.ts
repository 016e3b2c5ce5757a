/**
 * What a subscriber sees of the past: the unread snapshot, the replay after a cursor, the notification list and
 * read marks. Everything is read through the Broker, so it works the same over memory, Redis or NATS.
 */
import type { Cursor } from '../protocol/cursor.js';
import type { ResetReason } from '../protocol/events.js';
import type { Notification } from '../protocol/notification.js';
import { BROADCAST, subscriberStreams, userStream } from '../protocol/streams.js';
import { isSyncHistory, type Broker, type StreamEvent, type SyncHistory } from './brokers/broker.js';
import { MemoryReadStore, type ReadStore } from './read-store.js';
import { HttpError } from './http-error.js';

export type ReplayResult = { ok: true; events: StreamEvent[] } | { ok: false; reason: ResetReason };

const newestFirst = (a: StreamEvent, b: StreamEvent) => b.acceptedAt - a.acceptedAt;
const idOf = (ev: StreamEvent) => ev.notification.id;

export class History {
  /** Set when the broker and the read store both answer at once (memory): then `headNow` and `snapshotNow` serve. */
  private readonly now: { broker: SyncHistory; reads: MemoryReadStore } | undefined;

  constructor(
    private readonly broker: Broker,
    private readonly reads: ReadStore,
    private readonly window: number,
  ) {
    this.now = isSyncHistory(broker) && reads instanceof MemoryReadStore ? { broker, reads } : undefined;
  }

  /** True when `headNow` and `snapshotNow` may be used: the same answers as `head` and `snapshot`, without a promise. */
  get sync(): boolean {
    return this.now !== undefined;
  }

  /** `head`, answered at once (only when `sync`). */
  headNow(user: string | undefined): Cursor {
    const broker = this.now!.broker;
    return { epoch: this.broker.epoch(), user: user === undefined ? 0 : broker.lastSeqNow(userStream(user)), broadcast: broker.lastSeqNow(BROADCAST) };
  }

  /** `snapshot`, answered at once (only when `sync`). */
  snapshotNow(user: string | undefined, limit: number): { unread: Notification[]; unreadCount: number } {
    const { broker, reads } = this.now!;
    const events = subscriberStreams(user)
      .flatMap((s) => broker.recentNow(s, this.window))
      .sort(newestFirst);
    const found = user === undefined ? undefined : reads.marksNow(user, events.map(idOf));
    return unreadOf(this.withMarks(user, events, found, true), limit);
  }

  /** Heads of the subscriber's streams: the cursor of "now". */
  async head(user: string | undefined): Promise<Cursor> {
    const [u, b] = await Promise.all([user === undefined ? 0 : this.broker.lastSeq(userStream(user)), this.broker.lastSeq(BROADCAST)]);
    return { epoch: this.broker.epoch(), user: u, broadcast: b };
  }

  /** Every event after the cursor on both streams, oldest first; or why that cannot be served. */
  async replay(user: string | undefined, c: Cursor): Promise<ReplayResult> {
    if (c.epoch !== this.broker.epoch()) return { ok: false, reason: 'epoch' };
    const reads = await Promise.all([
      user === undefined ? undefined : this.broker.readAfter(userStream(user), c.user),
      this.broker.readAfter(BROADCAST, c.broadcast),
    ]);
    const after = [c.user, c.broadcast];
    const events: StreamEvent[] = [];
    for (let i = 0; i < 2; i++) {
      const r = reads[i];
      if (!r) continue;
      if (!r.complete) return { ok: false, reason: after[i]! > r.lastSeq ? 'ahead' : 'window' };
      events.push(...r.events);
    }
    if (user === undefined && c.user !== 0) return { ok: false, reason: 'ahead' };
    // Interleave the two streams in publish order; each stream's own order is kept by the stable sort.
    events.sort((a, b) => a.acceptedAt - b.acceptedAt);
    return { ok: true, events };
  }

  /** The user's notifications in the history window, newest first, with readAt filled in. */
  async list(user: string | undefined, unreadOnly: boolean): Promise<{ notifications: Notification[]; unreadCount: number }> {
    const recent = await Promise.all(subscriberStreams(user).map((s) => this.broker.recent(s, this.window)));
    const events = recent.flat().sort(newestFirst);
    const found = user === undefined ? undefined : await this.reads.marks(user, events.map(idOf));
    return this.withMarks(user, events, found, unreadOnly);
  }

  async snapshot(user: string | undefined, limit: number): Promise<{ unread: Notification[]; unreadCount: number }> {
    return unreadOf(await this.list(user, true), limit);
  }

  /** `events` (newest first) with readAt filled in from the user's marks found for them, which are pruned if past. */
  private withMarks(
    user: string | undefined,
    events: StreamEvent[],
    found: { readAt: Map<string, string>; total: number } | undefined,
    unreadOnly: boolean,
  ): { notifications: Notification[]; unreadCount: number } {
    if (user !== undefined && found !== undefined) this.pruneIfPast(user, found.total);
    return compose(events, found?.readAt, unreadOnly);
  }

  /** Marks a notification read for the user; 404 outside the window, 403 for another user's notification. */
  async markRead(user: string | undefined, id: string): Promise<string> {
    if (user === undefined) throw new HttpError(400, 'E_USER', 'marking read needs a user (?user= or a token)');
    const ev = await this.broker.find(id);
    if (!ev) throw new HttpError(404, 'E_NOT_FOUND', `notification ${id.slice(0, 80)} is not in the history window`);
    if (ev.stream !== BROADCAST && ev.stream !== userStream(user)) {
      throw new HttpError(403, 'E_FORBIDDEN', `notification ${id.slice(0, 80)} belongs to another user`);
    }
    const { readAt, marks } = await this.reads.markRead(user, id, new Date());
    if (marks !== undefined) this.pruneIfPast(user, marks);
    return readAt;
  }

  /** Marks can only name notifications in the window, but the window moves: drop marks that fell out of it. */
  private pruneIfPast(user: string, marks: number): void {
    // A prune that fails (the broker away) is tried again at the next read or list.
    if (marks > 4 * this.window) this.pruneReads(user).catch(() => undefined);
  }

  private async pruneReads(user: string): Promise<void> {
    const live = new Set<string>();
    for (const s of subscriberStreams(user)) for (const ev of await this.broker.recent(s, this.window)) live.add(ev.notification.id);
    await this.reads.prune(user, (id) => live.has(id));
  }
}

/** The notifications of `events` (newest first) with readAt filled in from `marks`, and how many are unread. */
function compose(events: StreamEvent[], marks: Map<string, string> | undefined, unreadOnly: boolean): { notifications: Notification[]; unreadCount: number } {
  const notifications: Notification[] = [];
  let unreadCount = 0;
  for (const ev of events) {
    const readAt = marks?.get(ev.notification.id);
    if (readAt === undefined) unreadCount++;
    else if (unreadOnly) continue;
    notifications.push(readAt === undefined ? ev.notification : { ...ev.notification, readAt });
  }
  return { notifications, unreadCount };
}

/** A snapshot: the first `limit` unread notifications of a list, and how many there are. */
function unreadOf(list: { notifications: Notification[]; unreadCount: number }, limit: number): { unread: Notification[]; unreadCount: number } {
  return { unread: list.notifications.slice(0, limit), unreadCount: list.unreadCount };
}
