/** `POST /publish`: validate, append to history through the broker, answer 202 {ids, delivered}. */
import type { IncomingMessage } from 'node:http';
import type { ZodError } from 'zod';
import { BROADCAST, userStream } from '../protocol/streams.js';
import { publishRequestSchema, quickPublishRequest, type ValidPublishRequest } from './publish-schema.js';
import { isAudienceCounting, type Broker, type PublishItem, type StreamEvent } from './brokers/broker.js';
import { HttpError, readBody } from './http-error.js';
import { requireJsonBody } from './request.js';
import type { Hub } from './hub.js';
import type { GatewayMetrics } from './metrics.js';

export interface PublishResult {
  ids: string[];
  delivered: number;
}

export interface PublishDeps {
  broker: Broker;
  hub: Hub;
  metrics: GatewayMetrics;
  maxBody: number;
}

export async function handlePublish(req: IncomingMessage, deps: PublishDeps): Promise<PublishResult> {
  requireJsonBody(req.headers);
  return publishBody(await readBody(req, deps.maxBody), deps);
}

/** The body of a `POST /publish` whose headers were checked, however it was read (node:http or the front door). */
export async function publishBody(body: Buffer, deps: PublishDeps): Promise<PublishResult> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, 'E_JSON', `request body is not valid JSON: ${(err as Error).message}`);
  }
  const list = Array.isArray(parsed) ? parsed : [parsed];
  if (list.length === 0) throw new HttpError(400, 'E_INVALID', 'empty batch: send at least one publish request');
  if (list.length > 10_000) throw new HttpError(413, 'E_TOO_LARGE', `batch of ${list.length} requests; the limit is 10000`);
  const items: PublishItem[] = [];
  list.forEach((raw, i) => {
    const quick = quickPublishRequest(raw);
    if (quick !== undefined) return void items.push(...toItems(quick));
    const r = publishRequestSchema.safeParse(raw);
    if (!r.success) throw new HttpError(400, 'E_INVALID', describe(r.error, Array.isArray(parsed) ? `[${i}]` : ''));
    items.push(...toItems(r.data));
  });
  const events = await deps.broker.publish(items);
  const delivered = await countDelivered(events, deps);
  let broadcasts = 0;
  for (const ev of events) if (ev.stream === BROADCAST) broadcasts++;
  if (broadcasts) deps.metrics.published.inc({ stream: 'broadcast' }, broadcasts);
  if (events.length > broadcasts) deps.metrics.published.inc({ stream: 'user' }, events.length - broadcasts);
  return { ids: events.map((ev) => ev.notification.id), delivered };
}

/**
 * `delivered`: one broker, one process: the live connections each event was written to. A shared broker: the live
 * subscriptions of each event's stream on every instance, each counted by its instance right after the events were
 * stored (an instance that does not answer in time is not counted; if none can be asked, this instance's own).
 */
async function countDelivered(events: StreamEvent[], deps: PublishDeps): Promise<number> {
  const local = (): number => events.reduce((n, ev) => n + (ev.delivered ?? deps.hub.audience(ev.stream)), 0);
  if (!isAudienceCounting(deps.broker)) return local();
  try {
    return (await deps.broker.audience(events.map((ev) => ev.stream))).reduce((a, b) => a + b, 0);
  } catch {
    return local();
  }
}

function toItems(req: ValidPublishRequest): PublishItem[] {
  const { createdAt, ...rest } = req.notification;
  const base = { ...rest, createdAt: createdAt ?? new Date().toISOString() };
  if (req.broadcast) return [{ stream: BROADCAST, notification: base }];
  const users = req.users ?? [req.user!];
  return users.map((user) => ({ stream: userStream(user), notification: { ...base, userId: user } }));
}

/** First issue, as `path: message`, e.g. `notification.type: Invalid enum value ...`. */
function describe(err: ZodError, prefix: string): string {
  const issue = err.issues[0]!;
  const path = prefix + issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('');
  const where = path.replace(/^\./, '') || 'body';
  return `${where}: ${issue.message}`;
}
