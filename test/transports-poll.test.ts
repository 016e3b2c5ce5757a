/** Long-poll transport against a fake node:http server that answers per docs/protocol.md, one scripted reply per poll. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PollTransport } from '../src/transports/poll.js';
import { closedPort, once, RecordingSink } from './transports-helpers.js';

interface Seen {
  url: URL;
  headers: http.IncomingHttpHeaders;
  remoteAddress: string;
  remotePort: number;
  req: http.IncomingMessage;
  res: http.ServerResponse;
}

/** `reply(seen, index)` answers the index-th poll (return nothing to hold it). */
async function fakeServer(reply: (s: Seen, i: number) => void): Promise<{ url: string; seen: Seen[]; server: http.Server }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const s = {
      url: new URL(req.url!, 'http://x'),
      headers: req.headers,
      remoteAddress: req.socket.remoteAddress!,
      remotePort: req.socket.remotePort!,
      req,
      res,
    };
    seen.push(s);
    reply(s, seen.length - 1);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server };
}

function json(res: http.ServerResponse, body: unknown, status = 200, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

const note = (id: string) => ({ id, type: 'system', title: 'Héllo ✓', body: '', createdAt: '2026-11-21T12:00:00.000Z' });

let sink: RecordingSink;
let poll: PollTransport;
beforeEach(() => {
  sink = new RecordingSink();
  poll = new PollTransport(sink, { connectTimeoutMs: 2000, pollTimeoutS: 7 });
});
afterEach(async () => {
  await poll.dispose();
});

describe('poll transport', () => {
  it('loops from the snapshot cursor, unrolls answers, reports read receipts and ends on a 503', async () => {
    const { url, seen, server } = await fakeServer((s, i) => {
      if (i === 0) json(s.res, { cursor: 'E.0.1', unread: [note('E-1')], unreadCount: 3, notifications: [] });
      if (i === 1) json(s.res, { cursor: 'E.0.1', notifications: [] }); // a poll that timed out
      if (i === 2) {
        json(s.res, {
          cursor: 'E.0.3',
          notifications: [{ ...note('E-2'), data: { probe: { run: 'r', stream: 'broadcast', seq: 1, t: 3.5 } } }, note('E-3')],
          read: [{ id: 'E-1', readAt: '2026-11-21T12:00:01.000Z' }],
        });
      }
      if (i === 3) json(s.res, { error: { code: 'E_DRAINING', message: 'shutting down' } }, 503, { 'retry-after': '1' });
    });
    poll.open(1, { url, user: '42', token: 'T' });
    await sink.ended(1);
    expect(sink.plain(1)).toEqual([
      { kind: 'opened' },
      { kind: 'init', cursor: 'E.0.1', unreadCount: 3 },
      { kind: 'notification', id: 'E-2', cursor: undefined },
      { kind: 'notification', id: 'E-3', cursor: 'E.0.3' },
      { kind: 'read', id: 'E-1', readAt: '2026-11-21T12:00:01.000Z' },
      { kind: 'closed', cause: 'http-503', retryMs: 1000 },
    ]);
    expect(seen.map((s) => s.url.pathname + s.url.search)).toEqual([
      '/poll?user=42',
      '/poll?user=42&cursor=E.0.1&timeout=7',
      '/poll?user=42&cursor=E.0.1&timeout=7',
      '/poll?user=42&cursor=E.0.3&timeout=7',
    ]);
    expect(seen[0]!.headers.authorization).toBe('Bearer T');
    // One keep-alive connection carries the whole loop.
    expect(new Set(seen.map((s) => s.remotePort)).size).toBe(1);
    expect(poll.cursor(1)).toBe('E.0.3');
    const n = sink.notifications(1)[0]!;
    expect(n.n.data).toEqual({ probe: { run: 'r', stream: 'broadcast', seq: 1, t: 3.5 } });
    server.close();
  });

  it('resumes with an immediate first poll, reports reset then init, aborts a held poll and resumes again', async () => {
    const { url, seen, server } = await fakeServer((s, i) => {
      if (i === 0) json(s.res, { cursor: 'F.0.0', reset: { reason: 'epoch' }, unread: [], unreadCount: 0, notifications: [] });
      if (i === 2) json(s.res, { cursor: 'F.0.1', notifications: [note('F-1')] });
      // i === 1 and i === 3 are held
    });
    poll.open(2, { url }, 'E.0.9');
    await sink.waitFor(() => seen.length === 2, 'the held poll');
    const gone = once(seen[1]!.res, 'close', 'held poll dropped');
    poll.abort(2);
    await gone;
    expect(sink.plain(2)).toEqual([
      { kind: 'opened' },
      { kind: 'reset', reason: 'epoch' },
      { kind: 'init', cursor: 'F.0.0', unreadCount: 0 },
      { kind: 'closed', cause: 'aborted', retryMs: undefined },
    ]);
    poll.open(2, { url }, poll.cursor(2));
    await sink.waitFor(() => seen.length === 4, 'the next held poll');
    expect(seen.map((s) => s.url.search)).toEqual(['?cursor=E.0.9&timeout=0', '?cursor=F.0.0&timeout=7', '?cursor=F.0.0&timeout=0', '?cursor=F.0.1&timeout=7']);
    expect(sink.plain(2).slice(4)).toEqual([{ kind: 'opened' }, { kind: 'notification', id: 'F-1', cursor: 'F.0.1' }]);
    poll.close(2);
    expect(sink.plain(2).at(-1)).toEqual({ kind: 'closed', cause: 'client-closed', retryMs: undefined });
    server.close();
  });

  it('reports a refused first poll, a closed port, and a server that drops a held poll', async () => {
    const { url, seen, server } = await fakeServer((s) => {
      if (s.url.searchParams.get('user') === 'nobody') return json(s.res, { error: { code: 'E_AUTH', message: 'no' } }, 401);
      if (s.url.searchParams.get('user') === 'garbage') return void s.res.end('not json');
      if (!s.url.searchParams.has('cursor')) return json(s.res, { cursor: 'E.0.0', unread: [], unreadCount: 0, notifications: [] });
      s.req.socket.destroy();
    });
    poll.open(1, { url, user: 'nobody' });
    poll.open(2, { url: `http://127.0.0.1:${await closedPort()}` });
    poll.open(3, { url, user: 'drop' });
    poll.open(4, { url, user: 'garbage' });
    await Promise.all([1, 2, 3, 4].map((c) => sink.ended(c)));
    expect(sink.plain(1)).toEqual([{ kind: 'error', code: 'http-401', retryMs: undefined }]);
    expect(sink.plain(2)).toEqual([{ kind: 'error', code: 'ECONNREFUSED', retryMs: undefined }]);
    expect(sink.plain(3)).toEqual([
      { kind: 'opened' },
      { kind: 'init', cursor: 'E.0.0', unreadCount: 0 },
      { kind: 'closed', cause: 'socket-closed', retryMs: undefined },
    ]);
    expect(sink.plain(4)).toEqual([{ kind: 'error', code: 'bad-event', retryMs: undefined }]);
    expect(seen.length).toBe(4);
    server.close();
  });

  it('connects from the given local address', async () => {
    const { url, seen, server } = await fakeServer((s) => {
      if (!s.url.searchParams.has('cursor')) json(s.res, { cursor: 'E.0.0', unread: [], unreadCount: 0, notifications: [] });
    });
    poll.open(1, { url, localAddress: '127.0.0.4' });
    await sink.waitFor(() => seen.length === 2, 'second poll');
    expect(seen[0]!.remoteAddress).toBe('127.0.0.4');
    poll.close(1);
    server.close();
  });
});
