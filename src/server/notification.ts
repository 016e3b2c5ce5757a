/** The notification as DESIGN.md defines it, and the zod schema that validates what publishers send. */
import { z } from 'zod';

export const NOTIFICATION_TYPES = ['comment', 'mention', 'order', 'system', 'alert'] as const;
export type NotificationType = (typeof NOTIFICATION_TYPES)[number];

export interface Notification {
  /** Assigned by the server. */
  id: string;
  /** Absent on broadcast. */
  userId?: string;
  type: NotificationType;
  title: string;
  body: string;
  actorId?: string;
  entityType?: string;
  entityId?: string;
  actionUrl?: string;
  imageUrl?: string;
  /** Free-form; the swarm's probe lives in data.probe. */
  data?: Record<string, unknown>;
  readAt?: string;
  /** ISO 8601. */
  createdAt: string;
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
    data: z.record(z.unknown()).optional(),
    createdAt: z.string().datetime({ offset: true }).optional(),
  })
  .strict();
export type NotificationInput = z.infer<typeof notificationInputSchema>;

const userId = z.union([z.string().min(1).max(200), z.number().int().nonnegative()]).transform(String);

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
export type PublishRequest = z.infer<typeof publishRequestSchema>;

/** Name of a user's stream, and of the broadcast stream. */
export const BROADCAST = 'broadcast';
export function userStream(user: string): string {
  return `user:${user}`;
}
