/**
 * Chaos under load, against the built binary in its own process: 300 healthy subscribers (150 SSE, 100 WebSocket,
 * 50 long-poll loops, over 10 users and the broadcast stream) while, in every publish round, malformed requests
 * (garbage, a 20 KB header, NUL in a header, refused publishes: deep nesting in a batch, text/plain, bad user ids),
 * aborted WebSocket upgrades (reset before and after the 101), streams reset mid-flight and stalled readers (raw
 * sockets that resume from the start of a 1.2 MB history and never read) hit the gateway.
 *
 * What must hold: the process stays up and answers /healthz; every healthy subscriber gets every event published on
 * its streams after it joined exactly once, in publish order, and nothing else (a refused publish leaks nothing, live
 * or through the history the poll loops read); no healthy connection is closed. Every wait is bounded.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from './helpers/cli.js';
import { spawnGateway, type SpawnedGateway } from './helpers/fuzz.js';
import { http } from './helpers/http.js';
import { onCleanup, runCleanup, until } from './helpers/lifecycle.js';
import { poll } from './helpers/poll.js';
import { buildRequest, rawExchange } from './helpers/raw-http.js';
import { openSse, type SseClient } from './helpers/sse-client.js';
import { openWs, type WsClient } from './helpers/ws-client.js';

const USERS = Array.from({ length: 10 }, (_, i) => `c${i}`);
const ROUNDS = 40;
const STALLED = 20;

interface Healthy {
  kind: 'sse' | 'ws' | 'poll';
  user: string;
  got: () => string[];
  /** The connection ended (a healthy one never should). */
  ended: () => boolean;
  /** What went wrong on it, if anything. */
  problems?: () => string[];
  stop?: () => void;
}

function sseHealthy(c: SseClient, user: string): Healthy {
  return {
    kind: 'sse',
    user,
    got: () => c.inbox.items.flatMap((e) => (e.type === 'notification' ? [e.json.id] : e.type === 'notifications:batch' ? e.json.map((n: any) => n.id) : [])),
    ended: () => c.closed,
  };
}

function wsHealthy(c: WsClient, user: string): Healthy {
  return {
    kind: 'ws',
    user,
    got: () =>
      c.inbox.items.flatMap((f) =>
        f.type === 'notification' ? [f.notification.id] : f.type === 'notifications:batch' ? f.notifications.map((n: any) => n.id) : [],
      ),
    ended: () => c.close_ !== undefined,
  };
}

/** A long-poll loop from the cursor of its first answer; records ids and any reset. */
async function pollHealthy(base: string, user: string): Promise<Healthy> {
  const first = await poll(base, { user, timeout: 0 });
  expect(first.status, first.text).toBe(200);
  let cursor = first.body.cursor;
  const ids: string[] = [];
  const problems: string[] = [];
  let stopped = false;
  const ctl = new AbortController();
  const loop = (async () => {
    while (!stopped) {
      try {
        const r = await poll(base, { user, cursor, timeout: 2, signal: ctl.signal });
        if (r.status !== 200) problems.push(`HTTP ${r.status} ${r.text.slice(0, 100)}`);
        else {
          if (r.body.reset) problems.push(`reset ${JSON.stringify(r.body.reset)}`);
          ids.push(...r.body.notifications.map((n) => n.id as string));
          cursor = r.body.cursor;
        }
      } catch (err) {
        if (!stopped) problems.push(String(err));
      }
    }
  })();
  const stop = () => {
    stopped = true;
    ctl.abort();
  };
  onCleanup(async () => {
    stop();
    await loop;
  });
  return { kind: 'poll', user, got: () => ids, ended: () => problems.length > 0, problems: () => problems, stop };
}

/** A raw SSE request resuming from `cursor` that never reads a byte (the kernel buffers fill, then the server's). */
function stalledReader(port: number, user: string, cursor: string): Socket {
  const s = connect({ host: '127.0.0.1', port });
  s.on('error', () => {});
  s.once('connect', () => {
    s.write(
      buildRequest('GET', `/events?user=${user}`, [
        ['Last-Event-ID', cursor],
        ['Accept', 'text/event-stream'],
      ]),
    );
    s.pause();
  });
  onCleanup(() => s.destroy());
  return s;
}

const upgrade = (target: string) =>
  buildRequest('GET', target, [
    ['Upgrade', 'websocket'],
    ['Connection', 'Upgrade'],
    ['Sec-WebSocket-Key', randomBytes(16).toString('base64')],
    ['Sec-WebSocket-Version', '13'],
  ]);

/** The malformed traffic of one round `k`: every request answered (or reset) within its own time limit. */
function chaosRound(port: number, k: number): Promise<unknown> {
  const u = USERS[k % USERS.length]!;
  const note = (title: string) => ({ type: 'comment', title });
  const deep = `{"user":"${u}","notification":{"type":"comment","title":"deep","data":{"k":${'['.repeat(8000)}${']'.repeat(8000)}}}}`;
  const post = (body: string, type = 'application/json') =>
    buildRequest(
      'POST',
      '/publish',
      [
        ['Content-Type', type],
        ['Content-Length', String(Buffer.byteLength(body))],
        ['Connection', 'close'],
      ],
      body,
    );
  const malformed = [
    Buffer.from(`GET http://[ HTTP/1.1\r\n\r\n`),
    randomBytes(64),
    buildRequest('GET', '/healthz', [['X-Big', 'a'.repeat(20_000)]]),
    buildRequest('GET', '/healthz', [['X-Nul', 'a\x00b']]),
    post(`[${JSON.stringify({ user: u, notification: note('first of a refused batch') })},${deep}]`),
    post(JSON.stringify({ user: u, notification: note('text/plain') }), 'text/plain'),
    post(`[${JSON.stringify({ user: u, notification: note('ok item') })},${JSON.stringify({ user: 'a b', notification: note('bad user') })}]`),
    post(JSON.stringify({ broadcast: true, notification: { type: 'nope', title: 'x' } })),
    buildRequest('POST', '/notifications/%ZZ/read', [['Content-Length', '0']]),
    buildRequest('HEAD', `/events?user=${u}`),
  ];
  const tasks: Promise<unknown>[] = [];
  for (let i = 0; i < 3; i++) {
    const m = malformed[(k * 3 + i) % malformed.length]!;
    tasks.push(rawExchange(port, m, { timeoutMs: 3000, head: m.subarray(0, 4).toString() === 'HEAD' }));
  }
  // Upgrades refused (unknown path, bad cursor, bad user, bad target) and reset by the peer while refused.
  const refusedTargets = ['/nope', '/ws?cursor=bad', '/ws?user=a%20b', 'http://['];
  for (let i = 0; i < 3; i++) tasks.push(rawExchange(port, upgrade(refusedTargets[(k + i) % refusedTargets.length]!), { rstAfterMs: (k + i) % 4 }));
  // An accepted upgrade reset right after the 101, and an SSE stream reset a moment after it opened.
  tasks.push(rawExchange(port, upgrade(`/ws?user=${u}`), { rstAfterMs: 1 + (k % 5) }));
  tasks.push(rawExchange(port, buildRequest('GET', `/events?user=${u}`), { rstAfterMs: 2 + (k % 5) }));
  return Promise.all(tasks);
}

describe('chaos under load', () => {
  let gw: SpawnedGateway;
  let exitCode: number | string | undefined;

  beforeAll(async () => {
    await ensureBuilt();
    gw = await spawnGateway(['--max-buffer', '256kb', '--history', '2000']);
    void gw.proc.exited.then((c) => (exitCode = c));
  }, 120_000);
  afterAll(runCleanup);

  it('300 subscribers lose nothing while malformed requests, aborted upgrades, resets and stalled readers hit the gateway', async () => {
    // A history worth replaying: 300 broadcast events of 4 KB (1.2 MB) for the stalled readers to resume through.
    for (let i = 0; i < 30; i++) {
      const batch = Array.from({ length: 10 }, (_, j) => ({
        broadcast: true,
        notification: { type: 'system', title: `old ${i * 10 + j}`, body: 'o'.repeat(4000) },
      }));
      const r = await http(`${gw.url}/publish`, { body: batch });
      expect(r.status, r.text).toBe(202);
    }
    const epoch = (await poll(gw.url, { timeout: 0 })).body.cursor.split('.')[0]!;

    const healthy: Healthy[] = [];
    const opens: Promise<Healthy>[] = [];
    for (let i = 0; i < 300; i++) {
      const user = USERS[i % USERS.length]!;
      if (i % 6 < 3)
        opens.push(
          openSse(`${gw.url}/events?user=${user}`, { timeoutMs: 10_000 }).then(async (c) => (await c.next('init', { timeoutMs: 10_000 }), sseHealthy(c, user))),
        );
      else if (i % 6 < 5)
        opens.push(
          openWs(`${gw.url.replace(/^http/, 'ws')}/ws?user=${user}`, { timeoutMs: 10_000 }).then(
            async (c) => (await c.next('init', { timeoutMs: 10_000 }), wsHealthy(c, user)),
          ),
        );
      else opens.push(pollHealthy(gw.url, user));
      if (opens.length % 50 === 0) healthy.push(...(await Promise.all(opens.splice(0))));
    }
    healthy.push(...(await Promise.all(opens)));
    const count = (kind: Healthy['kind']) => healthy.filter((h) => h.kind === kind).length;
    expect({ sse: count('sse'), ws: count('ws'), poll: count('poll') }).toEqual({ sse: 150, ws: 100, poll: 50 });

    // Publish rounds, each alongside its round of chaos; every STALLED/ROUNDS round opens one more stalled reader.
    const published: { id: string; stream: string }[] = [];
    const stalled: Socket[] = [];
    for (let k = 0; k < ROUNDS; k++) {
      if (k % Math.ceil(ROUNDS / STALLED) === 0) stalled.push(stalledReader(gw.port, `stall${k}`, `${epoch}.0.0`));
      const user = USERS[k % USERS.length]!;
      const users = [USERS[(k * 3 + 1) % USERS.length]!, USERS[(k * 7 + 2) % USERS.length]!];
      const items = [
        { broadcast: true, notification: { type: 'alert', title: `b${k}` } },
        { user, notification: { type: 'comment', title: `u${k}` } },
        { users, notification: { type: 'mention', title: `m${k}` } },
      ];
      const [r] = await Promise.all([http<{ ids: string[] }>(`${gw.url}/publish`, { body: items }), chaosRound(gw.port, k)]);
      expect(r.status, r.text).toBe(202);
      const streams = ['broadcast', `user:${user}`, ...users.map((x) => `user:${x}`)];
      expect(r.body.ids).toHaveLength(streams.length);
      r.body.ids.forEach((id, i) => published.push({ id, stream: streams[i]! }));
      if (exitCode !== undefined) throw new Error(`gateway exited (${exitCode}) during round ${k}; stderr:\n${gw.proc.stderr().slice(-2000)}`);
    }
    await gw.expectAlive('the chaos rounds');

    const expectedFor = (user: string) => published.filter((p) => p.stream === 'broadcast' || p.stream === `user:${user}`).map((p) => p.id);
    const complete = () => healthy.every((h) => h.got().length >= expectedFor(h.user).length);
    await until(complete, 'every healthy subscriber to have all its events', 8_000).catch(() => {});
    const wrong = healthy
      .map((h, i) => ({ i, h, want: expectedFor(h.user), got: h.got() }))
      .filter(({ want, got, h }) => got.length !== want.length || got.some((id, j) => id !== want[j]) || h.ended());
    const describeWrong = wrong.slice(0, 5).map(({ i, h, want, got }) => {
      const missing = want.filter((id) => !got.includes(id));
      const extra = got.filter((id) => !want.includes(id));
      return `#${i} ${h.kind} ${h.user}: got ${got.length}/${want.length}, missing ${missing.slice(0, 3).join(' ')}${missing.length > 3 ? '…' : ''}, extra ${extra.slice(0, 3).join(' ')}, ended ${h.ended()} ${h.problems?.().slice(0, 2).join('; ') ?? ''}`;
    });
    expect(
      describeWrong,
      `${wrong.length} of ${healthy.length} healthy subscribers did not get exactly their events in order; gateway stderr:\n${gw.proc.stderr().slice(-1500)}`,
    ).toEqual([]);
    expect(exitCode).toBeUndefined();
    await gw.expectAlive('the drain');
    for (const h of healthy) h.stop?.();
    expect(stalled.length).toBe(STALLED);
  }, 30_000);
});
