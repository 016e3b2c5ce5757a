/** Plain HTTP against the gateway (fetch, i.e. undici): JSON requests, publish, /metrics parsing. */
import { expect } from 'vitest';

export interface HttpResult<T = any> {
  status: number;
  headers: Headers;
  text: string;
  /** Parsed JSON body, or undefined when the body is not JSON. */
  body: T;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  /** An object is sent as JSON; a string or Buffer as is. */
  body?: unknown;
  signal?: AbortSignal;
}

export async function http<T = any>(url: string, opts: RequestOptions = {}): Promise<HttpResult<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  let body: string | Uint8Array<ArrayBuffer> | undefined;
  if (typeof opts.body === 'string') body = opts.body;
  // fetch takes bytes over an ArrayBuffer only; a Buffer's type allows a SharedArrayBuffer, so copy it.
  else if (Buffer.isBuffer(opts.body)) body = new Uint8Array(opts.body);
  else if (opts.body !== undefined) body = JSON.stringify(opts.body);
  if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['Content-Type'] = 'application/json';
  const res = await fetch(url, { method: opts.method ?? (body === undefined ? 'GET' : 'POST'), headers, body, signal: opts.signal });
  const text = await res.text();
  let parsed: any;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, text, body: parsed };
}

/** A notification input with sensible defaults. */
export function note(title: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { type: 'comment', title, body: `body of ${title}`, ...extra };
}

export interface PublishTarget {
  user?: string;
  users?: string[];
  broadcast?: true;
}

/** POST /publish, expecting 202; returns the ids. */
export async function publishOk(
  baseUrl: string,
  target: PublishTarget,
  notification: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<string[]> {
  const r = await http<{ ids: string[]; delivered: number }>(`${baseUrl}/publish`, { body: { ...target, notification }, headers });
  expect(r.status, r.text).toBe(202);
  return r.body.ids;
}

/** Publishes one notification per title to one target, one request each, in order; returns the ids. */
export async function publishEach(baseUrl: string, target: PublishTarget, titles: string[], extra: Record<string, unknown> = {}): Promise<string[]> {
  const ids: string[] = [];
  for (const t of titles) ids.push(...(await publishOk(baseUrl, target, note(t, extra))));
  return ids;
}

/** Asserts the body is `{error: {code, message}}` with that status and code; returns the message. */
export function expectError(r: HttpResult, status: number, code: string): string {
  expect(r.status, r.text).toBe(status);
  expect(r.headers.get('content-type') ?? '').toMatch(/^application\/json/);
  expect(Object.keys(r.body)).toEqual(['error']);
  expect(Object.keys(r.body.error).sort()).toEqual(['code', 'message']);
  expect(r.body.error.code).toBe(code);
  expect(typeof r.body.error.message).toBe('string');
  expect(r.body.error.message.length).toBeGreaterThan(0);
  return r.body.error.message as string;
}

/** One sample of a Prometheus text exposition: `name{a="b"} value`; labels must match exactly the given ones. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) got[k!] = v!;
    const want = Object.entries(labels);
    if (want.length !== Object.keys(got).length || !want.every(([k, v]) => got[k] === v)) continue;
    return Number(m[3]);
  }
  return undefined;
}

export async function scrape(baseUrl: string): Promise<string> {
  const r = await http(`${baseUrl}/metrics`);
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type') ?? '').toMatch(/^text\/plain/);
  return r.text;
}

/** Scrapes /metrics until the sample has the value (for a server in another process); fails after `timeoutMs`. */
export async function waitMetric(baseUrl: string, name: string, labels: Record<string, string>, value: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: number | undefined;
  while (Date.now() <= deadline) {
    last = metricValue(await scrape(baseUrl), name, labels);
    if (last === value) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out after ${timeoutMs}ms waiting for ${name}${JSON.stringify(labels)} == ${value} (last ${last})`);
}

/**
 * Publishes to `user` in batches of 10 x 3 KB until the gateway holds no subscriber any more (the one that stopped
 * reading was closed as a slow consumer), at most 4,000 events; returns the ids, in order. The kernel holds a few MB on
 * loopback before the server's own buffer grows, hence the volume.
 */
export async function floodUntilClosed(gw: { url: string; hub: { size: number } }, user: string): Promise<string[]> {
  const published: string[] = [];
  let n = 0;
  while (gw.hub.size > 0 && n < 4000) {
    const batch = Array.from({ length: 10 }, () => ({ user, notification: note(`e${n++}`, { body: 'z'.repeat(3000) }) }));
    const r = await http<{ ids: string[] }>(`${gw.url}/publish`, { body: batch });
    expect(r.status, r.text).toBe(202);
    published.push(...r.body.ids);
  }
  expect(gw.hub.size).toBe(0);
  return published;
}
