/**
 * Bad input against one long-lived gateway: every refusal is `{error: {code, message}}` with the right status, and
 * after each one the server keeps serving and has lost nothing it accepted before (a watching subscriber gets the
 * next event and nothing from the bad request; the history still lists every accepted event). Also the publish key.
 */
import { request } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { expectError, http, note, publishEach, publishOk, type HttpResult } from './helpers/http.js';
import { runCleanup } from './helpers/lifecycle.js';
import { poll } from './helpers/poll.js';
import { refused, type Refused } from './helpers/refusal.js';
import { openSse, type SseClient } from './helpers/sse-client.js';
import { openWs } from './helpers/ws-client.js';

function expectRefusal(r: Refused, status: number, code: string): string {
  expect(r.status, r.text).toBe(status);
  expect(r.body).toEqual({ error: { code, message: expect.any(String) } });
  return r.body.error.message as string;
}

/** POST with a chunked body (no Content-Length), so the size limit has to be enforced while reading. */
function postChunked(url: string, chunks: Buffer[]): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' } });
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: new Headers(res.headers as Record<string, string>), text, body: JSON.parse(text) }));
    });
    for (const c of chunks) req.write(c);
    req.end();
  });
}

describe('bad input', () => {
  let gw: TestGateway;
  let watcher: SseClient;
  /** Ids accepted so far for the watcher's streams, in publish order. */
  const accepted: string[] = [];
  let markers = 0;

  beforeAll(async () => {
    gw = await startTestGateway();
    watcher = await openSse(`${gw.url}/events?user=w`);
    await watcher.next('init');
    accepted.push(...(await publishEach(gw.url, { user: 'w' }, ['before'])));
    accepted.push(...(await publishEach(gw.url, { broadcast: true }, ['before, to all'])));
    await watcher.waitFor(2, 'notification');
  });
  afterAll(runCleanup);

  /** The server still serves, the bad request delivered nothing, and nothing accepted before is gone. */
  afterEach(async () => {
    const [id] = await publishOk(gw.url, { user: 'w' }, note(`marker ${++markers}`));
    accepted.push(id!);
    const ev = await watcher.next('notification');
    expect(ev.json.id).toBe(id);
    const list = await http(`${gw.url}/notifications?user=w`);
    expect(list.status).toBe(200);
    expect(list.body.notifications.map((n: any) => n.id).reverse()).toEqual(accepted);
    expect((await http(`${gw.url}/healthz`)).status).toBe(200);
  });

  const publish = (body: unknown) => http(`${gw.url}/publish`, { body });
  const valid = { type: 'comment', title: 'ok' };

  describe('POST /publish', () => {
    it('malformed JSON -> 400 E_JSON', async () => {
      const msg = expectError(await publish('{"user": "w", "notification": {'), 400, 'E_JSON');
      expect(msg).toMatch(/not valid JSON/);
    });

    it('a JSON value that is not a request -> 400 E_INVALID', async () => {
      expectError(await publish('"just a string"'), 400, 'E_INVALID');
      expectError(await publish('null'), 400, 'E_INVALID');
    });

    it.each([
      ['title is a number', { user: 'w', notification: { type: 'comment', title: 42 } }, 'notification.title'],
      ['body is an object', { user: 'w', notification: { type: 'comment', title: 't', body: {} } }, 'notification.body'],
      ['data is a string', { user: 'w', notification: { type: 'comment', title: 't', data: 'x' } }, 'notification.data'],
      ['user is an object', { user: { id: 'w' }, notification: valid }, 'user'],
      ['users is a string', { users: 'w', notification: valid }, 'users'],
      ['broadcast is "yes"', { broadcast: 'yes', notification: valid }, 'broadcast'],
      ['createdAt is not a date', { user: 'w', notification: { ...valid, createdAt: 'yesterday' } }, 'notification.createdAt'],
      ['an unknown field', { user: 'w', notification: { ...valid, priority: 'high' } }, 'notification'],
    ])('wrong field type (%s) -> 400 E_INVALID naming the field', async (_what, body, field) => {
      const msg = expectError(await publish(body), 400, 'E_INVALID');
      expect(msg.startsWith(`${field}:`), msg).toBe(true);
    });

    it('unknown notification type -> 400 naming notification.type', async () => {
      const msg = expectError(await publish({ user: 'w', notification: { type: 'spam', title: 't' } }), 400, 'E_INVALID');
      expect(msg).toMatch(/^notification\.type:/);
    });

    it('missing title -> 400 naming notification.title', async () => {
      expect(expectError(await publish({ user: 'w', notification: { type: 'comment' } }), 400, 'E_INVALID')).toMatch(/^notification\.title:/);
      expect(expectError(await publish({ user: 'w', notification: { type: 'comment', title: '' } }), 400, 'E_INVALID')).toMatch(/^notification\.title:/);
    });

    it('missing notification -> 400 naming notification', async () => {
      expect(expectError(await publish({ user: 'w' }), 400, 'E_INVALID')).toMatch(/^notification:/);
    });

    it('no target -> 400', async () => {
      expect(expectError(await publish({ notification: valid }), 400, 'E_INVALID')).toMatch(/no target/);
    });

    it('two targets -> 400', async () => {
      expect(expectError(await publish({ user: 'w', broadcast: true, notification: valid }), 400, 'E_INVALID')).toMatch(/only one/);
    });

    it('empty users list -> 400 naming users', async () => {
      expect(expectError(await publish({ users: [], notification: valid }), 400, 'E_INVALID')).toMatch(/^users:/);
    });

    it('a batch with one bad item -> 400 naming the item, and none of the batch is published', async () => {
      const msg = expectError(
        await publish([
          { user: 'w', notification: { ...valid, title: 'good one' } },
          { user: 'w', notification: { type: 'comment' } },
        ]),
        400,
        'E_INVALID',
      );
      expect(msg).toMatch(/^\[1\]\.notification\.title:/);
    });

    it('an empty batch -> 400', async () => {
      expect(expectError(await publish([]), 400, 'E_INVALID')).toMatch(/empty batch/);
    });

    it('body over the limit (64 KiB by default) -> 413 E_TOO_LARGE', async () => {
      const big = JSON.stringify({ user: 'w', notification: { ...valid, body: 'x'.repeat(64 * 1024) } });
      expect(Buffer.byteLength(big)).toBeGreaterThan(64 * 1024);
      const msg = expectError(await publish(big), 413, 'E_TOO_LARGE');
      expect(msg).toMatch(/limit is 65536/);
    });

    it('a chunked body (no Content-Length) over the limit -> 413 E_TOO_LARGE', async () => {
      const chunk = Buffer.alloc(16 * 1024, 'x');
      const r = await postChunked(`${gw.url}/publish`, [
        Buffer.from('{"user":"w","notification":{"type":"comment","title":"t","body":"'),
        chunk,
        chunk,
        chunk,
        chunk,
        chunk,
      ]);
      expectError(r, 413, 'E_TOO_LARGE');
    });

    it('a body just under the limit is accepted', async () => {
      const body = JSON.stringify({ user: 'w', notification: { ...valid, title: 'just fits', body: 'y'.repeat(60_000) } });
      expect(Buffer.byteLength(body)).toBeLessThan(64 * 1024);
      const r = await publish(body);
      expect(r.status, r.text).toBe(202);
      accepted.push(r.body.ids[0]);
      expect((await watcher.next('notification')).json.title).toBe('just fits');
    });
  });

  describe('subscribe endpoints', () => {
    it('invalid cursor -> 400 E_CURSOR on SSE (header and query), WS and poll', async () => {
      expectRefusal(await refused(openSse(`${gw.url}/events?user=w`, { headers: { 'Last-Event-ID': 'not-a-cursor' } })), 400, 'E_CURSOR');
      expectRefusal(await refused(openSse(`${gw.url}/events?user=w&lastEventId=a.b.c`)), 400, 'E_CURSOR');
      expectRefusal(await refused(openWs(`${gw.wsUrl}/ws?user=w&cursor=${gw.epoch}.1`)), 400, 'E_CURSOR');
      expectError(await poll(gw.url, { user: 'w', cursor: `${gw.epoch}.-1.0` }), 400, 'E_CURSOR');
    });

    it('invalid user -> 400 E_USER', async () => {
      expectRefusal(await refused(openSse(`${gw.url}/events?user=${encodeURIComponent('has space')}`)), 400, 'E_USER');
      expectError(await http(`${gw.url}/notifications`), 400, 'E_USER');
    });

    it('invalid poll timeout -> 400 E_TIMEOUT', async () => {
      expectError(await poll(gw.url, { user: 'w', cursor: gw.cursor(0, 0), query: { timeout: 'soon' } }), 400, 'E_TIMEOUT');
    });
  });

  describe('routing', () => {
    it('unknown route -> 404 JSON, for HTTP and for a WebSocket upgrade', async () => {
      expect(expectError(await http(`${gw.url}/nope`), 404, 'E_NOT_FOUND')).toMatch(/\/nope/);
      expectError(await http(`${gw.url}/publish/extra`, { body: {} }), 404, 'E_NOT_FOUND');
      expectRefusal(await refused(openWs(`${gw.wsUrl}/elsewhere`)), 404, 'E_NOT_FOUND');
    });

    it.each([
      ['GET', '/publish', 'POST'],
      ['POST', '/events', 'GET, HEAD'],
      ['DELETE', '/poll', 'GET, HEAD'],
      ['PUT', '/metrics', 'GET, HEAD'],
      ['GET', '/notifications/abc/read', 'POST'],
    ])('wrong method %s %s -> 405 with Allow: %s', async (method, path, allow) => {
      const r = await http(`${gw.url}${path}`, { method });
      expectError(r, 405, 'E_METHOD');
      expect(r.headers.get('allow')).toBe(allow);
    });

    it('GET /ws without an upgrade -> 426', async () => {
      expectError(await http(`${gw.url}/ws?user=w`), 426, 'E_UPGRADE');
    });
  });
});

describe('publish key', () => {
  it('401 without or with a wrong key, 202 with X-Publish-Key or a bearer key; only accepted events are delivered', async () => {
    const gw = await startTestGateway({ publishKey: 'k-secret-123' });
    const c = await openSse(`${gw.url}/events?user=u`); // subscribing needs no publish key
    await c.next('init');
    const body = { user: 'u', notification: note('keyed') };

    const missing = await http(`${gw.url}/publish`, { body });
    expect(expectError(missing, 401, 'E_PUBLISH_KEY')).toMatch(/missing/);
    expect(expectError(await http(`${gw.url}/publish`, { body, headers: { 'X-Publish-Key': 'k-secret-124' } }), 401, 'E_PUBLISH_KEY')).toMatch(/wrong/);
    expectError(await http(`${gw.url}/publish`, { body, headers: { 'X-Publish-Key': 'short' } }), 401, 'E_PUBLISH_KEY');
    expectError(await http(`${gw.url}/publish`, { body, headers: { Authorization: 'Bearer nope' } }), 401, 'E_PUBLISH_KEY');

    const ok = await http(`${gw.url}/publish`, { body, headers: { 'X-Publish-Key': 'k-secret-123' } });
    expect(ok.status).toBe(202);
    expect(ok.body).toEqual({ ids: [expect.any(String)], delivered: 1 });
    const ev = await c.next('notification');
    expect(ev.json.id).toBe(ok.body.ids[0]);

    const bearer = await http(`${gw.url}/publish`, { body: { ...body, notification: note('bearer') }, headers: { Authorization: 'Bearer k-secret-123' } });
    expect(bearer.status).toBe(202);
    expect((await c.next('notification')).json.id).toBe(bearer.body.ids[0]);

    const list = await http(`${gw.url}/notifications?user=u`);
    expect(list.body.notifications.map((n: any) => n.title)).toEqual(['bearer', 'keyed']);
  });

  it('202 {ids, delivered}: one id per event in request order, and the events are in the history when 202 arrives', async () => {
    const gw = await startTestGateway();
    const c1 = await openSse(`${gw.url}/events?user=a`);
    const c2 = await openWs(`${gw.wsUrl}/ws?user=b`);
    await c1.next('init');
    await c2.next('init');
    const r = await http(`${gw.url}/publish`, {
      body: [
        { users: ['a', 'b', 'c'], notification: note('fan') },
        { broadcast: true, notification: note('all') },
      ],
    });
    expect(r.status).toBe(202);
    expect(r.body.ids).toHaveLength(4);
    expect(new Set(r.body.ids).size).toBe(4);
    // a and b are online for their own event (2) and for the broadcast (2); c is not.
    expect(r.body.delivered).toBe(4);
    const [a, b, cc, all] = r.body.ids;
    expect((await http(`${gw.url}/notifications?user=c`)).body.notifications.map((n: any) => n.id)).toEqual([all, cc]);
    expect((await c1.waitFor(2, 'notification')).map((e) => e.json.id)).toEqual([a, all]);
    expect((await c2.waitFor(2, 'notification')).map((f) => f.notification.id)).toEqual([b, all]);
  });
});
