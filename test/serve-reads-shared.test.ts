/**
 * Read state and `delivered` across gateway instances: two `notify serve` processes (the built binary) on one real
 * redis-server or nats-server. A user with a tab on each: a read on A reaches the tab on B (once, and only once on
 * A), both instances' unread snapshots agree, the first readAt wins wherever the second read lands, and `delivered`
 * counts the subscriptions on both instances. Then NATS going away and coming back: /readyz, 503, nothing lost.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'nats';
import { ensureBuilt, exitWithin, runNotify, type NotifyProcess } from './helpers/cli.js';
import { expectError, http, note, publishOk } from './helpers/http.js';
import { onCleanup, runCleanup } from './helpers/lifecycle.js';
import { restartableNats, startNats } from './helpers/nats.js';
import { restartableRedis, startRedis } from './helpers/redis.js';
import { openSse, type SseClient } from './helpers/sse-client.js';
import { tcpGate } from './helpers/tcp-gate.js';

beforeAll(ensureBuilt, 180_000);
afterEach(runCleanup);

/** A `notify serve` process on a free port; resolves with its base URL once it listens. */
async function serve(broker: string): Promise<string> {
  return (await serveProcess(broker)).url;
}

async function serveProcess(broker: string): Promise<{ url: string; process: NotifyProcess }> {
  const p = runNotify(['serve', '--port', '0', '--broker', broker, '--retry', '200ms']);
  return { url: (await p.waitStderr(/listening on (http:\/\/127\.0\.0\.1:\d+)/))[1]!, process: p };
}

async function tab(base: string, user: string): Promise<SseClient> {
  const c = await openSse(`${base}/events?user=${user}`);
  await c.next('init');
  return c;
}

async function publish(base: string, body: unknown): Promise<{ ids: string[]; delivered: number }> {
  const r = await http<{ ids: string[]; delivered: number }>(`${base}/publish`, { body });
  expect(r.status, r.text).toBe(202);
  return r.body;
}

async function markRead(base: string, user: string, id: string): Promise<string> {
  const r = await http<{ id: string; readAt: string }>(`${base}/notifications/${encodeURIComponent(id)}/read?user=${user}`, { method: 'POST' });
  expect(r.status, r.text).toBe(200);
  expect(r.body.id).toBe(id);
  return r.body.readAt;
}

async function unread(base: string, user: string): Promise<{ notifications: { id: string; readAt?: string }[]; unreadCount: number }> {
  const r = await http(`${base}/notifications?user=${user}&unread=1`);
  expect(r.status, r.text).toBe(200);
  return r.body;
}

const brokers: [string, () => Promise<string>][] = [
  ['redis', async () => (await startRedis()).url],
  ['nats', async () => (await startNats({ jetstream: true })).url],
];

describe.each(brokers)('%s broker: read state and delivered across two gateway processes', (_kind, startBroker) => {
  it('a read on A reaches the tab on B once, B’s unread snapshot agrees, the first readAt wins', async () => {
    const broker = await startBroker();
    const [a, b] = await Promise.all([serve(broker), serve(broker)]);
    const onA = await tab(a, 'alice');
    const onB = await tab(b, 'alice');

    const sent = await publish(a, [
      { user: 'alice', notification: note('one') },
      { user: 'alice', notification: note('two') },
    ]);
    // Two events, each to alice's two tabs, one per instance.
    expect(sent.delivered).toBe(4);
    const [one, two] = sent.ids as [string, string];
    for (const c of [onA, onB]) expect((await c.waitFor(2, 'notification')).map((e) => e.json.id)).toEqual([one, two]);

    const readAt = await markRead(a, 'alice', one);
    const onBRead = await onB.next('read', { timeoutMs: 5000 });
    expect(onBRead.json).toEqual({ id: one, readAt });
    expect((await onA.next('read')).json).toEqual({ id: one, readAt });

    // B lists what A marked: the shared marks, not B's own.
    const fromB = await unread(b, 'alice');
    expect(fromB.notifications.map((n) => n.id)).toEqual([two]);
    expect(fromB.unreadCount).toBe(1);
    const fresh = await openSse(`${b}/events?user=alice`);
    const init = (await fresh.next('init')).json;
    expect(init.unreadCount).toBe(1);
    expect(init.unread.map((n: { id: string }) => n.id)).toEqual([two]);
    const all = await http(`${b}/notifications?user=alice`);
    expect(all.body.notifications.map((n: { id: string; readAt?: string }) => [n.id, n.readAt])).toEqual([
      [two, undefined],
      [one, readAt],
    ]);

    // Read again on B: the first readAt stands, and it is what B's answer and every tab's receipt carry.
    expect(await markRead(b, 'alice', one)).toBe(readAt);
    for (const c of [onA, onB, fresh]) expect((await c.next('read', { timeoutMs: 5000 })).json).toEqual({ id: one, readAt });

    // Both at once: one readAt, the same in both answers and in every receipt.
    const [r1, r2] = await Promise.all([markRead(a, 'alice', two), markRead(b, 'alice', two)]);
    expect(r2).toBe(r1);
    for (const c of [onA, onB]) {
      const receipts = await c.waitFor(2, 'read', { timeoutMs: 5000 });
      expect(receipts.map((e) => e.json)).toEqual([
        { id: two, readAt: r1 },
        { id: two, readAt: r1 },
      ]);
    }
    expect((await unread(a, 'alice')).unreadCount).toBe(0);

    // Nothing was delivered twice: a later event reaches each tab right after the receipts above, with none between.
    const [three] = (await publish(b, { user: 'alice', notification: note('three') })).ids;
    for (const c of [onA, onB]) {
      expect((await c.next('notification')).json.id).toBe(three);
      expect(c.inbox.items.filter((e) => e.type === 'read')).toHaveLength(4);
    }
  }, 30_000);

  it('delivered counts the subscriptions on every instance: user, users and broadcast', async () => {
    const broker = await startBroker();
    const [a, b] = await Promise.all([serve(broker), serve(broker)]);
    await tab(a, 'alice');
    await tab(b, 'alice');
    await tab(b, 'bob');
    await tab(b, 'bob');
    expect((await publish(a, { user: 'alice', notification: note('x') })).delivered).toBe(2);
    expect((await publish(b, { user: 'alice', notification: note('x') })).delivered).toBe(2);
    expect((await publish(a, { users: ['alice', 'bob', 'nobody'], notification: note('x') })).delivered).toBe(4);
    expect((await publish(a, { broadcast: true, notification: note('all', { type: 'system' }) })).delivered).toBe(4);
    expect((await publish(a, { user: 'nobody', notification: note('x') })).delivered).toBe(0);
  }, 30_000);

  it('an instance that stopped is not counted, and the answer does not wait for it', async () => {
    const broker = await startBroker();
    const a = await serve(broker);
    const b = await serveProcess(broker);
    await tab(a, 'alice');
    await tab(b.url, 'alice');
    expect((await publish(a, { user: 'alice', notification: note('both') })).delivered).toBe(2);
    b.process.child.kill('SIGTERM');
    expect(await exitWithin(b.process, 10_000)).toBe(0);
    const t0 = performance.now();
    expect((await publish(a, { user: 'alice', notification: note('one left') })).delivered).toBe(1);
    // Well under the 500 ms an instance that never answers would cost: the stopped one said so, or Redis did.
    expect(performance.now() - t0).toBeLessThan(400);
  }, 30_000);
});

/** Asks /readyz until it answers `status`; fails after `timeoutMs`. */
async function readyzBecomes(base: string, status: number, timeoutMs: number): Promise<{ status: string }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await http(`${base}/readyz`);
    if (r.status === status) return r.body;
    if (Date.now() > deadline) throw new Error(`/readyz still answers ${r.status} ${r.text} after ${timeoutMs}ms (waiting for ${status})`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('nats broker: outage and epoch, seen from a gateway process', () => {
  it('NATS down: /readyz not ready and publish 503; back: ready again and nothing was lost', async () => {
    const nats = await restartableNats();
    const gw = await serve(nats.url);
    expect((await readyzBecomes(gw, 200, 5000)).status).toBe('ready');
    const c = await tab(gw, 'gina');
    const [before] = await publishOk(gw, { user: 'gina' }, note('before'));
    const first = await c.next('notification');
    expect(first.json.id).toBe(before);
    const epoch = first.id!.split('.')[0];

    await nats.stop();
    expect((await readyzBecomes(gw, 503, 5000)).status).toBe('broker-unavailable');
    const down = await http(`${gw}/publish`, { body: { user: 'gina', notification: note('during') } });
    expectError(down, 503, 'E_BROKER_UNAVAILABLE');
    expectError(await http(`${gw}/notifications/${encodeURIComponent(before!)}/read?user=gina`, { method: 'POST' }), 503, 'E_BROKER_UNAVAILABLE');

    await nats.start();
    expect((await readyzBecomes(gw, 200, 15_000)).status).toBe('ready');
    const [after] = await publishOk(gw, { user: 'gina' }, note('after'));
    // The refused publish took no seq: the subscriber's next event is seq 2, and the history holds exactly the two.
    const next = await c.next('notification', { timeoutMs: 10_000 });
    expect(next.json.id).toBe(after);
    expect(next.id).toBe(`${epoch}.2.0`);
    const list = await http(`${gw}/notifications?user=gina`);
    expect(list.body.notifications.map((n: { title: string }) => n.title)).toEqual(['after', 'before']);
    expect(await markRead(gw, 'gina', before!)).toMatch(/^\d{4}-/);
  }, 45_000);

  it('the stream deleted under a live subscriber: it is sent away, and its cursor then gets reset epoch', async () => {
    const nats = await startNats({ jetstream: true });
    const gw = await serve(nats.url);
    const c = await tab(gw, 'fred');
    await publishOk(gw, { user: 'fred' }, note('old'));
    const old = (await c.next('notification')).id!;
    const nc = await connect({ servers: nats.url, reconnect: false });
    onCleanup(() => nc.close());
    await (await nc.jetstreamManager()).streams.delete('NOTIFY');
    await c.waitClosed({ timeoutMs: 8000 });
    const back = await openSse(`${gw}/events?user=fred`, { headers: { 'Last-Event-ID': old } });
    expect((await back.next('reset')).json).toEqual({ reason: 'epoch', cursor: old });
    const init = (await back.next('init')).json;
    expect(init.cursor.split('.')[0]).not.toBe(old.split('.')[0]);
    expect(init.unreadCount).toBe(0);
  }, 30_000);
});

const restartable: [string, () => Promise<{ url: string; port: number; start(): Promise<void>; stop(): Promise<void> }>][] = [
  ['redis', restartableRedis],
  ['nats', async () => ({ ...(await restartableNats()), port: 0 })],
];

describe.each(restartable)('%s broker: a read made while another instance is still away from the broker', (kind, startBroker) => {
  it('reaches that instance’s tab once it is back, once; its own tab at once', async () => {
    const broker = await startBroker();
    const port = kind === 'redis' ? broker.port : Number(new URL(broker.url).port);
    // B reaches the broker through a gate: the broker restarts, A is back first, B only once the gate opens.
    const gate = await tcpGate(port);
    const a = await serve(broker.url);
    const b = await serve(`${kind}://127.0.0.1:${gate.port}`);
    const onA = await tab(a, 'alice');
    const onB = await tab(b, 'alice');
    const [one] = (await publish(a, { user: 'alice', notification: note('one') })).ids;
    for (const c of [onA, onB]) expect((await c.next('notification')).json.id).toBe(one);

    gate.shut();
    await broker.stop();
    await readyzBecomes(b, 503, 10_000);
    await broker.start();
    await readyzBecomes(a, 200, 15_000);
    const readAt = await markRead(a, 'alice', one!);
    expect((await onA.next('read', { timeoutMs: 5000 })).json).toEqual({ id: one, readAt });
    expect((await readyzBecomes(b, 503, 1000)).status).toBe('broker-unavailable'); // still away: it heard nothing

    gate.open();
    await readyzBecomes(b, 200, 15_000);
    expect((await onB.next('read', { timeoutMs: 10_000 })).json).toEqual({ id: one, readAt });
    // Once: a later event reaches B's tab with no second receipt before it.
    const [two] = (await publish(a, { user: 'alice', notification: note('two') })).ids;
    expect((await onB.next('notification', { timeoutMs: 10_000 })).json.id).toBe(two);
    expect(onB.inbox.items.filter((e) => e.type === 'read')).toHaveLength(1);
    expect(onA.inbox.items.filter((e) => e.type === 'read')).toHaveLength(1);
  }, 60_000);
});
