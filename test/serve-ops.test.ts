/**
 * Operations of `notify serve`: Prometheus metrics after a known scenario, health and readiness, --max-conns,
 * --transports, graceful shutdown in-process, and the built binary: SIGTERM drains and exits 0, a refused start
 * exits 2.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway } from './helpers/gateway.js';
import { ensureBuilt, exitWithin, runNotify } from './helpers/cli.js';
import { expectError, http, metricValue, note, publishEach, publishOk, scrape, waitMetric } from './helpers/http.js';
import { runCleanup, until } from './helpers/lifecycle.js';
import { poll } from './helpers/poll.js';
import { refused, type Refused } from './helpers/refusal.js';
import { openSse } from './helpers/sse-client.js';
import { openWs } from './helpers/ws-client.js';

afterEach(runCleanup);

function expectRefusal(r: Refused, status: number, code: string): void {
  expect(r.status, r.text).toBe(status);
  expect(r.body).toEqual({ error: { code, message: expect.any(String) } });
}

describe('metrics', () => {
  it('/metrics counts connections, published and delivered events by transport after a known scenario', async () => {
    const gw = await startTestGateway();
    const before = await scrape(gw.url);
    for (const t of ['sse', 'ws', 'poll']) expect(metricValue(before, 'notify_connections', { transport: t })).toBe(0);

    const sseA = await openSse(`${gw.url}/events?user=a`);
    const sseB = await openSse(`${gw.url}/events?user=b`);
    const sseAnon = await openSse(`${gw.url}/events`);
    const wsA = await openWs(`${gw.wsUrl}/ws?user=a`);
    for (const c of [sseA, sseB, sseAnon]) await c.next('init');
    await wsA.next('init');
    const { cursor } = (await poll(gw.url, { user: 'a' })).body;
    const held = poll(gw.url, { user: 'a', cursor, timeout: 10 });
    await until(() => gw.hub.openByTransport().poll === 1, 'the held poll');

    const during = await scrape(gw.url);
    expect(metricValue(during, 'notify_connections', { transport: 'sse' })).toBe(3);
    expect(metricValue(during, 'notify_connections', { transport: 'ws' })).toBe(1);
    expect(metricValue(during, 'notify_connections', { transport: 'poll' })).toBe(1);
    expect((await http(`${gw.url}/readyz`)).body).toEqual({ status: 'ready', connections: 5 });

    const delivered: number[] = [];
    const pub = async (target: object, title: string) => {
      const r = await http(`${gw.url}/publish`, { body: { ...target, notification: note(title) } });
      expect(r.status).toBe(202);
      delivered.push(r.body.delivered);
    };
    await pub({ user: 'a' }, 'a1'); // sse a, ws a, held poll a
    expect((await held).body.notifications.map((n) => n.title)).toEqual(['a1']);
    await pub({ user: 'a' }, 'a2'); // sse a, ws a
    await pub({ user: 'b' }, 'b1'); // sse b
    await pub({ broadcast: true }, 'all'); // 3 sse, 1 ws
    expect(delivered).toEqual([3, 2, 1, 4]);
    expect((await sseA.waitFor(3, 'notification')).map((e) => e.json.title)).toEqual(['a1', 'a2', 'all']);
    expect((await wsA.waitFor(3, 'notification')).map((f) => f.notification.title)).toEqual(['a1', 'a2', 'all']);
    await sseB.waitFor(2, 'notification');
    await sseAnon.waitFor(1, 'notification');

    // One resume (replayed 1), one reset, one bad request.
    await sseB.close();
    await until(() => gw.hub.openByTransport().sse === 2, 'the server to drop the closed SSE');
    await publishEach(gw.url, { user: 'b' }, ['b2']);
    const resumed = await openSse(`${gw.url}/events?user=b`, { headers: { 'Last-Event-ID': sseB.lastId! } });
    expect((await resumed.next('notification')).json.title).toBe('b2');
    const reset = await openSse(`${gw.url}/events?user=c`, { headers: { 'Last-Event-ID': 'elsewhere.1.1' } });
    await reset.next('reset');
    expectError(await http(`${gw.url}/publish`, { body: '{' }), 400, 'E_JSON');

    const m = await scrape(gw.url);
    expect(metricValue(m, 'notify_connections', { transport: 'sse' })).toBe(4);
    expect(metricValue(m, 'notify_connections', { transport: 'ws' })).toBe(1);
    expect(metricValue(m, 'notify_connections', { transport: 'poll' })).toBe(0);
    expect(metricValue(m, 'notify_published_total', { stream: 'user' })).toBe(4);
    expect(metricValue(m, 'notify_published_total', { stream: 'broadcast' })).toBe(1);
    expect(metricValue(m, 'notify_delivered_total', { transport: 'sse' })).toBe(6);
    expect(metricValue(m, 'notify_delivered_total', { transport: 'ws' })).toBe(3);
    expect(metricValue(m, 'notify_delivered_total', { transport: 'poll' })).toBe(1);
    expect(metricValue(m, 'notify_connections_opened_total', { transport: 'sse' })).toBe(5);
    expect(metricValue(m, 'notify_connections_opened_total', { transport: 'poll' })).toBe(2);
    expect(metricValue(m, 'notify_replayed_total', { transport: 'sse' })).toBe(1);
    expect(metricValue(m, 'notify_resets_total', { reason: 'epoch' })).toBe(1);
    expect(metricValue(m, 'notify_http_errors_total', { code: 'E_JSON' })).toBe(1);
    expect(m).toMatch(/^# TYPE notify_publish_to_write_seconds histogram$/m);
    expect(metricValue(m, 'notify_publish_to_write_seconds_count')).toBe(4); // b2 reached no live connection
  });

  it('/healthz and /readyz answer 200 while serving', async () => {
    const gw = await startTestGateway();
    const h = await http(`${gw.url}/healthz`);
    expect(h.status).toBe(200);
    expect(h.body).toEqual({ status: 'ok' });
    const r = await http(`${gw.url}/readyz`);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ status: 'ready', connections: 0 });
  });
});

describe('--max-conns and --transports', () => {
  it('past --max-conns subscribe requests get 503 with Retry-After on every transport, until a slot frees', async () => {
    const gw = await startTestGateway({ maxConns: '2' });
    const a = await openSse(`${gw.url}/events?user=a`);
    const b = await openWs(`${gw.wsUrl}/ws?user=b`);
    await a.next('init');
    await b.next('init');

    const sse = await refused(openSse(`${gw.url}/events?user=c`));
    expectRefusal(sse, 503, 'E_MAX_CONNS');
    expect(sse.headers['retry-after']).toBe('5');
    const ws = await refused(openWs(`${gw.wsUrl}/ws?user=c`));
    expectRefusal(ws, 503, 'E_MAX_CONNS');
    expect(ws.headers['retry-after']).toBe('5');
    const p = await poll(gw.url, { user: 'c' });
    expectError(p, 503, 'E_MAX_CONNS');
    expect(p.headers.get('retry-after')).toBe('5');
    expect(metricValue(await scrape(gw.url), 'notify_connections_rejected_total', { reason: 'max_conns' })).toBe(3);

    // The ones inside the limit keep working, and a freed slot is usable again.
    await publishEach(gw.url, { broadcast: true }, ['still on']);
    expect((await a.next('notification')).json.title).toBe('still on');
    expect((await b.next('notification')).notification.title).toBe('still on');
    await a.close();
    await until(() => gw.hub.size === 1, 'the closed SSE to leave the hub');
    const c = await openSse(`${gw.url}/events?user=c`);
    expect((await c.next('init')).json.cursor).toBe(gw.cursor(0, 1));
  });

  it('a transport left out of --transports answers 404', async () => {
    const gw = await startTestGateway({ transports: 'sse' });
    expectRefusal(await refused(openWs(`${gw.wsUrl}/ws?user=a`)), 404, 'E_TRANSPORT_DISABLED');
    expectError(await poll(gw.url, { user: 'a' }), 404, 'E_TRANSPORT_DISABLED');
    const c = await openSse(`${gw.url}/events?user=a`);
    await c.next('init');
  });
});

describe('graceful shutdown (in-process)', () => {
  it('SSE gets a jittered retry:, WS is closed 1012, a held poll is answered with no notifications; then nothing is accepted', async () => {
    const gw = await startTestGateway({ retry: '1s' });
    const sse = await openSse(`${gw.url}/events?user=a`);
    const ws = await openWs(`${gw.wsUrl}/ws?user=a`);
    await sse.next('init');
    await ws.next('init');
    expect(await sse.waitRetry(1)).toBe(1000);
    const { cursor } = (await poll(gw.url, { user: 'a' })).body;
    const held = poll(gw.url, { user: 'a', cursor, timeout: 30 });
    await until(() => gw.hub.openByTransport().poll === 1, 'the held poll');

    const t0 = Date.now();
    await gw.shutdown();
    expect(Date.now() - t0).toBeLessThan(gw.config.shutdownGraceMs + 500);

    const retry = await sse.waitRetry(2);
    expect(retry).toBeGreaterThanOrEqual(1000);
    expect(retry).toBeLessThanOrEqual(3000);
    await sse.waitClosed();
    expect(await ws.waitClose()).toEqual({ code: 1012, reason: 'server restarting; resume with your cursor' });
    const answered = await held;
    expect(answered.status).toBe(200);
    expect(answered.body).toEqual({ cursor, notifications: [] });
    expect(gw.hub.size).toBe(0);
    await expect(fetch(`${gw.url}/healthz`)).rejects.toThrow();
  });
});

describe('the notify binary', () => {
  beforeAll(ensureBuilt, 120_000);

  it('serve --port 0 serves, and on SIGTERM tells clients to come back, drains and exits 0', async () => {
    const p = runNotify(['serve', '--port', '0', '--heartbeat', '200ms', '--retry', '500ms']);
    const base = (await p.waitStderr(/listening on (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
    const sse = await openSse(`${base}/events?user=a`);
    const ws = await openWs(`${base.replace('http', 'ws')}/ws?user=a`);
    await sse.next('init');
    await ws.next('init');
    await sse.waitComment('hb');
    const cursor0 = (await poll(base, { user: 'a' })).body.cursor;
    // A held poll the client gave up on: it must not keep the process alive after SIGTERM.
    const abort = new AbortController();
    const dropped = poll(base, { user: 'a', cursor: cursor0, timeout: 60, signal: abort.signal });
    await waitMetric(base, 'notify_connections', { transport: 'poll' }, 1);
    abort.abort();
    await expect(dropped).rejects.toThrow();
    await waitMetric(base, 'notify_connections', { transport: 'poll' }, 0);

    const [id] = await publishOk(base, { user: 'a' }, note('before stop'));
    expect((await sse.next('notification')).json.id).toBe(id);
    expect((await ws.next('notification')).notification.id).toBe(id);
    const { cursor } = (await poll(base, { user: 'a', cursor: cursor0, timeout: 5 })).body;
    expect(cursor).toBe(sse.lastId);
    const held = poll(base, { user: 'a', cursor, timeout: 60 });
    await waitMetric(base, 'notify_connections', { transport: 'poll' }, 1);

    p.child.kill('SIGTERM');
    const retry = await sse.waitRetry(2);
    expect(retry).toBeGreaterThanOrEqual(500);
    expect(retry).toBeLessThanOrEqual(1500);
    expect((await ws.waitClose()).code).toBe(1012);
    expect((await held).body).toEqual({ cursor, notifications: [] });
    expect(await exitWithin(p, 4000)).toBe(0);
    expect(p.stderr()).toMatch(/SIGTERM: draining/);
    expect(p.stdout()).toBe('');
  });

  it('refuses a non-loopback --host without auth: exit 2, stderr names the flags', async () => {
    const p = runNotify(['serve', '--host', '0.0.0.0', '--port', '0']);
    expect(await exitWithin(p, 10_000)).toBe(2);
    expect(p.stderr()).toMatch(/^notify: refusing to listen on 0\.0\.0\.0 \(not loopback\) without --auth jwt and --publish-key\n/);
    expect(p.stderr()).toMatch(/hint: .*--insecure/);
    expect(p.stdout()).toBe('');
  });

  it('a bad flag value exits 2 naming the flag and the value', async () => {
    const p = runNotify(['serve', '--port', '0', '--heartbeat', 'soon']);
    expect(await exitWithin(p, 10_000)).toBe(2);
    expect(p.stderr()).toContain('--heartbeat must be a duration like 15s, 500ms or 1m (got "soon")');
  });

  it('--insecure allows a non-loopback --host', async () => {
    const p = runNotify(['serve', '--host', '0.0.0.0', '--port', '0', '--insecure']);
    const [, port] = await p.waitStderr(/listening on http:\/\/0\.0\.0\.0:(\d+)/);
    const h = await http(`http://127.0.0.1:${port}/healthz`);
    expect(h.status).toBe(200);
    p.child.kill('SIGTERM');
    expect(await exitWithin(p, 4000)).toBe(0);
  });
});

describe('an address that cannot be listened on', () => {
  it('a port in use: exit 1 with a message naming the address and --port, no stack trace', async () => {
    const gw = await startTestGateway();
    const port = new URL(gw.url).port;
    const p = runNotify(['serve', '--port', port]);
    expect(await exitWithin(p, 10_000)).toBe(1);
    expect(p.stderr()).toContain(`notify: cannot listen on 127.0.0.1:${port}: the address is already in use`);
    expect(p.stderr()).toContain('--port');
    expect(p.stderr()).not.toMatch(/^\s+at /m);
  });
});
