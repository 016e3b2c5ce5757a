/**
 * The notification as DESIGN.md defines it, and what a publisher sends for one (`POST /publish`). The server's zod
 * schema (src/server/publish-schema.ts) checks requests against these shapes.
 */
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

/**
 * What a publisher may send as a notification: the server assigns `id` (and `userId` from the target), fills
 * `createdAt` when absent and `body` with '' when absent; `readAt` is the reader's.
 */
export type PublishNotification = Omit<Notification, 'id' | 'userId' | 'readAt' | 'body' | 'createdAt'> & { body?: string; createdAt?: string };

/** Exactly one target per request: one user, several users (one event each), or the broadcast stream. */
export type PublishTarget = { user: string } | { users: string[] } | { broadcast: true };
/** One publish request; `POST /publish` takes one or an array of them (a batch, all or nothing). */
export type PublishRequest = PublishTarget & { notification: PublishNotification };

/** Deepest nesting accepted in `data`: deeper JSON costs stack on every serialisation and helps nobody. */
export const MAX_DATA_DEPTH = 32;
