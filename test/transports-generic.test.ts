/**
 * The generic decoder (a target profile other than notify): probes found wherever a server puts them, cursors from
 * what the server sends, and each resume mode putting the cursor where the profile says, over SSE, WebSocket and
 * long-poll against small real servers on loopback.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { findProbes, findProbesInText } from '../src/transports/probe-find.js';
import { createTransport, type Transport } from '../src/transports/index.js';
import { listenForTest, onCleanup, runCleanup } from './helpers/lifecycle.js';
import { RecordingSink } from './transports-helpers.js';

afterEach(runCleanup);

const probe = (seq: number, stream = 'broadcast') => ({ run: 'g', stream, seq, t: 1_700_000_000_000 + seq });
const probeJson = (seq: number) => JSON.stringify(probe(seq));

describe('findProbes', () => {
  it('finds a probe under a probe key at any depth, in order, with the id of the object that holds it', () => {
    const found = findProbes({
      items: [
        { id: 'a', data: { probe: probe(1) } },
        { id: 7, meta: { deep: { probe: probe(2) } } },
      ],
    });
    expect(found.probes).toEqual([probe(1), probe(2)]);
    expect(found.ids).toEqual(['a', '7']);
  });

  it('finds a probe inside a JSON string, and a probe that is the whole message', () => {
    expect(findProbesInText(JSON.stringify({ id: 'x', payload: JSON.stringify({ data: { probe: probe(3) } }) }))!.probes).toEqual([probe(3)]);
    expect(findProbesInText(probeJson(4))!.probes).toEqual([probe(4)]);
    expect(findProbesInText(JSON.stringify(probeJson(5)))!.probes).toEqual([probe(5)]);
  });

  it('ignores what is not a probe: wrong shapes, seq 0, non-JSON text; and stops at depth 32', () => {
    expect(findProbes({ probe: { ...probe(1), seq: 0 } }).probes).toEqual([]);
    expect(findProbes({ probe: { run: 'g', stream: 'b', seq: 1 } }).probes).toEqual([]);
    expect(findProbesInText('not json')).toBeUndefined();
    let deep: unknown = { probe: probe(9) };
    for (let i = 0; i < 40; i++) deep = { x: deep };
    expect(findProbes(deep).probes).toEqual([]);
    let shallow: unknown = { probe: probe(9) };
    for (let i = 0; i < 20; i++) shallow = { x: shallow };
    expect(findProbes(shallow).probes).toEqual([probe(9)]);
  });
});

async function httpServer(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer(handler);
  const url = await listenForTest(server);
  return url;
}

function use(t: Transport): Transport {
  onCleanup(() => t.dispose());
  return t;
}

describe('generic SSE', () => {
  it('reads probes from the events the profile names, takes the id as cursor, and resumes by the mode given', async () => {
    const seen: { lastEventId?: string; query: string }[] = [];
    const url = await httpServer((req, res) => {
      seen.push({ lastEventId: req.headers['last-event-id'] as string | undefined, query: new URL(req.url!, 'http://x').search });
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`event: notification\nid: c1\ndata: ${JSON.stringify({ id: 'n1', body: { probe: probe(1) } })}\n\n`);
      res.write(`event: other\ndata: ${JSON.stringify({ probe: probe(99) })}\n\n`);
      res.write(`event: notification\nid: c2\ndata: ${JSON.stringify({ wrapped: JSON.stringify({ probe: probe(2) }) })}\n\n`);
    });
    const sink = new RecordingSink();
    const t = use(createTransport('sse', sink, { generic: { events: ['notification'] } }));
    t.open(0, { url: `${url}/stream?user=u1`, path: '', resume: 'last-event-id' });
    await sink.waitFor(() => sink.notifications(0).length === 2, 'two notifications');
    expect(sink.notifications(0).map((e) => [e.n.data?.probe, e.cursor])).toEqual([
      [probe(1), 'c1'],
      [probe(2), 'c2'],
    ]);
    expect(t.cursor(0)).toBe('c2');
    t.abort(0);
    t.open(0, { url: `${url}/stream?user=u1`, path: '', resume: 'query:since' }, t.cursor(0));
    await sink.waitFor(() => sink.notifications(0).length === 4, 'reopened');
    t.abort(0);
    t.open(0, { url: `${url}/stream?user=u1`, path: '', resume: 'none' }, t.cursor(0));
    await sink.waitFor(() => sink.notifications(0).length === 6, 'reopened again');
    expect(seen).toEqual([
      { lastEventId: undefined, query: '?user=u1' },
      { lastEventId: undefined, query: '?user=u1&since=c2' },
      { lastEventId: undefined, query: '?user=u1' },
    ]);
  });

  it('sends Last-Event-ID with resume last-event-id; a named event that is not JSON is a notification without a probe', async () => {
    const ids: (string | undefined)[] = [];
    const url = await httpServer((req, res) => {
      ids.push(req.headers['last-event-id'] as string | undefined);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`id: 5\ndata: ${probeJson(5)}\n\n`);
      res.write('event: notification\ndata: hello\n\n');
    });
    const sink = new RecordingSink();
    const t = use(createTransport('sse', sink, { generic: { events: ['message', 'notification'] } }));
    t.open(0, { url, path: '', resume: 'last-event-id' });
    await sink.waitFor(() => sink.notifications(0).length === 2, 'both events');
    expect(sink.notifications(0).map((e) => e.n.data?.probe)).toEqual([probe(5), undefined]);
    t.abort(0);
    t.open(0, { url, path: '', resume: 'last-event-id' }, t.cursor(0));
    await sink.waitFor(() => ids.length === 2, 'second request');
    expect(ids).toEqual([undefined, '5']);
  });
});

describe('generic WebSocket', () => {
  it("offers the profile's subprotocols, sends its frames once open, and reads nchan's meta frames with their ids", async () => {
    const server = createServer();
    const wss = new WebSocketServer({ server });
    const url = await listenForTest(server);
    onCleanup(() => new Promise<void>((r) => wss.close(() => r())));
    const got: { protocol: string; frames: string[]; lastEventId?: string }[] = [];
    wss.on('connection', (ws, req) => {
      const entry = { protocol: ws.protocol, frames: [] as string[], lastEventId: req.headers['last-event-id'] as string | undefined };
      got.push(entry);
      ws.on('message', (data) => {
        entry.frames.push((data as Buffer).toString());
        ws.send(`id: 1796227268:[0],-\ncontent-type: application/json\n\n${JSON.stringify({ data: { probe: probe(1) } })}`);
        ws.send(`id: 1796227268:[1],-\n\n${JSON.stringify({ data: { probe: probe(2) } })}`);
      });
    });
    const sink = new RecordingSink();
    const t = use(createTransport('ws', sink, { generic: { frames: 'nchan-meta' } }));
    const target = {
      url: url.replace('http', 'ws') + '/sub/both/u1',
      path: '',
      resume: 'last-event-id',
      protocols: ['ws+meta.nchan'],
      send: ['{"hello":"u1"}'],
    };
    t.open(0, target);
    await sink.waitFor(() => sink.notifications(0).length === 2, 'two frames');
    expect(sink.notifications(0).map((e) => [e.n.data?.probe, e.cursor])).toEqual([
      [probe(1), '1796227268:[0],-'],
      [probe(2), '1796227268:[1],-'],
    ]);
    t.abort(0);
    t.open(0, target, t.cursor(0));
    await sink.waitFor(() => got.length === 2 && got[1]!.frames.length === 1, 'second connection');
    expect(got.map((g) => [g.protocol, g.frames, g.lastEventId])).toEqual([
      ['ws+meta.nchan', ['{"hello":"u1"}'], undefined],
      ['ws+meta.nchan', ['{"hello":"u1"}'], '1796227268:[1],-'],
    ]);
  });

  it('json frames: the cursor is the frame cursor, else the id of the notification holding the last probe', async () => {
    const server = createServer();
    const wss = new WebSocketServer({ server });
    const url = await listenForTest(server);
    onCleanup(() => new Promise<void>((r) => wss.close(() => r())));
    wss.on('connection', (ws) => {
      ws.send(JSON.stringify({ cursor: 'k1', items: [{ id: 'a', probe: probe(1) }] }));
      ws.send(JSON.stringify({ event: 'n', payload: { id: 'b', probe: probe(2) } }));
      ws.send(JSON.stringify({ type: 'ping' }));
      ws.send('not json');
    });
    const sink = new RecordingSink();
    const t = use(createTransport('ws', sink, { generic: {} }));
    t.open(0, { url: url.replace('http', 'ws'), path: '', resume: 'query:cursor' });
    await sink.waitFor(() => sink.notifications(0).length === 2, 'two probes');
    expect(sink.notifications(0).map((e) => [e.n.data?.probe, e.cursor])).toEqual([
      [probe(1), 'k1'],
      [probe(2), 'b'],
    ]);
    expect(t.cursor(0)).toBe('b');
  });
});

describe('generic long-poll', () => {
  it('is open once the first poll is sent (servers may hold it), polls on after 304, and resumes from the Etag', async () => {
    const requests: { lastEventId?: string }[] = [];
    const held: ServerResponse[] = [];
    const url = await httpServer((req, res) => {
      requests.push({ lastEventId: req.headers['last-event-id'] as string | undefined });
      const n = requests.length;
      if (n === 1) return void held.push(res);
      if (n === 2) return void res.writeHead(304).end();
      if (n === 3) return void res.writeHead(200, { 'content-type': 'application/json', etag: 'e3' }).end(JSON.stringify({ probe: probe(3) }));
      held.push(res);
    });
    const sink = new RecordingSink();
    const t = use(createTransport('poll', sink, { generic: {} }));
    t.open(0, { url, path: '', resume: 'last-event-id' });
    await sink.waitFor(() => sink.of(0).some((e) => e.kind === 'opened') && held.length === 1, 'opened while held');
    held[0]!.writeHead(200, { 'content-type': 'application/json', etag: 'e1' }).end(JSON.stringify({ data: { probe: probe(1) } }));
    await sink.waitFor(() => requests.length === 4, 'four polls');
    expect(sink.notifications(0).map((e) => [e.n.data?.probe, e.cursor])).toEqual([
      [probe(1), 'e1'],
      [probe(3), 'e3'],
    ]);
    expect(requests.map((r) => r.lastEventId)).toEqual([undefined, 'e1', 'e1', 'e3']);
    expect(sink.of(0).filter((e) => e.kind === 'closed' || e.kind === 'error')).toEqual([]);
  });
});
