/**
 * `notify serve --broker nats://...`: two gateways in this process sharing one real nats-server with JetStream.
 * Live fan-out across instances, a cursor from one resuming on the other, concurrent publishes numbered without
 * gaps or twins, the history window, a stream recreated (epoch), and a NATS outage (503, then back).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, connect as tcpConnect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { connect } from 'nats';
import { freePort } from './helpers/child-server.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { expectError, http, note, publishEach, publishOk } from './helpers/http.js';
import { onCleanup, runCleanup, until } from './helpers/lifecycle.js';
import { restartableNats, startNats } from './helpers/nats.js';
import { openSse } from './helpers/sse-client.js';

afterEach(runCleanup);

const titles = (events: { json: any }[]) => events.map((e) => e.json.title);

async function twoGateways(raw: Record<string, string> = {}): Promise<{ a: TestGateway; b: TestGateway; natsUrl: string }> {
  const nats = await startNats({ jetstream: true });
  const a = await startTestGateway({ broker: nats.url, ...raw });
  const b = await startTestGateway({ broker: nats.url, ...raw });
  return { a, b, natsUrl: nats.url };
}

/** A TCP relay in front of NATS that can cut every connection through it and refuse new ones until restored. */
async function cuttableRelay(natsPort: number): Promise<{ url: string; cut(): void; restore(): void }> {
  const sockets = new Set<Socket>();
  let open = true;
  const server = createServer((client) => {
    if (!open) return void client.destroy();
    const upstream = tcpConnect(natsPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => s.destroy());
      s.on('close', () => sockets.delete(s));
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onCleanup(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    url: `nats://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cut() {
      open = false;
      for (const s of sockets) s.destroy();
    },
    restore() {
      open = true;
    },
  };
}

describe('nats broker: two gateways', () => {
  it('an SSE subscriber on B gets what was published on A, in order, with the same epoch', async () => {
    const { a, b } = await twoGateways();
    expect(b.epoch).toBe(a.epoch);
    expect(a.epoch).toMatch(/^[a-z0-9]+$/);
    const c = await openSse(`${b.url}/events?user=alice`);
    expect((await c.next('init')).id).toBe(b.cursor(0, 0));
    const ids = await publishEach(a.url, { user: 'alice' }, ['one', 'two', 'three']);
    await publishOk(a.url, { broadcast: true }, note('all', { type: 'system' }));
    const got = await c.waitFor(4, 'notification');
    expect(titles(got)).toEqual(['one', 'two', 'three', 'all']);
    expect(got.map((e) => e.id)).toEqual([b.cursor(1, 0), b.cursor(2, 0), b.cursor(3, 0), b.cursor(3, 1)]);
    expect(got.slice(0, 3).map((e) => e.json.id)).toEqual(ids);
  });

  it('a cursor issued by A resumes on B with exactly the missed events, then live', async () => {
    const { a, b } = await twoGateways();
    const onA = await openSse(`${a.url}/events?user=dot.ted`);
    await onA.next('init');
    await publishOk(a.url, { user: 'dot.ted' }, note('seen'));
    const seen = await onA.next('notification');
    await onA.close();
    await publishEach(a.url, { user: 'dot.ted' }, ['missed1', 'missed2']);
    await publishOk(b.url, { broadcast: true }, note('missed-b', { type: 'system' }));

    const onB = await openSse(`${b.url}/events?user=dot.ted`, { headers: { 'Last-Event-ID': seen.id! } });
    const replayed = await onB.waitFor(3, 'notification');
    expect(titles(replayed)).toEqual(['missed1', 'missed2', 'missed-b']);
    expect(replayed.map((e) => e.id)).toEqual([a.cursor(2, 0), a.cursor(3, 0), a.cursor(3, 1)]);
    await publishOk(a.url, { user: 'dot.ted' }, note('live'));
    const live = await onB.next('notification');
    expect(live.json.title).toBe('live');
    expect(live.id).toBe(a.cursor(4, 1));
    expect(onB.inbox.items.filter((e) => e.type === 'init' || e.type === 'reset')).toEqual([]);
  });

  it('concurrent publishes on A and B to one user get distinct, gapless seqs', async () => {
    const { a, b } = await twoGateways();
    const c = await openSse(`${b.url}/events?user=bob`);
    await c.next('init');
    const n = 25;
    const results = await Promise.all(
      Array.from({ length: 2 * n }, (_, i) =>
        http<{ ids: string[] }>(`${(i % 2 ? b : a).url}/publish`, { body: { user: 'bob', notification: note(`p${i}`) } }),
      ),
    );
    for (const r of results) expect(r.status, r.text).toBe(202);
    const ids = results.flatMap((r) => r.body.ids);
    expect(new Set(ids).size).toBe(2 * n);

    const read = await a.broker.readAfter('user:bob', 0);
    expect(read.complete).toBe(true);
    expect(read.lastSeq).toBe(2 * n);
    expect(read.events.map((e) => e.seq)).toEqual(Array.from({ length: 2 * n }, (_, i) => i + 1));
    expect(new Set(read.events.map((e) => e.notification.id))).toEqual(new Set(ids));

    const got = await c.waitFor(2 * n, 'notification');
    expect(got.map((e) => e.id)).toEqual(Array.from({ length: 2 * n }, (_, i) => b.cursor(i + 1, 0)));
  });

  it('history trimmed at --history: a cursor inside the window replays, one past it gets reset window', async () => {
    const { a, b } = await twoGateways({ history: '3' });
    await publishEach(a.url, { user: 'carol' }, ['1', '2', '3', '4', '5']);
    const inside = await openSse(`${b.url}/events?user=carol`, { headers: { 'Last-Event-ID': a.cursor(2, 0) } });
    expect(titles(await inside.waitFor(3, 'notification'))).toEqual(['3', '4', '5']);

    const past = await openSse(`${b.url}/events?user=carol`, { headers: { 'Last-Event-ID': a.cursor(1, 0) } });
    const reset = await past.next('reset');
    expect(reset.json).toEqual({ reason: 'window', cursor: a.cursor(1, 0) });
    const init = await past.next('init');
    expect(init.json.cursor).toBe(a.cursor(5, 0));
    expect(init.json.unread.map((n: { title: string }) => n.title)).toEqual(['5', '4', '3']);

    const ahead = await openSse(`${b.url}/events?user=carol`, { headers: { 'Last-Event-ID': a.cursor(9, 0) } });
    expect((await ahead.next('reset')).json.reason).toBe('ahead');

    // The window moves on: what B read before is not served past it.
    await publishEach(a.url, { user: 'carol' }, ['6', '7']);
    const later = await openSse(`${b.url}/events?user=carol`, { headers: { 'Last-Event-ID': a.cursor(4, 0) } });
    expect(titles(await later.waitFor(3, 'notification'))).toEqual(['5', '6', '7']);
    const gone = await openSse(`${b.url}/events?user=carol`, { headers: { 'Last-Event-ID': a.cursor(3, 0) } });
    expect((await gone.next('reset')).json.reason).toBe('window');
  });

  it('a read on A reaches the same notification through B (find by id across instances)', async () => {
    const { a, b } = await twoGateways();
    const [first, second] = await publishEach(a.url, { user: 'dave' }, ['x', 'y']);
    for (const id of [first!, second!]) {
      const r = await http(`${b.url}/notifications/${encodeURIComponent(id)}/read?user=dave`, { method: 'POST' });
      expect(r.status, r.text).toBe(200);
      expect(r.body.id).toBe(id);
    }
    const other = await http(`${b.url}/notifications/${encodeURIComponent(first!)}/read?user=erin`, { method: 'POST' });
    expectError(other, 403, 'E_FORBIDDEN');
    expectError(await http(`${b.url}/notifications/nope-1-zz/read?user=dave`, { method: 'POST' }), 404, 'E_NOT_FOUND');
  });

  it('the stream deleted and recreated is a new epoch: an old cursor gets reset epoch', async () => {
    const { a, b, natsUrl } = await twoGateways();
    await publishOk(a.url, { user: 'fred' }, note('before'));
    const old = a.cursor(1, 0);
    const nc = await connect({ servers: natsUrl, reconnect: false });
    onCleanup(() => nc.close());
    await (await nc.jetstreamManager()).streams.delete('NOTIFY');
    await until(() => a.broker.epoch() !== a.epoch && b.broker.epoch() === a.broker.epoch(), 'both gateways to see the new epoch', 8000);
    const c = await openSse(`${b.url}/events?user=fred`, { headers: { 'Last-Event-ID': old } });
    expect((await c.next('reset')).json).toEqual({ reason: 'epoch', cursor: old });
    expect((await c.next('init')).json.cursor).toBe(`${b.broker.epoch()}.0.0`);
    await publishOk(a.url, { user: 'fred' }, note('after'));
    const ev = await c.next('notification');
    expect(ev.json.title).toBe('after');
    expect(ev.id).toBe(`${b.broker.epoch()}.1.0`);
  });
});

describe('nats broker: outage', () => {
  it('NATS down: publish answers 503 and connections stay; NATS back: a publish reaches the subscriber', async () => {
    const nats = await restartableNats();
    const gw = await startTestGateway({ broker: nats.url });
    const c = await openSse(`${gw.url}/events?user=gina`);
    await c.next('init');
    await publishOk(gw.url, { user: 'gina' }, note('before'));
    expect((await c.next('notification')).id).toBe(gw.cursor(1, 0));

    await nats.stop();
    const down = await http(`${gw.url}/publish`, { body: { user: 'gina', notification: note('during') } });
    expectError(down, 503, 'E_BROKER_UNAVAILABLE');
    expect(down.headers.get('retry-after')).toBe('2');
    expect(c.closed).toBe(false);

    await nats.start();
    const deadline = Date.now() + 10_000;
    let r = await http(`${gw.url}/publish`, { body: { user: 'gina', notification: note('after') } });
    while (r.status === 503 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      r = await http(`${gw.url}/publish`, { body: { user: 'gina', notification: note('after') } });
    }
    expect(r.status, r.text).toBe(202);
    const after = await c.next('notification', { timeoutMs: 10_000 });
    expect(after.json.title).toBe('after');
    expect(after.id).toBe(gw.cursor(2, 0));
    expect(gw.broker.epoch()).toBe(gw.epoch);
  }, 30_000);

  it('a gateway cut off from NATS fills the gap of its live subscribers from history once it is back', async () => {
    const nats = await startNats({ jetstream: true });
    const relay = await cuttableRelay(nats.port);
    const a = await startTestGateway({ broker: relay.url });
    const b = await startTestGateway({ broker: nats.url });
    const c = await openSse(`${a.url}/events?user=hal`);
    await c.next('init');
    await publishOk(b.url, { user: 'hal' }, note('before'));
    expect((await c.next('notification')).id).toBe(a.cursor(1, 0));

    relay.cut();
    expectError(await http(`${a.url}/publish`, { body: { user: 'hal', notification: note('refused') } }), 503, 'E_BROKER_UNAVAILABLE');
    await publishEach(b.url, { user: 'hal' }, ['gap1', 'gap2']);
    await publishOk(b.url, { broadcast: true }, note('gap-b', { type: 'system' }));
    expect(c.closed).toBe(false);

    relay.restore();
    const filled = await c.waitFor(3, 'notification', { timeoutMs: 10_000 });
    expect(titles(filled)).toEqual(['gap1', 'gap2', 'gap-b']);
    expect(filled.map((e) => e.id)).toEqual([a.cursor(2, 0), a.cursor(3, 0), a.cursor(3, 1)]);
  }, 30_000);

  it('a gateway pointed at no NATS fails to start with a message naming --broker', async () => {
    const port = await freePort();
    await expect(startTestGateway({ broker: `nats://127.0.0.1:${port}` })).rejects.toThrow(/--broker/);
  });
});
