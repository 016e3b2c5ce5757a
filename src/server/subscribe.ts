/**
 * The start of every subscription, whatever its transport: join the hub first (live events queue up), then send
 * either the replay after the given cursor or a fresh snapshot, then go live. Joining first is what makes
 * "no gap, no duplicate" hold when events are published during the set-up.
 */
import type { Cursor } from './cursor.js';
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

export async function startSubscription(deps: SubscribeDeps, sub: Subscriber, given: { text: string; cursor: Cursor } | undefined): Promise<void> {
  const { hub, history, metrics } = deps;
  hub.add(sub);
  metrics.connectionsOpened.inc({ transport: sub.transport });
  try {
    if (given) {
      const result = await history.replay(sub.user, given.cursor);
      if (sub.closed) return;
      if (result.ok) {
        sub.setPosition(given.cursor);
        const n = sub.replay(result.events);
        if (n) metrics.replayed.inc({ transport: sub.transport }, n);
        sub.goLive();
        return;
      }
      metrics.resets.inc({ reason: result.reason });
      sub.sendReset(result.reason, given.text);
    }
    await sendInit(deps, sub);
    if (!sub.closed) sub.goLive();
  } catch (err) {
    hub.remove(sub);
    throw err;
  }
}

async function sendInit(deps: SubscribeDeps, sub: Subscriber): Promise<void> {
  const [head, snap] = await Promise.all([deps.history.head(sub.user), deps.history.snapshot(sub.user, deps.unreadLimit)]);
  if (sub.closed) return;
  sub.setPosition(head);
  sub.catchUp(() => sub.sendInit({ cursor: sub.cursor, unread: snap.unread, unreadCount: snap.unreadCount }));
}
