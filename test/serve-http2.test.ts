/**
 * `notify serve --tls-cert/--tls-key` (HTTP/2 over TLS, HTTP/1.1 through ALPN) and `--h2c` (cleartext HTTP/2 by
 * prior knowledge, HTTP/1.1 on the same port): every route over h2 streams, WebSocket over HTTP/1.1 on the same
 * port, the per-stream policies (max-conns, heartbeat, slow consumer), and the flag errors.
 */
import { request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { resolveServeOptions } from '../src/server/config.js';
import { resolveSwarmOptions } from '../src/swarm/config.js';
import { startTestGateway } from './helpers/gateway.js';
import { H2Client } from './helpers/h2-client.js';
import { metricValue } from './helpers/http.js';
import { runCleanup, until } from './helpers/lifecycle.js';
import { selfSignedCert } from './helpers/tls-cert.js';
import { ensureBuilt, exitWithin, runNotify } from './helpers/cli.js';
import { tempDir } from './helpers/child-server.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

afterEach(runCleanup);

const note = (title: string) => ({ type: 'system', title });

async function tlsGateway(raw: Record<string, string> = {}) {
  const { cert, key } = selfSignedCert();
  return startTestGateway({ tlsCert: cert, tlsKey: key, ...raw });
}

/** An HTTPS request that offers only HTTP/1.1 in ALPN. */
function http1Get(url: string): Promise<{ status: number; alpn: string | false | null; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { rejectUnauthorized: false, ALPNProtocols: ['http/1.1'], agent: false } as import('node:https').RequestOptions, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, alpn: (res.socket as import('node:tls').TLSSocket).alpnProtocol, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('HTTP/2 over TLS', () => {
  it('an h2 SSE stream receives a notification published over h2, with the cursor as id', async () => {
    const gw = await tlsGateway();
    expect(gw.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const h2 = await H2Client.connect(gw.url);
    expect(h2.protocol).toBe('h2');
    const sse = await h2.sse('/events?user=alice');
    expect(sse.status).toBe(200);
    expect(sse.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    await sse.nth('init');
    const pub = await h2.publish({ user: 'alice', notification: note('over h2') });
    expect(pub.status).toBe(202);
    expect(JSON.parse(pub.text).delivered).toBe(1);
    const ev = await sse.nth('notification');
    expect(ev.json.title).toBe('over h2');
    expect(ev.id).toBe(gw.cursor(1, 0));
  });

  it('replays by Last-Event-ID over h2: exactly the events after the cursor, then live', async () => {
    const gw = await tlsGateway();
    const h2 = await H2Client.connect(gw.url);
    for (const t of ['a', 'b', 'c']) expect((await h2.publish({ user: 'bob', notification: note(t) })).status).toBe(202);
    const sse = await h2.sse('/events?user=bob', { 'last-event-id': gw.cursor(1, 0) });
    await sse.nth('notification', 2);
    await h2.publish({ user: 'bob', notification: note('d') });
    await sse.nth('notification', 3);
    expect(sse.events.filter((e) => e.event === 'notification').map((e) => e.json.title)).toEqual(['b', 'c', 'd']);
    expect(sse.events.some((e) => e.event === 'init')).toBe(false);
  });

  it('long-polls over h2: a held poll is answered by a publish on the same session', async () => {
    const gw = await tlsGateway();
    const h2 = await H2Client.connect(gw.url);
    const first = await h2.request('GET', '/poll?user=carol&timeout=0');
    expect(first.status).toBe(200);
    const { cursor } = JSON.parse(first.text);
    const held = h2.request('GET', `/poll?user=carol&timeout=10&cursor=${cursor}`);
    await until(() => gw.hub.size === 1, 'the poll to be held');
    await h2.publish({ user: 'carol', notification: note('polled') });
    const answer = await held;
    expect(answer.status).toBe(200);
    const body = JSON.parse(answer.text);
    expect(body.notifications.map((n: any) => n.title)).toEqual(['polled']);
    expect(body.cursor).toBe(gw.cursor(1, 0));
  });

  it('answers healthz, readyz, metrics, the demo page, CORS preflight and errors over h2; metrics count the sessions', async () => {
    const gw = await tlsGateway();
    const h2 = await H2Client.connect(gw.url);
    expect(JSON.parse((await h2.request('GET', '/healthz')).text)).toEqual({ status: 'ok' });
    expect(JSON.parse((await h2.request('GET', '/readyz')).text)).toMatchObject({ status: 'ready' });
    expect((await h2.request('GET', '/')).headers['content-type']).toMatch(/^text\/html/);
    const pre = await h2.request('OPTIONS', '/publish');
    expect(pre.status).toBe(204);
    expect(pre.headers['access-control-allow-methods']).toContain('POST');
    const bad = await h2.request('POST', '/publish', { 'content-type': 'application/json' }, '{');
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.text).error.code).toBeTruthy();
    const ws = await h2.request('GET', '/ws?user=x');
    expect(ws.status).toBe(426);
    const metrics = (await h2.request('GET', '/metrics')).text;
    expect(metricValue(metrics, 'notify_http2_sessions_total')).toBe(1);
    expect(metricValue(metrics, 'notify_http2_sessions')).toBe(1);
    expect(metricValue(metrics, 'notify_tcp_connections_total')).toBe(1);
  });

  it('serves HTTP/1.1 through ALPN on the same port, and WebSocket over it', async () => {
    const gw = await tlsGateway();
    const h1 = await http1Get(`${gw.url}/healthz`);
    expect(h1).toMatchObject({ status: 200, alpn: 'http/1.1' });
    const ws = new WebSocket(`${gw.wsUrl}/ws?user=dave`, { rejectUnauthorized: false });
    const frames: any[] = [];
    ws.on('message', (m) => frames.push(JSON.parse((m as Buffer).toString())));
    await new Promise<void>((resolve, reject) => ws.once('open', resolve).once('error', reject));
    expect(gw.wsUrl).toMatch(/^wss:/);
    await until(() => frames.some((f) => f.type === 'init'), 'WS init');
    const h2 = await H2Client.connect(gw.url);
    await h2.publish({ user: 'dave', notification: note('to ws') });
    await until(() => frames.some((f) => f.type === 'notification'), 'the notification over WS');
    expect(frames.find((f) => f.type === 'notification').notification.title).toBe('to ws');
    ws.terminate();
  });

  it('counts each h2 stream as a connection for --max-conns, and sends heartbeats on each stream', async () => {
    const gw = await tlsGateway({ maxConns: '2', heartbeat: '100ms' });
    const h2 = await H2Client.connect(gw.url);
    const a = await h2.sse('/events?user=a');
    const b = await h2.sse('/events?user=b');
    expect([a.status, b.status]).toEqual([200, 200]);
    await until(() => gw.hub.size === 2, 'two subscribers');
    const third = await h2.request('GET', '/events?user=c');
    expect(third.status).toBe(503);
    expect(JSON.parse(third.text).error.code).toBe('E_MAX_CONNS');
    await until(() => a.comments >= 2 && b.comments >= 2, 'heartbeats on both streams', 3000);
  });

  it('cuts a slow h2 stream as a slow consumer while another stream on the same session keeps receiving', async () => {
    const gw = await tlsGateway({ maxBuffer: '16kb' });
    const h2 = await H2Client.connect(gw.url);
    let paused: import('node:http2').ClientHttp2Stream | undefined;
    const slow = await h2.sse('/events?user=slow', {}, (s) => (paused = s));
    const fast = await h2.sse('/events?user=fast');
    await slow.nth('init');
    await fast.nth('init');
    paused!.pause();
    const body = 'x'.repeat(8000);
    let sent = 0;
    // Until the server gives up on the slow stream: its 64 KB stream window, then --max-buffer, fill up.
    while (gw.hub.size === 2 && sent < 400) {
      await h2.publish([
        { user: 'slow', notification: { type: 'system', title: 's', body } },
        { user: 'fast', notification: note(`f${sent}`) },
      ]);
      sent++;
    }
    expect(gw.hub.size).toBe(1);
    await fast.nth('notification', sent);
    const metrics = (await h2.request('GET', '/metrics')).text;
    expect(metricValue(metrics, 'notify_slow_consumer_closes_total', { transport: 'sse' })).toBe(1);
    paused!.resume();
    await slow.nth('close', 1, 12_000);
  });
});

describe('h2c (cleartext HTTP/2 by prior knowledge)', () => {
  it('serves SSE and publish to a prior-knowledge client, and HTTP/1.1 and WebSocket on the same port', async () => {
    const gw = await startTestGateway({ h2c: true });
    expect(gw.url).toMatch(/^http:/);
    const h2 = await H2Client.connect(gw.url);
    const sse = await h2.sse('/events?user=erin');
    expect(sse.status).toBe(200);
    await sse.nth('init');
    await h2.publish({ user: 'erin', notification: note('h2c') });
    expect((await sse.nth('notification')).json.title).toBe('h2c');
    const h1 = await fetch(`${gw.url}/healthz`);
    expect(await h1.json()).toEqual({ status: 'ok' });
    const ws = new WebSocket(`${gw.wsUrl}/ws?user=erin`);
    const init = await new Promise<any>((resolve, reject) => ws.once('message', (m) => resolve(JSON.parse((m as Buffer).toString()))).once('error', reject));
    expect(init.type).toBe('init');
    ws.terminate();
    const metrics = (await h2.request('GET', '/metrics')).text;
    expect(metricValue(metrics, 'notify_http2_sessions_total')).toBe(1);
  });
});

describe('TLS flags', () => {
  it('names the flag whose file cannot be used, as a usage error (exit 2)', () => {
    const { cert, key, dir } = selfSignedCert();
    const bad = join(dir, 'bad.pem');
    writeFileSync(bad, 'not a pem\n');
    const fails = (raw: Parameters<typeof resolveServeOptions>[0], message: RegExp) => {
      let err: any;
      try {
        resolveServeOptions(raw);
      } catch (e) {
        err = e;
      }
      expect(err?.exitCode).toBe(2);
      expect(err.message).toMatch(message);
    };
    fails({ tlsCert: bad, tlsKey: key }, /^--tls-cert .*bad\.pem is not a PEM certificate/);
    fails({ tlsCert: cert, tlsKey: bad }, /^--tls-key .*bad\.pem is not a PEM private key/);
    fails({ tlsCert: cert, tlsKey: cert }, /^--tls-key .*cert\.pem is not a PEM private key/);
    fails({ tlsCert: join(dir, 'missing.pem'), tlsKey: key }, /^--tls-cert .*missing\.pem: cannot read the file \(ENOENT\)/);
    fails({ tlsCert: cert }, /--tls-cert and --tls-key go together/);
    fails({ tlsCert: cert, tlsKey: key, h2c: true }, /^--h2c is cleartext/);
    expect(resolveServeOptions({ tlsCert: cert, tlsKey: key }).http).toBe('tls');
  });
});

describe('shutdown over HTTP/2', () => {
  it('tells h2 streams to come back (retry), ends the sessions, and finishes within the grace', async () => {
    const gw = await tlsGateway();
    const h2 = await H2Client.connect(gw.url);
    const sse = await h2.sse('/events?user=zed');
    await sse.nth('init');
    const closed = new Promise<void>((resolve) => h2.session.once('close', () => resolve()));
    const t0 = Date.now();
    await gw.shutdown();
    expect(Date.now() - t0).toBeLessThan(900);
    await until(() => sse.ended, 'the SSE stream to end');
    await closed;
    // The connect-time retry, then the jittered one shutdown sends.
    expect(sse.retries.length).toBe(2);
    expect(sse.retries[1]).toBeGreaterThanOrEqual(gw.config.retryMs);
  });
});

describe('notify swarm --http2', () => {
  beforeAll(ensureBuilt, 120_000);

  async function serverCounts(gw: Awaited<ReturnType<typeof startTestGateway>>) {
    const text = await gw.metrics.registry.metrics();
    return { sessions: metricValue(text, 'notify_http2_sessions_total')!, tcp: metricValue(text, 'notify_tcp_connections_total')! };
  }

  async function runSwarm(url: string, extra: string[]) {
    const out = join(tempDir('swarm-h2'), 'result.json');
    const p = runNotify([
      'swarm',
      '--url',
      url,
      '--http2',
      '--ramp',
      '1s',
      '--duration',
      '2s',
      '--drain',
      '1s',
      '--rate',
      '10/s',
      '--no-dashboard',
      '--out',
      out,
      ...extra,
    ]);
    expect(await exitWithin(p, 45_000)).toBe(0);
    return { result: JSON.parse(readFileSync(out, 'utf8')), stderr: p.stderr() };
  }

  it('audits 200 SSE and long-poll subscribers over TLS with nothing lost, over far fewer TCP connections', async () => {
    const gw = await tlsGateway();
    const { result, stderr } = await runSwarm(gw.url, ['--insecure-tls', '--conns', '200', '--transport', 'mix:sse=70,poll=30']);
    const total = result.summary.total;
    expect(total.connections.peakOpen).toBe(200);
    expect(total.events.expected).toBeGreaterThan(0);
    expect(total.events.lost).toBe(0);
    expect(total.events.delivered).toBe(total.events.expected);
    const server = await serverCounts(gw);
    // 200 streams at 100 per session: a couple of sessions per worker process, plus the preflight and publisher sockets.
    expect(server.sessions).toBeGreaterThanOrEqual(2);
    expect(server.sessions).toBeLessThanOrEqual(8);
    expect(server.tcp).toBeLessThan(200 / 5);
    expect(result.config.http2).toEqual({ streamsPerConn: 100, sessions: server.sessions });
    expect(stderr).toMatch(/http2: SSE and long-poll subscribers used \d+ HTTP\/2 sessions/);
  });

  it('speaks h2c to a cleartext --h2c server, --streams-per-conn deciding the session count', async () => {
    const gw = await startTestGateway({ h2c: true });
    const { result } = await runSwarm(gw.url, ['--conns', '30', '--streams-per-conn', '10', '--transport', 'sse', '--workers', '1']);
    expect(result.summary.total.events.lost).toBe(0);
    expect(result.summary.total.connections.peakOpen).toBe(30);
    const server = await serverCounts(gw);
    expect(server.sessions).toBe(3);
    expect(result.config.http2.sessions).toBe(3);
  });

  it('without --url, starts its embedded server with --h2c so that --http2 has an h2 server to speak to', async () => {
    const out = join(tempDir('swarm-h2'), 'result.json');
    const p = runNotify([
      'swarm',
      '--http2',
      '--conns',
      '20',
      '--workers',
      '1',
      '--ramp',
      '0s',
      '--duration',
      '1s',
      '--drain',
      '1s',
      '--no-dashboard',
      '--out',
      out,
    ]);
    expect(await exitWithin(p, 30_000)).toBe(0);
    const result = JSON.parse(readFileSync(out, 'utf8'));
    expect(result.summary.total.events.lost).toBe(0);
    expect(result.summary.total.connections.peakOpen).toBe(20);
    expect(result.config.http2.sessions).toBe(1);
  });

  it('resolves --http2 and --streams-per-conn, and refuses --streams-per-conn without --http2 (exit 2)', () => {
    expect(resolveSwarmOptions({ http2: true }).http2).toEqual({ streamsPerConn: 100 });
    expect(resolveSwarmOptions({ http2: true, streamsPerConn: '7', insecureTls: true })).toMatchObject({ http2: { streamsPerConn: 7 }, insecureTls: true });
    expect(resolveSwarmOptions({}).http2).toBeUndefined();
    expect(() => resolveSwarmOptions({ streamsPerConn: '7' })).toThrow(/--streams-per-conn 7 needs --http2/);
    expect(() => resolveSwarmOptions({ http2: true, streamsPerConn: '0' })).toThrow(/--streams-per-conn/);
  });

  it('refuses a self-signed server without --insecure-tls, naming the flag', async () => {
    const gw = await tlsGateway();
    const p = runNotify(['swarm', '--url', gw.url, '--http2', '--conns', '5', '--duration', '1s', '--no-dashboard']);
    expect(await exitWithin(p, 20_000)).toBe(1);
    expect(p.stderr()).toMatch(/--insecure-tls/);
  });
});
