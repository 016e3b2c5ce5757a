/**
 * `notify serve` long-poll (`GET /poll`): the first answer at once with a cursor and the unread snapshot; with a
 * cursor, the events after it at once or held until the next event or the timeout; resets; read receipts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { http, publishEach } from './helpers/http.js';
import { runCleanup, until } from './helpers/lifecycle.js';
import { poll } from './helpers/poll.js';
import { registerBroker } from '../src/server/brokers/index.js';
import { MemoryBroker } from '../src/server/brokers/memory.js';
import type { HistoryRead } from '../src/server/brokers/broker.js';

/** The memory broker with history reads answered 30 ms later, as a Redis or NATS broker answers over the network. */
class SlowHistoryBroker extends MemoryBroker {
  override async readAfter(stream: string, after: number): Promise<HistoryRead> {
    await new Promise((r) => setTimeout(r, 30));
    return super.readAfter(stream, after);
  }
}
registerBroker('slow-history', (_url, options) => new SlowHistoryBroker(options));

afterEach(runCleanup);

const titles = (list: any[]) => list.map((n) => n.title);

/** Resolves once the gateway holds `n` polls (so a publish that follows is the event that answers them). */
function held(gw: TestGateway, n = 1): Promise<void> {
  return until(() => gw.hub.openByTransport().poll === n, `${n} held poll(s)`);
}

describe('poll: receive', () => {
  it('without a cursor answers at once with the cursor, the unread snapshot and no notifications', async () => {
    const gw = await startTestGateway();
    const [id] = await publishEach(gw.url, { user: 'p' }, ['earlier']);
    const r = await poll(gw.url, { user: 'p' });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect(r.body).toEqual({
      cursor: gw.cursor(1, 0),
      unread: [expect.objectContaining({ id, title: 'earlier', userId: 'p' })],
      unreadCount: 1,
      notifications: [],
    });
  });

  it('with a cursor answers at once with every event after it, from both streams, oldest first', async () => {
    const gw = await startTestGateway();
    const start = (await poll(gw.url, { user: 'p' })).body.cursor;
    const ids = [
      ...(await publishEach(gw.url, { user: 'p' }, ['a1'])),
      ...(await publishEach(gw.url, { broadcast: true }, ['b1'])),
      ...(await publishEach(gw.url, { user: 'p' }, ['a2'])),
    ];
    await publishEach(gw.url, { user: 'q' }, ['not mine']);
    const r = await poll(gw.url, { user: 'p', cursor: start, timeout: 5 });
    expect(r.status).toBe(200);
    expect(r.body.notifications.map((n) => n.id)).toEqual(ids);
    expect(r.body.cursor).toBe(gw.cursor(2, 1));
    expect(r.body).not.toHaveProperty('unread');
  });

  it('holds until the next event, then answers with it', async () => {
    const gw = await startTestGateway();
    const { cursor } = (await poll(gw.url, { user: 'p' })).body;
    const pending = poll(gw.url, { user: 'p', cursor, timeout: 10 });
    await held(gw);
    const [id] = await publishEach(gw.url, { user: 'p' }, ['wake up']);
    const r = await pending;
    expect(r.body).toEqual({ cursor: gw.cursor(1, 0), notifications: [expect.objectContaining({ id, title: 'wake up' })] });
    expect(gw.hub.size).toBe(0);
  });

  it('holds until the timeout, then answers with the same cursor and no notifications', async () => {
    const gw = await startTestGateway();
    await publishEach(gw.url, { broadcast: true }, ['b']);
    const { cursor } = (await poll(gw.url, { user: 'p' })).body;
    const t0 = Date.now();
    const r = await poll(gw.url, { user: 'p', cursor, timeout: 0.3 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ cursor, notifications: [] });
  });

  it('a poll with timeout=0 answers at once when nothing is pending', async () => {
    const gw = await startTestGateway();
    const { cursor } = (await poll(gw.url, { user: 'p' })).body;
    const r = await poll(gw.url, { user: 'p', cursor, timeout: 0 });
    expect(r.body).toEqual({ cursor, notifications: [] });
  });
});

describe('poll: a broker that answers asynchronously', () => {
  it('a resuming poll with timeout=0 waits for its replay instead of answering empty with no cursor', async () => {
    const gw = await startTestGateway({ broker: 'slow-history' });
    const start = (await poll(gw.url, { user: 'p' })).body.cursor;
    const ids = await publishEach(gw.url, { user: 'p' }, ['a1', 'a2']);
    const r = await poll(gw.url, { user: 'p', cursor: start, timeout: 0 });
    expect(r.status).toBe(200);
    expect(r.body.notifications.map((n) => n.id)).toEqual(ids);
    expect(r.body.cursor).toBe(gw.cursor(2, 0));
  });
});

describe('poll: resume after a dropped connection', () => {
  it('a poll loop that loses a held request gets exactly the missed events with the last cursor', async () => {
    const gw = await startTestGateway();
    let cursor = (await poll(gw.url, { user: 'u' })).body.cursor;
    await publishEach(gw.url, { user: 'u' }, ['a1']);
    const r1 = await poll(gw.url, { user: 'u', cursor, timeout: 5 });
    expect(titles(r1.body.notifications)).toEqual(['a1']);
    cursor = r1.body.cursor;

    // The next held poll is dropped by the client.
    const abort = new AbortController();
    const dropped = poll(gw.url, { user: 'u', cursor, timeout: 30, signal: abort.signal });
    await held(gw);
    abort.abort();
    await expect(dropped).rejects.toThrow();
    await until(() => gw.hub.size === 0, 'the server to forget the dropped poll');

    await publishEach(gw.url, { broadcast: true }, ['b1']);
    await publishEach(gw.url, { user: 'u' }, ['a2', 'a3']);
    await publishEach(gw.url, { user: 'v' }, ['v1']);
    const r2 = await poll(gw.url, { user: 'u', cursor, timeout: 5 });
    expect(titles(r2.body.notifications)).toEqual(['b1', 'a2', 'a3']);
    expect(r2.body.cursor).toBe(gw.cursor(3, 1));

    // No duplicates: the next poll holds until something new.
    const next = poll(gw.url, { user: 'u', cursor: r2.body.cursor, timeout: 5 });
    await held(gw);
    await publishEach(gw.url, { user: 'u' }, ['a4']);
    const r3 = await next;
    expect(titles(r3.body.notifications)).toEqual(['a4']);
    expect(r3.body.cursor).toBe(gw.cursor(4, 1));
  });

  it('?lastEventId= works as the cursor too', async () => {
    const gw = await startTestGateway();
    await publishEach(gw.url, { user: 'u' }, ['a1', 'a2']);
    const r = await poll(gw.url, { user: 'u', timeout: 5, query: { lastEventId: gw.cursor(1, 0) } });
    expect(titles(r.body.notifications)).toEqual(['a2']);
  });
});

describe('poll: broadcast and per-user isolation', () => {
  it('held polls of two users and an anonymous one each get only their own streams', async () => {
    const gw = await startTestGateway();
    const start = {
      a: (await poll(gw.url, { user: 'A' })).body.cursor,
      b: (await poll(gw.url, { user: 'B' })).body.cursor,
      anon: (await poll(gw.url)).body.cursor,
    };
    const pa = poll(gw.url, { user: 'A', cursor: start.a, timeout: 5 });
    const pb = poll(gw.url, { user: 'B', cursor: start.b, timeout: 5 });
    const pn = poll(gw.url, { cursor: start.anon, timeout: 5 });
    await held(gw, 3);
    // One publish request with three events: each poll's answer holds only its share.
    const r = await http(`${gw.url}/publish`, {
      body: [
        { user: 'B', notification: { type: 'order', title: 'to B' } },
        { broadcast: true, notification: { type: 'system', title: 'to all' } },
        { user: 'A', notification: { type: 'order', title: 'to A' } },
      ],
    });
    expect(r.status).toBe(202);
    expect(r.body.delivered).toBe(5);
    expect(titles((await pa).body.notifications)).toEqual(['to all', 'to A']);
    expect(titles((await pb).body.notifications)).toEqual(['to B', 'to all']);
    const anon = (await pn).body;
    expect(titles(anon.notifications)).toEqual(['to all']);
    expect(anon.cursor).toBe(gw.cursor(0, 1));
  });
});

describe('poll: batching', () => {
  it('with --batch 200ms a held poll is answered once with every event of the window', async () => {
    const gw = await startTestGateway({ batch: '200ms' });
    const { cursor } = (await poll(gw.url, { user: 'u' })).body;
    const pending = poll(gw.url, { user: 'u', cursor, timeout: 5 });
    await held(gw);
    const ids = [...(await publishEach(gw.url, { user: 'u' }, ['n1', 'n2'])), ...(await publishEach(gw.url, { broadcast: true }, ['n3']))];
    const r = await pending;
    expect(r.body.notifications.map((n) => n.id)).toEqual(ids);
    expect(r.body.cursor).toBe(gw.cursor(2, 1));
  });
});

describe('poll: reset', () => {
  it('a cursor of another epoch is answered with reset (epoch) and a fresh snapshot', async () => {
    const gw = await startTestGateway();
    const [id] = await publishEach(gw.url, { user: 'r' }, ['kept']);
    const r = await poll(gw.url, { user: 'r', cursor: 'gone.4.4', timeout: 5 });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      cursor: gw.cursor(1, 0),
      reset: { reason: 'epoch' },
      unread: [expect.objectContaining({ id })],
      unreadCount: 1,
      notifications: [],
    });
  });

  it('a cursor whose events left the history window is answered with reset (window)', async () => {
    const gw = await startTestGateway({ history: '3' });
    const { cursor } = (await poll(gw.url, { user: 'w' })).body;
    await publishEach(
      gw.url,
      { user: 'w' },
      Array.from({ length: 10 }, (_, i) => `w${i + 1}`),
    );
    const r = await poll(gw.url, { user: 'w', cursor, timeout: 5 });
    expect(r.body.reset).toEqual({ reason: 'window' });
    expect(r.body.cursor).toBe(gw.cursor(10, 0));
    expect(titles(r.body.unread!)).toEqual(['w10', 'w9', 'w8']);
    expect(r.body.notifications).toEqual([]);
  });
});

describe('poll: read receipts', () => {
  it('a held poll is answered with the read receipt made on another connection', async () => {
    const gw = await startTestGateway();
    const [id] = await publishEach(gw.url, { user: 'rr' }, ['read me']);
    const { cursor } = (await poll(gw.url, { user: 'rr' })).body;
    const pending = poll(gw.url, { user: 'rr', cursor, timeout: 5 });
    await held(gw);
    const mark = await http(`${gw.url}/notifications/${id}/read?user=rr`, { method: 'POST' });
    expect(mark.status).toBe(200);
    const r = await pending;
    expect(r.body).toEqual({ cursor, notifications: [], read: [{ id, readAt: mark.body.readAt }] });
    // The snapshot of a fresh poll no longer lists it.
    expect((await poll(gw.url, { user: 'rr' })).body.unreadCount).toBe(0);
  });
});
