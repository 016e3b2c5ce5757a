/**
 * A subscription's set-up over the memory broker runs in one synchronous pass (no await between joining the hub and
 * the init): the synchronous answers must be exactly the asynchronous ones, and the async path (a cursor, or a broker
 * that answers over the network) must stay as it was. In-process: History, the hub and startSubscription with a
 * recording subscriber, no sockets.
 */
import { describe, expect, it } from 'vitest';
import { createAuthenticator } from '../src/server/auth.js';
import { isSyncHistory, type Broker, type StreamEvent } from '../src/server/brokers/broker.js';
import { MemoryBroker } from '../src/server/brokers/memory.js';
import { History } from '../src/server/history.js';
import { Hub } from '../src/server/hub.js';
import { GatewayMetrics } from '../src/server/metrics.js';
import { MemoryReadStore } from '../src/server/read-store.js';
import { SET_UP, startSubscription, type SubscribeDeps } from '../src/server/subscribe.js';
import { Subscriber, type InitPayload } from '../src/server/subscriber.js';

const WINDOW = 100;

class RecordingSubscriber extends Subscriber {
  readonly transport = 'sse' as const;
  readonly sent: string[] = [];
  inits: InitPayload[] = [];
  failInit = false;

  constructor(user: string | undefined) {
    super(user, { batchMs: 0, maxBuffer: 1 << 20, onClose: () => {} });
  }
  sendInit(p: InitPayload): void {
    if (this.failInit) throw new Error('init failed');
    this.inits.push(p);
  }
  sendReset(reason: string): void {
    this.sent.push(`reset ${reason}`);
  }
  sendOne(ev: StreamEvent): void {
    this.sent.push(ev.notification.title);
  }
  sendBatch(events: StreamEvent[]): void {
    for (const ev of events) this.sent.push(ev.notification.title);
  }
  sendRead(id: string): void {
    this.sent.push(`read ${id}`);
  }
  heartbeat(): void {}
  shutdown(): void {}
  protected closeSlow(): void {}
}

/** The memory broker seen only through the Broker interface, each answer a tick later (as Redis or NATS answer). */
function asyncOnly(inner: MemoryBroker): Broker {
  const later = <T>(v: Promise<T>) => new Promise<T>((r) => setTimeout(() => r(v), 1));
  return {
    kind: 'async-memory',
    start: () => inner.start(),
    epoch: () => inner.epoch(),
    publish: (items) => inner.publish(items),
    readAfter: (s, after) => later(inner.readAfter(s, after)),
    lastSeq: (s) => later(inner.lastSeq(s)),
    recent: (s, limit) => later(inner.recent(s, limit)),
    find: (id) => inner.find(id),
    onEvents: (l) => inner.onEvents(l),
    close: () => inner.close(),
  };
}

async function seeded(): Promise<{ broker: MemoryBroker; reads: MemoryReadStore; ids: string[] }> {
  const broker = new MemoryBroker({ history: WINDOW, historyBytes: 1 << 24 });
  const ids: string[] = [];
  const note = (title: string) => ({ type: 'system' as const, title, body: '', createdAt: new Date(0).toISOString() });
  for (let i = 0; i < 4; i++) {
    for (const ev of await broker.publish([{ stream: 'user:u', notification: { ...note(`u${i}`), userId: 'u' } }])) ids.push(ev.notification.id);
    for (const ev of await broker.publish([{ stream: 'broadcast', notification: note(`b${i}`) }])) ids.push(ev.notification.id);
  }
  await broker.publish([{ stream: 'user:other', notification: { ...note('not mine'), userId: 'other' } }]);
  const reads = new MemoryReadStore();
  await reads.markRead('u', ids[0]!, new Date(1000));
  await reads.markRead('u', ids[3]!, new Date(2000));
  return { broker, reads, ids };
}

function deps(history: History): SubscribeDeps & { hub: Hub; metrics: GatewayMetrics } {
  const metrics: GatewayMetrics = new GatewayMetrics(() => hub.openByTransport());
  const hub: Hub = new Hub(metrics);
  return { hub, history, metrics, unreadLimit: 3 };
}

describe('synchronous set-up over the memory broker', () => {
  it('headNow and snapshotNow answer exactly what head and snapshot answer, for a user and for nobody', async () => {
    const { broker, reads } = await seeded();
    expect(isSyncHistory(broker)).toBe(true);
    const history = new History(broker, reads, WINDOW);
    expect(history.sync).toBe(true);
    for (const user of ['u', 'other', 'nobody', undefined]) {
      expect(history.headNow(user), String(user)).toEqual(await history.head(user));
      for (const limit of [0, 2, 100]) expect(history.snapshotNow(user, limit), `${user} ${limit}`).toEqual(await history.snapshot(user, limit));
    }
    const snap = history.snapshotNow('u', 100);
    expect(snap.unread.map((n) => n.title)).toEqual(['b3', 'u3', 'b2', 'u2', 'u1', 'b0']);
    expect(snap.unreadCount).toBe(6);
  });

  it('a History over a broker without the synchronous answers, or over a shared read store, is not sync', async () => {
    const { broker, reads } = await seeded();
    expect(new History(asyncOnly(broker), reads, WINDOW).sync).toBe(false);
    const sharedReads = { markRead: reads.markRead.bind(reads), marks: reads.marks.bind(reads), prune: reads.prune.bind(reads) };
    expect(new History(broker, sharedReads, WINDOW).sync).toBe(false);
  });

  it('a fresh subscription is live, with its init sent, by the time startSubscription returns', async () => {
    const { broker, reads } = await seeded();
    const d = deps(new History(broker, reads, WINDOW));
    broker.onEvents((events) => d.hub.fanout(events));
    const sub = new RecordingSubscriber('u');
    const start = startSubscription(d, sub, undefined);
    expect(start).toBe(SET_UP);
    expect(sub.inits).toEqual([{ cursor: sub.cursor, unread: expect.any(Array), unreadCount: 6 }]);
    expect(sub.inits[0]!.unread.map((n) => n.title)).toEqual(['b3', 'u3', 'b2']);
    expect(sub.cursor).toBe(`${broker.epoch()}.4.4`);
    expect(d.hub.size).toBe(1);
    await broker.publish([{ stream: 'user:u', notification: { type: 'system', title: 'live', body: '', createdAt: '', userId: 'u' } }]);
    expect(sub.sent).toEqual(['live']);
    expect(sub.cursor).toBe(`${broker.epoch()}.5.4`);
    await start;
    const opened = (await d.metrics.connectionsOpened.get()).values;
    expect(opened).toEqual([expect.objectContaining({ labels: { transport: 'sse' }, value: 1 })]);
  });

  it('an init that throws on the synchronous path rejects the start and leaves the hub', async () => {
    const { broker, reads } = await seeded();
    const d = deps(new History(broker, reads, WINDOW));
    const sub = new RecordingSubscriber('u');
    sub.failInit = true;
    await expect(startSubscription(d, sub, undefined)).rejects.toThrow('init failed');
    expect(d.hub.size).toBe(0);
  });

  it('over an asynchronous broker: joined first, events published during the set-up arrive once, after the init', async () => {
    const { broker, reads } = await seeded();
    const d = deps(new History(asyncOnly(broker), reads, WINDOW));
    broker.onEvents((events) => d.hub.fanout(events));
    const sub = new RecordingSubscriber('u');
    const start = startSubscription(d, sub, undefined);
    expect(start).not.toBe(SET_UP);
    expect(d.hub.size).toBe(1);
    expect(sub.inits).toEqual([]);
    await broker.publish([{ stream: 'broadcast', notification: { type: 'system', title: 'during', body: '', createdAt: '' } }]);
    await start;
    expect(sub.inits).toHaveLength(1);
    // Published before the head was read (it is in the snapshot then) or after (it is delivered live): never both.
    const inSnapshot = sub.inits[0]!.unread.some((n) => n.title === 'during');
    expect(sub.sent).toEqual(inSnapshot ? [] : ['during']);
    expect(sub.cursor).toBe(`${broker.epoch()}.4.5`);
  });

  it('a resume by cursor keeps the asynchronous path (replay) even over the memory broker', async () => {
    const { broker, reads } = await seeded();
    const d = deps(new History(broker, reads, WINDOW));
    const sub = new RecordingSubscriber('u');
    const text = `${broker.epoch()}.2.3`;
    const start = startSubscription(d, sub, { text, cursor: { epoch: broker.epoch(), user: 2, broadcast: 3 } });
    expect(start).not.toBe(SET_UP);
    await start;
    expect(sub.inits).toEqual([]);
    expect(sub.sent).toEqual(['u2', 'u3', 'b3']);
  });
});

describe('identifyNow', () => {
  it('--auth none: the identity at once, a bad ?user= thrown at once; --auth jwt: undefined (identify verifies)', async () => {
    const none = createAuthenticator({ auth: 'none' });
    expect(none.identifyNow({}, new URLSearchParams('user=alice'))).toEqual({ user: 'alice' });
    expect(none.identifyNow({}, new URLSearchParams(''))).toEqual({ user: undefined });
    expect(() => none.identifyNow({}, new URLSearchParams('user=a%20b'))).toThrow(/user must be/);
    await expect(none.identify({}, new URLSearchParams('user=a%20b'))).rejects.toThrow(/user must be/);
    const jwt = createAuthenticator({ auth: 'jwt', jwtSecret: 'x'.repeat(32) });
    expect(jwt.identifyNow({}, new URLSearchParams('user=alice'))).toBeUndefined();
  });
});
