/**
 * `notify serve` over WebSocket (`GET /ws`): JSON frames init / notification / batch / reset / read, resume by
 * ?cursor=, ping/pong and dead peers, slow consumers (close 4008), and read receipts sent by the client.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { floodUntilClosed, http, metricValue, publishEach, scrape } from './helpers/http.js';
import { runCleanup, until } from './helpers/lifecycle.js';
import { openSse } from './helpers/sse-client.js';
import { openWs, type WsClient, type WsFrame } from './helpers/ws-client.js';

afterEach(runCleanup);

const titles = (frames: WsFrame[]) => frames.map((f) => f.notification.title);

function subscribe(gw: TestGateway, query: string): Promise<WsClient> {
  return openWs(`${gw.wsUrl}/ws${query}`);
}

describe('WS: receive', () => {
  it('sends init, then one notification frame per event with the cursor after it', async () => {
    const gw = await startTestGateway();
    const c = await subscribe(gw, '?user=alice');
    expect(await c.next('init')).toEqual({ type: 'init', cursor: gw.cursor(0, 0), unread: [], unreadCount: 0 });

    const [id] = await publishEach(gw.url, { user: 'alice' }, ['hello'], { type: 'mention', actorId: 'bob' });
    const f = await c.next('notification');
    expect(f.cursor).toBe(gw.cursor(1, 0));
    expect(f.notification).toMatchObject({ id, userId: 'alice', type: 'mention', title: 'hello', body: 'body of hello', actorId: 'bob' });
    expect(Object.keys(f).sort()).toEqual(['cursor', 'notification', 'type']);

    const [bid] = await publishEach(gw.url, { broadcast: true }, ['everyone']);
    const b = await c.next('notification');
    expect(b.cursor).toBe(gw.cursor(1, 1));
    expect(b.notification.id).toBe(bid);
    expect(b.notification).not.toHaveProperty('userId');
  });
});

describe('WS: resume after a dropped connection', () => {
  for (const param of ['cursor', 'lastEventId'] as const) {
    it(`?${param}= gets exactly the missed events from both streams, in order, then live`, async () => {
      const gw = await startTestGateway();
      const first = await subscribe(gw, '?user=u1');
      await first.next('init');
      await publishEach(gw.url, { broadcast: true }, ['b1']);
      await publishEach(gw.url, { user: 'u1' }, ['a1']);
      await first.waitFor(2, 'notification');
      const cursor = first.lastCursor!;
      expect(cursor).toBe(gw.cursor(1, 1));
      await first.close(); // no close handshake: the network went away

      await publishEach(gw.url, { user: 'u1' }, ['a2']);
      await publishEach(gw.url, { user: 'u2' }, ['not mine']);
      await publishEach(gw.url, { broadcast: true }, ['b2', 'b3']);
      await publishEach(gw.url, { user: 'u1' }, ['a3']);

      const again = await subscribe(gw, `?user=u1&${param}=${encodeURIComponent(cursor)}`);
      const missed = await again.waitFor(4, 'notification');
      expect(titles(missed)).toEqual(['a2', 'b2', 'b3', 'a3']);
      expect(missed.map((f) => f.cursor)).toEqual([gw.cursor(2, 1), gw.cursor(2, 2), gw.cursor(2, 3), gw.cursor(3, 3)]);

      await publishEach(gw.url, { broadcast: true }, ['live']);
      const live = await again.next('notification');
      expect(live.notification.title).toBe('live');
      expect(live.cursor).toBe(gw.cursor(3, 4));
    });
  }
});

describe('WS: broadcast and per-user isolation', () => {
  it("a user never gets another user's events; every subscriber gets broadcast", async () => {
    const gw = await startTestGateway();
    const a = await subscribe(gw, '?user=A');
    const b = await subscribe(gw, '?user=B');
    const anon = await subscribe(gw, '');
    for (const c of [a, b, anon]) await c.next('init');

    await publishEach(gw.url, { user: 'B' }, ['to B']);
    await publishEach(gw.url, { broadcast: true }, ['to all']);
    await publishEach(gw.url, { user: 'A' }, ['to A']);

    expect(titles(await a.waitFor(2, 'notification'))).toEqual(['to all', 'to A']);
    expect(titles(await b.waitFor(2, 'notification'))).toEqual(['to B', 'to all']);
    expect(titles(await anon.waitFor(1, 'notification'))).toEqual(['to all']);

    // B got nothing of A's: its next frame is a later marker (same for the anonymous one).
    await publishEach(gw.url, { user: 'B' }, ['marker B']);
    await publishEach(gw.url, { broadcast: true }, ['marker all']);
    expect((await b.next('notification')).notification.title).toBe('marker B');
    expect((await anon.next('notification')).notification.title).toBe('marker all');
    expect(anon.lastCursor).toBe(gw.cursor(0, 2));
  });
});

describe('WS: batching', () => {
  it('with --batch 200ms, events within the window go out as one batch frame with the cursor after the last', async () => {
    const gw = await startTestGateway({ batch: '200ms' });
    const c = await subscribe(gw, '?user=u');
    await c.next('init');
    const ids = [...(await publishEach(gw.url, { broadcast: true }, ['n1'])), ...(await publishEach(gw.url, { user: 'u' }, ['n2', 'n3']))];
    const batch = await c.next('notifications:batch');
    expect(batch.cursor).toBe(gw.cursor(2, 1));
    expect(batch.notifications.map((n: any) => n.id)).toEqual(ids);
    expect(batch.notifications.map((n: any) => n.title)).toEqual(['n1', 'n2', 'n3']);

    await publishEach(gw.url, { user: 'u' }, ['n4']);
    const next = await c.next('notifications:batch');
    expect(next.notifications.map((n: any) => n.title)).toEqual(['n4']);
    expect(next.cursor).toBe(gw.cursor(3, 1));
  });
});

describe('WS: slow consumer', () => {
  it('a client that stops reading is closed with 4008, counted, and resumes by cursor with nothing lost', async () => {
    const gw = await startTestGateway({ maxBuffer: '4kb', maxBody: '1mb', history: '10000' });
    const slow = await subscribe(gw, '?user=slow');
    await slow.next('init');
    slow.pause();

    const published = await floodUntilClosed(gw, 'slow');
    expect(published.length).toBeGreaterThan(10);
    const metrics = await scrape(gw.url);
    expect(metricValue(metrics, 'notify_slow_consumer_closes_total', { transport: 'ws' })).toBe(1);
    expect(metricValue(metrics, 'notify_connections', { transport: 'ws' })).toBe(0);

    const after = await publishEach(
      gw.url,
      { user: 'slow' },
      Array.from({ length: 10 }, (_, i) => `after${i}`),
      { body: 'a'.repeat(3000) },
    );
    published.push(...after);

    slow.resume();
    expect(await slow.waitClose({ timeoutMs: 5000 })).toEqual({ code: 4008, reason: 'slow consumer' });
    const got = slow.inbox.items.filter((f) => f.type === 'notification');
    expect(got.length).toBeLessThanOrEqual(published.length - after.length);
    expect(got.map((f) => f.notification.id)).toEqual(published.slice(0, got.length));

    const resumed = await subscribe(gw, `?user=slow&cursor=${slow.lastCursor}`);
    const rest = await resumed.waitFor(published.length - got.length, 'notification', { timeoutMs: 10_000 });
    expect(rest.map((f) => f.notification.id)).toEqual(published.slice(got.length));
    expect(resumed.lastCursor).toBe(gw.cursor(published.length, 0));
    expect(resumed.close_).toBeUndefined();
  });

  it('a resume whose replay is larger than --max-buffer is served in full', async () => {
    const gw = await startTestGateway({ maxBuffer: '4kb' });
    const ids = await publishEach(
      gw.url,
      { user: 'r' },
      Array.from({ length: 100 }, (_, i) => `r${i}`),
      { body: 'q'.repeat(4000) },
    );
    const c = await subscribe(gw, `?user=r&cursor=${gw.cursor(0, 0)}`);
    const got = await c.waitFor(100, 'notification', { timeoutMs: 5000 });
    expect(got.map((f) => f.notification.id)).toEqual(ids);
    await publishEach(gw.url, { user: 'r' }, ['live']);
    expect((await c.next('notification')).cursor).toBe(gw.cursor(101, 0));
  });
});

describe('WS: heartbeat', () => {
  it('pings at the --heartbeat interval and keeps a peer that answers', async () => {
    const gw = await startTestGateway({ heartbeat: '200ms' });
    const c = await subscribe(gw, '?user=h');
    await c.next('init');
    await c.waitPing(3, { timeoutMs: 3000 });
    expect(c.close_).toBeUndefined();
    await publishEach(gw.url, { user: 'h' }, ['still here']);
    expect((await c.next('notification')).notification.title).toBe('still here');
  });

  it('terminates a peer that does not answer pings', async () => {
    const gw = await startTestGateway({ heartbeat: '200ms' });
    const dead = await openWs(`${gw.wsUrl}/ws?user=d`, { autoPong: false });
    await dead.next('init');
    await dead.waitPing(1, { timeoutMs: 2000 });
    // Terminated without a close frame: the client sees 1006.
    expect((await dead.waitClose({ timeoutMs: 3000 })).code).toBe(1006);
    await until(() => gw.hub.size === 0, 'the hub to drop the dead peer');
    expect(metricValue(await scrape(gw.url), 'notify_connections', { transport: 'ws' })).toBe(0);
  });
});

describe('WS: reset', () => {
  it('a cursor of another epoch gets a reset frame (epoch) and a fresh init', async () => {
    const gw = await startTestGateway();
    await publishEach(gw.url, { broadcast: true }, ['b']);
    const c = await subscribe(gw, '?user=r&cursor=Zz9.1.1');
    expect(await c.next('reset')).toEqual({ type: 'reset', reason: 'epoch', cursor: 'Zz9.1.1' });
    const init = await c.next('init');
    expect(init.cursor).toBe(gw.cursor(0, 1));
    expect(init.unreadCount).toBe(1);
  });

  it('a cursor whose events left the history window gets a reset frame (window) and a fresh init', async () => {
    const gw = await startTestGateway({ history: '3' });
    await publishEach(
      gw.url,
      { broadcast: true },
      Array.from({ length: 10 }, (_, i) => `b${i + 1}`),
    );
    const c = await subscribe(gw, `?user=w&cursor=${gw.cursor(0, 0)}`);
    expect(await c.next('reset')).toEqual({ type: 'reset', reason: 'window', cursor: gw.cursor(0, 0) });
    const init = await c.next('init');
    expect(init.cursor).toBe(gw.cursor(0, 10));
    expect(init.unread.map((n: any) => n.title)).toEqual(['b10', 'b9', 'b8']);
    expect(init.unreadCount).toBe(3);
  });
});

describe('WS: read receipts from the client', () => {
  it('{"type":"read","id"} marks read, is acknowledged, and reaches the user\'s other SSE and WS connections', async () => {
    const gw = await startTestGateway();
    const ws1 = await subscribe(gw, '?user=rr');
    const ws2 = await subscribe(gw, '?user=rr');
    const sse = await openSse(`${gw.url}/events?user=rr`);
    const stranger = await subscribe(gw, '?user=zz');
    for (const c of [ws1, ws2, stranger]) await c.next('init');
    await sse.next('init');
    const [id] = await publishEach(gw.url, { user: 'rr' }, ['read me']);
    await ws1.next('notification');
    await ws2.next('notification');
    await sse.next('notification');

    ws1.send({ type: 'read', id });
    const ack = await ws1.next('read');
    expect(ack.id).toBe(id);
    expect(Date.parse(ack.readAt)).not.toBeNaN();
    expect(await ws2.next('read')).toEqual({ type: 'read', id, readAt: ack.readAt });
    expect((await sse.next('read')).json).toEqual({ id, readAt: ack.readAt });

    const unread = await http(`${gw.url}/notifications?user=rr&unread=1`);
    expect(unread.body).toEqual({ notifications: [], unreadCount: 0 });
    const all = await http(`${gw.url}/notifications?user=rr`);
    expect(all.body.notifications).toEqual([expect.objectContaining({ id, readAt: ack.readAt })]);

    // The stranger saw none of it.
    await publishEach(gw.url, { user: 'zz' }, ['marker']);
    expect((await stranger.next('notification')).notification.title).toBe('marker');
  });

  it("bad frames and other users' notifications get an error frame; the connection stays usable", async () => {
    const gw = await startTestGateway();
    const [theirs] = await publishEach(gw.url, { user: 'owner' }, ['private']);
    const c = await subscribe(gw, '?user=me');
    await c.next('init');

    c.send('{not json');
    expect(await c.next('error')).toEqual({ type: 'error', error: { code: 'E_JSON', message: expect.any(String) } });
    c.send({ type: 'subscribe', id: 'x' });
    expect((await c.next('error')).error.code).toBe('E_INVALID');
    c.send({ type: 'read', id: theirs });
    expect((await c.next('error')).error.code).toBe('E_FORBIDDEN');
    c.send({ type: 'read', id: `${gw.epoch}-nope` });
    expect((await c.next('error')).error.code).toBe('E_NOT_FOUND');

    const owner = await http(`${gw.url}/notifications?user=owner&unread=1`);
    expect(owner.body.unreadCount).toBe(1);
    await publishEach(gw.url, { user: 'me' }, ['after errors']);
    expect((await c.next('notification')).notification.title).toBe('after errors');

    // An anonymous connection has no one to mark read for.
    const anon = await subscribe(gw, '');
    await anon.next('init');
    anon.send({ type: 'read', id: theirs });
    expect((await anon.next('error')).error.code).toBe('E_USER');
  });
});
