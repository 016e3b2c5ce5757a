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

/** What a publisher may send: everything but the fields the server owns. */
export const notificationInputSchema = z
  .object({
    type: z.enum(NOTIFICATION_TYPES),
    title: z.string().min(1).max(1000),
    body: z.string().max(60_000).default(''),
    actorId: z.string().max(200).optional(),
    entityType: z.string().max(200).optional(),
    entityId: z.string().max(200).optional(),
    actionUrl: z.string().max(2000).optional(),
    imageUrl: z.string().max(2000).optional(),
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
    users: z.array(userId).min(1).max(10_000).optional(),
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
