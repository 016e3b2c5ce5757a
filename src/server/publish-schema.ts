/** The zod schema that checks what publishers send to `POST /publish` (the shapes are src/protocol/notification.ts). */
import { z } from 'zod';
import { MAX_DATA_DEPTH, NOTIFICATION_TYPES, type PublishRequest } from '../protocol/notification.js';
import { USER_ID, USER_ID_RULE } from '../protocol/streams.js';

/** Depth of a JSON value (a scalar is 0), walked without recursion; stops counting past `limit`. */
export function jsonDepth(value: unknown, limit: number): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d + 1 > deepest) deepest = d + 1;
    if (deepest > limit) return deepest;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, d + 1]);
  }
  return deepest;
}

/** The longest each string field of a notification may be (UTF-16 units; a title has at least one), the schema's and quickPublishRequest's. */
const MAX_LENGTH = { title: 1000, body: 60_000, actorId: 200, entityType: 200, entityId: 200, actionUrl: 2000, imageUrl: 2000 } as const;
/** The most users one publish request may name. */
const MAX_USERS = 10_000;

/** What a publisher may send: everything but the fields the server owns. */
export const notificationInputSchema = z
  .object({
    type: z.enum(NOTIFICATION_TYPES),
    title: z.string().min(1).max(MAX_LENGTH.title),
    body: z.string().max(MAX_LENGTH.body).default(''),
    actorId: z.string().max(MAX_LENGTH.actorId).optional(),
    entityType: z.string().max(MAX_LENGTH.entityType).optional(),
    entityId: z.string().max(MAX_LENGTH.entityId).optional(),
    actionUrl: z.string().max(MAX_LENGTH.actionUrl).optional(),
    imageUrl: z.string().max(MAX_LENGTH.imageUrl).optional(),
    data: z
      .record(z.unknown())
      .refine((d) => jsonDepth(d, MAX_DATA_DEPTH) <= MAX_DATA_DEPTH, { message: `nested deeper than ${MAX_DATA_DEPTH} levels` })
      .optional(),
    createdAt: z.string().datetime({ offset: true }).optional(),
  })
  .strict();

const userId = z
  .union([z.string(), z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)])
  .transform(String)
  .refine((id) => USER_ID.test(id), { message: `a user id is ${USER_ID_RULE}` });

/** One publish request: exactly one target (`user`, `users` or `broadcast: true`) and one notification. */
export const publishRequestSchema = z
  .object({
    user: userId.optional(),
    users: z.array(userId).min(1).max(MAX_USERS).optional(),
    broadcast: z.literal(true).optional(),
    notification: notificationInputSchema,
  })
  .strict()
  .superRefine((req, ctx) => {
    const targets = [req.user !== undefined, req.users !== undefined, req.broadcast === true].filter(Boolean).length;
    if (targets !== 1) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: targets === 0 ? 'no target: give one of user, users or broadcast: true' : 'give only one of user, users or broadcast',
        path: [],
      });
    }
  });
/** A request as the schema passes it on: defaults filled, user ids as strings. */
export type ValidPublishRequest = z.infer<typeof publishRequestSchema>;
// The schema accepts what the protocol says a publisher sends (a compile-time check that the two agree).
const _accepts: (r: PublishRequest) => z.input<typeof publishRequestSchema> = (r) => r;
void _accepts;

/** The optional string fields, with their limits. */
const OPTIONAL_STRINGS = Object.entries(MAX_LENGTH).filter(([key]) => key !== 'title' && key !== 'body');
/** The notification's fields in the schema's order, the order zod's output has them in; createdAt is zod's alone. */
const NOTIFICATION_ORDER: readonly string[] = Object.keys(notificationInputSchema.shape).filter((key) => key !== 'createdAt');
const TYPES: ReadonlySet<unknown> = new Set(NOTIFICATION_TYPES);

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function quickUserId(v: unknown): string | undefined {
  const id = typeof v === 'string' ? v : Number.isSafeInteger(v) && (v as number) >= 0 ? String(v) : undefined;
  return id !== undefined && USER_ID.test(id) ? id : undefined;
}

/**
 * What `publishRequestSchema.safeParse(raw)` gives for a request of the common shape, without zod: the same object,
 * keys in the same order. Undefined whenever anything is outside that shape (a `createdAt`, a `__proto__` key in
 * `data`, any value zod would refuse): zod then decides, and words its error. At a publisher's pace zod's parse was
 * 0.78-0.90x of a publish's CPU (BENCHMARKS.md, "publish door").
 */
export function quickPublishRequest(raw: unknown): ValidPublishRequest | undefined {
  if (!isRecord(raw)) return undefined;
  const out: Record<string, unknown> = {};
  let targets = 0;
  for (const key in raw) {
    const v = raw[key];
    if (key === 'user') {
      if ((out.user = quickUserId(v)) === undefined) return undefined;
      targets++;
    } else if (key === 'users') {
      if (!Array.isArray(v) || v.length === 0 || v.length > MAX_USERS) return undefined;
      const ids = v.map(quickUserId);
      if (ids.includes(undefined)) return undefined;
      out.users = ids;
      targets++;
    } else if (key === 'broadcast') {
      if (v !== true) return undefined;
      out.broadcast = true;
      targets++;
    } else if (key !== 'notification') return undefined;
  }
  const n = raw.notification;
  if (targets !== 1 || !isRecord(n)) return undefined;
  for (const key in n) if (!NOTIFICATION_ORDER.includes(key)) return undefined;
  if (!TYPES.has(n.type) || typeof n.title !== 'string' || n.title.length < 1 || n.title.length > MAX_LENGTH.title) return undefined;
  if (n.body !== undefined && (typeof n.body !== 'string' || n.body.length > MAX_LENGTH.body)) return undefined;
  for (const [key, max] of OPTIONAL_STRINGS) {
    const v = n[key];
    if (key in n && (typeof v !== 'string' || v.length > max)) return undefined;
  }
  const data = n.data;
  if ('data' in n && (!isRecord(data) || Object.hasOwn(data, '__proto__') || jsonDepth(data, MAX_DATA_DEPTH) > MAX_DATA_DEPTH)) return undefined;
  const notification: Record<string, unknown> = {};
  for (const key of NOTIFICATION_ORDER) {
    if (key === 'body') notification.body = n.body ?? '';
    else if (key === 'data' && 'data' in n) notification.data = { ...(data as Record<string, unknown>) };
    else if (key in n) notification[key] = n[key];
  }
  // zod's object output follows the schema's key order, not the input's.
  const ordered: Record<string, unknown> = {};
  for (const key of ['user', 'users', 'broadcast'] as const) if (key in out) ordered[key] = out[key];
  ordered.notification = notification;
  return ordered as ValidPublishRequest;
}
