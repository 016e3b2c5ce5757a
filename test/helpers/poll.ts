/** Long-poll requests: `GET /poll` with a cursor and a timeout, answered with JSON. */
import { http, type HttpResult } from './http.js';

export interface PollBody {
  cursor: string;
  notifications: any[];
  unread?: any[];
  unreadCount?: number;
  reset?: { reason: string };
  read?: { id: string; readAt: string }[];
}

export interface PollOptions {
  user?: string;
  cursor?: string;
  /** Seconds (the server's unit). */
  timeout?: number;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  query?: Record<string, string>;
}

export function pollUrl(baseUrl: string, { user, cursor, timeout, query = {} }: PollOptions): string {
  const q = new URLSearchParams(query);
  if (user !== undefined) q.set('user', user);
  if (cursor !== undefined) q.set('cursor', cursor);
  if (timeout !== undefined) q.set('timeout', String(timeout));
  const s = q.toString();
  return `${baseUrl}/poll${s ? `?${s}` : ''}`;
}

export function poll(baseUrl: string, opts: PollOptions = {}): Promise<HttpResult<PollBody>> {
  return http<PollBody>(pollUrl(baseUrl, opts), { headers: opts.headers, signal: opts.signal });
}
