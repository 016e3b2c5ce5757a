/**
 * `notify serve`: the HTTP server around the gateway's parts (context.ts), its routes (routes.ts) and WebSocket
 * upgrades (upgrade.ts); refusals of Node's own parser; graceful shutdown (clients are told to come back with their
 * cursor).
 */
import type { ServerResponse } from 'node:http';
import type { AddressInfo, Server } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ServeConfig } from './config.js';
import type { Broker } from './brokers/broker.js';
import { createContext, type GatewayContext } from './context.js';
import { errorBody, HttpError, refuseSocket, sendError } from './http-error.js';
import { HEARTBEAT_TURNS, type Hub } from './hub.js';
import type { GatewayMetrics } from './metrics.js';
import { asksUpgrade, type FrontDoorHandler } from './front-door.js';
import { createListener, KEEP_ALIVE_MS } from './listener.js';
import { publishBody } from './publish.js';
import { publishDoor, type PublishDoor } from './publish-door.js';
import { parseTarget, requireJsonBody } from './request.js';
import { CORS, openSse, queryCursor, requestHandler } from './routes.js';
import { startSubscription } from './subscribe.js';
import { upgradeListener, type UpgradeHandler } from './upgrade.js';
import { WsSubscriber } from './ws.js';
import type { Logger } from '../util/log.js';
import { NotifyError } from '../errors.js';

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

export async function startGateway(config: ServeConfig, log: Logger): Promise<Gateway> {
  const ctx = await createContext(config, log);
  const { hub, metrics, broker } = ctx;
  const handle = requestHandler(ctx);
  /** A route's failure: an HttpError as it says, anything else logged and answered 500. */
  const failure = (err: unknown, url: string | undefined): HttpError => {
    const httpErr = err instanceof HttpError ? err : new HttpError(500, 'E_INTERNAL', 'internal error');
    if (!(err instanceof HttpError)) log.error('request failed', { url, error: (err as Error).stack });
    metrics.httpErrors.inc({ code: httpErr.code });
    return httpErr;
  };
  const onUpgrade = upgradeListener(wsAdmission(ctx));
  const publishes = publishRoute(ctx, failure);
  // Subscribe requests the front door read whole (front-door.ts) skip node:http; its own refusals close the
  // connection (`Connection: close`), as those of upgrade requests always did.
  const front: FrontDoorHandler = (req, socket, rest, toHttp) => {
    if (req.method === 'POST') return publishes.take(req, socket, rest, toHttp);
    if (asksUpgrade(req)) {
      if (req.path !== '/ws') return false;
      onUpgrade(req, socket, rest);
      return true;
    }
    // Bytes past the head would be a pipelined request: node:http's to answer in turn.
    if (req.path !== '/events' || rest.length > 0 || req.headers.upgrade !== undefined) return false;
    (async () => openSse(ctx, req, parseTarget(req.url), socket))().catch((err: unknown) => refuseSocket(socket, failure(err, req.url)));
    return true;
  };
  const listener = createListener(
    config,
    (req, res) => {
      handle(req, res).catch((err: unknown) => sendError(res, failure(err, req.url)));
    },
    {
      connection: () => metrics.tcpConnections.inc(),
      session: (open) => {
        metrics.http2Sessions.inc();
        metrics.http2SessionsOpen.set(open);
      },
      sessionClosed: (open) => metrics.http2SessionsOpen.set(open),
    },
    front,
  );
  const { server } = listener;
  // Requests Node's own parser refuses: the same JSON errors as every other refusal, with the status that fits.
  const onClientError = (err: NodeJS.ErrnoException, socket: Duplex) => {
    const httpErr = parserError(err);
    metrics.httpErrors.inc({ code: httpErr.code });
    if ((socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage?.headersSent) socket.destroy();
    else refuseSocket(socket, httpErr);
  };
  for (const h1 of listener.http1) h1.on('upgrade', onUpgrade).on('clientError', onClientError);

  const heartbeat = setInterval(() => hub.heartbeat(), config.heartbeatMs / HEARTBEAT_TURNS);
  heartbeat.unref();
  await listen(server, config.port, config.host).catch(async (err: unknown) => {
    clearInterval(heartbeat);
    await broker.close();
    throw err;
  });
  const port = (server.address() as AddressInfo).port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;

  let shuttingDown: Promise<void> | undefined;
  function shutdown(): Promise<void> {
    shuttingDown ??= (async () => {
      ctx.draining = true;
      clearInterval(heartbeat);
      const closed = listener.close();
      hub.shutdown(config.retryMs);
      listener.closeIdle();
      publishes.closeIdle();
      const grace = new Promise<void>((resolve) => setTimeout(resolve, config.shutdownGraceMs).unref());
      await Promise.race([closed, grace]);
      // WebSocket connections included: the listener tracks every socket.
      listener.closeAll();
      await broker.close();
    })();
    return shuttingDown;
  }

  return { url: `${listener.scheme}://${host}:${port}`, port, hub, metrics, broker, shutdown };
}

/** `POST /publish` for the publishes the front door reads (publish-door.ts): the route's checks and answers. */
function publishRoute(ctx: GatewayContext, failure: (err: unknown, url: string) => HttpError): PublishDoor {
  const { config, broker, hub, metrics } = ctx;
  return publishDoor({
    path: '/publish',
    maxBody: config.maxBody,
    keepAliveMs: KEEP_ALIVE_MS,
    requestTimeoutMs: config.requestTimeoutMs,
    answer: async (req, body) => {
      try {
        ctx.auth.checkPublishKey(req.headers);
        requireJsonBody(req.headers);
        return { status: 202, body: await publishBody(body, { broker, hub, metrics, maxBody: config.maxBody }), headers: CORS };
      } catch (err) {
        return answerOf(failure(err, req.url));
      }
    },
    refused: (err) => {
      const e = parserError(err);
      metrics.httpErrors.inc({ code: e.code });
      return answerOf(e);
    },
  });
}

const answerOf = (e: HttpError) => ({ status: e.status, body: errorBody(e), headers: e.headers });

/** Admission of a WebSocket upgrade, and the subscriber it opens (read receipts sent by the client included). */
function wsAdmission(ctx: GatewayContext): UpgradeHandler {
  const { hub, history, metrics, log } = ctx;
  // One for every connection (a closure per connection would be kept for its life).
  const onRead = (from: WsSubscriber, id: string) => {
    history.markRead(from.user, id).then(
      (readAt) => {
        hub.sendRead(from.user!, id, readAt, from);
        from.sendRead(id, readAt);
      },
      (err: unknown) => from.sendError(err instanceof HttpError ? err.code : 'E_INTERNAL', (err as Error).message),
    );
  };
  return {
    async admit(req, url) {
      const { identity, given } = await ctx.admit('ws', req, url, queryCursor(url));
      return (socket, head) => {
        const sub = new WsSubscriber(identity.user, ctx.subOptions, socket, head, onRead);
        void ctx.started(sub, startSubscription(ctx.deps, sub, given));
      };
    },
    refused: (err) => metrics.httpErrors.inc({ code: err.code }),
    failed: (err, req) => log.error('upgrade failed', { url: req.url, error: (err as Error).stack }),
  };
}

/** Why an address cannot be listened on, in the user's terms (the flags that name it). */
const LISTEN_ERRORS: Record<string, string> = {
  EADDRINUSE: 'is already in use (another process listens there; pick another --port, or 0 for a free one)',
  EACCES: 'is not allowed to this user (ports below 1024 need privileges; pick another --port)',
  EADDRNOTAVAIL: 'is not an address of this machine (check --host)',
};

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === undefined ? undefined : LISTEN_ERRORS[err.code];
      reject(why ? new NotifyError(`E_LISTEN_${err.code}`, `cannot listen on ${host}:${port}: the address ${why}`) : err);
    });
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
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
