/**
 * What every part of the gateway shares: the broker, hub, history, auth and metrics, the subscriber options, and the
 * admission checks every subscribe endpoint (SSE, long-poll, WebSocket upgrade) runs before it opens anything.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { ServeConfig } from './config.js';
import type { TransportName } from '../protocol/transports.js';
import { createBroker } from './brokers/index.js';
import { isAudienceCounting, isLossReporting, isReadSharing, type Broker } from './brokers/broker.js';
import { createAuthenticator, type Authenticator, type Identity } from './auth.js';
import { BufferBudget } from './buffer-budget.js';
import { parseCursor, type Cursor } from '../protocol/cursor.js';
import { BROADCAST, USER_STREAM_PREFIX } from '../protocol/streams.js';
import { History } from './history.js';
import { HttpError } from './http-error.js';
import { Hub } from './hub.js';
import { GatewayMetrics } from './metrics.js';
import { MemoryReadStore } from './read-store.js';
import { SET_UP, type SubscribeDeps } from './subscribe.js';
import type { Subscriber, SubscriberOptions } from './subscriber.js';
import type { Logger } from '../util/log.js';

export interface Admission {
  identity: Identity;
  /** The cursor to resume from, when one was given. */
  given: { text: string; cursor: Cursor } | undefined;
}

export interface GatewayContext {
  readonly config: ServeConfig;
  readonly log: Logger;
  readonly broker: Broker;
  readonly hub: Hub;
  readonly history: History;
  readonly auth: Authenticator;
  readonly metrics: GatewayMetrics;
  readonly deps: SubscribeDeps;
  readonly subOptions: SubscriberOptions;
  /** True once shutdown began: new subscriptions are refused. */
  draining: boolean;
  /** Checks shared by every subscribe endpoint; returns who is asking and from where to resume. */
  admit(transport: TransportName, req: { headers: IncomingHttpHeaders }, url: URL, cursorText: string | undefined): Promise<Admission>;
  /** Runs a subscription's start; one that fails is logged and told to come back. */
  started(sub: Subscriber, start: Promise<void>): Promise<void>;
}

export async function createContext(config: ServeConfig, log: Logger): Promise<GatewayContext> {
  const broker = createBroker(config.broker, { history: config.history, historyBytes: config.historyBytes });
  await broker.start();
  const metrics: GatewayMetrics = new GatewayMetrics(
    () => hub.openByTransport(),
    () => budget.recount(),
  );
  const hub: Hub = new Hub(metrics, config.coalesceMs);
  const budget = new BufferBudget(
    config.maxBufferTotal,
    () => hub.subscribers(),
    (sub) => metrics.bufferTotalCloses.inc({ transport: sub.transport }),
  );
  const history = new History(broker, isReadSharing(broker) ? broker.reads : new MemoryReadStore(), config.history);
  const enabled = new Set<TransportName>(config.transports);
  broker.onEvents((events) => hub.fanout(events));
  // A read on another instance reaches this one's connections of that user as a local read does.
  if (isReadSharing(broker)) broker.onRemoteRead(({ user, id, readAt }) => hub.sendRead(user, id, readAt));
  if (isAudienceCounting(broker)) broker.countLocal((streams) => streams.map((s) => hub.audience(s)));
  // Events a shared broker missed live and no longer holds: those subscribers come back by cursor and get their reset.
  if (isLossReporting(broker)) {
    broker.onLost(({ reason, streams }) => {
      const all = streams === undefined || streams.includes(BROADCAST);
      const subs = all ? [...hub.subscribers()] : streams.flatMap((s) => [...hub.userSubscribers(s.slice(USER_STREAM_PREFIX.length))]);
      log.warn('broker lost events; subscribers resume by cursor', { reason, subscribers: subs.length });
      for (const sub of subs) sub.shutdown(config.retryMs);
    });
  }

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

  /** The rest of an admission, once the identity is known: the cursor, then --max-conns. */
  function admitted(identity: Identity, cursorText: string | undefined): Admission {
    const given = givenCursor(cursorText);
    if (config.maxConns > 0 && hub.size >= config.maxConns) {
      metrics.connectionsRejected.inc({ reason: 'max_conns' });
      throw new HttpError(503, 'E_MAX_CONNS', `server is at --max-conns ${config.maxConns}`, { 'Retry-After': '5' });
    }
    return { identity, given };
  }

  const ctx: GatewayContext = {
    config,
    log,
    broker,
    hub,
    history,
    auth: createAuthenticator(config),
    metrics,
    deps: { hub, history, metrics, unreadLimit: config.unreadLimit },
    subOptions,
    draining: false,
    // Not an async function: without a token to verify, the whole admission is one synchronous run (no await).
    admit(transport, req, url, cursorText) {
      try {
        if (!enabled.has(transport)) throw new HttpError(404, 'E_TRANSPORT_DISABLED', `${transport} is not enabled on this server (--transports)`);
        if (ctx.draining) throw new HttpError(503, 'E_DRAINING', 'server is shutting down; come back with your cursor', { 'Retry-After': '2' });
        const identity = ctx.auth.identifyNow(req.headers, url.searchParams);
        if (identity !== undefined) return Promise.resolve(admitted(identity, cursorText));
      } catch (err) {
        return Promise.reject(err as Error);
      }
      return ctx.auth.identify(req.headers, url.searchParams).then((identity) => admitted(identity, cursorText));
    },
    // A subscription already set up (the synchronous path) has nothing that could fail left.
    started: (sub, start) =>
      start === SET_UP
        ? start
        : start.catch((err: unknown) => {
            log.error('subscription failed', { transport: sub.transport, error: (err as Error).message });
            sub.shutdown(config.retryMs);
          }),
  };
  return ctx;
}

/** The cursor an admission resumes from, checked; undefined when none was given. */
function givenCursor(cursorText: string | undefined): Admission['given'] {
  if (!cursorText) return undefined;
  const cursor = parseCursor(cursorText);
  if (!cursor) throw new HttpError(400, 'E_CURSOR', `invalid cursor "${cursorText.slice(0, 80)}": expected <epoch>.<userSeq>.<broadcastSeq>`);
  return { text: cursorText, cursor };
}
