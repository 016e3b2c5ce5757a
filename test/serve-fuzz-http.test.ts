/**
 * Property-based fuzzing of the gateway's GET surfaces on a real in-process gateway, requests written by hand on a
 * socket: query strings (user, cursor, lastEventId, timeout, token, unread) on /events, /poll, /notifications and
 * /ws, the Last-Event-ID header, cursors (valid, future, other epoch, overflowing, malformed), paths and methods
 * (percent-escapes such as `/notifications/%ZZ/read`, HEAD /events), and JWTs (garbage, alg none, expired, a `sub`
 * that is not a string). For every case:
 * - a complete answer within the time limit: a 2xx (an SSE stream, a poll answer, JSON) or a 4xx
 *   `{error: {code, message}}`, never a 5xx, never a bare response;
 * - no subscriber is left in the hub once the answer is complete (a HEAD or a refused subscribe holds none, a closed
 *   stream is removed);
 * - the history is unchanged (subscribing and refusals never publish);
 * - GET /healthz still answers 200.
 */
import fc from 'fast-check';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { abbreviate, expectAlive, fcParams, printable, publishSentinel } from './helpers/fuzz.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { runCleanup, until } from './helpers/lifecycle.js';
import { buildRequest, contractBreach, rawExchange, type RawResponse } from './helpers/raw-http.js';
import type { Socket } from 'node:net';

const STREAMS = ['broadcast', 'user:u1', 'user:u2'];

interface Case {
  method: string;
  target: string;
  headers: [string, string][];
}
const show = (c: Case) =>
  `${c.method} ${abbreviate(c.target, 300)}${c.headers.length ? ` ${JSON.stringify(c.headers.map(([k, v]) => [k, abbreviate(v, 100)]))}` : ''}`;

/** Waits until the hub holds `n` subscribers; the failure names how many it still holds. */
async function hubBackTo(gw: TestGateway, n: number, when: string, timeoutMs: number): Promise<void> {
  await until(() => gw.hub.size === n, `the hub back at ${n} subscribers ${when}`, timeoutMs).catch((err: Error) => {
    throw new Error(`${err.message} (it holds ${gw.hub.size})`);
  });
}

/** Sends `c` and checks the contract; returns the answer. Leaves the connection open until the hub has been checked. */
async function exchange(
  gw: TestGateway,
  c: Case,
  allowed: (s: number) => boolean = (s) => (s >= 200 && s < 300) || (s >= 400 && s < 500),
): Promise<RawResponse> {
  const before = await Promise.all(STREAMS.map((s) => gw.broker.lastSeq(s)));
  const hubBefore = gw.hub.size;
  let socket: Socket | undefined;
  const r = await rawExchange(gw.port, buildRequest(c.method, c.target, c.headers), {
    timeoutMs: 3000,
    head: c.method === 'HEAD',
    keepOpen: (s) => (socket = s),
  });
  try {
    expect(contractBreach(r, allowed), show(c)).toBeUndefined();
    if (r.streaming) {
      expect(c.method, `a stream answered ${show(c)}`).toBe('GET');
      expect(r.body, `SSE stream for ${show(c)}`).toMatch(/^retry: \d+\n/);
    } else {
      // A complete answer (HEAD, refusal, poll answer) leaves no subscriber behind, even on a kept-alive connection.
      await hubBackTo(gw, hubBefore, `after ${show(c)}`, 1000);
    }
  } finally {
    socket?.destroy();
  }
  // A stream that was open is removed once its connection is gone.
  await hubBackTo(gw, hubBefore, `once ${show(c)} closed`, 2000);
  expect(await Promise.all(STREAMS.map((s) => gw.broker.lastSeq(s))), `history after ${show(c)}`).toEqual(before);
  await expectAlive(gw.port, show(c));
  return r;
}

/** A query value: arbitrary unicode, percent garbage, near-valid cursors and user ids. */
function queryValue(epoch: string): fc.Arbitrary<{ raw: string } | { enc: string }> {
  const num = fc.oneof(fc.nat(5), fc.constantFrom('999999999999999', '9999999999999999999999', '-1', '01', '1e3', '0x1', '', ' 1', '1.5', 'NaN'));
  const cursor = fc
    .tuple(
      fc.oneof(fc.constant(epoch), fc.constantFrom('other', '', 'x'.repeat(65), 'é', epoch.toUpperCase())),
      num,
      num,
      fc.constantFrom('.', '..', ',', '%2E'),
    )
    .map(([e, u, b, dot]) => `${e}${dot}${u}${dot}${b}`);
  return fc.oneof(
    fc.string({ unit: 'binary', maxLength: 40 }).map((enc) => ({ enc })),
    fc.constantFrom('u1', 'u2', 'a b', 'é', '\u0000', '', 'x'.repeat(201), '0', 'true', '-1', 'Infinity', '1e309', '0.1', 'NaN').map((enc) => ({ enc })),
    cursor.map((enc) => ({ enc })),
    // Written into the request-target as is: malformed escapes and characters a client should have encoded.
    fc.constantFrom('%', '%ZZ', '%00', '%E0%A4%A', '%u0041', '%%', 'a+b', '%2', '%C0%AF', '\'"<>', '{}', '|', '\\', '^', '`').map((raw) => ({ raw })),
  );
}

function queryString(epoch: string): fc.Arbitrary<string> {
  const key = fc.oneof(
    fc.constantFrom('user', 'cursor', 'lastEventId', 'timeout', 'token', 'unread'),
    fc.string({ maxLength: 6 }).map(encodeURIComponent),
    fc.constantFrom('user[]', '%ZZ', '', 'USER'),
  );
  return fc
    .array(fc.tuple(key, queryValue(epoch)), { maxLength: 5 })
    .map((pairs) => pairs.map(([k, v]) => `${k}=${'raw' in v ? v.raw : encodeURIComponent(v.enc)}`).join('&'));
}

describe('GET surfaces under fuzzed input', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    // Long-polls are held at most 200 ms, so a poll that is accepted answers well inside the time limit.
    gw = await startTestGateway({ pollTimeout: '100ms' }, { pollTimeoutMaxMs: 200 });
    // Some history, so that cursors point inside, at and past it.
    for (let i = 0; i < 3; i++) await publishSentinel(gw.url, 'u1', `seed ${i}`);
  });
  afterAll(runCleanup);

  it('query strings on /events, /poll, /notifications and /ws (user, cursor, lastEventId, timeout, token, unread)', async () => {
    const c = fc
      .tuple(fc.constantFrom('GET', 'HEAD'), fc.constantFrom('/events', '/poll', '/notifications', '/ws', '/healthz', '/readyz'), queryString(gw.epoch))
      .map(([method, path, q]) => printable<Case>({ method, target: q ? `${path}?${q}` : path, headers: [] }, show));
    await fc.assert(
      fc.asyncProperty(c, (x) => exchange(gw, x).then(() => {})),
      fcParams(250, 15_000),
    );
  }, 40_000);

  it('Last-Event-ID header on /events (any bytes a header may carry) and cursors in every resume parameter', async () => {
    const headerValue = fc.oneof(
      fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((n) => String.fromCharCode(n)), maxLength: 80 }),
      fc.tuple(fc.nat(5), fc.nat(5)).map(([u, b]) => gw.cursor(u, b)),
      fc.constantFrom(gw.cursor(999_999, 0), gw.cursor(0, 999_999), `${gw.epoch}.1`, `${gw.epoch}.1.2.3`, 'x'.repeat(4000), '\t', 'é'),
    );
    const c = fc
      .tuple(fc.constantFrom('/events?user=u1', '/events', '/events?user=u2&lastEventId=zz'), headerValue)
      .map(([target, v]) => printable<Case>({ method: 'GET', target, headers: [['Last-Event-ID', Buffer.from(v, 'utf8').toString('latin1')]] }, show));
    await fc.assert(
      fc.asyncProperty(c, (x) => exchange(gw, x).then(() => {})),
      fcParams(150),
    );
  }, 30_000);

  it('paths and methods: percent-escapes, dot segments, long paths, unknown methods, HEAD on every route', async () => {
    const segment = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 12 }).map(encodeURIComponent),
      fc.constantFrom('%ZZ', '%', '%E0%A4%A', '%00', '%2F', '..', '.', '', '%2e%2e', 'x'.repeat(3000), '%C0%80', '%FF'),
    );
    const path = fc.oneof(
      segment.map((s) => `/notifications/${s}/read`),
      fc.array(segment, { minLength: 1, maxLength: 4 }).map((ss) => `/${ss.join('/')}`),
      fc.constantFrom(
        '/events',
        '/poll',
        '/ws',
        '/publish',
        '/notifications',
        '/metrics',
        '/healthz',
        '/readyz',
        '/',
        '//events',
        '/events/',
        '/events/../healthz',
        '/EVENTS',
      ),
    );
    const c = fc
      .tuple(
        fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'FOO'),
        path,
        fc.constantFrom('', '?user=u1', '?user=%ZZ', '?timeout=0'),
      )
      .map(([method, p, q]) => {
        const headers: [string, string][] =
          method === 'POST' || method === 'PUT' || method === 'PATCH'
            ? [
                ['Content-Type', 'application/json'],
                ['Content-Length', '0'],
              ]
            : [];
        return printable<Case>({ method, target: p + q, headers }, show);
      });
    await fc.assert(
      fc.asyncProperty(c, async (x) => {
        const r = await exchange(gw, x);
        if (/^\/notifications\/[^/]*%(?![0-9A-Fa-f]{2})/.test(x.target) && x.method === 'POST') expect(r.status, show(x)).toBe(400);
      }),
      fcParams(250, 15_000),
    );
  }, 40_000);

  // Issue 7: `POST /notifications/%ZZ/read` was answered 500.
  it('POST /notifications/%ZZ/read is 400 with a JSON error', async () => {
    const r = await exchange(gw, { method: 'POST', target: '/notifications/%ZZ/read?user=u1', headers: [['Content-Length', '0']] });
    expect(r.status).toBe(400);
  });

  // Issue 7: HEAD /events was answered with raw SSE bytes and no status line, and stayed counted as a subscriber.
  it('HEAD /events gets a status line and headers, no body, and holds no subscription', async () => {
    const r = await exchange(gw, { method: 'HEAD', target: '/events?user=u1', headers: [] });
    expect(r.status).toBe(200);
    expect(r.raw).toMatch(/^HTTP\/1\.1 200 /);
    expect(r.raw.slice(r.raw.indexOf('\r\n\r\n') + 4)).toBe('');
  });
});

// Issue 7: a head or a body that never finishes held the socket for Node's 60 s / 300 s, then got a bare 400.
describe('requests that never finish', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({}, { headersTimeoutMs: 500, requestTimeoutMs: 1000 });
  });
  afterAll(runCleanup);

  it('a stalled head and a stalled body are answered 408 with a JSON error within the timeouts, others are served meanwhile, nothing is stored', async () => {
    const before = await Promise.all(STREAMS.map((s) => gw.broker.lastSeq(s)));
    const started = Date.now();
    const stalled = Promise.all([
      rawExchange(gw.port, Buffer.from('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: '), { timeoutMs: 5000 }),
      rawExchange(
        gw.port,
        buildRequest(
          'POST',
          '/publish',
          [
            ['Content-Type', 'application/json'],
            ['Content-Length', '100'],
          ],
          '{"user":"u1","notification":',
        ),
        { timeoutMs: 5000 },
      ),
    ]);
    await expectAlive(gw.port, 'two stalled requests');
    const [headOnly, bodyShort] = await stalled;
    // requestTimeout plus Node's check interval (the gateway sets it to at most 1 s), plus slack for a loaded machine.
    expect(Date.now() - started).toBeLessThan(1000 + 1000 + 1500);
    for (const [what, r] of [
      ['stalled head', headOnly],
      ['stalled body', bodyShort],
    ] as const) {
      expect(contractBreach(r), `${what}: ${r.raw.slice(0, 200)}`).toBeUndefined();
      expect(r.status, what).toBe(408);
    }
    expect(await Promise.all(STREAMS.map((s) => gw.broker.lastSeq(s)))).toEqual(before);
  });
});

describe('JWT identities under fuzzed tokens', () => {
  const SECRET = 'fuzz-secret-fuzz-secret-fuzz-secret';
  const key = new TextEncoder().encode(SECRET);
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway({ auth: 'jwt', jwtSecret: SECRET, pollTimeout: '100ms' }, { pollTimeoutMaxMs: 200 });
  });
  afterAll(runCleanup);

  const USER_ID = /^[A-Za-z0-9_.@:+=-]{1,200}$/;
  type Token = { token: string; validSub?: string; why: string };
  const sign = (claims: Record<string, unknown>, alg = 'HS256') => new SignJWT(claims).setProtectedHeader({ alg }).setIssuedAt().sign(key);

  it('only a token signed with the secret whose sub is a string user id opens a stream; anything else is 401 JSON', async () => {
    const sub = fc.oneof(
      fc.constantFrom('u1', 'alice@example.com', 'a:b+c=d', 'x'.repeat(200)),
      fc.constantFrom('', 'a b', 'é', 'u\u0000', 'x'.repeat(201)),
      fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.constant('u1'), { maxLength: 2 }), fc.constant({ id: 'u1' })),
    );
    const tokenArb: fc.Arbitrary<Promise<Token>> = fc.oneof(
      sub.map(async (s) => ({
        token: await sign({ sub: s }),
        validSub: typeof s === 'string' && USER_ID.test(s) ? s : undefined,
        why: `sub ${JSON.stringify(s)}`,
      })),
      fc.constant(sign({}).then((token) => ({ token, why: 'no sub' }))),
      fc.constant(sign({ sub: 'u1', exp: 1 }).then((token) => ({ token, why: 'expired' }))),
      fc.constant(
        Promise.resolve({
          token: `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"u1"}').toString('base64url')}.`,
          why: 'alg none',
        }),
      ),
      fc.constant(
        new SignJWT({ sub: 'u1' })
          .setProtectedHeader({ alg: 'HS256' })
          .sign(new TextEncoder().encode('another-secret-another-secret-xx'))
          .then((token) => ({ token, why: 'other secret' })),
      ),
      fc
        .string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((n) => String.fromCharCode(n)), maxLength: 60 })
        .map(async (token) => ({ token, why: 'garbage' })),
    );
    const where = fc.constantFrom('header', 'query', 'both-mismatch');
    const path = fc.constantFrom('/poll?timeout=0', '/events?x=1', '/notifications?unread=1');
    await fc.assert(
      fc.asyncProperty(tokenArb, where, path, async (tp, w, p) => {
        const t = await tp;
        const headers: [string, string][] = w === 'query' ? [] : [['Authorization', `Bearer ${t.token}`]];
        const target = w === 'header' ? p : `${p}&token=${encodeURIComponent(w === 'query' ? t.token : 'garbage')}`;
        const r = await exchange(gw, { method: 'GET', target, headers });
        const what = `${t.why} via ${w} on ${p}: ${r.status} ${r.body.slice(0, 200)}`;
        if (t.validSub !== undefined) expect(r.status, what).toBe(200);
        else expect(r.status, what).toBe(401);
      }),
      fcParams(150, 15_000),
    );
  }, 30_000);

  // Issue 7: SSE requests whose client went away while the token was being verified stayed in the hub for good,
  // counted against --max-conns and in every broadcast's `delivered`.
  it('100 SSE requests reset by the client during or right after token verification leave no subscriber behind', async () => {
    const token = await sign({ sub: 'u1' });
    expect(gw.hub.size).toBe(0);
    await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        rawExchange(gw.port, buildRequest('GET', i % 2 ? `/events?token=${token}` : '/events', i % 2 ? [] : [['Authorization', `Bearer ${token}`]]), {
          rstAfterMs: i % 4,
        }),
      ),
    );
    // A request sent after them that completes its subscription: the earlier ones have been verified by then.
    const after = await rawExchange(gw.port, buildRequest('GET', '/events', [['Authorization', `Bearer ${token}`]]), { timeoutMs: 3000 });
    expect(after.streaming, after.raw.slice(0, 200)).toBe(true);
    await hubBackTo(gw, 0, 'after 100 reset SSE requests', 3000);
    const r = await rawExchange(gw.port, buildRequest('GET', '/readyz', [['Connection', 'close']]));
    expect(JSON.parse(r.body)).toEqual({ status: 'ready', connections: 0 });
    await expectAlive(gw.port, '100 reset SSE requests');
  });

  // Issue 7: a token whose sub is a JSON number was accepted; RFC 7519 `sub` is a string.
  it('a token whose sub is the number 42 is refused with 401', async () => {
    const token = await sign({ sub: 42 });
    const r = await exchange(gw, { method: 'GET', target: '/poll?timeout=0', headers: [['Authorization', `Bearer ${token}`]] });
    expect(r.status, r.body).toBe(401);
  });
});
