/**
 * The server-side configurations the `nchan` and `pushpin` target profiles assume (docs/nchan.conf, docs/pushpin/),
 * proven against the real servers: Debian's nginx + nchan 1.3.6 and Pushpin 1.36, started on free loopback ports.
 * Every nchan test gets a fresh server: a multiplexed nchan id holds one timestamp for all its channels, so a new
 * subscriber can be sent a broadcast published in the same second before it connected (the quirk test below, and
 * docs/nchan.conf); a fresh server has no such message to leak into the next test.
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { http } from './helpers/http.js';
import { Inbox } from './helpers/inbox.js';
import { onCleanup, runCleanup } from './helpers/lifecycle.js';
import { nchanPublish, startNchan, type NchanServer } from './helpers/nchan.js';
import { pushpinPublish, sseEvent, startPushpin } from './helpers/pushpin.js';
import { openSse } from './helpers/sse-client.js';
import { openWs } from './helpers/ws-client.js';

afterEach(runCleanup);

/** A JSON body that says which stream it was published on; `type` lets the WS test client file it. */
const body = (stream: string, n: number) => JSON.stringify({ type: 'notification', stream, n });

/** A multiplexed id of /sub/both/<user>: `<time>:<user tag>,<broadcast tag>`, the channel that advanced in brackets. */
const MULTI_ID = /^(\d+):(\[\d+\]|\d+|-),(\[\d+\]|\d+|-)$/;

/** The channel a multiplexed id says its message came from (the bracketed tag), and that tag with its time. */
function advanced(id: string): { channel: 'user' | 'broadcast'; time: string; tag: string } {
  const m = MULTI_ID.exec(id);
  if (!m) throw new Error(`not a two-channel nchan id: ${id}`);
  const [, time, user, broadcast] = m;
  if (user!.startsWith('[')) return { channel: 'user', time: time!, tag: user!.slice(1, -1) };
  if (broadcast!.startsWith('[')) return { channel: 'broadcast', time: time!, tag: broadcast!.slice(1, -1) };
  throw new Error(`no channel marked as advanced in ${id}`);
}

/** Publishes u1, broadcast, u2, u1 (the last one a fence: once it is in, anything misrouted would have been too). */
async function publishMix(nchan: NchanServer) {
  const u1a = await nchanPublish(nchan, '/pub/user/u1', body('user', 1));
  const b = await nchanPublish(nchan, '/pub/broadcast', body('broadcast', 2));
  await nchanPublish(nchan, '/pub/user/u2', body('user-u2', 3));
  const u1b = await nchanPublish(nchan, '/pub/user/u1', body('user', 4));
  return { u1a, b, u1b };
}

/** A raw WebSocket whose text frames are collected as strings (nchan's ws+meta.nchan frames are not JSON). */
async function openRawWs(url: string, protocol: string, headers: Record<string, string> = {}) {
  const inbox = new Inbox<{ type: string; text: string }>((f) => f.text.slice(0, 120));
  const ws = new WebSocket(url, protocol, { headers });
  ws.on('message', (data, isBinary) => inbox.push({ type: isBinary ? 'binary' : 'text', text: (data as Buffer).toString() }));
  ws.on('close', (code) => inbox.end(`close ${code}`));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  onCleanup(() => ws.terminate());
  return { ws, inbox };
}

/** ws+meta.nchan frame: `id: <id>\ncontent-type: <type>\n\n<data>`. */
function parseMeta(text: string): { id: string; contentType: string | undefined; data: string } {
  const m = /^id: ([^\n]*)\n(?:content-type: ([^\n]*)\n)?\n([\s\S]*)$/.exec(text);
  if (!m) throw new Error(`not a ws+meta.nchan frame: ${JSON.stringify(text)}`);
  return { id: m[1]!, contentType: m[2], data: m[3]! };
}

describe('nchan with docs/nchan.conf', () => {
  it('SSE on /sub/both/<user> receives its user channel and broadcast, in publish order, with multiplexed ids', async () => {
    const nchan = await startNchan();
    const sub = await openSse(`${nchan.url}/sub/both/u1`);
    expect(sub.headers['content-type']).toMatch(/^text\/event-stream/);
    const { u1a, b, u1b } = await publishMix(nchan);
    expect(u1a.status).toBe(201); // a subscriber was there
    const got = await sub.waitFor(3, 'message');
    expect(got.map((e) => e.json)).toEqual([JSON.parse(body('user', 1)), JSON.parse(body('broadcast', 2)), JSON.parse(body('user', 4))]);
    // Each id marks the channel the message came from, and its time and tag are that channel's own message id.
    const [t1, tb, t4] = got.map((e) => advanced(e.id!));
    expect([t1!.channel, tb!.channel, t4!.channel]).toEqual(['user', 'broadcast', 'user']);
    expect(`${t1!.time}:${t1!.tag}`).toBe(u1a.lastMessageId);
    expect(`${tb!.time}:${tb!.tag}`).toBe(b.lastMessageId);
    expect(`${t4!.time}:${t4!.tag}`).toBe(u1b.lastMessageId);
    expect(sub.inbox.pending).toEqual([]);
  });

  it('SSE on /sub/broadcast receives broadcasts only, with plain one-channel ids', async () => {
    const nchan = await startNchan();
    const sub = await openSse(`${nchan.url}/sub/broadcast`);
    const { b } = await publishMix(nchan);
    const fence = await nchanPublish(nchan, '/pub/broadcast', body('broadcast', 5));
    const got = await sub.waitFor(2, 'message');
    expect(got.map((e) => [e.id, e.json.n])).toEqual([
      [b.lastMessageId, 2],
      [fence.lastMessageId, 5],
    ]);
    expect(b.lastMessageId).toMatch(/^\d+:\d+$/);
  });

  it('a WebSocket subscriber gets each message as one text frame holding exactly the published body', async () => {
    const nchan = await startNchan();
    const sub = await openWs(`${nchan.wsUrl}/sub/both/u1`);
    await publishMix(nchan);
    const frames = await sub.waitFor(3, 'notification');
    expect(frames).toEqual([JSON.parse(body('user', 1)), JSON.parse(body('broadcast', 2)), JSON.parse(body('user', 4))]);
  });

  it('ws+meta.nchan frames carry the id and content type, and a WS reconnect with Last-Event-ID resumes', async () => {
    const nchan = await startNchan();
    const first = await openRawWs(`${nchan.wsUrl}/sub/both/u1`, 'ws+meta.nchan');
    expect(first.ws.protocol).toBe('ws+meta.nchan');
    const u1a = await nchanPublish(nchan, '/pub/user/u1', body('user', 1));
    const [f1] = await first.inbox.waitFor(1, 'text');
    const meta = parseMeta(f1!.text);
    expect(meta).toEqual({ id: meta.id, contentType: 'application/json', data: body('user', 1) });
    expect(`${advanced(meta.id).time}:${advanced(meta.id).tag}`).toBe(u1a.lastMessageId);
    first.ws.terminate();
    await nchanPublish(nchan, '/pub/user/u2', body('user-u2', 2));
    await nchanPublish(nchan, '/pub/broadcast', body('broadcast', 3));
    const again = await openRawWs(`${nchan.wsUrl}/sub/both/u1`, 'ws+meta.nchan', { 'Last-Event-ID': meta.id });
    const [f2] = await again.inbox.waitFor(1, 'text');
    expect(parseMeta(f2!.text).data).toBe(body('broadcast', 3));
    await nchanPublish(nchan, '/pub/user/u1', body('user', 4));
    const [f3] = await again.inbox.waitFor(1, 'text');
    expect(parseMeta(f3!.text).data).toBe(body('user', 4));
  });

  it('long-poll answers one message per request, its id in the Etag, walking the buffer with If-None-Match', async () => {
    const nchan = await startNchan();
    // A first request without an id waits for the next message (nchan_subscriber_first_message newest). Until
    // nchan has registered it, a publish finds no subscriber (202) and that copy is not the one it will get.
    const waiting = http(`${nchan.url}/sub/both/u1`);
    let u1a = await nchanPublish(nchan, '/pub/user/u1', body('user', 1));
    for (let i = 0; u1a.status === 202 && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 10));
      u1a = await nchanPublish(nchan, '/pub/user/u1', body('user', 1));
    }
    expect(u1a.status).toBe(201);
    const r1 = await waiting;
    expect(r1.status).toBe(200);
    expect(r1.headers.get('content-type')).toBe('application/json');
    expect(r1.text).toBe(body('user', 1));
    const etag1 = r1.headers.get('etag')!;
    expect(`${advanced(etag1).time}:${advanced(etag1).tag}`).toBe(u1a.lastMessageId);
    // Published while no request is open: the buffer keeps them, each next request takes one.
    await nchanPublish(nchan, '/pub/broadcast', body('broadcast', 2));
    await nchanPublish(nchan, '/pub/user/u2', body('user-u2', 3));
    await nchanPublish(nchan, '/pub/user/u1', body('user', 4));
    const r2 = await http(`${nchan.url}/sub/both/u1`, { headers: { 'If-None-Match': etag1 } });
    expect(r2.text).toBe(body('broadcast', 2));
    const r3 = await http(`${nchan.url}/sub/both/u1`, { headers: { 'If-None-Match': r2.headers.get('etag')! } });
    expect(r3.text).toBe(body('user', 4));
    // The Etag also works as Last-Event-ID (header or query), as the SSE and WS subscribers resume.
    const r2h = await http(`${nchan.url}/sub/both/u1`, { headers: { 'Last-Event-ID': etag1 } });
    expect(r2h.text).toBe(body('broadcast', 2));
    const r3q = await http(`${nchan.url}/sub/both/u1?last_event_id=${encodeURIComponent(r2.headers.get('etag')!)}`);
    expect(r3q.text).toBe(body('user', 4));
  });

  it('an SSE subscriber that reconnects with its Last-Event-ID gets exactly what it missed, then live messages', async () => {
    const nchan = await startNchan();
    const first = await openSse(`${nchan.url}/sub/both/u1`);
    await nchanPublish(nchan, '/pub/user/u1', body('user', 1));
    await nchanPublish(nchan, '/pub/broadcast', body('broadcast', 2));
    await first.waitFor(2, 'message');
    const lastId = first.lastId!;
    expect(lastId).toMatch(MULTI_ID);
    await first.close();
    // Missed: two on the user channel, one broadcast; not for u1: one on u2.
    await nchanPublish(nchan, '/pub/user/u1', body('user', 3));
    await nchanPublish(nchan, '/pub/user/u2', body('user-u2', 4));
    await nchanPublish(nchan, '/pub/broadcast', body('broadcast', 5));
    await nchanPublish(nchan, '/pub/user/u1', body('user', 6));
    for (const resume of [{ headers: { 'Last-Event-ID': lastId } }, { query: `?last_event_id=${encodeURIComponent(lastId)}` }]) {
      const again = await openSse(`${nchan.url}/sub/both/u1${'query' in resume ? resume.query : ''}`, 'headers' in resume ? resume : {});
      const replay = await again.waitFor(3, 'message');
      // The replay is ordered by nchan's (time, tag) ids, not by publish order across channels: compare per channel.
      const ns = (channel: string) => replay.filter((e) => advanced(e.id!).channel === channel).map((e) => e.json.n as number);
      expect(ns('user')).toEqual([3, 6]);
      expect(ns('broadcast')).toEqual([5]);
      expect(replay.map((e) => e.json.stream).sort()).toEqual(['broadcast', 'user', 'user']);
      await again.close();
    }
    // After the replay the stream is live: the next message is the next event, and nothing else came in between.
    const live = await openSse(`${nchan.url}/sub/both/u1`, { headers: { 'Last-Event-ID': lastId } });
    await live.waitFor(3, 'message');
    await nchanPublish(nchan, '/pub/broadcast', body('broadcast', 7));
    expect((await live.next('message')).json.n).toBe(7);
    expect(live.inbox.pending).toEqual([]);
  });

  it('quirk: a new multiplexed subscriber is sent a broadcast from before it connected exactly when it shares a second with its first user message', async () => {
    const nchan = await startNchan();
    const early = await nchanPublish(nchan, '/pub/broadcast', body('broadcast', 1));
    const sub = await openSse(`${nchan.url}/sub/both/u1`);
    const first = await nchanPublish(nchan, '/pub/user/u1', body('user', 2));
    await nchanPublish(nchan, '/pub/broadcast', body('broadcast', 3));
    const second = (id: string) => id.split(':')[0];
    // The publishers' ids say which case this run is in; the test holds in both.
    const leaks = second(early.lastMessageId) === second(first.lastMessageId);
    const got = await sub.waitFor(leaks ? 3 : 2, 'message');
    expect(got.map((e) => e.json.n)).toEqual(leaks ? [2, 1, 3] : [2, 3]);
    expect(sub.inbox.pending).toEqual([]);
  });

  it('publish locations take POST only: GET (channel info) and DELETE (closing subscribers) are refused', async () => {
    const nchan = await startNchan();
    const sub = await openSse(`${nchan.url}/sub/both/u1`);
    expect((await http(`${nchan.url}/pub/user/u1`, { method: 'DELETE' })).status).toBe(403);
    expect((await http(`${nchan.url}/pub/broadcast`)).status).toBe(403);
    expect((await http(`${nchan.url}/sub/both/a%20b`)).status).toBe(404);
    await nchanPublish(nchan, '/pub/user/u1', body('user', 1));
    expect((await sub.next('message')).json.n).toBe(1);
  });
});

describe('Pushpin with docs/pushpin (pushpin.conf, routes, grip-origin.mjs)', () => {
  it("an SSE subscriber through Pushpin gets its user channel and broadcast, not another user's", async () => {
    const pp = await startPushpin();
    const u1 = await openSse(`${pp.url}/events?user=u1`);
    const u2 = await openSse(`${pp.url}/events?user=u2`);
    for (const sub of [u1, u2]) {
      expect(sub.headers['content-type']).toBe('text/event-stream');
      // The origin's initial comment, relayed: the hold is in place.
      await sub.waitComment('stream open');
    }
    await pushpinPublish(pp, 'user-u1', sseEvent(body('user', 1)));
    await pushpinPublish(pp, 'broadcast', sseEvent(body('broadcast', 2)));
    await pushpinPublish(pp, 'user-u2', sseEvent(body('user-u2', 3)));
    await pushpinPublish(pp, 'user-u1', sseEvent(body('user', 4)));
    expect((await u1.waitFor(3, 'notification')).map((e) => e.json.n)).toEqual([1, 2, 4]);
    expect((await u2.waitFor(2, 'notification')).map((e) => e.json.n)).toEqual([2, 3]);
    expect(u1.inbox.pending).toEqual([]);
  });

  it('the origin refuses what the profile never asks for', async () => {
    const pp = await startPushpin();
    expect((await http(`${pp.url}/events?user=a%20b`)).status).toBe(400);
    expect((await http(`${pp.url}/events`)).status).toBe(400);
    expect((await http(`${pp.url}/other`)).status).toBe(404);
  });
});
