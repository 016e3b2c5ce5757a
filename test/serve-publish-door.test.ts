/**
 * Publishes on their raw sockets (src/server/publish-door.ts): a publisher's keep-alive connection whose first request
 * is a plain `POST /publish` is answered by the gateway without node:http, until it asks for anything else, when
 * node:http gets the connection with what it sent. Checked here: the answers are node:http's (status, headers, body),
 * in order, for bodies cut across reads and pipelined requests; refusals keep the connection; what is not a plain
 * publish is node:http's, on the same connection; a body that does not come is 408; a half-close and a shutdown
 * close the connection once what was sent is answered.
 */
import { connect, type Socket } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fcParams } from './helpers/fuzz.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { http } from './helpers/http.js';
import { runCleanup } from './helpers/lifecycle.js';
import { buildRequest } from './helpers/raw-http.js';
import { startRedis } from './helpers/redis.js';

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** One raw connection: writes bytes, reads the answers one after another (Content-Length framed), sees the close. */
class RawConnection {
  readonly socket: Socket;
  private buffered = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  closed = false;

  constructor(port: number) {
    this.socket = connect({ host: '127.0.0.1', port });
    this.socket.on('data', (c: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, c]);
      this.wake?.();
    });
    this.socket.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
    this.socket.on('error', () => {});
  }

  send(bytes: string | Buffer): void {
    this.socket.write(bytes);
  }

  /** The next whole answer, within `timeoutMs`. */
  async next(timeoutMs = 3000): Promise<Answer> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const answer = this.take();
      if (answer) return answer;
      if (this.closed) throw new Error(`closed before an answer: ${JSON.stringify(this.buffered.toString('latin1'))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no answer within ${timeoutMs} ms: ${JSON.stringify(this.buffered.toString('latin1'))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Resolves once the server has closed the connection (within `timeoutMs`). */
  async closedWithin(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error(`still open after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  private take(): Answer | undefined {
    const end = this.buffered.indexOf('\r\n\r\n');
    if (end < 0) return undefined;
    const [line, ...fields] = this.buffered.toString('latin1', 0, end).split('\r\n');
    const headers: Record<string, string> = {};
    for (const f of fields) {
      const colon = f.indexOf(':');
      headers[f.slice(0, colon).toLowerCase()] = f.slice(colon + 1).trim();
    }
    const length = Number(headers['content-length'] ?? 0);
    if (this.buffered.length < end + 4 + length) return undefined;
    const body = this.buffered.toString('utf8', end + 4, end + 4 + length);
    this.buffered = this.buffered.subarray(end + 4 + length);
    return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(line!)?.[1] ?? 0), headers, body };
  }
}

const JSON_TYPE: [string, string] = ['Content-Type', 'application/json'];
const publish = (user: string, title: string, headers: [string, string][] = [JSON_TYPE]) => {
  const body = JSON.stringify([{ user, notification: { type: 'system', title } }]);
  return buildRequest('POST', '/publish', [...headers, ['Content-Length', String(Buffer.byteLength(body))]], body);
};
const chunked = (user: string, title: string, headers: [string, string][]) => {
  const body = JSON.stringify([{ user, notification: { type: 'system', title } }]);
  return buildRequest('POST', '/publish', [...headers, ['Transfer-Encoding', 'chunked']], `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`);
};
const withoutDate = (h: Record<string, string>) => Object.fromEntries(Object.entries(h).filter(([k]) => k !== 'date'));
const titles = async (gw: TestGateway, user: string) =>
  (await http<{ notifications: { title: string }[] }>(`${gw.url}/notifications?user=${user}`)).body.notifications.map((n) => n.title).reverse();

describe('publishes on the raw socket', () => {
  let gw: TestGateway;
  const opened: RawConnection[] = [];
  const open = () => {
    const c = new RawConnection(gw.port);
    opened.push(c);
    return c;
  };
  beforeAll(async () => {
    gw = await startTestGateway({ publishKey: 'k3y', maxBody: '1kb' }, { requestTimeoutMs: 1000 });
  });
  afterAll(async () => {
    for (const c of opened) c.socket.destroy();
    await runCleanup();
  });
  const KEY: [string, string] = ['X-Publish-Key', 'k3y'];

  it('answers as node:http does: the same status, headers and body, and keeps the connection', async () => {
    const door = open();
    door.send(publish('pd1', 'one', [JSON_TYPE, KEY]));
    const a = await door.next();
    // A chunked body is node:http's: the same route answered the old way.
    const viaHttp = open();
    viaHttp.send(chunked('pd1', 'two', [JSON_TYPE, KEY]));
    const b = await viaHttp.next();
    for (const r of [a, b]) {
      expect(r.status).toBe(202);
      expect(r.headers.date).toMatch(/^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$/);
      expect(JSON.parse(r.body)).toEqual({ ids: [expect.any(String)], delivered: 0 });
    }
    expect(withoutDate(a.headers)).toEqual(withoutDate(b.headers));
    expect(a.headers).toMatchObject({ connection: 'keep-alive', 'keep-alive': 'timeout=65', 'access-control-allow-origin': '*' });
    door.send(publish('pd1', 'three', [JSON_TYPE, KEY]));
    expect((await door.next()).status).toBe(202);
    expect(await titles(gw, 'pd1')).toEqual(['one', 'two', 'three']);
  });

  it('answers in order a body cut across reads and pipelined publishes', async () => {
    const c = open();
    const first = publish('pd2', 'a', [JSON_TYPE, KEY]);
    c.send(first.subarray(0, first.length - 7));
    await new Promise((r) => setTimeout(r, 30));
    c.send(Buffer.concat([first.subarray(first.length - 7), publish('pd2', 'b', [JSON_TYPE, KEY]), publish('pd2', 'c', [JSON_TYPE, KEY])]));
    const ids = [];
    for (let i = 0; i < 3; i++) {
      const r = await c.next();
      expect(r.status).toBe(202);
      ids.push((JSON.parse(r.body) as { ids: string[] }).ids[0]);
    }
    expect(new Set(ids).size).toBe(3);
    expect(await titles(gw, 'pd2')).toEqual(['a', 'b', 'c']);
  });

  it('refuses as the route does, and keeps the connection for the next publish', async () => {
    const c = open();
    const bad = '[{"user":"pd3"';
    c.send(buildRequest('POST', '/publish', [JSON_TYPE, KEY, ['Content-Length', String(bad.length)]], bad));
    c.send(publish('pd3', 'typed', [['Content-Type', 'text/plain'], KEY]));
    c.send(publish('pd3', 'keyless'));
    const invalid = '[{"user":"pd3","notification":1}]';
    c.send(buildRequest('POST', '/publish', [JSON_TYPE, KEY, ['Content-Length', String(invalid.length)]], invalid));
    c.send(publish('pd3', 'fine', [JSON_TYPE, KEY]));
    const got = [];
    for (let i = 0; i < 5; i++) {
      const r = await c.next();
      got.push([r.status, r.status === 202 ? 'ok' : (JSON.parse(r.body) as { error: { code: string } }).error.code]);
    }
    expect(got).toEqual([
      [400, 'E_JSON'],
      [415, 'E_CONTENT_TYPE'],
      [401, expect.stringMatching(/^E_/)],
      [400, 'E_INVALID'],
      [202, 'ok'],
    ]);
    expect(c.closed).toBe(false);
    expect(await titles(gw, 'pd3')).toEqual(['fine']);
  });

  it('gives node:http the connection for anything else, with what was sent after it', async () => {
    const c = open();
    c.send(Buffer.concat([publish('pd4', 'x', [JSON_TYPE, KEY]), buildRequest('GET', '/healthz'), publish('pd4', 'y', [JSON_TYPE, KEY])]));
    const [x, health, y] = [await c.next(), await c.next(), await c.next()];
    expect([x.status, health.status, y.status]).toEqual([202, 200, 202]);
    expect(JSON.parse(health.body)).toEqual({ status: 'ok' });
    expect(withoutDate(y.headers)).toEqual(withoutDate(x.headers));
    expect(await titles(gw, 'pd4')).toEqual(['x', 'y']);
  });

  it('leaves a body past --max-body to node:http, which answers 413', async () => {
    const c = open();
    const big = JSON.stringify([{ user: 'pd5', notification: { type: 'system', title: 't', body: 'b'.repeat(1100) } }]);
    c.send(
      Buffer.concat([
        publish('pd5', 'small', [JSON_TYPE, KEY]),
        buildRequest('POST', '/publish', [JSON_TYPE, KEY, ['Content-Length', String(big.length)]], big),
      ]),
    );
    expect((await c.next()).status).toBe(202);
    const r = await c.next();
    expect(r.status).toBe(413);
    expect(JSON.parse(r.body)).toMatchObject({ error: { code: 'E_TOO_LARGE' } });
  });

  it('answers 408 to a body that does not come in time, and closes', async () => {
    const c = open();
    c.send(buildRequest('POST', '/publish', [JSON_TYPE, KEY, ['Content-Length', '50']], '[{"user":'));
    const started = Date.now();
    const r = await c.next(3000);
    expect(r.status).toBe(408);
    expect(r.headers.connection).toBe('close');
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    await c.closedWithin(1000);
  });

  it('answers what a half-closed publisher sent, then closes', async () => {
    const c = open();
    c.send(Buffer.concat([publish('pd6', 'p', [JSON_TYPE, KEY]), publish('pd6', 'q', [JSON_TYPE, KEY])]));
    c.socket.end();
    const [p, q] = [await c.next(), await c.next()];
    expect([p.status, q.status]).toEqual([202, 202]);
    await c.closedWithin(1000);
    expect(await titles(gw, 'pd6')).toEqual(['p', 'q']);
  });
});

// Over Redis the publish is answered after the publisher's EOF has been read, when node:http can no longer be handed
// the connection; over the memory broker before it.
describe.each([
  ['memory', async () => 'memory'],
  ['redis', async () => (await startRedis()).url],
])('a publisher that half-closes after a request the door cannot take (%s broker)', (_kind, broker) => {
  afterAll(runCleanup);

  it('gets its publish answered, then 400 for what followed, and the close', async () => {
    const gw = await startTestGateway({ broker: await broker() });
    const c = new RawConnection(gw.port);
    c.send(Buffer.concat([publish('pd9', 'kept'), Buffer.from('GET /healthz HTTP/1.1\r\nHo')]));
    c.socket.end();
    const [kept, cut] = [await c.next(), await c.next()];
    expect([kept.status, cut.status]).toEqual([202, 400]);
    expect(JSON.parse(cut.body)).toMatchObject({ error: { code: 'E_BAD_REQUEST' } });
    await c.closedWithin(1000);
    expect(await titles(gw, 'pd9')).toEqual(['kept']);
  });
});

describe('publishes on the raw socket, fuzzed', () => {
  afterAll(runCleanup);

  it('answers any sequence of requests, cut anywhere, in order and as node:http would, and stores the publishes', async () => {
    const gw = await startTestGateway();
    let n = 0;
    /** One request: its bytes for user `u`, the status it is answered, the title it stores (if any). */
    const kinds: ((u: string, t: string) => { bytes: Buffer; status: number; title?: string })[] = [
      (u, t) => ({ bytes: publish(u, t), status: 202, title: t }),
      (u, t) => ({ bytes: chunked(u, t, [JSON_TYPE]), status: 202, title: t }),
      () => ({ bytes: buildRequest('POST', '/publish', [JSON_TYPE, ['Content-Length', '3']], '[{]'), status: 400 }),
      (u, t) => ({ bytes: publish(u, t, [['Content-Type', 'text/plain']]), status: 415 }),
      () => ({ bytes: buildRequest('GET', '/healthz'), status: 200 }),
      () => ({ bytes: buildRequest('POST', '/nowhere', [JSON_TYPE, ['Content-Length', '2']], '[]'), status: 404 }),
    ];
    const arb = fc.record({
      picks: fc.array(fc.nat(kinds.length - 1), { minLength: 1, maxLength: 6 }),
      cuts: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 4 }),
    });
    await fc.assert(
      fc.asyncProperty(arb, async ({ picks, cuts }) => {
        const user = `fz${++n}`;
        const reqs = picks.map((k, i) => kinds[k]!(user, `t${i}`));
        const bytes = Buffer.concat(reqs.map((r) => r.bytes));
        const at = [...new Set(cuts.map((c) => Math.floor(c * bytes.length)))].filter((c) => c > 0).sort((a, b) => a - b);
        const c = new RawConnection(gw.port);
        try {
          let from = 0;
          for (const cut of [...at, bytes.length]) {
            c.send(bytes.subarray(from, cut));
            from = cut;
            await new Promise((r) => setTimeout(r, 2));
          }
          const statuses = [];
          for (let i = 0; i < reqs.length; i++) statuses.push((await c.next()).status);
          expect(statuses).toEqual(reqs.map((r) => r.status));
          expect(await titles(gw, user)).toEqual(reqs.flatMap((r) => (r.title === undefined ? [] : [r.title])));
        } finally {
          c.socket.destroy();
        }
      }),
      fcParams(40),
    );
  });
});

describe('publisher connections at shutdown', () => {
  afterAll(runCleanup);

  it('closes an idle one at once instead of waiting out the grace', async () => {
    const gw = await startTestGateway({}, { shutdownGraceMs: 5000 });
    const c = new RawConnection(gw.port);
    c.send(publish('pd7', 'last'));
    expect((await c.next()).status).toBe(202);
    const started = Date.now();
    await gw.shutdown();
    expect(Date.now() - started).toBeLessThan(2500);
    await c.closedWithin(1000);
  });
});
