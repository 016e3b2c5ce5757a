/** Builds a subscribe request from a `SubscribeTarget`: the one place that knows the query parameter names. */
import type { SubscribeTarget } from './transport.js';

export interface SubscribeRequest {
  /** `http://host:port` (or ws://, https://, wss://). */
  origin: string;
  /** Path with query, ready for the request line. */
  path: string;
  /** Request headers including `Authorization` when the target has a token. */
  headers: Record<string, string>;
}

/**
 * `params` with an undefined value are left out. A path prefix in `target.url` is kept (`http://h/gw` +
 * `/events` -> `/gw/events`) because gateways behind a proxy are mounted that way; its query is kept too.
 */
export function subscribeRequest(
  target: SubscribeTarget,
  defaultPath: string,
  params: ReadonlyArray<readonly [string, string | undefined]>,
  scheme?: 'ws',
): SubscribeRequest {
  const base = new URL(target.url);
  const url = new URL(base.href);
  url.pathname = base.pathname.replace(/\/+$/, '') + (target.path ?? defaultPath);
  if (target.user !== undefined) url.searchParams.set('user', target.user);
  for (const [name, value] of params) if (value !== undefined) url.searchParams.set(name, value);
  let origin = url.origin;
  if (scheme === 'ws') origin = origin.replace(/^http/, 'ws');
  const headers: Record<string, string> = { ...target.headers };
  if (target.token !== undefined) headers.authorization = `Bearer ${target.token}`;
  return { origin, path: url.pathname + url.search, headers };
}

/**
 * Where a resumed attempt puts its cursor, by the target's `resume` (transport.ts): the `Last-Event-ID` header, a
 * query parameter, or nowhere. `fallback` is notify serve's choice for the transport.
 */
export function resumeWith(target: SubscribeTarget, cursor: string | undefined, fallback: string): { header?: string; query?: readonly [string, string] } {
  if (cursor === undefined) return {};
  const mode = target.resume ?? fallback;
  if (mode === 'last-event-id') return { header: cursor };
  if (mode.startsWith('query:')) return { query: [mode.slice(6), cursor] };
  return {};
}
