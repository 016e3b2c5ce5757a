/**
 * The front door (src/server/front-door.ts, listener.ts): subscribe requests read whole from a connection's first
 * bytes go to the gateway on the raw socket, everything else to node:http as before. Checked here: what the head
 * reader takes and what it leaves to node:http; that a stream opened either way has the same head and the same
 * start; that a refusal on the front door is the JSON error and closes; and that a connection which never sends
 * anything is still timed out (node:http never saw it), over plain HTTP/1.1 and over --h2c.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asksUpgrade, readHead } from '../src/server/front-door.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { runCleanup } from './helpers/lifecycle.js';
import { buildRequest, contractBreach, parseResponse, rawExchange } from './helpers/raw-http.js';
import { note, publishOk } from './helpers/http.js';

const head = (text: string) => readHead(Buffer.from(text, 'latin1'));

describe('readHead', () => {
  it('reads a whole GET head, header names in lower case, values trimmed, and what follows it', () => {
    const got = head('GET /events?user=42 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept: text/event-stream\r\nLast-Event-ID:  e.1.2 \r\n\r\nxy');
    expect(got?.req).toEqual({
      method: 'GET',
      url: '/events?user=42',
      path: '/events',
      headers: { host: '127.0.0.1:8080', accept: 'text/event-stream', 'last-event-id': 'e.1.2' },
      httpVersionMajor: 1,
      contentLength: 0,
    });
    expect(got?.rest.toString()).toBe('xy');
  });

  it('reads a POST with a Content-Length, the body left in what follows', () => {
    const got = head('POST /publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 12\r\nConnection: Keep-Alive\r\n\r\n{"a"');
    expect(got?.req).toMatchObject({ method: 'POST', url: '/publish', path: '/publish', contentLength: 12 });
    expect(got?.req.headers).toMatchObject({ 'content-type': 'application/json', connection: 'Keep-Alive' });
    expect(got?.rest.toString()).toBe('{"a"');
  });

  it.each([
    ['a head cut short', 'GET /events HTTP/1.1\r\nHost: x\r\n'],
    ['another method', 'PUT /events HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n'],
    ['a POST without Content-Length', 'POST /publish HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['a POST with a chunked body', 'POST /publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'],
    ['a POST with a Content-Length that is not digits', 'POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n'],
    ['a POST with a 10-digit Content-Length', 'POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n'],
    ['a POST with two Content-Lengths', 'POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n'],
    ['a POST asking to close', 'POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n'],
    ['a POST expecting 100-continue', 'POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n'],
    ['a POST asking for an upgrade', 'POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nUpgrade: h2c\r\n\r\n'],
    ['HEAD', 'HEAD /events HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['HTTP/1.0', 'GET /events HTTP/1.0\r\nHost: x\r\n\r\n'],
    ['an absolute-form target', 'GET http://x/events HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['a blank in the target', 'GET /ev ents HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['no Host', 'GET /events HTTP/1.1\r\nAccept: */*\r\n\r\n'],
    ['a repeated header', 'GET /events HTTP/1.1\r\nHost: x\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n'],
    ['Host twice', 'GET /events HTTP/1.1\r\nHost: x\r\nhost: y\r\n\r\n'],
    ['a body (Content-Length)', 'GET /events HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n'],
    ['Transfer-Encoding', 'GET /events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'],
    ['Expect', 'GET /events HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n'],
    ['a NUL in a value', 'GET /events HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n'],
    ['a bare CR in a value', 'GET /events HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n'],
    ['a byte above 0x7f', 'GET /events HTTP/1.1\r\nHost: x\r\nX-A: caf\xe9\r\n\r\n'],
    ['a blank before the colon', 'GET /events HTTP/1.1\r\nHost : x\r\n\r\n'],
    ['a folded line', 'GET /events HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n'],
    ['a line without a colon', 'GET /events HTTP/1.1\r\nHost: x\r\nnonsense\r\n\r\n'],
    ['a head over 16 KB', `GET /events HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(16 * 1024)}\r\n\r\n`],
    ['the HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'],
  ])('leaves %s to node:http', (_what, text) => {
    expect(head(text)).toBeUndefined();
  });

  it('sees an upgrade only with both Connection: upgrade and Upgrade, as node:http does', () => {
    const ask = (fields: string) => asksUpgrade(head(`GET /ws HTTP/1.1\r\nHost: x\r\n${fields}\r\n`)!.req);
    expect(ask('Connection: Upgrade\r\nUpgrade: websocket\r\n')).toBe(true);
    expect(ask('Connection: keep-alive, upgrade\r\nUpgrade: websocket\r\n')).toBe(true);
    expect(ask('Upgrade: websocket\r\n')).toBe(false);
    expect(ask('Connection: Upgrade\r\n')).toBe(false);
    expect(ask('Connection: upgrades\r\nUpgrade: websocket\r\n')).toBe(false);
  });
});

/** Opens a stream with the bytes given and reads until its init event has come (or 3 s). */
async function openRaw(port: number, request: Buffer): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const socket = connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no init within 3 s: ${Buffer.concat(chunks).toString('latin1').slice(0, 300)}`)), 3000);
      socket.on('error', reject);
      socket.on('data', (c: Buffer) => {
        chunks.push(c);
        const raw = Buffer.concat(chunks);
        const { res } = parseResponse(raw, false, false);
        if (res.status !== 0 && /event: init\ndata: .*\n\n/.test(res.body)) {
          clearTimeout(timer);
          resolve(res);
        }
      });
      socket.once('connect', () => socket.write(request));
    });
  } finally {
    socket.destroy();
  }
}

describe('gateway behind the front door', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({}, { headersTimeoutMs: 500, requestTimeoutMs: 1000 });
  });
  afterAll(runCleanup);

  it('opens the same stream whether the front door or node:http took the request', async () => {
    const front = await openRaw(gw.port, buildRequest('GET', '/events?user=fd1', [['Accept', 'text/event-stream']]));
    // Content-Length: 0 is a head the front door leaves to node:http, which serves it as before.
    const viaHttp = await openRaw(
      gw.port,
      buildRequest('GET', '/events?user=fd1', [
        ['Accept', 'text/event-stream'],
        ['Content-Length', '0'],
      ]),
    );
    for (const r of [front, viaHttp]) {
      expect(r.status).toBe(200);
      expect(r.headers.date).toMatch(/^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$/);
    }
    const withoutDate = (h: Record<string, string>) => Object.fromEntries(Object.entries(h).filter(([k]) => k !== 'date'));
    expect(withoutDate(front.headers)).toEqual(withoutDate(viaHttp.headers));
    expect(front.headers).toMatchObject({ 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', connection: 'close' });
    const start = (body: string) => body.replace(/[A-Za-z0-9_-]+\.\d+\.\d+/g, 'CURSOR');
    expect(start(front.body)).toBe(start(viaHttp.body));
    expect(front.body).toMatch(/^retry: \d+\n\nid: \S+\nevent: init\ndata: \{"cursor":/);
  });

  it('a stream opened through the front door gets what is published, and its close is seen', async () => {
    const socket = connect({ host: '127.0.0.1', port: gw.port });
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('utf8')));
    socket.once('connect', () => socket.write(buildRequest('GET', '/events?user=fd2', [['Accept', 'text/event-stream']])));
    const until = async (what: RegExp) => {
      const deadline = Date.now() + 3000;
      while (!what.test(text)) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${text.slice(-300)}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    await until(/event: init/);
    expect(gw.hub.size).toBeGreaterThanOrEqual(1);
    const before = gw.hub.size;
    const [id] = await publishOk(gw.url, { user: 'fd2' }, note('hi'));
    await until(new RegExp(`event: notification\ndata: \\{[^\n]*"id":"${id}"`));
    socket.destroy();
    const deadline = Date.now() + 3000;
    while (gw.hub.size !== before - 1 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
    expect(gw.hub.size).toBe(before - 1);
  });

  it('refuses on the front door with the JSON error and closes; node:http keeps the connection for the same refusal', async () => {
    const bad = await rawExchange(gw.port, buildRequest('GET', '/events?user=fd3&cursor=zzz', [['Accept', 'text/event-stream']]));
    expect(contractBreach(bad)).toBeUndefined();
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).error.code).toBe('E_CURSOR');
    expect(bad.headers.connection).toBe('close');
    const viaHttp = await rawExchange(
      gw.port,
      buildRequest('GET', '/events?user=fd3&cursor=zzz', [
        ['Accept', 'text/event-stream'],
        ['Content-Length', '0'],
      ]),
    );
    expect(viaHttp.status).toBe(400);
    expect(JSON.parse(viaHttp.body).error.code).toBe('E_CURSOR');
    expect(viaHttp.headers.connection).toBe('keep-alive');
  });

  it('a pipelined pair, a head written in two parts (one read or two) and an unknown path are served as before', async () => {
    const pipelined = await rawExchange(
      gw.port,
      Buffer.concat([buildRequest('GET', '/healthz'), buildRequest('GET', '/events?user=fd4', [['Accept', 'text/event-stream']])]),
    );
    expect(pipelined.status).toBe(200);
    expect(JSON.parse(pipelined.body)).toEqual({ status: 'ok' });
    const split = await rawExchange(gw.port, ['GET /events?user=fd4 HTTP/1.1\r\nHost: 127.0.0.1\r\n', 'Accept: text/event-stream\r\n\r\n']);
    expect(split.status).toBe(200);
    expect(split.streaming).toBe(true);
    const unknown = await rawExchange(gw.port, buildRequest('GET', '/nowhere'));
    expect(unknown.status).toBe(404);
    expect(contractBreach(unknown)).toBeUndefined();
  });

  it('a connection that sends nothing is answered 408 with a JSON error within the headers timeout', async () => {
    const started = Date.now();
    const silent = await rawExchange(gw.port, [], { timeoutMs: 5000 });
    // headersTimeout (500 ms) plus the check interval (at most 500 ms here), plus slack for a loaded machine.
    expect(Date.now() - started).toBeLessThan(500 + 500 + 1500);
    expect(silent.timedOut).toBe(false);
    expect(contractBreach(silent)).toBeUndefined();
    expect(silent.status).toBe(408);
    expect(JSON.parse(silent.body).error.code).toBe('E_REQUEST_TIMEOUT');
    expect(silent.headers.connection).toBe('close');
  });
});

describe('--h2c behind the front door', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ h2c: true }, { headersTimeoutMs: 500, requestTimeoutMs: 1000 });
  });
  afterAll(runCleanup);

  it('opens an HTTP/1.1 stream through the front door and times out a silent connection with 408', async () => {
    const front = await openRaw(gw.port, buildRequest('GET', '/events?user=fd5', [['Accept', 'text/event-stream']]));
    expect(front.status).toBe(200);
    expect(front.headers.connection).toBe('close');
    const started = Date.now();
    const silent = await rawExchange(gw.port, [], { timeoutMs: 5000 });
    expect(Date.now() - started).toBeLessThan(500 + 500 + 1500);
    expect(silent.status).toBe(408);
    expect(contractBreach(silent)).toBeUndefined();
  });
});
