/**
 * Names on the wire: SSE event names, which WebSocket frames carry in their `type` field too, the WebSocket close
 * codes the server sends, and the reasons of a `reset`. docs/protocol.md shows the bytes.
 */
export const EVENT = {
  /** First message of a fresh subscription: `{cursor, unread, unreadCount}`. */
  init: 'init',
  /** One notification. */
  notification: 'notification',
  /** Several notifications, oldest first (`--batch`, and a replay page when batching). */
  batch: 'notifications:batch',
  /** The given cursor could not be served: `{reason, cursor}`, a fresh `init` follows. */
  reset: 'reset',
  /** A read receipt from another connection of the user: `{id, readAt}`. */
  read: 'read',
  /** SSE only: why the server is closing the stream (`{reason}`), e.g. a slow consumer. */
  close: 'close',
  /** WebSocket only: a refused client frame, `{error: {code, message}}`. */
  error: 'error',
} as const;

/** The event names a notify server sends on SSE (`error` is a WebSocket frame only). */
export const SSE_EVENT_NAMES: ReadonlySet<string> = new Set([EVENT.init, EVENT.notification, EVENT.batch, EVENT.reset, EVENT.read, EVENT.close]);

/**
 * How notify serve's WebSocket frames for one event start, key order fixed: `{"type":...,"cursor":"<c>",` then
 * `"notification":{...}}` or `"notifications":[...]}`. The swarm's fast probe scan relies on this layout.
 */
export const WS_FRAME_HEAD = {
  notification: `{"type":"${EVENT.notification}","cursor":"`,
  batch: `{"type":"${EVENT.batch}","cursor":"`,
} as const;

export const WS_CLOSE = {
  /** Closed as a slow consumer (--max-buffer, --max-buffer-total): resume by cursor. */
  slowConsumer: 4008,
  /** Shutdown (RFC 6455 "service restart"): reconnect with the cursor. */
  restart: 1012,
} as const;

/** Reason text of the slow-consumer close, on SSE (`close` event) and WebSocket (close frame). */
export const SLOW_CONSUMER_REASON = 'slow consumer';

export const RESET_REASONS = ['epoch', 'window', 'ahead'] as const;
export type ResetReason = (typeof RESET_REASONS)[number];
