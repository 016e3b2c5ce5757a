/**
 * The probe publishers of target profiles (src/publish/probe-publishers.ts) against real servers: a node:http server
 * that records what it is sent, redis-server and nats-server (core and JetStream), each on a free loopback port.
 * What is checked is what reaches the server (bodies, channels, subjects, order, headers) and the outcome of every
 * item, refusals included: a failure the server certainly did not store says `stored: false`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { jwtVerify } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import type { Probe } from '../src/protocol/probe.js';
import type { ProbeItem, ProbePublisher } from '../src/publish/probe-publisher.js';
import { createProbePublisher, type ProbePublisherOptions } from '../src/publish/probe-publishers.js';
import { Publisher } from '../src/swarm/publisher.js';
import { targetSchema, type TargetProfile } from '../src/targets/schema.js';
import { freePort, type ChildServer } from './helpers/child-server.js';
import { listenForTest, onCleanup, runCleanup, until } from './helpers/lifecycle.js';
import { natsClient, natsSubscriber, startNats } from './helpers/nats.js';
import { redisSubscriber, startRedis } from './helpers/redis.js';

afterEach(runCleanup);

/**
 * Freezes a server (SIGSTOP): connections stay open and nothing is answered. Resolves once every thread of it has
 * stopped (a signal is delivered asynchronously; a thread running meanwhile could still answer). Thawed at cleanup,
 * before it is stopped.
 */
async function freeze(proc: ChildServer): Promise<void> {
  const pid = proc.proc.pid!;
  process.kill(pid, 'SIGSTOP');
  onCleanup(() => process.kill(pid, 'SIGCONT'));
  // /proc/PID/task/TID/stat: "TID (comm) STATE ..."; T is stopped.
  const stopped = () => readdirSync(`/proc/${pid}/task`).every((tid) => /\) T /.test(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')));
  await until(stopped, `${proc.name} stopped by SIGSTOP`);
}

const RUN = 'r1';
const SECRET = 'publish-side-secret-0123456789';

/** A profile with `publish` as given (and `payload` when given); the subscribe block is not used here. */
function profile(publish: Record<string, unknown>, payload?: string): TargetProfile {
  return targetSchema.parse({ schema: 'notify.target/1', name: 'test', subscribe: { sse: { url: '{base}/sse' } }, publish, ...(payload ? { payload } : {}) });
}

function publisher(p: TargetProfile, base = 'http://127.0.0.1:1', options: ProbePublisherOptions = {}): ProbePublisher {
  const pub = createProbePublisher(p, base, { timeoutMs: 5000, ...options });
  onCleanup(() => pub.destroy());
  return pub;
}

/** Probes seq from..from+n-1 of one stream: `user:<user>`, or broadcast without a user. */
function items(n: number, user?: string, from = 1): ProbeItem[] {
  const stream = user === undefined ? 'broadcast' : `user:${user}`;
  return Array.from({ length: n }, (_, i) => {
    const probe: Probe = { run: RUN, stream, seq: from + i, t: 1_700_000_000_000 + i };
    return user === undefined ? { probe, stream } : { probe, stream, user };
  });
}

/** The probe inside a notification rendered from the default payload template. */
const probeIn = (text: string): unknown => (JSON.parse(text) as { data: { probe: unknown } }).data.probe;

const ok = (n: number) => Array.from({ length: n }, () => ({ ok: true }));

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A server that records each request and answers `status` after `delayMs`; `maxInFlight` is the most it held at once. */
async function recorder(status = 201, delayMs = 0) {
  const received: Received[] = [];
  const state = { inFlight: 0, maxInFlight: 0 };
  const server = createServer((req, res) => {
    state.inFlight++;
    state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      received.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      setTimeout(() => {
        state.inFlight--;
        res.writeHead(status, { 'content-type': 'application/json' }).end('{"answer":"recorded"}');
      }, delayMs);
    });
  });
  const base = await listenForTest(server);
  return { base, received, state };
}

describe('http publisher', () => {
  const http = {
    url: '{base}/publish',
    headers: { 'X-Publish-Key': '', Authorization: 'Bearer {token}', 'X-Message': '{id}' },
    user: '{"user":"{user}","notification":{payload}}',
    broadcast: '{"broadcast":true,"notification":{payload}}',
  };

  it('batch each: one request per item, in order, each after the answer to the previous one', async () => {
    const srv = await recorder(201, 20);
    const pub = publisher(profile({ http }), srv.base, { token: (u) => `tok-${u}` });
    expect(pub.describe).toBe(`POST ${srv.base}/publish`);
    const sent = items(3, 'u1');
    expect(await pub.send(sent)).toEqual(ok(3));
    expect(srv.received).toHaveLength(3);
    expect(srv.state.maxInFlight).toBe(1);
    srv.received.forEach((r, i) => {
      expect(r).toMatchObject({ method: 'POST', url: '/publish' });
      const body = JSON.parse(r.body);
      expect(body.user).toBe('u1');
      expect(body.notification.data.probe).toEqual(sent[i]!.probe);
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers.authorization).toBe('Bearer tok-u1');
      expect(r.headers['x-message']).toBe(`${RUN}-user:u1-${i + 1}`);
      // An empty value (a --target-var left at its empty default) sends no header at all.
      expect(r.headers).not.toHaveProperty('x-publish-key');
    });
  });

  it('with --jwt-secret, {token} in a header is the HS256 JWT of the probe’s user; a broadcast probe has none', async () => {
    const secret = SECRET;
    const srv = await recorder(202);
    const pub = publisher(profile({ http }), srv.base, { jwtSecret: secret });
    expect(await pub.send(items(1, 'u1'))).toEqual(ok(1));
    expect(await pub.send(items(1, 'u2'))).toEqual(ok(1));
    expect(await pub.send(items(1))).toEqual(ok(1));
    const subs = await Promise.all(
      srv.received.slice(0, 2).map(async (r) => {
        const [scheme, token] = String(r.headers.authorization).split(' ');
        expect(scheme).toBe('Bearer');
        const { payload, protectedHeader } = await jwtVerify(token!, new TextEncoder().encode(secret));
        expect(protectedHeader.alg).toBe('HS256');
        expect(payload.exp! - payload.iat!).toBe(24 * 3600);
        return payload.sub;
      }),
    );
    expect(subs).toEqual(['u1', 'u2']);
    await expect(jwtVerify(String(srv.received[0]!.headers.authorization).slice(7), new TextEncoder().encode('another-secret-0123456789'))).rejects.toThrow(
      /signature/,
    );
    expect(srv.received[2]!.headers).not.toHaveProperty('authorization');
  });

  it('the swarm’s Publisher given --jwt-secret sends each user probe with its user’s token', async () => {
    const srv = await recorder(202);
    const pub = new Publisher({ run: RUN, urls: [srv.base], target: profile({ http }), rate: 0, userRate: 20, users: 2, userPrefix: 'u', jwtSecret: SECRET });
    onCleanup(() => pub.close());
    expect(pub.burst(4, 'user')).toBe(4);
    await pub.flushed(5000);
    // flushed() is when the queues have left; the requests may still be on their way.
    await until(() => srv.received.length === 4, 'four user probes at the recorder', 5000);
    const key = new TextEncoder().encode(SECRET);
    const subs = await Promise.all(srv.received.map(async (r) => (await jwtVerify(String(r.headers.authorization).slice('Bearer '.length), key)).payload.sub));
    expect(subs.sort()).toEqual(['u1', 'u1', 'u2', 'u2']);
  });

  it('batch array: one request whose body is the array of bodies (a single item is sent alone)', async () => {
    const srv = await recorder(202);
    const pub = publisher(profile({ http: { ...http, batch: 'array', okStatus: [202] } }), srv.base);
    const sent = items(3);
    expect(await pub.send(sent)).toEqual(ok(3));
    expect(await pub.send(items(1, undefined, 4))).toEqual(ok(1));
    expect(srv.received).toHaveLength(2);
    const batch = JSON.parse(srv.received[0]!.body);
    expect(batch.map((b: any) => b.notification.data.probe)).toEqual(sent.map((s) => s.probe));
    expect(batch.every((b: any) => b.broadcast === true)).toBe(true);
    expect(JSON.parse(srv.received[1]!.body).notification.data.probe.seq).toBe(4);
    // A broadcast has no user, so no token: the Authorization header that needs one is left out.
    expect(srv.received[0]!.headers).not.toHaveProperty('authorization');
  });

  it('routes users and broadcasts to their own URLs; the body defaults to the payload; a given Content-Type stays', async () => {
    const srv = await recorder(200);
    const p = profile({ http: { userUrl: '{base}/pub/user/{user}', broadcastUrl: '{base}/pub/broadcast', headers: { 'Content-Type': 'text/plain' } } });
    const pub = publisher(p, srv.base);
    expect(pub.describe).toBe(`POST ${srv.base}/pub/user/{user} (user), ${srv.base}/pub/broadcast (broadcast)`);
    const user = items(1, 'u7');
    const broadcast = items(1);
    expect(await pub.send(user)).toEqual(ok(1));
    expect(await pub.send(broadcast)).toEqual(ok(1));
    expect(srv.received.map((r) => r.url)).toEqual(['/pub/user/u7', '/pub/broadcast']);
    expect(probeIn(srv.received[0]!.body)).toEqual(user[0]!.probe);
    expect(probeIn(srv.received[1]!.body)).toEqual(broadcast[0]!.probe);
    expect(srv.received[0]!.headers['content-type']).toBe('text/plain');
  });

  it('an answer outside okStatus was not stored: http-<status>, stored false, for every item', async () => {
    const srv = await recorder(500);
    const pub = publisher(profile({ http }), srv.base);
    expect(await pub.send(items(2, 'u1'))).toEqual([
      { ok: false, cause: 'http-500', stored: false },
      { ok: false, cause: 'http-500', stored: false },
    ]);
    const strict = publisher(profile({ http: { ...http, okStatus: [202] } }), (await recorder(201)).base);
    expect(await strict.send(items(1))).toEqual([{ ok: false, cause: 'http-201', stored: false }]);
  });

  it('no server: ECONNREFUSED, stored false', async () => {
    const pub = publisher(profile({ http }), `http://127.0.0.1:${await freePort()}`);
    expect(await pub.send(items(2))).toEqual([
      { ok: false, cause: 'ECONNREFUSED', stored: false },
      { ok: false, cause: 'ECONNREFUSED', stored: false },
    ]);
  });

  it('a request in flight at destroy resolves as a failure (unknown), later sends as refused', async () => {
    const srv = await recorder(201, 5000);
    const pub = publisher(profile({ http }), srv.base);
    const pending = pub.send(items(1));
    await until(() => srv.received.length === 1, 'the request at the server');
    await pub.destroy();
    expect(await pending).toEqual([{ ok: false, cause: 'aborted' }]);
    expect(await pub.send(items(1, undefined, 2))).toEqual([{ ok: false, cause: 'aborted', stored: false }]);
  });

  it('a template with a placeholder its field cannot use, or a URL that is not http, fails when the publisher is made', () => {
    expect(() => createProbePublisher(profile({ http: { url: '{base}/p', user: '{token}' } }), 'http://h')).toThrow(/publish\.http\.user.*\{token\}/);
    expect(() => createProbePublisher(profile({ http: { url: '{base}/p' } }), 'localhost:8080')).toThrow(/publish\.http\.url.*not an http/);
  });
});

describe('redis publisher', () => {
  const redis = (url: string) => ({ url, user: 'notifications:{user}', broadcast: 'notifications:broadcast' });

  it('PUBLISHes the rendered payloads on the user and broadcast channels, in order', async () => {
    const server = await startRedis();
    const inbox = await redisSubscriber(server.url, ['notifications:u1', 'notifications:broadcast']);
    const pub = publisher(profile({ redis: redis(server.url) }, '{"id":"{id}","at":"{now}","data":{"probe":{probe}}}'));
    expect(pub.describe).toBe(server.url);
    const user = items(3, 'u1');
    const broadcast = items(2);
    const [a, b] = await Promise.all([pub.send(user), pub.send(broadcast)]);
    expect(a).toEqual(ok(3));
    expect(b).toEqual(ok(2));
    const got = await inbox.waitFor(5);
    const on = (channel: string) => got.filter((m) => m.type === channel).map((m) => JSON.parse(m.text));
    expect(on('notifications:u1').map((n) => n.data.probe)).toEqual(user.map((i) => i.probe));
    expect(on('notifications:broadcast').map((n) => n.data.probe)).toEqual(broadcast.map((i) => i.probe));
    expect(on('notifications:u1')[0].id).toBe(`${RUN}-user:u1-1`);
    expect(Date.parse(on('notifications:u1')[0].at)).not.toBeNaN();
    // No subscriber on the channel is still a publish the server took.
    expect(await pub.send(items(1, 'nobody'))).toEqual(ok(1));
  });

  it('redis down: every outcome is a refusal (stored false), at once and again on the next send', async () => {
    const pub = publisher(profile({ redis: redis(`redis://127.0.0.1:${await freePort()}`) }));
    const refused = { ok: false, cause: 'ECONNREFUSED', stored: false };
    expect(await pub.send(items(2, 'u1'))).toEqual([refused, refused]);
    expect(await pub.send(items(1, 'u1', 3))).toEqual([refused]);
  });

  it('reconnects after a restart of the server', async () => {
    const server = await startRedis();
    const pub = publisher(profile({ redis: redis(server.url) }));
    expect(await pub.send(items(1))).toEqual(ok(1));
    await server.process.stop();
    await startRedis(server.port);
    const deadline = Date.now() + 5000;
    let outcome = await pub.send(items(1, undefined, 2));
    // Sends while the connection is down are refused at once; the first one after the reconnect goes through.
    for (let seq = 3; !outcome[0]!.ok && Date.now() < deadline; seq++) {
      expect(outcome[0]).toMatchObject({ ok: false, stored: false });
      await new Promise((r) => setTimeout(r, 20));
      outcome = await pub.send(items(1, undefined, seq));
    }
    expect(outcome).toEqual(ok(1));
  });

  it('an unanswered PUBLISH times out (unknown, no stored flag); destroy fails what is still in flight', async () => {
    const server = await startRedis();
    const pub = publisher(profile({ redis: redis(server.url) }), undefined, { timeoutMs: 300 });
    expect(await pub.send(items(1))).toEqual(ok(1));
    await freeze(server.process);
    expect(await pub.send(items(1, undefined, 2))).toEqual([{ ok: false, cause: 'timeout' }]);
    const pending = pub.send(items(2, 'u1'));
    // One turn of the event loop: the pipeline is written by then.
    await new Promise((r) => setImmediate(r));
    await pub.destroy();
    expect(await pending).toEqual([
      { ok: false, cause: 'aborted' },
      { ok: false, cause: 'aborted' },
    ]);
  });

  it('a channel template may only use {user} and {stream}', () => {
    expect(() => createProbePublisher(profile({ redis: { user: 'n:{payload}', broadcast: 'b' } }), 'http://h')).toThrow(/publish\.redis\.user.*\{payload\}/);
  });
});

describe('nats publisher', () => {
  const nats = (url: string, jetstream = false) => ({ url, user: 'notifications.user.{user}', broadcast: 'notifications.broadcast', jetstream });

  it('core: publishes the payloads on the user and broadcast subjects, in order, flushed before ok', async () => {
    const server = await startNats();
    const inbox = await natsSubscriber(server.url, 'notifications.>');
    const pub = publisher(profile({ nats: nats(server.url) }));
    expect(pub.describe).toBe(server.url);
    const user = items(3, 'u1');
    const broadcast = items(2);
    expect(await pub.send(user)).toEqual(ok(3));
    expect(await pub.send(broadcast)).toEqual(ok(2));
    const got = await inbox.waitFor(5);
    expect(got.map((m) => m.type)).toEqual([...user.map(() => 'notifications.user.u1'), ...broadcast.map(() => 'notifications.broadcast')]);
    expect(got.map((m) => probeIn(m.text))).toEqual([...user, ...broadcast].map((i) => i.probe));
  });

  it('JetStream: each publish is acknowledged, and the stream holds the payloads in order', async () => {
    const server = await startNats({ jetstream: true });
    const nc = await natsClient(server.url);
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: 'NOTIFICATIONS', subjects: ['notifications.>'] });
    const pub = publisher(profile({ nats: nats(server.url, true) }));
    expect(pub.describe).toBe(`${server.url} (JetStream)`);
    const sent = [...items(3, 'u1'), ...items(2)];
    expect(await pub.send(sent.slice(0, 3))).toEqual(ok(3));
    expect(await pub.send(sent.slice(3))).toEqual(ok(2));
    expect((await jsm.streams.info('NOTIFICATIONS')).state.messages).toBe(5);
    const stored = await Promise.all(sent.map((_, i) => jsm.streams.getMessage('NOTIFICATIONS', { seq: i + 1 })));
    expect(stored.map((m) => m.subject)).toEqual([
      ...sent.slice(0, 3).map(() => 'notifications.user.u1'),
      'notifications.broadcast',
      'notifications.broadcast',
    ]);
    expect(stored.map((m) => probeIn(m.string()))).toEqual(sent.map((i) => i.probe));
  });

  it('JetStream with no stream on the subject: nats-no-responders, stored false', async () => {
    const server = await startNats({ jetstream: true });
    const pub = publisher(profile({ nats: nats(server.url, true) }));
    const refused = { ok: false, cause: 'nats-no-responders', stored: false };
    expect(await pub.send(items(2, 'u1'))).toEqual([refused, refused]);
  });

  it('an unanswered flush or PubAck times out (unknown, no stored flag); destroy fails what is still in flight', async () => {
    const server = await startNats({ jetstream: true });
    const jsm = await (await natsClient(server.url)).jetstreamManager();
    await jsm.streams.add({ name: 'NOTIFICATIONS', subjects: ['notifications.>'] });
    const core = publisher(profile({ nats: nats(server.url) }), undefined, { timeoutMs: 300 });
    const js = publisher(profile({ nats: nats(server.url, true) }), undefined, { timeoutMs: 300 });
    expect(await core.send(items(1))).toEqual(ok(1));
    expect(await js.send(items(1))).toEqual(ok(1));
    await freeze(server.process);
    expect(await core.send(items(1, undefined, 2))).toEqual([{ ok: false, cause: 'timeout' }]);
    expect(await js.send(items(1, undefined, 2))).toEqual([{ ok: false, cause: 'timeout' }]);
    const pendingCore = core.send(items(2, 'u1'));
    const pendingJs = js.send(items(2, 'u1'));
    // One turn of the event loop: the flush and the first JetStream publish are written by then.
    await new Promise((r) => setImmediate(r));
    await Promise.all([core.destroy(), js.destroy()]);
    const aborted = { ok: false, cause: 'aborted' };
    expect(await pendingCore).toEqual([aborted, aborted]);
    // The second JetStream publish never left: it waits for the first one's PubAck.
    expect(await pendingJs).toEqual([aborted, { ...aborted, stored: false }]);
  });

  it('nats down: ECONNREFUSED, stored false', async () => {
    const pub = publisher(profile({ nats: nats(`nats://127.0.0.1:${await freePort()}`) }));
    const refused = { ok: false, cause: 'ECONNREFUSED', stored: false };
    expect(await pub.send(items(2))).toEqual([refused, refused]);
    expect(await pub.send(items(1, undefined, 3))).toEqual([refused]);
  });
});
