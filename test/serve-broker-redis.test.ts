/**
 * `notify serve --broker redis://...`: several gateways sharing one real redis-server. Live fan-out across
 * instances, a cursor of one instance resuming on another, the window at --history, a gateway restart, and Redis
 * outages: publishes get 503, connections stay open, and nothing is lost silently once Redis is back (gaps filled
 * from history, or a reset when the history itself is gone).
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { expectError, http, note, publishEach } from './helpers/http.js';
import { onCleanup, runCleanup, until } from './helpers/lifecycle.js';
import { startRedis } from './helpers/redis.js';
import { openSse, type SseClient } from './helpers/sse-client.js';

afterEach(runCleanup);

const titles = (events: { json: any }[]) => events.map((e) => e.json.title);

function subscribe(gw: TestGateway, query: string, headers: Record<string, string> = {}): Promise<SseClient> {
  return openSse(`${gw.url}/events${query}`, { headers });
}

/** A TCP proxy in front of Redis that can be cut (every connection dropped, new ones refused) and restored. */
async function tcpProxy(port: number): Promise<{ url: string; cut(): void; restore(): void }> {
  const sockets = new Set<Socket>();
  let down = false;
  const server: Server = createServer((client) => {
    if (down) return void client.destroy();
    const upstream = connect(port, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onCleanup(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });
  return {
    url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cut() {
      down = true;
      for (const s of sockets) s.destroy();
    },
    restore() {
      down = false;
    },
  };
}

async function readyz(gw: TestGateway): Promise<number> {
  return (await http(`${gw.url}/readyz`)).status;
}

describe('redis broker: two gateways, one Redis', () => {
  it('a subscriber on B gets what was published on A, in order, with cursors; both share the epoch', async () => {
    const redis = await startRedis();
    const a = await startTestGateway({ broker: redis.url });
    const b = await startTestGateway({ broker: redis.url });
    expect(b.epoch).toBe(a.epoch);
    const onB = await subscribe(b, '?user=alice');
    expect((await onB.next('init')).json.cursor).toBe(b.cursor(0, 0));
    const onA = await subscribe(a, '?user=alice');
    await onA.next('init');

    await publishEach(a.url, { user: 'alice' }, ['a1', 'a2']);
    await publishEach(a.url, { broadcast: true }, ['b1']);
    await publishEach(b.url, { user: 'alice' }, ['a3']);
    const batch = await http(`${a.url}/publish`, {
      body: [
        { user: 'alice', notification: note('a4') },
        { broadcast: true, notification: note('b2') },
      ],
    });
    expect(batch.status).toBe(202);
    // delivered counts the subscriptions on both instances: alice on A and on B, for each of the two events.
    expect(batch.body.delivered).toBe(4);

    for (const c of [onB, onA]) {
      const got = await c.waitFor(6, 'notification');
      expect(titles(got)).toEqual(['a1', 'a2', 'b1', 'a3', 'a4', 'b2']);
      expect(got.map((e) => e.id)).toEqual([a.cursor(1, 0), a.cursor(2, 0), a.cursor(2, 1), a.cursor(3, 1), a.cursor(4, 1), a.cursor(4, 2)]);
    }
    expect(await readyz(a)).toBe(200);
  });

  it('concurrent publishes on both instances reach subscribers of both in seq order, none lost or doubled', async () => {
    const redis = await startRedis();
    const a = await startTestGateway({ broker: redis.url });
    const b = await startTestGateway({ broker: redis.url });
    const subs = await Promise.all([subscribe(a, '?user=c'), subscribe(b, '?user=c'), subscribe(b, '')]);
    for (const c of subs) await c.next('init');
    const n = 120;
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        http(`${(i % 2 ? a : b).url}/publish`, { body: i % 3 ? { user: 'c', notification: note(`u${i}`) } : { broadcast: true, notification: note(`b${i}`) } }),
      ),
    );
    const broadcasts = Math.ceil(n / 3);
    for (const [k, c] of subs.entries()) {
      const want = k === 2 ? broadcasts : n;
      const got = await c.waitFor(want, 'notification', { timeoutMs: 5000 });
      // Every event moves exactly one stream's seq on by exactly one: in order, no gap, no duplicate.
      let prev = [0, 0];
      for (const e of got) {
        const [, u, bc] = e.id!.split('.').map(Number) as [number, number, number];
        const isUser = e.json.userId === 'c';
        expect([u, bc], e.id).toEqual(isUser ? [prev[0]! + 1, prev[1]] : [prev[0], prev[1]! + 1]);
        prev = [u, bc];
      }
      expect(prev).toEqual(k === 2 ? [0, broadcasts] : [n - broadcasts, broadcasts]);
    }
  });

  it('a cursor issued by A resumes on B with exactly the missed events, then live', async () => {
    const redis = await startRedis();
    const a = await startTestGateway({ broker: redis.url });
    const b = await startTestGateway({ broker: redis.url });
    const first = await subscribe(a, '?user=u1');
    await first.next('init');
    await publishEach(a.url, { user: 'u1' }, ['a1']);
    await publishEach(b.url, { broadcast: true }, ['b1']);
    await first.waitFor(2, 'notification');
    const cursor = first.lastId!;
    expect(cursor).toBe(a.cursor(1, 1));
    await first.close();

    await publishEach(a.url, { user: 'u1' }, ['a2']);
    await publishEach(b.url, { broadcast: true }, ['b2']);
    await publishEach(a.url, { user: 'other' }, ['x1']);
    await publishEach(b.url, { user: 'u1' }, ['a3']);

    const again = await subscribe(b, '?user=u1', { 'Last-Event-ID': cursor });
    const missed = await again.waitFor(3, 'notification');
    expect(titles(missed)).toEqual(['a2', 'b2', 'a3']);
    expect(missed.map((e) => e.id)).toEqual([b.cursor(2, 1), b.cursor(2, 2), b.cursor(3, 2)]);
    await publishEach(a.url, { user: 'u1' }, ['live']);
    const live = await again.next('notification');
    expect(live.json.title).toBe('live');
    expect(live.id).toBe(b.cursor(4, 2));

    // Read receipts find a notification published on the other instance.
    const [id] = await publishEach(b.url, { user: 'u1' }, ['to read']);
    await again.next('notification');
    expect((await http(`${a.url}/notifications/${id}/read?user=u1`, { method: 'POST' })).status).toBeLessThan(300);
    expect((await http(`${a.url}/notifications/nope/read?user=u1`, { method: 'POST' })).status).toBe(404);
  });

  it('the history is trimmed at --history: a replay from beyond the window gets reset (window), inside it replays', async () => {
    const redis = await startRedis();
    const a = await startTestGateway({ broker: redis.url, history: '3' });
    const b = await startTestGateway({ broker: redis.url, history: '3' });
    const first = await subscribe(a, '?user=w');
    const cursor = (await first.next('init')).json.cursor as string;
    await first.close();
    await publishEach(
      a.url,
      { user: 'w' },
      Array.from({ length: 10 }, (_, i) => `w${i + 1}`),
    );

    const c = await subscribe(b, '?user=w', { 'Last-Event-ID': cursor });
    expect((await c.next('reset')).json).toEqual({ reason: 'window', cursor });
    const init = await c.next('init');
    expect(init.json.cursor).toBe(b.cursor(10, 0));
    expect(init.json.unread.map((n: any) => n.title)).toEqual(['w10', 'w9', 'w8']);

    const inside = await subscribe(b, '?user=w', { 'Last-Event-ID': b.cursor(7, 0) });
    expect(titles(await inside.waitFor(3, 'notification'))).toEqual(['w8', 'w9', 'w10']);
  });

  it('a restarted gateway loses nothing: the history and the epoch are in Redis', async () => {
    const redis = await startRedis();
    const a = await startTestGateway({ broker: redis.url });
    const c = await subscribe(a, '?user=r');
    await c.next('init');
    await publishEach(a.url, { user: 'r' }, ['r1']);
    const cursor = (await c.next('notification')).id!;
    await c.close();
    await publishEach(a.url, { user: 'r' }, ['r2', 'r3']);
    await a.shutdown();

    const a2 = await startTestGateway({ broker: redis.url });
    expect(a2.epoch).toBe(a.epoch);
    const again = await subscribe(a2, '?user=r', { 'Last-Event-ID': cursor });
    const missed = await again.waitFor(2, 'notification');
    expect(titles(missed)).toEqual(['r2', 'r3']);
    expect(missed.map((e) => e.id)).toEqual([a2.cursor(2, 0), a2.cursor(3, 0)]);
    const [id] = await publishEach(a2.url, { user: 'r' }, ['r4']);
    expect((await again.next('notification')).json.id).toBe(id);
  });

  it('bad input never crashes it: garbage on the live channel and in a stream is skipped', async () => {
    const redis = await startRedis();
    const a = await startTestGateway({ broker: redis.url });
    const c = await subscribe(a, '?user=g');
    await c.next('init');
    const { Redis } = await import('ioredis');
    const raw = new Redis(redis.url);
    onCleanup(() => raw.disconnect());
    for (const text of ['not json', '{"e":1}', `{"e":"${a.epoch}","v":[null,{"s":1},{"s":"user:g","q":"x","j":"{"}]}`]) await raw.publish('notify:live', text);
    await raw.set('notify:seq:user:h', '2');
    await raw.xadd('notify:stream:user:h', '1-0', 'j', '{broken');
    await raw.xadd('notify:stream:user:h', '2-0', 't', 'x');
    await publishEach(a.url, { user: 'g' }, ['fine']);
    expect((await c.next('notification')).json.title).toBe('fine');
    const list = await http(`${a.url}/notifications?user=h`);
    expect(list.status).toBe(200);
    expect(list.body.notifications).toEqual([]);
    // Entries that cannot be read are events the history cannot serve: said so, never skipped silently.
    const replay = await subscribe(a, '?user=h', { 'Last-Event-ID': a.cursor(0, 0) });
    expect((await replay.next('reset')).json.reason).toBe('window');
    expect((await replay.next('init')).json.cursor).toBe(a.cursor(2, 0));
    await publishEach(a.url, { user: 'h' }, ['h3']);
    expect((await replay.next('notification')).json.title).toBe('h3');
  });
});

describe('redis broker: outages', () => {
  it('Redis unreachable: publish 503 (not 202), /readyz 503, SSE kept; back: the gap is filled from history in order', async () => {
    const redis = await startRedis();
    const proxy = await tcpProxy(redis.port);
    const a = await startTestGateway({ broker: proxy.url, heartbeat: '100ms' });
    const b = await startTestGateway({ broker: redis.url });
    const onA = await subscribe(a, '?user=o');
    await onA.next('init');
    const onB = await subscribe(b, '?user=o');
    await onB.next('init');
    await publishEach(b.url, { user: 'o' }, ['before']);
    expect((await onA.next('notification')).json.title).toBe('before');

    proxy.cut();
    const refused = await http(`${a.url}/publish`, { body: { user: 'o', notification: note('during') } });
    expectError(refused, 503, 'E_BROKER_UNAVAILABLE');
    expect(await readyz(a)).toBe(503);
    // Published elsewhere while A is cut off: A's subscriber must get these once A is back.
    await publishEach(b.url, { user: 'o' }, ['gap1', 'gap2']);
    await publishEach(b.url, { broadcast: true }, ['gap3']);
    onA.comments.length = 0;
    await onA.waitComment('hb');
    expect(onA.closed).toBe(false);

    proxy.restore();
    const filled = await onA.waitFor(3, 'notification', { timeoutMs: 5000 });
    expect(titles(filled)).toEqual(['gap1', 'gap2', 'gap3']);
    expect(filled.map((e) => e.id)).toEqual([a.cursor(2, 0), a.cursor(3, 0), a.cursor(3, 1)]);
    for (let i = 0; (await readyz(a)) !== 200; i++) if (i > 200) throw new Error('A never became ready again');
    await publishEach(a.url, { user: 'o' }, ['after']);
    expect((await onA.next('notification')).json.title).toBe('after');
    expect(titles(await onB.waitFor(5, 'notification'))).toEqual(['before', 'gap1', 'gap2', 'gap3', 'after']);
  });

  it('a gap longer than the window: the live subscriber is told to come back, and its cursor gets reset (window)', async () => {
    const redis = await startRedis();
    const proxy = await tcpProxy(redis.port);
    const a = await startTestGateway({ broker: proxy.url, history: '2' });
    const b = await startTestGateway({ broker: redis.url, history: '2' });
    const onA = await subscribe(a, '?user=o');
    await onA.next('init');
    const other = await subscribe(a, '?user=quiet');
    await other.next('init');
    await publishEach(b.url, { user: 'o' }, ['o1']);
    const cursor = (await onA.next('notification')).id!;

    proxy.cut();
    await publishEach(b.url, { user: 'o' }, ['o2', 'o3', 'o4', 'o5']);
    proxy.restore();
    // Exactly the affected subscriber is sent away (with a retry); the other stays.
    await onA.waitClosed({ timeoutMs: 5000 });
    const again = await subscribe(a, '?user=o', { 'Last-Event-ID': cursor });
    expect((await again.next('reset')).json).toEqual({ reason: 'window', cursor });
    const init = await again.next('init');
    expect(init.json.cursor).toBe(a.cursor(5, 0));
    expect(init.json.unread.map((n: any) => n.title)).toEqual(['o5', 'o4']);
    expect(other.closed).toBe(false);
    await publishEach(a.url, { user: 'quiet' }, ['q1']);
    expect((await other.next('notification')).json.title).toBe('q1');
  });

  it('Redis restarted without its data: publishes during the outage get 503, then subscribers get reset (epoch) and live events again', async () => {
    const redis = await startRedis();
    const a = await startTestGateway({ broker: redis.url, heartbeat: '100ms' });
    const b = await startTestGateway({ broker: redis.url });
    const onA = await subscribe(a, '?user=e');
    await onA.next('init');
    const onB = await subscribe(b, '?user=e');
    await onB.next('init');
    await publishEach(a.url, { user: 'e' }, ['e1']);
    const cursorA = (await onA.next('notification')).id!;
    const cursorB = (await onB.next('notification')).id!;

    await redis.process.stop();
    for (const gw of [a, b]) expectError(await http(`${gw.url}/publish`, { body: { user: 'e', notification: note('lost') } }), 503, 'E_BROKER_UNAVAILABLE');
    onA.comments.length = 0;
    await onA.waitComment('hb');
    expect(onA.closed).toBe(false);
    expect(onB.closed).toBe(false);

    await startRedis(redis.port);
    // The history is gone: each instance finds a new epoch and tells its subscribers to come back by cursor.
    await onA.waitClosed({ timeoutMs: 8000 });
    await onB.waitClosed({ timeoutMs: 8000 });
    const epoch = a.broker.epoch();
    expect(epoch).not.toBe(a.epoch);
    await until(() => b.broker.epoch() === epoch, 'B to see the new epoch', 5000);

    const againA = await subscribe(a, '?user=e', { 'Last-Event-ID': cursorA });
    expect((await againA.next('reset')).json).toEqual({ reason: 'epoch', cursor: cursorA });
    expect((await againA.next('init')).json.cursor).toBe(`${epoch}.0.0`);
    const againB = await subscribe(b, '?user=e', { 'Last-Event-ID': cursorB });
    expect((await againB.next('reset')).json.reason).toBe('epoch');
    await againB.next('init');

    await publishEach(a.url, { user: 'e' }, ['new1']);
    for (const c of [againA, againB]) {
      const ev = await c.next('notification');
      expect(ev.json.title).toBe('new1');
      expect(ev.id).toBe(`${epoch}.1.0`);
    }
  });

  it('a gateway shuts down promptly while Redis is away', async () => {
    const redis = await startRedis();
    const a = await startTestGateway({ broker: redis.url });
    const c = await subscribe(a, '?user=s');
    await c.next('init');
    await redis.process.stop();
    for (let i = 0; (await readyz(a)) !== 503; i++) if (i > 200) throw new Error('/readyz never said not ready');
    const started = Date.now();
    await a.shutdown();
    expect(Date.now() - started).toBeLessThan(2500);
    await c.waitClosed();
  });

  it('a gateway whose Redis is unreachable at start fails with a message naming the broker', async () => {
    const redis = await startRedis();
    const url = redis.url;
    await redis.process.stop();
    await expect(startTestGateway({ broker: url })).rejects.toThrow(/cannot reach the broker at redis:\/\/127\.0\.0\.1/);
  });
});
