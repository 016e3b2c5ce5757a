/** Shape checks for the JSON the servers send, shared by the three transports. */

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `unreadCount` of an init snapshot; servers that only send the list get its length. */
export function unreadCount(snapshot: Record<string, unknown>): number {
  if (typeof snapshot.unreadCount === 'number') return snapshot.unreadCount;
  return Array.isArray(snapshot.unread) ? snapshot.unread.length : 0;
}
