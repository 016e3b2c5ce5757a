/**
 * What the SSE stream's head and first bytes say: status and Content-Type / Cache-Control, compression, how the body
 * is framed, and the `retry:` line. All read the one shared stream.
 */
import type { CheckContext } from './context.js';
import { FIX } from './fixes.js';
import { fail, ms, pass, skip, warn, type Check, type Outcome } from './outcome.js';
import type { Head } from './raw-http.js';

export function headerLines(head: Head, names: readonly string[]): string[] {
  return names.map((n) => `${n}: ${head.headers[n.toLowerCase()] ?? '(absent)'}`);
}

const statusLine = (head: Head) => `HTTP/${head.version} ${head.status}`;

async function sseHeaders(ctx: CheckContext): Promise<Outcome> {
  const s = await ctx.sharedSse();
  const where = `GET ${s.request.url.href}`;
  if (!s.head) {
    // A head that never comes from a server that accepted the connection: a proxy holding the whole answer.
    const held = /no response head/.test(s.error ?? '');
    return fail(`no answer from the stream: ${s.error}${held ? ' (a proxy that buffers holds even the head)' : ''}`, {
      evidence: [where],
      fix: held ? FIX.buffering : [],
    });
  }
  const { head } = s;
  const evidence = [where, statusLine(head), ...headerLines(head, ['Content-Type', 'Cache-Control'])];
  if ((head.status === 401 || head.status === 403) && !ctx.config.token) {
    return skip(`the stream needs credentials (HTTP ${head.status}): pass --token to check it`, { evidence });
  }
  if (head.status !== 200) return fail(`the stream answered HTTP ${head.status}, not 200`, { evidence, values: { status: head.status } });
  const type = head.headers['content-type'] ?? '';
  if (!/^text\/event-stream\b/i.test(type)) return fail(`Content-Type is ${type || 'absent'}, not text/event-stream`, { evidence, fix: FIX.contentType });
  const cache = head.headers['cache-control'] ?? '';
  if (!/\bno-(cache|store)\b/i.test(cache)) {
    return warn(`Cache-Control is ${cache || 'absent'}: a cache on the path may hold or replay the stream`, { evidence, fix: FIX.cacheControl });
  }
  return pass('200, Content-Type: text/event-stream, Cache-Control: no-cache', { evidence });
}

async function sseCompression(ctx: CheckContext): Promise<Outcome> {
  const { head, request } = await ctx.openStream();
  const offered = `request Accept-Encoding: ${request.headers['Accept-Encoding']}`;
  const encoding = head.headers['content-encoding'];
  if (encoding && encoding.toLowerCase() !== 'identity') {
    return fail(`the event stream is compressed (Content-Encoding: ${encoding}): events wait in the compressor's buffer`, {
      evidence: [offered, `answer Content-Encoding: ${encoding}`],
      fix: FIX.compression,
      values: { contentEncoding: encoding },
    });
  }
  return pass('not compressed, although the request offered it', { evidence: [offered, 'answer Content-Encoding: (absent)'] });
}

/** A header that names a proxy, CDN or load balancer between us and the server. */
function intermediary(head: Head): string | undefined {
  const h = head.headers;
  if (h.via) return `Via: ${h.via}`;
  if (h['cf-ray']) return `CF-Ray: ${h['cf-ray']}`;
  if (h.server && /nginx|openresty|cloudflare|envoy|apache|haproxy|awselb|caddy|traefik|heroku|varnish|cowboy/i.test(h.server)) return `Server: ${h.server}`;
  return undefined;
}

async function sseFraming(ctx: CheckContext): Promise<Outcome> {
  const s = await ctx.openStream();
  const { head } = s;
  const framing = s.raw.framing() ?? 'close';
  const evidence = [statusLine(head), ...headerLines(head, ['Transfer-Encoding', 'Content-Length', 'Connection'])];
  if (framing === 'chunked') return pass('chunked: each event can be sent as it comes, on a connection that stays reusable', { evidence, values: { framing } });
  if (framing === 'length') {
    return fail('the stream has a Content-Length: something on the path read the whole body before answering', {
      evidence,
      fix: FIX.buffering,
      values: { framing },
    });
  }
  const proxy = intermediary(head);
  if (proxy) {
    evidence.push(proxy);
    return warn(`delimited by closing the connection (no chunked framing) on the answer of a proxy (${proxy})`, {
      evidence,
      fix: FIX.chunked,
      values: { framing },
    });
  }
  return pass('delimited by closing the connection, straight from the origin server (no proxy header seen)', { evidence, values: { framing } });
}

const RETRY_WAIT_MS = 2000;

async function sseRetry(ctx: CheckContext): Promise<Outcome> {
  const { reader, head } = await ctx.openStream();
  const r = await reader.waitFor((x) => x.kind === 'retry', Math.min(ctx.config.eventWaitMs, RETRY_WAIT_MS));
  if (r)
    return pass(`retry: ${r.name} ms`, {
      evidence: [`retry: ${r.name}, ${ms(r.at - head.at)} after the head (read #${r.read})`],
      values: { retryMs: Number(r.name) },
    });
  if (reader.records.length === 0) return skip(`no byte of the body within ${ms(RETRY_WAIT_MS)} (see sse-streaming)`);
  const first = reader.records.slice(0, 3).map((x) => `${x.kind} ${x.name}`.trim());
  return warn('no retry: line: every client reconnects at its own default (about 3 s in browsers), all at once after a restart', {
    evidence: [`first records: ${first.join(', ')}`],
    fix: FIX.retry,
  });
}

export const SSE_HEAD_CHECKS: Check[] = [
  { name: 'sse-headers', title: 'SSE answer: 200, Content-Type: text/event-stream, Cache-Control: no-cache', run: sseHeaders },
  { name: 'sse-compression', title: 'no compression on the event stream', run: sseCompression },
  { name: 'sse-framing', title: 'stream framing (chunked)', run: sseFraming },
  { name: 'sse-retry', title: 'retry: sent', run: sseRetry },
];
