/**
 * `notify serve`: wires the broker, hub, history, auth and metrics to an HTTP server with SSE, WebSocket and
 * long-poll endpoints, and shuts down gracefully (clients are told to come back with their cursor).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { ServeConfig, ServerTransport } from './config.js';
import { createBroker } from './brokers/index.js';
import type { Broker } from './brokers/broker.js';
import { createAuthenticator, type Authenticator, type Identity } from './auth.js';
import { parseCursor, type Cursor } from './cursor.js';
import { History } from './history.js';
import { HttpError, refuseSocket, sendError, sendJson } from './http-error.js';
import { BufferBudget } from './buffer-budget.js';
import { Hub } from './hub.js';
import { GatewayMetrics } from './metrics.js';
import { PollSubscriber } from './poll.js';
import { handlePublish } from './publish.js';
import { MemoryReadStore } from './read-store.js';
import { decodeSegment, parseTarget } from './request.js';
import { SSE_HEADERS, SseSubscriber } from './sse.js';
import { startSubscription, type SubscribeDeps } from './subscribe.js';
import type { Subscriber, SubscriberOptions } from './subscriber.js';
import { upgradeListener } from './upgrade.js';
import { WsSubscriber } from './ws.js';
import { DEMO_PAGE } from './demo-page.js';
import type { Logger } from '../util/log.js';

export interface Gateway {
  /** Base URL, e.g. http://127.0.0.1:8080 */
  readonly url: string;
  readonly port: number;
  readonly hub: Hub;
  readonly metrics: GatewayMetrics;
  readonly broker: Broker;
  /** Graceful: stop accepting, tell clients to come back, drain, close. */
  shutdown(): Promise<void>;
}

type Route = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void> | void;

export async function startGateway(config: ServeConfig, log: Logger): Promise<Gateway> {
  const broker = createBroker(config.broker, { history: config.history, historyBytes: config.historyBytes });
  await broker.start();
  const metrics: GatewayMetrics = new GatewayMetrics(
    () => hub.openByTransport(),
    () => budget.recount(),
  );
  const hub: Hub = new Hub(metrics);
  const budget = new BufferBudget(config.maxBufferTotal, () => hub.subscribers(), (sub) => metrics.bufferTotalCloses.inc({ transport: sub.transport }));
  const history = new History(broker, new MemoryReadStore(), config.history);
  const auth: Authenticator = createAuthenticator(config);
  const deps: SubscribeDeps = { hub, history, metrics, unreadLimit: config.unreadLimit };
  const enabled = new Set<ServerTransport>(config.transports);
  let draining = false;
  broker.onEvents((events) => hub.fanout(events));

  const subOptions: SubscriberOptions = {
    batchMs: config.batchMs,
    maxBuffer: config.maxBuffer,
    budget,
    onClose(sub, reason) {
      hub.remove(sub);
      if (reason === 'slow-consumer') {
        metrics.slowConsumerCloses.inc({ transport: sub.transport });
        log.warn('slow consumer closed', { transport: sub.transport, user: sub.user ?? '-', cursor: sub.cursor, limit: sub.slowCause ?? '-' });
      }
    },
  };

  /** Checks shared by every subscribe endpoint; returns who is asking and from where to resume. */
  async function admit(transport: ServerTransport, req: IncomingMessage, url: URL, cursorText: string | undefined) {
    if (!enabled.has(transport)) throw new HttpError(404, 'E_TRANSPORT_DISABLED', `${transport} is not enabled on this server (--transports)`);
    if (draining) throw new HttpError(503, 'E_DRAINING', 'server is shutting down; come back with your cursor', { 'Retry-After': '2' });
    const identity: Identity = await auth.identify(req.headers, url.searchParams);
    let given: { text: string; cursor: Cursor } | undefined;
    if (cursorText) {
      const cursor = parseCursor(cursorText);
      if (!cursor) throw new HttpError(400, 'E_CURSOR', `invalid cursor "${cursorText.slice(0, 80)}": expected <epoch>.<userSeq>.<broadcastSeq>`);
      given = { text: cursorText, cursor };
    }
    if (config.maxConns > 0 && hub.size >= config.maxConns) {
      metrics.connectionsRejected.inc({ reason: 'max_conns' });
      throw new HttpError(503, 'E_MAX_CONNS', `server is at --max-conns ${config.maxConns}`, { 'Retry-After': '5' });
    }
    return { identity, given };
  }

  function pollTimeout(text: string | null): number {
    const seconds = text === null ? config.pollTimeoutMs / 1000 : Number(text);
    if (!Number.isFinite(seconds) || seconds < 0) throw new HttpError(400, 'E_TIMEOUT', `timeout must be seconds >= 0 (got "${text?.slice(0, 40)}")`);
    return Math.min(seconds * 1000, config.pollTimeoutMaxMs);
  }

  const started = (sub: Subscriber, p: Promise<void>) =>
    p.catch((err) => {
      log.error('subscription failed', { transport: sub.transport, error: (err as Error).message });
      sub.shutdown(config.retryMs);
    });

  const routes: Record<string, Partial<Record<string, Route>>> = {
    '/': { GET: (_req, res) => void res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(DEMO_PAGE) },
    '/events': {
      async GET(req, res, url) {
        const { identity, given } = await admit('sse', req, url, sseCursor(req, url));
        if (gone(res)) return;
        const sub = new SseSubscriber(identity.user, subOptions, res, config.retryMs);
        await started(sub, startSubscription(deps, sub, given));
      },
      // Same checks, the stream's headers, no stream: a HEAD holds no subscription.
      async HEAD(req, res, url) {
        await admit('sse', req, url, sseCursor(req, url));
        res.writeHead(200, SSE_HEADERS).end();
      },
    },
    '/poll': {
      async GET(req, res, url) {
        const q = url.searchParams;
        const { identity, given } = await admit('poll', req, url, q.get('cursor') || q.get('lastEventId') || undefined);
        const timeoutMs = pollTimeout(q.get('timeout'));
        if (gone(res)) return;
        const sub = new PollSubscriber(identity.user, subOptions, res, timeoutMs);
        await started(sub, startSubscription(deps, sub, given));
      },
      async HEAD(req, res, url) {
        const q = url.searchParams;
        await admit('poll', req, url, q.get('cursor') || q.get('lastEventId') || undefined);
        pollTimeout(q.get('timeout'));
        res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', ...CORS }).end();
      },
    },
    '/ws': { GET: () => Promise.reject(new HttpError(426, 'E_UPGRADE', 'GET /ws needs a WebSocket upgrade')) },
    '/publish': {
      async POST(req, res) {
        auth.checkPublishKey(req.headers);
        sendJson(res, 202, await handlePublish(req, { broker, hub, metrics, maxBody: config.maxBody }), CORS);
      },
    },
    '/notifications': {
      async GET(req, res, url) {
        const { user } = await auth.identify(req.headers, url.searchParams);
        if (user === undefined) throw new HttpError(400, 'E_USER', 'listing notifications needs a user (?user= or a token)');
        const unread = url.searchParams.get('unread');
        sendJson(res, 200, await history.list(user, unread === '1' || unread === 'true'), CORS);
      },
    },
    '/metrics': {
      async GET(_req, res) {
        const text = await metrics.registry.metrics();
        res.writeHead(200, { 'Content-Type': metrics.registry.contentType }).end(text);
      },
    },
    '/healthz': { GET: (_req, res) => sendJson(res, 200, { status: 'ok' }) },
    '/readyz': {
      GET: (_req, res) => (draining ? sendJson(res, 503, { status: 'draining' }) : sendJson(res, 200, { status: 'ready', connections: hub.size })),
    },
  };

  const READ_PATH = /^\/notifications\/([^/]+)\/read$/;
  async function markRead(req: IncomingMessage, res: ServerResponse, url: URL, id: string) {
    const { user } = await auth.identify(req.headers, url.searchParams);
    const readAt = await history.markRead(user, id);
    hub.sendRead(user!, id, readAt);
    sendJson(res, 200, { id, readAt }, CORS);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = parseTarget(req.url);
    const method = req.method ?? 'GET';
    if (method === 'OPTIONS') {
      res.writeHead(204, { ...CORS, 'Access-Control-Allow-Methods': 'GET, POST, OPTIONS', 'Access-Control-Allow-Headers': 'Content-Type, Authorization, X-Publish-Key, Last-Event-ID', 'Access-Control-Max-Age': '600' });
      res.end();
      return;
    }
    const readMatch = READ_PATH.exec(url.pathname);
    const methods = readMatch ? { POST: (rq: IncomingMessage, rs: ServerResponse, u: URL) => markRead(rq, rs, u, decodeSegment(readMatch[1]!)) } : routes[url.pathname];
    if (!methods) throw new HttpError(404, 'E_NOT_FOUND', `no route ${method} ${url.pathname}`);
    const route = methods[method] ?? (method === 'HEAD' ? methods.GET : undefined);
    if (!route) throw new HttpError(405, 'E_METHOD', `${method} is not allowed on ${url.pathname}`, { Allow: allowed(methods) });
    await route(req, res, url);
  }

  // Node looks for requests past their timeouts every connectionsCheckingInterval (30 s by default).
  const server: Server = createServer({ connectionsCheckingInterval: Math.min(1000, config.headersTimeoutMs) }, (req, res) => {
    handle(req, res).catch((err) => {
      const httpErr = err instanceof HttpError ? err : new HttpError(500, 'E_INTERNAL', 'internal error');
      if (!(err instanceof HttpError)) log.error('request failed', { url: req.url, error: (err as Error).stack });
      metrics.httpErrors.inc({ code: httpErr.code });
      sendError(res, httpErr);
    });
  });
  server.keepAliveTimeout = 65_000;

  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  server.on(
    'upgrade',
    upgradeListener(wss, {
      async admit(req, url) {
        const q = url.searchParams;
        const { identity, given } = await admit('ws', req, url, q.get('cursor') || q.get('lastEventId') || undefined);
        return (ws) => {
          const sub = new WsSubscriber(identity.user, subOptions, ws, (from, id) => {
            history.markRead(from.user, id).then(
              (readAt) => {
                hub.sendRead(from.user!, id, readAt, from);
                from.sendRead(id, readAt);
              },
              (err) => from.sendError(err instanceof HttpError ? err.code : 'E_INTERNAL', (err as Error).message),
            );
          });
          void started(sub, startSubscription(deps, sub, given));
        };
      },
      refused: (err) => metrics.httpErrors.inc({ code: err.code }),
      failed: (err, req) => log.error('upgrade failed', { url: req.url, error: (err as Error).stack }),
    }),
  );
  // Requests Node's own parser refuses: the same JSON errors as every other refusal, with the status that fits.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const httpErr = parserError(err);
    metrics.httpErrors.inc({ code: httpErr.code });
    if ((socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage?.headersSent) socket.destroy();
    else refuseSocket(socket, httpErr);
  });
  // Headers or a body that never finish are answered 408 instead of holding the socket for Node's 60 s / 300 s.
  server.headersTimeout = config.headersTimeoutMs;
  server.requestTimeout = config.requestTimeoutMs;

  const heartbeat = setInterval(() => hub.heartbeat(), config.heartbeatMs);
  heartbeat.unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;

  let shuttingDown: Promise<void> | undefined;
  function shutdown(): Promise<void> {
    shuttingDown ??= (async () => {
      draining = true;
      clearInterval(heartbeat);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      hub.shutdown(config.retryMs);
      server.closeIdleConnections();
      const grace = new Promise<void>((resolve) => setTimeout(resolve, config.shutdownGraceMs).unref());
      await Promise.race([closed, grace]);
      server.closeAllConnections();
      for (const ws of wss.clients) ws.terminate();
      await broker.close();
    })();
    return shuttingDown;
  }

  return { url: `http://${host}:${port}`, port, hub, metrics, broker, shutdown };
}

const CORS = { 'Access-Control-Allow-Origin': '*' };

/** The methods a path answers: a GET route answers HEAD too. */
function allowed(methods: Partial<Record<string, unknown>>): string {
  const names = Object.keys(methods);
  if (names.includes('GET') && !names.includes('HEAD')) names.splice(names.indexOf('GET') + 1, 0, 'HEAD');
  return names.join(', ');
}

function sseCursor(req: IncomingMessage, url: URL): string | undefined {
  const q = url.searchParams;
  return (req.headers['last-event-id'] as string | undefined) || q.get('lastEventId') || q.get('cursor') || undefined;
}

/** The client went away while the request was being admitted (a token being verified, a slow broker). */
function gone(res: ServerResponse): boolean {
  return res.destroyed || res.socket === null || res.socket.destroyed;
}

function parserError(err: NodeJS.ErrnoException): HttpError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new HttpError(431, 'E_HEADERS_TOO_LARGE', 'request headers are too large (16 KB at most)');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new HttpError(408, 'E_REQUEST_TIMEOUT', 'the request did not arrive in time');
    default:
      return new HttpError(400, 'E_BAD_REQUEST', `malformed HTTP request (${err.code ?? err.message})`);
  }
}
