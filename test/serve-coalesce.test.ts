/**
 * `notify serve --coalesce`: the frames a connection gets within the window leave in one write, each still its own
 * event, in order, exactly once. Read on a raw TCP socket, so the chunks are what the server wrote.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestGateway } from './helpers/gateway.js';
import { publishEach } from './helpers/http.js';
import { onCleanup, runCleanup } from './helpers/lifecycle.js';
import { openWs } from './helpers/ws-client.js';
import { exitWithin, runNotify } from './helpers/cli.js';

afterEach(runCleanup);

/** A raw SSE request; `chunks` are the TCP reads as they came. */
function rawSse(url: string, path: string): Promise<{ socket: Socket; chunks: string[]; text: () => string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const chunks: string[] = [];
    const socket = connect(Number(port), hostname, () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}\r\nAccept: text/event-stream\r\n\r\n`);
      resolve({ socket, chunks, text: () => chunks.join('') });
    });
    socket.setEncoding('utf8').on('data', (c: string) => chunks.push(c));
    socket.once('error', reject);
    onCleanup(() => socket.destroy());
  });
}

async function until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('serve --coalesce', () => {
  it('SSE: three publishes within the window arrive as one write of three events, in order, once each', async () => {
    const gw = await startTestGateway({ coalesce: '400ms' });
    const c = await rawSse(gw.url, '/events?user=u');
    await until('init', () => c.text().includes('event: init'));
    const before = c.chunks.length;
    const ids = await publishEach(gw.url, { user: 'u' }, ['c1', 'c2', 'c3']);
    await until('three notifications', () => (c.text().match(/event: notification\n/g) ?? []).length === 3);
    const after = c.chunks.slice(before).filter((s) => s.includes('event: notification'));
    expect(after).toHaveLength(1);
    const got = [...after[0]!.matchAll(/"id":"([^"]+)"/g)].map((m) => m[1]);
    expect(got).toEqual(ids);
    expect([...after[0]!.matchAll(/"title":"(c\d)"/g)].map((m) => m[1])).toEqual(['c1', 'c2', 'c3']);
  });

  it('WebSocket: the same events in order, once each, and a later one after the window too', async () => {
    const gw = await startTestGateway({ coalesce: '50ms' });
    const c = await openWs(`${gw.url.replace(/^http/, 'ws')}/ws?user=u`);
    await c.next('init');
    await publishEach(gw.url, { user: 'u' }, ['w1', 'w2']);
    await publishEach(gw.url, { broadcast: true }, ['w3']);
    const frames = await c.waitFor(3, 'notification');
    expect(frames.map((f) => f.notification.title)).toEqual(['w1', 'w2', 'w3']);
    await publishEach(gw.url, { user: 'u' }, ['w4']);
    expect((await c.next('notification')).notification.title).toBe('w4');
  });

  it('a --coalesce past 1s, or not a duration, exits 2 naming the flag', async () => {
    const long = runNotify(['serve', '--port', '0', '--coalesce', '5s']);
    expect(await exitWithin(long, 10_000)).toBe(2);
    expect(long.stderr()).toContain('--coalesce must be at most 1s');
    const bad = runNotify(['serve', '--port', '0', '--coalesce', 'soon']);
    expect(await exitWithin(bad, 10_000)).toBe(2);
    expect(bad.stderr()).toContain('--coalesce must be a duration like 15s, 500ms or 1m (got "soon")');
  });
});
