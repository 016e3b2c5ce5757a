/**
 * `notify publish` end to end against a real gateway started in-process on port 0: in-process through `run` with
 * fake streams (output and signals), and through the built binary for exit codes.
 */
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../src/cli.js';
import { ensureBuilt } from './helpers/build.js';
import type { Io } from '../src/io.js';
import { resolveServeOptions } from '../src/server/config.js';
import { startGateway, type Gateway } from '../src/server/gateway.js';
import { silentLogger } from '../src/util/log.js';
import { createPublishClient, interpret } from '../src/publish/http-client.js';
import { resolvePublishOptions } from '../src/publish/config.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface FakeIo {
  io: Io;
  stdout(): string;
  stderr(): string;
  signal(s: 'SIGINT' | 'SIGTERM'): void;
  /** Resolves when stderr has a chunk matching `re` (bounded by the test timeout). */
  stderrMatches(re: RegExp): Promise<void>;
}

function fakeIo(env: Record<string, string | undefined> = {}): FakeIo {
  const out: string[] = [];
  const err: string[] = [];
  let waiters: { re: RegExp; resolve: () => void }[] = [];
  const sink = (into: string[], check = false) =>
    new Writable({
      write(chunk, _enc, cb) {
        into.push(String(chunk));
        if (check) {
          const text = into.join('');
          waiters = waiters.filter((w) => (w.re.test(text) ? (w.resolve(), false) : true));
        }
        cb();
      },
    });
  const handlers = new Set<(s: 'SIGINT' | 'SIGTERM') => void>();
  return {
    io: {
      stdout: sink(out),
      stderr: sink(err, true),
      env,
      interactive: false,
      color: false,
      onSignal(h) {
        handlers.add(h);
        return () => handlers.delete(h);
      },
    },
    stdout: () => out.join(''),
    stderr: () => err.join(''),
    signal: (s) => [...handlers].forEach((h) => h(s)),
    stderrMatches: (re) => (re.test(err.join('')) ? Promise.resolve() : new Promise((resolve) => waiters.push({ re, resolve }))),
  };
}

async function cli(args: string[], env: Record<string, string | undefined> = {}) {
  const f = fakeIo(env);
  const code = await run(args, f.io);
  return { code, stdout: f.stdout(), stderr: f.stderr() };
}

/** The built binary, asynchronously (the gateway it talks to runs in this process). */
function bin(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [`${ROOT}bin/notify.js`, ...args], { env: { PATH: process.env.PATH, ...env }, timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** The user's own notifications (GET /notifications also lists the broadcast stream's), newest first. */
async function notificationsOf(gw: Gateway, user: string): Promise<{ id: string; title: string; userId?: string }[]> {
  const res = await fetch(`${gw.url}/notifications?user=${encodeURIComponent(user)}`);
  const { notifications } = (await res.json()) as { notifications: { id: string; title: string; userId?: string }[] };
  return notifications.filter((n) => n.userId === user);
}

async function broadcastsSeenBy(gw: Gateway, user: string): Promise<{ id: string; title: string; userId?: string }[]> {
  const res = await fetch(`${gw.url}/notifications?user=${encodeURIComponent(user)}`);
  const { notifications } = (await res.json()) as { notifications: { id: string; title: string; userId?: string }[] };
  return notifications.filter((n) => n.userId === undefined);
}

async function publishedTotal(gw: Gateway): Promise<number> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  let sum = 0;
  for (const m of text.matchAll(/^notify_published_total\{[^}]*\} (\d+)/gm)) sum += Number(m[1]);
  return sum;
}

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise((r) => srv.close(r));
  return port;
}

let gw: Gateway;
let keyed: Gateway;

beforeAll(async () => {
  gw = await startGateway(resolveServeOptions({ port: '0' }), silentLogger);
  keyed = await startGateway(resolveServeOptions({ port: '0', publishKey: 'open-sesame' }), silentLogger);
  // The binary runs dist/: rebuild when a source is newer than its build.
  await ensureBuilt();
}, 120_000);

afterAll(async () => {
  await Promise.all([gw?.shutdown(), keyed?.shutdown()]);
});

describe('notify publish, one notification', () => {
  it('prints the id that a long-poll subscriber then receives', async () => {
    const init = (await (await fetch(`${gw.url}/poll?user=alice`)).json()) as { cursor: string };
    const r = await cli(['publish', '--url', gw.url, '--user', 'alice', '--type', 'comment', '--title', 'New comment', '--body', 'Ann replied']);
    expect(r.code).toBe(0);
    const m = /published to user alice: id (\S+); delivered to 0 live connections/.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    // The poll resumes after the cursor taken before the publish, so it answers with exactly what was published since.
    const next = (await (await fetch(`${gw.url}/poll?user=alice&cursor=${init.cursor}&timeout=5`)).json()) as {
      notifications: { id: string; title: string; body: string; type: string; userId: string }[];
    };
    expect(next.notifications).toHaveLength(1);
    expect(next.notifications[0]).toMatchObject({ id: m![1], title: 'New comment', body: 'Ann replied', type: 'comment', userId: 'alice' });
  });

  it('--json prints {url, ids, delivered} on stdout; several users make one request with one id each', async () => {
    const r = await cli(['publish', '--url', gw.url, '--user', 'bob', 'carol', '--user', 'dave', '--data', '{"orderId":7}', '--json']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { url: string; ids: string[]; delivered: number };
    expect(out.url).toBe(gw.url);
    expect(out.ids).toHaveLength(3);
    expect(out.delivered).toBe(0);
    const [bob, carol, dave] = await Promise.all(['bob', 'carol', 'dave'].map((u) => notificationsOf(gw, u)));
    expect([bob![0]!.id, carol![0]!.id, dave![0]!.id]).toEqual(out.ids);
    expect(bob![0]).toMatchObject({ title: 'notification 1', type: 'system', data: { orderId: 7 } });
  });

  it('counts live connections in delivered (an SSE subscriber is open)', async () => {
    const ac = new AbortController();
    const res = await fetch(`${gw.url}/events?user=erin`, { signal: ac.signal });
    const reader = res.body!.getReader();
    await reader.read(); // retry: / init: the subscription is live
    try {
      const r = await cli(['publish', '--url', gw.url, '--user', 'erin', '--json']);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout).delivered).toBe(1);
    } finally {
      ac.abort();
    }
  });

  it('--broadcast reaches the broadcast stream; NOTIFY_URL is honoured', async () => {
    const r = await cli(['publish', '--broadcast', '--type', 'alert', '--title', 'Maintenance', '--json'], { NOTIFY_URL: gw.url });
    expect(r.code).toBe(0);
    const { ids } = JSON.parse(r.stdout) as { ids: string[] };
    const seen = await broadcastsSeenBy(gw, 'anyone');
    expect(seen.find((n) => n.id === ids[0])).toMatchObject({ title: 'Maintenance' });
  });
});

describe('notify publish --count/--rate', () => {
  it('--count 20 --rate 200/s sends exactly 20 on schedule and summarises', async () => {
    const before = await publishedTotal(gw);
    const r = await cli(['publish', '--url', gw.url, '--user', 'frank', '--count', '20', '--rate', '200/s', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s).toMatchObject({ count: 20, rate: 200, sent: 20, accepted: 20, failed: 0, failures: {}, interrupted: false });
    expect(s.latency.count).toBe(20);
    expect(s.latency.p99).toBeGreaterThanOrEqual(s.latency.p50);
    // 20 sends at 5 ms intervals cannot finish before the 20th intended time (95 ms).
    expect(s.durationMs).toBeGreaterThanOrEqual(95);
    expect(s.achievedRate).toBeGreaterThan(0);
    expect(await publishedTotal(gw)).toBe(before + 20);
    const titles = (await notificationsOf(gw, 'frank')).map((n) => n.title).sort();
    expect(titles).toEqual(Array.from({ length: 20 }, (_, i) => `notification ${i + 1}`).sort());
  });

  it('prints a human summary on stderr without --json', async () => {
    const r = await cli(['publish', '--url', gw.url, '--user', 'gina', '--count', '5', '--title', 'same']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/published 5 to user gina in [\d.]+s \(as fast as possible, achieved [\d.]+\/s\)/);
    expect(r.stderr).toMatch(/sent 5 {2}accepted 5 {2}failed 0/);
    expect(r.stderr).toMatch(/202 latency from intended send time: p50 [\d.]+ms {2}p99 [\d.]+ms/);
  });

  it('Ctrl-C stops the schedule and still prints the summary', async () => {
    const f = fakeIo();
    const done = run(['publish', '--url', gw.url, '--user', 'hank', '--count', '100000', '--rate', '50/s', '--json'], f.io);
    await f.stderrMatches(/sent \d+\/100000/); // first progress line, after 1s
    f.signal('SIGINT');
    expect(await done).toBe(0);
    const s = JSON.parse(f.stdout());
    expect(s.interrupted).toBe(true);
    expect(s.sent).toBeGreaterThan(0);
    expect(s.sent).toBeLessThan(100000);
    expect(s.accepted).toBe(s.sent);
    expect((await notificationsOf(gw, 'hank')).length).toBe(s.sent);
  }, 15_000);
});

describe('notify publish usage errors: exit 2 naming the flag', () => {
  const cases: [string[], RegExp][] = [
    [['--user', '1', '--data', 'x'], /--data must be a JSON object \(got "x"\)/],
    [['--user', '1', '--data', '[1,2]'], /--data must be a JSON object/],
    [[], /give --user ID \(one or more\) or --broadcast/],
    [['--user', '1', '--broadcast'], /--user and --broadcast exclude each other/],
    [['--user', '1', '--count', '0'], /--count must be >= 1 \(got 0\)/],
    [['--user', '1', '--count', 'many'], /--count must be a whole number \(got "many"\)/],
    [['--user', '1', '--rate', 'fast'], /--rate must be a rate like 20\/s or 600\/m \(got "fast"\)/],
    [['--user', '1', '--rate', '0/s'], /--rate must be > 0 \(got "0\/s"\)/],
    [['--user', '1', '--url', 'not a url'], /--url must be an http:\/\/ or https:\/\/ URL \(got "not a url"\)/],
    [['--user', '1', '--url', 'ftp://x'], /--url must be an http:\/\/ or https:\/\/ URL/],
    [['--user', '1', '--type', 'nope'], /--type must be one of comment, mention, order, system, alert \(got "nope"\)/],
    [['--user', ''], /--user must not be empty/],
  ];
  it.each(cases)('publish %j', async (args, message) => {
    const r = await cli(['publish', ...(args.includes('--url') ? [] : ['--url', gw.url]), ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('the binary exits 2 too', async () => {
    const r = await bin(['publish', '--user', '1', '--data', 'x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--data must be a JSON object (got "x")');
  }, 20_000);

  it('--help shows examples', async () => {
    const r = await cli(['publish', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Examples:');
    expect(r.stdout).toContain('--count 1000 --rate 200/s');
  });
});

describe('notify publish runtime failures: exit 1 with a clear message', () => {
  it('server unreachable (binary)', async () => {
    const port = await closedPort();
    const r = await bin(['publish', '--url', `http://127.0.0.1:${port}`, '--user', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot reach http://127.0.0.1:${port} (ECONNREFUSED): is notify serve running?`);
  }, 20_000);

  it('server unreachable with --count stops at the first failure instead of failing N times', async () => {
    const port = await closedPort();
    const r = await cli(['publish', '--url', `http://127.0.0.1:${port}`, '--user', '1', '--count', '1000', '--rate', '10/s']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot reach http://127.0.0.1:${port} (ECONNREFUSED)`);
  });

  it('missing or wrong publish key: 401 -> exit 1 naming the flag; the right key (env) works', async () => {
    const none = await bin(['publish', '--url', keyed.url, '--user', '1']);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain(`${keyed.url} refused the publish key (401 E_PUBLISH_KEY): missing publish key`);
    expect(none.stderr).toContain('--publish-key');
    const wrong = await cli(['publish', '--url', keyed.url, '--user', '1', '--publish-key', 'guess']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('refused the publish key (401 E_PUBLISH_KEY): wrong publish key');
    const right = await bin(['publish', '--url', keyed.url, '--user', 'ivy', '--json'], { NOTIFY_PUBLISH_KEY: 'open-sesame' });
    expect(right.code, right.stderr).toBe(0);
    expect((await notificationsOf(keyed, 'ivy'))[0]!.id).toBe(JSON.parse(right.stdout).ids[0]);
  }, 30_000);

  it('a 400 from the server is reported with its code and message', async () => {
    const r = await cli(['publish', '--url', gw.url, '--user', '1', '--title', 'x'.repeat(1001)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/rejected the notification \(400 E_INVALID\): notification\.title/);
  });
});

describe('publish client', () => {
  it('returns typed outcomes: 202, http-400 with the server code, ECONNREFUSED, http-401', async () => {
    const client = createPublishClient({ url: `${gw.url}/` });
    const key = createPublishClient({ url: keyed.url, publishKey: 'nope' });
    const down = createPublishClient({ url: `http://127.0.0.1:${await closedPort()}` });
    try {
      expect(client.url).toBe(gw.url);
      const ok = await client.publish([
        { user: 'jo', notification: { type: 'order', title: 'a' } },
        { broadcast: true, notification: { type: 'system', title: 'b' } },
      ]);
      expect(ok.ok && ok.ids.length).toBe(2);
      const bad = await client.publishRaw('{"user":"jo","notification":{"type":"weird","title":"x"}}');
      expect(bad).toMatchObject({ ok: false, cause: 'http-400', status: 400, code: 'E_INVALID' });
      expect(await key.publish({ user: 'jo', notification: { type: 'system', title: 'x' } })).toMatchObject({
        ok: false,
        cause: 'http-401',
        code: 'E_PUBLISH_KEY',
      });
      expect(await down.publish({ user: 'jo', notification: { type: 'system', title: 'x' } })).toMatchObject({ ok: false, cause: 'ECONNREFUSED' });
    } finally {
      await Promise.all([client.close(), key.close(), down.close()]);
    }
  });

  it('interprets odd answers without throwing', () => {
    expect(interpret(202, 'not json')).toMatchObject({ ok: false, cause: 'bad-response' });
    expect(interpret(503, '')).toMatchObject({ ok: false, cause: 'http-503', message: 'HTTP 503' });
    expect(interpret(413, '{"error":{"code":"E_TOO_LARGE","message":"too big"}}')).toMatchObject({
      cause: 'http-413',
      code: 'E_TOO_LARGE',
      message: 'too big',
    });
  });

  it('keeps a path prefix of the base URL', () => {
    expect(resolvePublishOptions({ url: 'http://h:1/api/', user: ['1'] }).url).toBe('http://h:1/api');
  });
});
