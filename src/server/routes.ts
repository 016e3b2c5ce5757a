/**
 * The HTTP route table of the gateway (everything but WebSocket upgrades): subscribe endpoints, publish, the
 * notification list and read receipts, metrics and probes. `handleRequest` answers one request or throws an
 * HttpError for the caller to send.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { isReadinessReporting } from './brokers/broker.js';
import type { GatewayContext } from './context.js';
import { DEMO_PAGE } from './demo-page.js';
import { HttpError, sendJson } from './http-error.js';
import { PollSubscriber } from './poll.js';
import { handlePublish } from './publish.js';
import { decodeSegment, parseTarget } from './request.js';
import { SSE_HEADERS, SseSubscriber } from './sse.js';
import { startSubscription } from './subscribe.js';

type Route = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void> | void;
type Methods = Partial<Record<string, Route>>;

export const CORS = { 'Access-Control-Allow-Origin': '*' };
const PREFLIGHT = {
  ...CORS,
  'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
  'Access-Control-Allow-Headers': 'Content-Type, Authorization, X-Publish-Key, Last-Event-ID',
  'Access-Control-Max-Age': '600',
};
const READ_PATH = /^\/notifications\/([^/]+)\/read$/;

export function requestHandler(ctx: GatewayContext): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const routes = routeTable(ctx);
  const markRead: Route = async (req, res, url) => {
    const id = decodeSegment(READ_PATH.exec(url.pathname)![1]!);
    const { user } = await ctx.auth.identify(req.headers, url.searchParams);
    const readAt = await ctx.history.markRead(user, id);
    ctx.hub.sendRead(user!, id, readAt);
    sendJson(res, 200, { id, readAt }, CORS);
  };
  return async (req, res) => {
    const url = parseTarget(req.url);
    const method = req.method ?? 'GET';
    if (method === 'OPTIONS') return void res.writeHead(204, PREFLIGHT).end();
    const methods: Methods | undefined = READ_PATH.test(url.pathname) ? { POST: markRead } : routes[url.pathname];
    if (!methods) throw new HttpError(404, 'E_NOT_FOUND', `no route ${method} ${url.pathname}`);
    const route = methods[method] ?? (method === 'HEAD' ? methods.GET : undefined);
    if (!route) throw new HttpError(405, 'E_METHOD', `${method} is not allowed on ${url.pathname}`, { Allow: allowed(methods) });
    await route(req, res, url);
  };
}

function routeTable(ctx: GatewayContext): Record<string, Methods> {
  const { config, hub, metrics } = ctx;
  return {
    '/': { GET: (_req, res) => void res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(DEMO_PAGE) },
    '/events': subscribeRoutes(ctx),
    '/poll': pollRoutes(ctx),
    '/ws': { GET: () => Promise.reject(new HttpError(426, 'E_UPGRADE', 'GET /ws needs a WebSocket upgrade')) },
    '/publish': {
      async POST(req, res) {
        ctx.auth.checkPublishKey(req.headers);
        sendJson(res, 202, await handlePublish(req, { broker: ctx.broker, hub, metrics, maxBody: config.maxBody }), CORS);
      },
    },
    '/notifications': {
      async GET(req, res, url) {
        const { user } = await ctx.auth.identify(req.headers, url.searchParams);
        if (user === undefined) throw new HttpError(400, 'E_USER', 'listing notifications needs a user (?user= or a token)');
        const unread = url.searchParams.get('unread');
        sendJson(res, 200, await ctx.history.list(user, unread === '1' || unread === 'true'), CORS);
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
      GET: (_req, res) => {
        if (ctx.draining) return sendJson(res, 503, { status: 'draining' });
        if (isReadinessReporting(ctx.broker) && !ctx.broker.ready()) return sendJson(res, 503, { status: 'broker-unavailable', connections: hub.size });
        sendJson(res, 200, { status: 'ready', connections: hub.size });
      },
    },
  };
}

function subscribeRoutes(ctx: GatewayContext): Methods {
  return {
    GET: (req, res, url) => openSse(ctx, req, url, res),
    // Same checks, the stream's headers, no stream: a HEAD holds no subscription.
    async HEAD(req, res, url) {
      await ctx.admit('sse', req, url, sseCursor(req, url));
      res.writeHead(200, SSE_HEADERS).end();
    },
  };
}

/**
 * `GET /events`: admission, then the stream, on node:http's response or on the raw socket of a request the front door
 * took (front-door.ts).
 */
export async function openSse(ctx: GatewayContext, req: { headers: IncomingHttpHeaders }, url: URL, out: ServerResponse | Socket): Promise<void> {
  const { identity, given } = await ctx.admit('sse', req, url, sseCursor(req, url));
  if (out instanceof Socket ? out.destroyed || !out.writable : gone(out)) return;
  const sub = new SseSubscriber(identity.user, ctx.subOptions, out, ctx.config.retryMs);
  await ctx.started(sub, startSubscription(ctx.deps, sub, given));
}

function pollRoutes(ctx: GatewayContext): Methods {
  const { config } = ctx;
  function pollTimeout(text: string | null): number {
    const seconds = text === null ? config.pollTimeoutMs / 1000 : Number(text);
    if (!Number.isFinite(seconds) || seconds < 0) throw new HttpError(400, 'E_TIMEOUT', `timeout must be seconds >= 0 (got "${text?.slice(0, 40)}")`);
    return Math.min(seconds * 1000, config.pollTimeoutMaxMs);
  }
  return {
    async GET(req, res, url) {
      const { identity, given } = await ctx.admit('poll', req, url, queryCursor(url));
      const timeoutMs = pollTimeout(url.searchParams.get('timeout'));
      if (gone(res)) return;
      const sub = new PollSubscriber(identity.user, ctx.subOptions, res, timeoutMs);
      await ctx.started(sub, startSubscription(ctx.deps, sub, given));
    },
    async HEAD(req, res, url) {
      await ctx.admit('poll', req, url, queryCursor(url));
      pollTimeout(url.searchParams.get('timeout'));
      res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', ...CORS }).end();
    },
  };
}

/** The methods a path answers: a GET route answers HEAD too. */
function allowed(methods: Methods): string {
  const names = Object.keys(methods);
  if (names.includes('GET') && !names.includes('HEAD')) names.splice(names.indexOf('GET') + 1, 0, 'HEAD');
  return names.join(', ');
}

function sseCursor(req: { headers: IncomingHttpHeaders }, url: URL): string | undefined {
  const q = url.searchParams;
  return (req.headers['last-event-id'] as string | undefined) || q.get('lastEventId') || q.get('cursor') || undefined;
}

/** The resume cursor of a long-poll or WebSocket subscribe: `?cursor=` or `?lastEventId=`. */
export function queryCursor(url: URL): string | undefined {
  const q = url.searchParams;
  return q.get('cursor') || q.get('lastEventId') || undefined;
}

/** The client went away while the request was being admitted (a token being verified, a slow broker). */
function gone(res: ServerResponse): boolean {
  // HTTP/2 (compatibility API): the socket is the session's; the stream is what the client may have reset.
  const stream = (res as ServerResponse & { stream?: { destroyed: boolean } }).stream;
  if (stream !== undefined) return stream.destroyed;
  return res.destroyed || res.socket === null || res.socket.destroyed;
}
