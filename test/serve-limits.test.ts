/**
 * What the gateway holds for clients that do not read, and for ids nobody subscribes to: a stalled resume holds one
 * page of its replay, not the window; all connections together stay under --max-buffer-total (largest cut first,
 * counted, resumable); a slow consumer's close reason is the next thing it reads; history memory follows what is
 * stored and --history-bytes, not how many user ids were ever named.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { http, metricValue, note, publishEach, scrape } from './helpers/http.js';
import { runCleanup, until } from './helpers/lifecycle.js';
import { openSse, type SseClient } from './helpers/sse-client.js';
import { openWs } from './helpers/ws-client.js';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { MemoryBroker } from '../src/server/brokers/memory.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

afterEach(runCleanup);

const KB = 1024;

/** Publishes `n` notifications of about `bytes` each to `user`, in batches of 50; returns the ids in order. */
async function fill(gw: TestGateway, user: string, n: number, bytes: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 50) {
    const batch = Array.from({ length: Math.min(50, n - i) }, (_, j) => ({ user, notification: note(`n${i + j}`, { body: 'x'.repeat(bytes) }) }));
    const r = await http<{ ids: string[] }>(`${gw.url}/publish`, { body: batch });
    expect(r.status, r.text).toBe(202);
    ids.push(...r.body.ids);
  }
  return ids;
}

function buffered(gw: TestGateway): number[] {
  return [...gw.hub.subscribers()].map((s) => s.buffered);
}

describe('a resume that is not read', () => {
  it('holds about --max-buffer of its replay per connection, and a reader that comes back gets all of it, once, in order', async () => {
    const gw = await startTestGateway({ maxBuffer: '256kb', maxBody: '1mb', history: '1000' });
    const ids = await fill(gw, 'r', 400, 10 * KB); // 4 MB of history
    const stalled: SseClient[] = [];
    for (let i = 0; i < 5; i++) {
      const c = await openSse(`${gw.url}/events?user=r`, { headers: { 'Last-Event-ID': gw.cursor(0, 0) } });
      c.pause();
      stalled.push(c);
    }
    // Each gets its first page; the kernel takes some of it, the server holds the rest, at most a page.
    await until(() => buffered(gw).filter((b) => b > 0).length === 5, 'five connections with a replay page waiting', 5000);
    for (const b of buffered(gw)) expect(b).toBeLessThanOrEqual(256 * KB + 64 * KB);
    expect(gw.hub.size).toBe(5);

    // Published while they stall between pages: not queued per connection, read from the history by the next page.
    const during = await publishEach(
      gw.url,
      { user: 'r' },
      Array.from({ length: 20 }, (_, i) => `during${i}`),
    );
    const [reader] = stalled;
    reader!.resume();
    const got = await reader!.waitFor(420, 'notification', { timeoutMs: 15_000 });
    expect(got.map((e) => e.json.id)).toEqual([...ids, ...during]);
    expect(reader!.lastId).toBe(gw.cursor(420, 0));
    // Live after the replay, still exactly once.
    const [live] = await publishEach(gw.url, { user: 'r' }, ['live']);
    expect((await reader!.next('notification')).json.id).toBe(live);
    expect(metricValue(await scrape(gw.url), 'notify_replayed_total', { transport: 'sse' })).toBeGreaterThanOrEqual(400);
  });

  it('over WebSocket and batched, the pages still add up to the window exactly', async () => {
    const gw = await startTestGateway({ maxBuffer: '64kb', maxBody: '1mb', history: '1000', batch: '20ms' });
    const ids = await fill(gw, 'w', 300, 4 * KB);
    const ws = await openWs(`${gw.wsUrl}/ws?user=w&cursor=${gw.cursor(0, 0)}`);
    const frames = await ws.inbox.waitUntil(() => ws.inbox.items.flatMap((f) => f.notifications ?? []).length >= 300, '300 notifications in batches', {
      timeoutMs: 15_000,
    });
    void frames;
    const got = ws.inbox.items.flatMap((f) => (f.type === 'notifications:batch' ? f.notifications : []));
    expect(got.map((n: { id: string }) => n.id)).toEqual(ids);
    // More than one page: no single frame carried the whole window.
    expect(ws.inbox.items.filter((f) => f.type === 'notifications:batch').length).toBeGreaterThan(1);
  });

  it('a long-poll answer carries about --max-buffer of replay; the next poll goes on from its cursor', async () => {
    const gw = await startTestGateway({ maxBuffer: '16kb', maxBody: '1mb' });
    const ids = await fill(gw, 'p', 40, 2 * KB);
    const seen: string[] = [];
    let cursor = gw.cursor(0, 0);
    let answers = 0;
    while (seen.length < 40 && answers < 20) {
      const r = await http<{ cursor: string; notifications: { id: string }[] }>(`${gw.url}/poll?user=p&timeout=0&cursor=${cursor}`);
      expect(r.status).toBe(200);
      expect(r.text.length).toBeLessThan(16 * KB + 4 * KB);
      seen.push(...r.body.notifications.map((n) => n.id));
      cursor = r.body.cursor;
      answers++;
    }
    expect(seen).toEqual(ids);
    expect(answers).toBeGreaterThan(2);
  });
});

describe('--max-buffer-total', () => {
  it('cuts the largest buffers first once all connections together pass it; each is counted and resumes with nothing lost', async () => {
    // Every connection may hold 350 KB, all of them together 400 KB: three stalled readers cannot all stay.
    const gw = await startTestGateway({ maxBuffer: '350kb', maxBufferTotal: '400kb', maxBody: '1mb' });
    const readers: SseClient[] = [];
    for (const u of ['a', 'b', 'c']) {
      const c = await openSse(`${gw.url}/events?user=${u}`);
      await c.next('init');
      c.pause();
      readers.push(c);
    }
    const healthy = await openSse(`${gw.url}/events?user=h`);
    await healthy.next('init');
    const sub = (u: string) => [...gw.hub.subscribers()].find((s) => s.user === u);
    // The kernel takes a few MB per socket first; then the server's own buffers grow: c past 40 KB, b past 100 KB, then a.
    const published: Record<string, string[]> = { a: [], b: [], c: [] };
    for (const [u, atLeast] of [
      ['c', 40 * KB],
      ['b', 100 * KB],
      ['a', Infinity],
    ] as const) {
      for (let i = 0; i < 400 && gw.hub.size === 4 && (sub(u)?.buffered ?? 0) < atLeast; i++) published[u]!.push(...(await fill(gw, u, 5, 8 * KB)));
    }
    await publishEach(gw.url, { user: 'h' }, ['to the healthy one']);
    expect((await healthy.next('notification')).json.title).toBe('to the healthy one');
    await until(() => gw.hub.size < 4, 'a cut', 5000);
    const m = await scrape(gw.url);
    expect(metricValue(m, 'notify_buffer_total_closes_total', { transport: 'sse' })).toBeGreaterThanOrEqual(1);
    const open = [...gw.hub.subscribers()].map((s) => s.user);
    expect(open).not.toContain('a');
    expect(open).toContain('h');
    expect(buffered(gw).reduce((x, y) => x + y, 0)).toBeLessThanOrEqual(400 * KB + 64 * KB);

    // The cut one reads what it was owed, then why it was cut, and resumes with the rest.
    const a = readers[0]!;
    a.resume();
    await a.waitClosed({ timeoutMs: 12_000 });
    expect(a.inbox.items.at(-1)).toMatchObject({ type: 'close', json: { reason: 'slow consumer' } });
    const got = a.inbox.items.filter((e) => e.type === 'notification').map((e) => e.json.id);
    expect(got).toEqual(published.a!.slice(0, got.length));
    const resumed = await openSse(`${gw.url}/events?user=a`, { headers: { 'Last-Event-ID': a.lastId! } });
    const rest = await resumed.waitFor(published.a!.length - got.length, 'notification', { timeoutMs: 10_000 });
    expect(rest.map((e) => e.json.id)).toEqual(published.a!.slice(got.length));
  });
});

describe('slow consumer close reason', () => {
  it('WebSocket: after the cut the client reads at most what the socket held, then close 4008', async () => {
    const gw = await startTestGateway({ maxBuffer: '512kb', maxBody: '1mb' });
    const ws = await openWs(`${gw.wsUrl}/ws?user=s`);
    await ws.next('init');
    ws.pause();
    let published = 0;
    while (gw.hub.size > 0 && published < 5000) published += (await fill(gw, 's', 50, 8 * KB)).length;
    expect(gw.hub.size).toBe(0);
    ws.resume();
    expect(await ws.waitClose({ timeoutMs: 12_000 })).toEqual({ code: 4008, reason: 'slow consumer' });
    // The outbox was dropped: what arrived is a prefix well short of what was published.
    const got = ws.inbox.items.filter((f) => f.type === 'notification').length;
    expect(got).toBeLessThan(published);
  });
});

describe('history memory', () => {
  it('follows what is stored: 20,000 user ids named once each cost their events, not 20,000 preallocated windows', async () => {
    const gw = await startTestGateway({ history: '1000', maxBody: '4mb' });
    const broker = gw.broker as MemoryBroker;
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 2; i++) {
      const users = Array.from({ length: 10_000 }, (_, j) => `u${i}-${j}`);
      const r = await http(`${gw.url}/publish`, { body: { users, notification: note('hello', { body: '' }) } });
      expect(r.status, r.text).toBe(202);
    }
    expect(broker.usage()).toMatchObject({ streams: 20_000, events: 20_000 });
    gc();
    const perId = (process.memoryUsage().heapUsed - before) / 20_000;
    // What one stored event costs (a preallocated 1000-slot window alone was ~8 KB per id).
    expect(perId).toBeLessThan(1.5 * KB);
  });

  it('--history-bytes holds: the oldest events go first, and a resume from before them is told (reset window)', async () => {
    const gw = await startTestGateway({ historyBytes: '256kb', maxBody: '1mb' });
    const broker = gw.broker as MemoryBroker;
    await fill(gw, 'old', 50, 4 * KB);
    const recent = await fill(gw, 'new', 50, 4 * KB);
    expect(broker.usage().bytes).toBeLessThanOrEqual(256 * KB);
    expect(await broker.lastSeq('user:old')).toBe(50);
    // The user whose events all left keeps its sequence: the next one is 51, and an up-to-date cursor stays valid.
    const c = await openSse(`${gw.url}/events?user=old`, { headers: { 'Last-Event-ID': gw.cursor(50, 0) } });
    const [next] = await publishEach(gw.url, { user: 'old' }, ['after']);
    expect((await c.next('notification')).json.id).toBe(next);
    expect(c.lastId).toBe(gw.cursor(51, 0));
    const stale = await openSse(`${gw.url}/events?user=old`, { headers: { 'Last-Event-ID': gw.cursor(1, 0) } });
    expect((await stale.next('reset')).json).toMatchObject({ reason: 'window' });
    const r = await http<{ notifications: { id: string }[] }>(`${gw.url}/notifications?user=new`);
    expect(r.body.notifications.map((n) => n.id).reverse()).toEqual(recent.slice(-r.body.notifications.length));
  });
});
