/**
 * `notify serve` over SSE (`GET /events`): a real gateway on port 0, read through eventsource-parser.
 * Receive, resume by Last-Event-ID / ?lastEventId=, per-user isolation, batching, slow consumers, heartbeats,
 * resets, the unread snapshot and read receipts.
 */
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { floodUntilClosed, http, metricValue, note, publishEach, publishOk, scrape } from './helpers/http.js';
import { runCleanup } from './helpers/lifecycle.js';
import { openSse, type SseClient } from './helpers/sse-client.js';
import { openWs } from './helpers/ws-client.js';

afterEach(runCleanup);

const titles = (events: { json: any }[]) => events.map((e) => e.json.title);

async function subscribe(gw: TestGateway, query: string, headers: Record<string, string> = {}): Promise<SseClient> {
  return openSse(`${gw.url}/events${query}`, { headers });
}

describe('SSE: receive', () => {
  it('starts with retry and init, then sends each notification with the cursor after it as id', async () => {
    const gw = await startTestGateway();
    const c = await subscribe(gw, '?user=alice');
    expect(c.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(c.headers['x-accel-buffering']).toBe('no');
    expect(c.headers['content-length']).toBeUndefined();
    expect(c.headers['transfer-encoding']).toBeUndefined();
    expect(await c.waitRetry(1)).toBe(3000);

    const init = await c.next('init');
    expect(init.id).toBe(gw.cursor(0, 0));
    expect(init.json).toEqual({ cursor: gw.cursor(0, 0), unread: [], unreadCount: 0 });

    const [userId] = await publishOk(gw.url, { user: 'alice' }, note('one', { data: { k: 1 }, entityType: 'post', entityId: 'p1' }));
    const one = await c.next('notification');
    expect(one.id).toBe(gw.cursor(1, 0));
    expect(one.json).toMatchObject({
      id: userId,
      userId: 'alice',
      type: 'comment',
      title: 'one',
      body: 'body of one',
      data: { k: 1 },
      entityType: 'post',
      entityId: 'p1',
    });
    expect(new Date(one.json.createdAt).toISOString()).toBe(one.json.createdAt);

    const [bId] = await publishOk(gw.url, { broadcast: true }, note('all', { type: 'system' }));
    const all = await c.next('notification');
    expect(all.id).toBe(gw.cursor(1, 1));
    expect(all.json.id).toBe(bId);
    expect(all.json.type).toBe('system');
    expect(all.json).not.toHaveProperty('userId');
    expect(c.lastId).toBe(gw.cursor(1, 1));
  });

  it('an anonymous subscriber gets only broadcast and its user seq stays 0', async () => {
    const gw = await startTestGateway();
    const anon = await subscribe(gw, '');
    expect((await anon.next('init')).json.cursor).toBe(gw.cursor(0, 0));
    await publishEach(gw.url, { user: 'bob' }, ['for bob']);
    await publishEach(gw.url, { broadcast: true }, ['b1']);
    const ev = await anon.next('notification');
    expect(ev.json.title).toBe('b1');
    expect(ev.id).toBe(gw.cursor(0, 1));
  });
});

describe('SSE: resume after a dropped connection', () => {
  for (const how of ['Last-Event-ID header', '?lastEventId=', '?cursor='] as const) {
    it(`gets exactly the missed events from both streams, in order, then live (${how})`, async () => {
      const gw = await startTestGateway();
      const first = await subscribe(gw, '?user=u1');
      await first.next('init');
      await publishEach(gw.url, { user: 'u1' }, ['a1']);
      await publishEach(gw.url, { broadcast: true }, ['b1']);
      await first.waitFor(2, 'notification');
      const cursor = first.lastId!;
      expect(cursor).toBe(gw.cursor(1, 1));
      await first.close();

      // Missed while away: interleaved user and broadcast events, plus another user's event that must not show up.
      await publishEach(gw.url, { user: 'u1' }, ['a2']);
      await publishEach(gw.url, { broadcast: true }, ['b2']);
      await publishEach(gw.url, { user: 'other' }, ['x1']);
      await publishEach(gw.url, { user: 'u1' }, ['a3', 'a4']);
      await publishEach(gw.url, { broadcast: true }, ['b3']);

      const enc = encodeURIComponent(cursor);
      const again =
        how === 'Last-Event-ID header'
          ? await subscribe(gw, '?user=u1', { 'Last-Event-ID': cursor })
          : how === '?lastEventId='
            ? await subscribe(gw, `?user=u1&lastEventId=${enc}`)
            : await subscribe(gw, `?user=u1&cursor=${enc}`);
      const missed = await again.waitFor(5, 'notification');
      expect(titles(missed)).toEqual(['a2', 'b2', 'a3', 'a4', 'b3']);
      expect(missed.map((e) => e.id)).toEqual([gw.cursor(2, 1), gw.cursor(2, 2), gw.cursor(3, 2), gw.cursor(4, 2), gw.cursor(4, 3)]);

      // Live events follow; nothing replayed comes again.
      await publishEach(gw.url, { user: 'u1' }, ['live']);
      const live = await again.next('notification');
      expect(live.json.title).toBe('live');
      expect(live.id).toBe(gw.cursor(5, 3));
    });
  }

  it('events published together in one request replay in request order, as they were sent live', async () => {
    const gw = await startTestGateway();
    const live = await subscribe(gw, '?user=u1');
    await live.next('init');
    const batch = [
      { broadcast: true, notification: note('b1') },
      { user: 'u1', notification: note('a1') },
      { broadcast: true, notification: note('b2') },
      { user: 'u1', notification: note('a2') },
    ];
    const r = await http(`${gw.url}/publish`, { body: batch });
    expect(r.status).toBe(202);
    const sentLive = await live.waitFor(4, 'notification');
    expect(titles(sentLive)).toEqual(['b1', 'a1', 'b2', 'a2']);

    const replayed = await subscribe(gw, '?user=u1', { 'Last-Event-ID': gw.cursor(0, 0) });
    const got = await replayed.waitFor(4, 'notification');
    expect(got.map((e) => [e.id, e.json.id])).toEqual(sentLive.map((e) => [e.id, e.json.id]));
  });

  it('resuming at the head sends nothing before the next live event (and no init)', async () => {
    const gw = await startTestGateway();
    await publishEach(gw.url, { user: 'u1' }, ['old']);
    const c = await subscribe(gw, '?user=u1', { 'Last-Event-ID': gw.cursor(1, 0) });
    await publishEach(gw.url, { user: 'u1' }, ['new']);
    const ev = await c.next('notification');
    expect(ev.json.title).toBe('new');
    expect(ev.id).toBe(gw.cursor(2, 0));
  });

  it('the Last-Event-ID header wins over ?lastEventId=', async () => {
    const gw = await startTestGateway();
    await publishEach(gw.url, { user: 'u1' }, ['e1', 'e2', 'e3']);
    const c = await subscribe(gw, `?user=u1&lastEventId=${gw.cursor(0, 0)}`, { 'Last-Event-ID': gw.cursor(2, 0) });
    const ev = await c.next('notification');
    expect(ev.json.title).toBe('e3');
  });
});

describe('SSE: broadcast and per-user isolation', () => {
  it("a user never gets another user's events; every subscriber gets broadcast", async () => {
    const gw = await startTestGateway();
    const a = await subscribe(gw, '?user=A');
    const b = await subscribe(gw, '?user=B');
    const anon = await subscribe(gw, '');
    for (const c of [a, b, anon]) await c.next('init');

    await publishEach(gw.url, { user: 'B' }, ['to B']);
    await publishEach(gw.url, { user: 'A' }, ['to A']);
    await publishEach(gw.url, { users: ['A', 'B'] }, ['to both']);
    await publishEach(gw.url, { broadcast: true }, ['to all']);

    expect(titles(await a.waitFor(3, 'notification'))).toEqual(['to A', 'to both', 'to all']);
    expect(titles(await b.waitFor(3, 'notification'))).toEqual(['to B', 'to both', 'to all']);
    expect(titles(await anon.waitFor(1, 'notification'))).toEqual(['to all']);
    expect(a.lastId).toBe(gw.cursor(2, 1));
    expect(b.lastId).toBe(gw.cursor(2, 1));
    expect(anon.lastId).toBe(gw.cursor(0, 1));

    // Nothing else is on the way to A: the next thing it gets is a later marker.
    await publishEach(gw.url, { user: 'B' }, ['B only']);
    await publishEach(gw.url, { user: 'A' }, ['marker']);
    expect((await a.next('notification')).json.title).toBe('marker');
  });
});

describe('SSE: batching', () => {
  it('with --batch 200ms, events within the window go out as one notifications:batch with the cursor after the last', async () => {
    const gw = await startTestGateway({ batch: '200ms' });
    const c = await subscribe(gw, '?user=u');
    await c.next('init');
    const ids = [
      ...(await publishEach(gw.url, { user: 'u' }, ['n1'])),
      ...(await publishEach(gw.url, { broadcast: true }, ['n2'])),
      ...(await publishEach(gw.url, { user: 'u' }, ['n3'])),
    ];
    const batch = await c.next('notifications:batch');
    expect(Array.isArray(batch.json)).toBe(true);
    expect(batch.json.map((n: any) => n.id)).toEqual(ids);
    expect(titles([{ json: batch.json[0] }, { json: batch.json[1] }, { json: batch.json[2] }])).toEqual(['n1', 'n2', 'n3']);
    expect(batch.id).toBe(gw.cursor(2, 1));

    await publishEach(gw.url, { user: 'u' }, ['n4']);
    const second = await c.next('notifications:batch');
    expect(second.json.map((n: any) => n.title)).toEqual(['n4']);
    expect(second.id).toBe(gw.cursor(3, 1));
  });

  it('a resume with --batch replays the missed events as one batch', async () => {
    const gw = await startTestGateway({ batch: '200ms' });
    await publishEach(gw.url, { user: 'u' }, ['m1', 'm2']);
    await publishEach(gw.url, { broadcast: true }, ['m3']);
    const c = await subscribe(gw, '?user=u', { 'Last-Event-ID': gw.cursor(1, 0) });
    const batch = await c.next('notifications:batch');
    expect(batch.json.map((n: any) => n.title)).toEqual(['m2', 'm3']);
    expect(batch.id).toBe(gw.cursor(2, 1));
  });
});

describe('SSE: slow consumer', () => {
  it('a client that stops reading is closed past --max-buffer, counted, and resumes by cursor with nothing lost', async () => {
    const gw = await startTestGateway({ maxBuffer: '4kb', maxBody: '1mb', history: '10000' });
    const slow = await subscribe(gw, '?user=slow');
    await slow.next('init');
    slow.pause();

    const published = await floodUntilClosed(gw, 'slow');
    const metrics = await scrape(gw.url);
    expect(metricValue(metrics, 'notify_slow_consumer_closes_total', { transport: 'sse' })).toBe(1);
    expect(metricValue(metrics, 'notify_connections', { transport: 'sse' })).toBe(0);
    // It took more than one publish: the close came from the client's stall, not from the size of one publish.
    expect(published.length).toBeGreaterThan(10);
    // Published after the close (more than --max-buffer of them): the resume must bring them.
    const after = await publishEach(
      gw.url,
      { user: 'slow' },
      Array.from({ length: 10 }, (_, i) => `after${i}`),
      { body: 'a'.repeat(3000) },
    );
    published.push(...after);

    slow.resume();
    await slow.waitClosed({ timeoutMs: 5000 });
    const got = slow.inbox.items.filter((e) => e.type === 'notification');
    expect(got.length).toBeLessThanOrEqual(published.length - after.length);
    expect(got.map((e) => e.json.id)).toEqual(published.slice(0, got.length));
    // The queued frames were dropped at the cut, so the reason is the last thing the client reads.
    expect(slow.inbox.items.at(-1)).toMatchObject({ type: 'close', json: { reason: 'slow consumer' } });

    const resumed = await subscribe(gw, '?user=slow', { 'Last-Event-ID': slow.lastId ?? gw.cursor(0, 0) });
    const rest = await resumed.waitFor(published.length - got.length, 'notification', { timeoutMs: 10_000 });
    expect(rest.map((e) => e.json.id)).toEqual(published.slice(got.length));
    expect(resumed.lastId).toBe(gw.cursor(published.length, 0));
    expect(resumed.closed).toBe(false);
  });

  it('a client that reads is not closed when one publish carries more than --max-buffer', async () => {
    const gw = await startTestGateway({ maxBuffer: '4kb' });
    const c = await subscribe(gw, '?user=h');
    await c.next('init');
    const batch = Array.from({ length: 5 }, (_, i) => ({ user: 'h', notification: note(`n${i}`, { body: 'y'.repeat(2000) }) }));
    const r = await http(`${gw.url}/publish`, { body: batch });
    expect(r.status).toBe(202);
    expect(titles(await c.waitFor(5, 'notification'))).toEqual(['n0', 'n1', 'n2', 'n3', 'n4']);
    await publishEach(gw.url, { user: 'h' }, ['still open']);
    expect((await c.next('notification')).json.title).toBe('still open');
    expect(metricValue(await scrape(gw.url), 'notify_slow_consumer_closes_total', { transport: 'sse' }) ?? 0).toBe(0);
  });

  it('a fresh subscription whose unread snapshot is larger than --max-buffer gets its init', async () => {
    const gw = await startTestGateway({ maxBuffer: '4kb' });
    const ids = await publishEach(
      gw.url,
      { user: 'u' },
      Array.from({ length: 30 }, (_, i) => `u${i}`),
      { body: 'q'.repeat(4000) },
    );
    const c = await subscribe(gw, '?user=u');
    const init = await c.next('init');
    expect(init.json.unreadCount).toBe(30);
    expect(init.json.unread.map((n: any) => n.id)).toEqual(ids.reverse());
    await publishEach(gw.url, { user: 'u' }, ['live']);
    expect((await c.next('notification')).id).toBe(gw.cursor(31, 0));
  });

  it('a resume whose replay is larger than --max-buffer is served in full', async () => {
    const gw = await startTestGateway({ maxBuffer: '4kb', history: '1000' });
    const ids = await publishEach(
      gw.url,
      { user: 'r' },
      Array.from({ length: 100 }, (_, i) => `r${i}`),
      { body: 'q'.repeat(4000) },
    );
    const c = await subscribe(gw, '?user=r', { 'Last-Event-ID': gw.cursor(0, 0) });
    const got = await c.waitFor(100, 'notification', { timeoutMs: 5000 });
    expect(got.map((e) => e.json.id)).toEqual(ids);
    await publishEach(gw.url, { user: 'r' }, ['live']);
    expect((await c.next('notification')).id).toBe(gw.cursor(101, 0));
  });
});

describe('SSE: heartbeat', () => {
  it('sends :hb comments at the --heartbeat interval', async () => {
    const gw = await startTestGateway({ heartbeat: '200ms' });
    const c = await subscribe(gw, '?user=h');
    await c.next('init');
    await c.waitComment('hb', { timeoutMs: 2000 });
    const n = c.comments.length;
    await c.inbox.waitUntil(() => c.comments.length >= n + 1, 'a second :hb', { timeoutMs: 2000 });
    expect(c.comments.every((x) => x === 'hb')).toBe(true);
    // Heartbeats do not disturb events.
    await publishEach(gw.url, { user: 'h' }, ['after hb']);
    expect((await c.next('notification')).json.title).toBe('after hb');
  });
});

describe('SSE: heartbeats spread over the interval', () => {
  it('a hub of many streams writes their heartbeats in turns, each stream still one per interval', async () => {
    // 1.5 s cut into turns of 100 ms; 30 streams opened together, so one turn would write to all of them at once.
    const gw = await startTestGateway({ heartbeat: '1500ms' });
    const beats: number[][] = [];
    const sockets = Array.from({ length: 30 }, (_, i) => {
      const at: number[] = [];
      beats.push(at);
      const socket = connect({ host: '127.0.0.1', port: gw.port });
      socket.on('data', (c: Buffer) => {
        for (const _ of c.toString('latin1').matchAll(/:hb\n\n/g)) at.push(Date.now());
      });
      socket.once('connect', () => socket.write(`GET /events?user=spread${i} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`));
      return socket;
    });
    try {
      const deadline = Date.now() + 6000;
      while (beats.some((b) => b.length < 2) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(beats.map((b) => b.length >= 2)).toEqual(beats.map(() => true));
      const firsts = beats.map((b) => b[0]!);
      // Round-robin slots: 30 streams over 15 turns, so their first heartbeats span most of an interval.
      expect(Math.max(...firsts) - Math.min(...firsts)).toBeGreaterThan(700);
      // And each stream's own heartbeats are an interval apart.
      for (const b of beats) expect(Math.abs(b[1]! - b[0]! - 1500)).toBeLessThan(400);
    } finally {
      for (const s of sockets) s.destroy();
    }
  });
});

describe('SSE: reset', () => {
  it('a cursor of another epoch gets reset (epoch) and a fresh init', async () => {
    const gw = await startTestGateway();
    await publishEach(gw.url, { user: 'r' }, ['kept']);
    const stale = 'OtherEpoch.5.7';
    const c = await subscribe(gw, '?user=r', { 'Last-Event-ID': stale });
    const reset = await c.next('reset');
    expect(reset.json).toEqual({ reason: 'epoch', cursor: stale });
    expect(reset.id).toBeUndefined();
    const init = await c.next('init');
    expect(init.id).toBe(gw.cursor(1, 0));
    expect(init.json.cursor).toBe(gw.cursor(1, 0));
    expect(init.json.unreadCount).toBe(1);
    expect(init.json.unread.map((n: any) => n.title)).toEqual(['kept']);
    await publishEach(gw.url, { user: 'r' }, ['next']);
    expect((await c.next('notification')).id).toBe(gw.cursor(2, 0));
  });

  it('a cursor whose events left the history window gets reset (window) and a fresh init', async () => {
    const gw = await startTestGateway({ history: '3' });
    const first = await subscribe(gw, '?user=w');
    const cursor = (await first.next('init')).json.cursor as string;
    await first.close();
    await publishEach(
      gw.url,
      { user: 'w' },
      Array.from({ length: 10 }, (_, i) => `w${i + 1}`),
    );

    const c = await subscribe(gw, '?user=w', { 'Last-Event-ID': cursor });
    expect((await c.next('reset')).json).toEqual({ reason: 'window', cursor });
    const init = await c.next('init');
    expect(init.json.cursor).toBe(gw.cursor(10, 0));
    expect(init.json.unreadCount).toBe(3);
    expect(init.json.unread.map((n: any) => n.title)).toEqual(['w10', 'w9', 'w8']);
  });

  it('a cursor ahead of the stream gets reset (ahead)', async () => {
    const gw = await startTestGateway();
    const ahead = gw.cursor(9, 0);
    const c = await subscribe(gw, '?user=x', { 'Last-Event-ID': ahead });
    expect((await c.next('reset')).json).toEqual({ reason: 'ahead', cursor: ahead });
    expect((await c.next('init')).json.cursor).toBe(gw.cursor(0, 0));
  });
});

describe('SSE: unread snapshot and read receipts', () => {
  it('init lists unread notifications newest first (capped by --unread-limit) and counts them all', async () => {
    const gw = await startTestGateway({ unreadLimit: '2' });
    const [n1, n2] = await publishEach(gw.url, { user: 's' }, ['s1', 's2']);
    const [b1] = await publishEach(gw.url, { broadcast: true }, ['b1']);
    const [n3] = await publishEach(gw.url, { user: 's' }, ['s3']);
    await publishEach(gw.url, { user: 'someone-else' }, ['not mine']);
    const read = await http(`${gw.url}/notifications/${n2}/read?user=s`, { method: 'POST' });
    expect(read.status).toBe(200);

    const c = await subscribe(gw, '?user=s');
    const init = await c.next('init');
    expect(init.json.cursor).toBe(gw.cursor(3, 1));
    expect(init.json.unreadCount).toBe(3);
    expect(init.json.unread.map((n: any) => n.id)).toEqual([n3, b1]);

    const list = await http(`${gw.url}/notifications?user=s&unread=1`);
    expect(list.status).toBe(200);
    expect(list.body.unreadCount).toBe(3);
    expect(list.body.notifications.map((n: any) => n.id)).toEqual([n3, b1, n1]);
    const all = await http(`${gw.url}/notifications?user=s`);
    expect(all.body.notifications.map((n: any) => n.id)).toEqual([n3, b1, n2, n1]);
    expect(all.body.notifications[2].readAt).toBe(read.body.readAt);
  });

  it("POST /notifications/:id/read reaches the user's other SSE and WS connections, and no one else", async () => {
    const gw = await startTestGateway();
    const s1 = await subscribe(gw, '?user=rr');
    const s2 = await subscribe(gw, '?user=rr');
    const other = await subscribe(gw, '?user=zz');
    const ws = await openWs(`${gw.wsUrl}/ws?user=rr`);
    for (const c of [s1, s2, other]) await c.next('init');
    await ws.next('init');

    const [id] = await publishEach(gw.url, { user: 'rr' }, ['read me']);
    const [bid] = await publishEach(gw.url, { broadcast: true }, ['read me too']);
    await s1.waitFor(2, 'notification');
    await s2.waitFor(2, 'notification');
    await ws.waitFor(2, 'notification');
    await other.waitFor(1, 'notification');

    const r = await http(`${gw.url}/notifications/${id}/read?user=rr`, { method: 'POST' });
    expect(r.status).toBe(200);
    expect(r.body.id).toBe(id);
    expect(Date.parse(r.body.readAt)).not.toBeNaN();
    for (const c of [s1, s2]) {
      const ev = await c.next('read');
      expect(ev.json).toEqual({ id, readAt: r.body.readAt });
      expect(ev.id).toBeUndefined();
    }
    expect(await ws.next('read')).toEqual({ type: 'read', id, readAt: r.body.readAt });
    // Reading again keeps the first readAt.
    const again = await http(`${gw.url}/notifications/${id}/read?user=rr`, { method: 'POST' });
    expect(again.body.readAt).toBe(r.body.readAt);
    for (const c of [s1, s2]) expect((await c.next('read')).json).toEqual({ id, readAt: r.body.readAt });
    expect(await ws.next('read')).toEqual({ type: 'read', id, readAt: r.body.readAt });

    // A broadcast notification is read per user.
    const rb = await http(`${gw.url}/notifications/${bid}/read?user=rr`, { method: 'POST' });
    expect(rb.status).toBe(200);
    for (const c of [s1, s2]) expect((await c.next('read')).json).toEqual({ id: bid, readAt: rb.body.readAt });

    // The other user got no read event: its next event is a later marker.
    await publishEach(gw.url, { user: 'zz' }, ['marker']);
    expect((await other.next('notification')).json.title).toBe('marker');

    const unread = await http(`${gw.url}/notifications?user=rr&unread=1`);
    expect(unread.body).toEqual({ notifications: [], unreadCount: 0 });
    const zz = await http(`${gw.url}/notifications?user=zz&unread=1`);
    expect(zz.body.unreadCount).toBe(2);
  });

  it("marking another user's notification is 403, an unknown id 404, and neither moves anything", async () => {
    const gw = await startTestGateway();
    const [theirs] = await publishEach(gw.url, { user: 'owner' }, ['private']);
    const r = await http(`${gw.url}/notifications/${theirs}/read?user=intruder`, { method: 'POST' });
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('E_FORBIDDEN');
    const missing = await http(`${gw.url}/notifications/${gw.epoch}-zzz/read?user=owner`, { method: 'POST' });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('E_NOT_FOUND');
    const owner = await http(`${gw.url}/notifications?user=owner&unread=1`);
    expect(owner.body.unreadCount).toBe(1);
    expect(owner.body.notifications[0].id).toBe(theirs);
  });
});
