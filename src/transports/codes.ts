/** Turns whatever a socket, undici or ws fails with into the short stable codes the swarm counts by. */

// undici wraps its own failures in UND_ERR_* codes; the swarm wants the cause, not the library.
const LIBRARY_CODES: Record<string, string> = {
  UND_ERR_CONNECT_TIMEOUT: 'timeout',
  UND_ERR_HEADERS_TIMEOUT: 'timeout',
  UND_ERR_BODY_TIMEOUT: 'idle-timeout',
  UND_ERR_SOCKET: 'socket-closed',
  UND_ERR_ABORTED: 'aborted',
  UND_ERR_DESTROYED: 'aborted',
  UND_ERR_CLOSED: 'aborted',
  UND_ERR_INFO: 'aborted',
  UND_ERR_RES_EXCEEDED_MAX_SIZE: 'too-large',
};

export function errorCode(err: unknown): string {
  if (err === null || typeof err !== 'object') return 'error';
  const e = err as { code?: unknown; message?: unknown; errors?: unknown };
  if (typeof e.code === 'string') return LIBRARY_CODES[e.code] ?? e.code;
  // Happy-eyeballs connects (autoSelectFamily) fail with an AggregateError of the per-address errors.
  if (Array.isArray(e.errors) && e.errors.length > 0) return errorCode(e.errors[0]);
  // ws reports its handshake timeout only as a message.
  if (typeof e.message === 'string' && /timed out/i.test(e.message)) return 'timeout';
  return 'error';
}

/**
 * Codes of failures that happen before a request leaves this machine: no connection was made (refused, no route, no
 * such host, connect timeout, no local port or descriptor), so nothing was sent and the server cannot have stored it.
 * A reset or a timeout after connecting is not among them: the request may have arrived.
 */
const BEFORE_SENDING = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_NONAME',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'EMFILE',
  'ENFILE',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** True when `err` says the connection was never made, so the request was never sent (see BEFORE_SENDING). */
export function failedBeforeSending(err: unknown): boolean {
  if (err === null || typeof err !== 'object') return false;
  const e = err as { code?: unknown; errors?: unknown };
  if (typeof e.code === 'string') return BEFORE_SENDING.has(e.code);
  // Happy-eyeballs: every address failed to connect.
  return Array.isArray(e.errors) && e.errors.length > 0 && e.errors.every(failedBeforeSending);
}

/** `Retry-After` in ms (delta-seconds or an HTTP date), undefined when absent or unparsable. */
export function retryAfterMs(value: string | string[] | undefined): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v === '') return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** A server-given reason as a code fragment: 'slow consumer' -> 'slow-consumer'. */
export function slug(reason: unknown): string {
  if (typeof reason !== 'string' || reason === '') return 'unknown';
  return (
    reason
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')
      .slice(0, 40) || 'unknown'
  );
}
