/**
 * The start of every subscription, whatever its transport: join the hub first (live events queue up), then send
 * either the replay after the given cursor or a fresh snapshot, then go live. Joining first is what makes
 * "no gap, no duplicate" hold when events are published during the set-up.
 */
import type { Cursor } from '../protocol/cursor.js';
import type { Notification } from '../protocol/notification.js';
import type { History } from './history.js';
import type { Hub } from './hub.js';
import type { GatewayMetrics } from './metrics.js';
import type { Subscriber } from './subscriber.js';

export interface SubscribeDeps {
  hub: Hub;
  history: History;
  metrics: GatewayMetrics;
  unreadLimit: number;
}

/** What startSubscription returns for a subscription it set up before returning: nothing left to wait for. */
export const SET_UP = Promise.resolve();

/**
 * Resolves once the subscription is live (or ended); rejects when its set-up failed (it has left the hub then). A fresh
 * subscription over a history that answers at once (memory) is set up before this returns, with no await at all.
 */
export function startSubscription(deps: SubscribeDeps, sub: Subscriber, given: { text: string; cursor: Cursor } | undefined): Promise<void> {
  if (given !== undefined || !deps.history.sync) return startAsync(deps, sub, given);
  deps.hub.add(sub);
  deps.metrics.opened(sub.transport);
  try {
    // Nothing can be published between joining the hub and this snapshot: it is all one synchronous run.
    const { history, unreadLimit } = deps;
    const head = history.headNow(sub.user);
    const snap = history.snapshotNow(sub.user, unreadLimit);
    if (!sub.closed) {
      init(sub, head, snap);
      if (!sub.closed) sub.goLive();
    }
  } catch (err) {
    deps.hub.remove(sub);
    return Promise.reject(err as Error);
  }
  return SET_UP;
}

async function startAsync(deps: SubscribeDeps, sub: Subscriber, given: { text: string; cursor: Cursor } | undefined): Promise<void> {
  const { hub, metrics } = deps;
  hub.add(sub);
  metrics.opened(sub.transport);
  try {
    if (given) {
      if (await replay(deps, sub, given)) return;
      if (sub.closed) return;
    }
    await sendInit(deps, sub);
    if (!sub.closed) sub.goLive();
  } catch (err) {
    hub.remove(sub);
    throw err;
  }
}

/**
 * The replay after the given cursor, a page at a time (each page what the connection has room for), then live.
 * Returns false when the history could not serve it: the subscriber was sent a `reset` and needs a fresh snapshot.
 */
async function replay(deps: SubscribeDeps, sub: Subscriber, given: { text: string; cursor: Cursor }): Promise<boolean> {
  const { history, metrics } = deps;
  let from = given;
  for (;;) {
    sub.holdLive();
    const result = await history.replay(sub.user, from.cursor);
    if (sub.closed) return true;
    if (!result.ok) {
      metrics.resets.inc({ reason: result.reason });
      sub.sendReset(result.reason, from.text);
      return false;
    }
    sub.setPosition(from.cursor);
    const { sent, done } = sub.replayPage(result.events);
    if (sent) metrics.replayed.inc({ transport: sub.transport }, sent);
    if (done) {
      sub.goLive();
      return true;
    }
    // Live events from now until the next read are in the history: the next page reads them from there, in order.
    sub.skipLive();
    if (!(await sub.whenWritable())) return true;
    from = { text: sub.cursor, cursor: { epoch: sub.epoch, user: sub.userSeq, broadcast: sub.broadcastSeq } };
  }
}

async function sendInit(deps: SubscribeDeps, sub: Subscriber): Promise<void> {
  const [head, snap] = await Promise.all([deps.history.head(sub.user), deps.history.snapshot(sub.user, deps.unreadLimit)]);
  if (sub.closed) return;
  init(sub, head, snap);
}

function init(sub: Subscriber, head: Cursor, snap: { unread: Notification[]; unreadCount: number }): void {
  sub.setPosition(head);
  sub.catchUp(() => sub.sendInit({ cursor: sub.cursor, unread: snap.unread, unreadCount: snap.unreadCount }));
}
