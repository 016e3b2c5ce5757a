/**
 * Publishes probes to any HTTP API, as a target profile's `publish.http` describes it: URL, headers and body are
 * templates, sent through one keep-alive undici Pool per origin. Outcomes follow http-client.ts: an answer outside
 * `okStatus` or a request that never left (no connection) was certainly not stored; a timeout or a reset after
 * sending is unknown.
 */
import { Pool } from 'undici';
import { usageError } from '../errors.js';
import { FIELD_PLACEHOLDERS, Template, type Placeholder, type TemplateValues } from '../targets/template.js';
import type { HttpPublish } from '../targets/schema.js';
import { errorCode, failedBeforeSending } from '../transports/codes.js';
import type { ItemOutcome, ProbeItem, ProbePublisher } from './probe-publisher.js';
import type { MessageValues, ProbePublisherOptions } from './probe-publishers.js';

const { publishUrl: URL_PLACEHOLDERS, publishHeader: HEADER_PLACEHOLDERS, publishBody: BODY_PLACEHOLDERS } = FIELD_PLACEHOLDERS;
/** Header placeholders that change from one message to the next; headers without them are built once. */
const PER_MESSAGE: readonly Placeholder[] = ['user', 'token', 'stream', 'id', 'now'];

const ABORTED: ItemOutcome = { ok: false, cause: 'aborted', stored: false };

interface Route {
  url: Template;
  body: Template;
}

interface Header {
  name: string;
  value: Template;
  /** Left out when the token is missing, not only when the whole value renders empty (`Bearer {token}`). */
  usesToken: boolean;
}

export function createHttpPublisher(http: HttpPublish, base: string, values: MessageValues, options: ProbePublisherOptions): ProbePublisher {
  return new HttpTemplatePublisher(http, base, values, options);
}

class HttpTemplatePublisher implements ProbePublisher {
  readonly describe: string;
  private readonly user: Route;
  private readonly broadcast: Route;
  private readonly headers: Header[];
  /** The headers when none of them varies per message. */
  private readonly fixedHeaders: Record<string, string> | undefined;
  private readonly usesToken: boolean;
  private readonly okStatus: ReadonlySet<number> | undefined;
  private readonly pools = new Map<string, Pool>();
  private readonly timeoutMs: number;
  private destroyed = false;

  constructor(
    private readonly http: HttpPublish,
    private readonly base: string,
    private readonly values: MessageValues,
    private readonly options: ProbePublisherOptions,
  ) {
    const field = 'publish.http';
    const url = (name: 'url' | 'userUrl' | 'broadcastUrl') => compileUrl(http[name] ?? http.url!, `${field}.${http[name] ? name : 'url'}`, base);
    this.user = { url: url('userUrl'), body: new Template(http.user ?? '{payload}', `${field}.user`, BODY_PLACEHOLDERS) };
    this.broadcast = { url: url('broadcastUrl'), body: new Template(http.broadcast ?? '{payload}', `${field}.broadcast`, BODY_PLACEHOLDERS) };
    const given = Object.entries(http.headers ?? {});
    if (!given.some(([name]) => name.toLowerCase() === 'content-type')) given.push(['content-type', 'application/json']);
    this.headers = given.map(([name, text]) => {
      const value = new Template(text, `${field}.headers.${name}`, HEADER_PLACEHOLDERS);
      return { name, value, usesToken: value.uses('token') };
    });
    this.usesToken = this.headers.some((h) => h.usesToken);
    this.fixedHeaders = this.headers.some((h) => PER_MESSAGE.some((p) => h.value.uses(p))) ? undefined : this.renderHeaders({ base });
    this.okStatus = http.okStatus ? new Set(http.okStatus) : undefined;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    const shown = (t: Template) => t.text.replaceAll('{base}', base);
    this.describe =
      this.user.url.text === this.broadcast.url.text
        ? `${http.method} ${shown(this.user.url)}`
        : `${http.method} ${shown(this.user.url)} (user), ${shown(this.broadcast.url)} (broadcast)`;
  }

  async send(items: readonly ProbeItem[]): Promise<ItemOutcome[]> {
    if (items.length === 0) return [];
    if (this.http.batch === 'array') {
      const outcome = await this.request(items);
      return items.map(() => outcome);
    }
    // One at a time: a request sent before the previous one is answered could overtake it on another socket.
    const outcomes: ItemOutcome[] = [];
    for (const item of items) outcomes.push(await this.request([item]));
    return outcomes;
  }

  async destroy(): Promise<void> {
    this.destroyed = true;
    await Promise.all([...this.pools.values()].map((p) => p.destroy()));
  }

  /** One request carrying `items` (all of one stream): one body, or an array of them. */
  private async request(items: readonly ProbeItem[]): Promise<ItemOutcome> {
    if (this.destroyed) return ABORTED;
    const all = items.map(this.values);
    const first = all[0]!;
    const route = items[0]!.user === undefined ? this.broadcast : this.user;
    const body = all.length === 1 ? route.body.render(first) : `[${all.map((v) => route.body.render(v)).join(',')}]`;
    first.base = this.base;
    if (this.usesToken && first.user !== undefined) first.token = this.options.token?.(first.user);
    let target: URL;
    try {
      target = new URL(route.url.render(first));
    } catch {
      // A {user} that makes the URL invalid: nothing was sent.
      return { ok: false, cause: 'bad-url', stored: false };
    }
    try {
      const res = await this.pool(target.origin).request({
        path: target.pathname + target.search,
        method: this.http.method,
        headers: this.fixedHeaders ?? this.renderHeaders(first),
        body,
      });
      // Read to the end, so the socket goes back to the pool; what the body says does not matter.
      await res.body.dump().catch(() => undefined);
      const ok = this.okStatus ? this.okStatus.has(res.statusCode) : res.statusCode >= 200 && res.statusCode < 300;
      return ok ? { ok: true } : { ok: false, cause: `http-${res.statusCode}`, stored: false };
    } catch (err) {
      const cause = errorCode(err);
      return failedBeforeSending(err) ? { ok: false, cause, stored: false } : { ok: false, cause };
    }
  }

  private renderHeaders(values: TemplateValues): Record<string, string> {
    const out: Record<string, string> = {};
    for (const h of this.headers) {
      if (h.usesToken && !values.token) continue;
      const v = h.value.render(values);
      if (v !== '') out[h.name] = v;
    }
    return out;
  }

  private pool(origin: string): Pool {
    let pool = this.pools.get(origin);
    if (!pool) {
      pool = new Pool(origin, {
        connections: this.options.connections ?? 32,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
        connect: { timeout: this.timeoutMs, rejectUnauthorized: !this.options.insecureTls },
      });
      this.pools.set(origin, pool);
    }
    return pool;
  }
}

/** A URL template, checked once with sample values so that a profile whose URL is not http(s) fails before the run. */
function compileUrl(text: string, field: string, base: string): Template {
  const t = new Template(text, field, URL_PLACEHOLDERS);
  const sample = t.render({ base, user: 'u1', stream: 'user:u1' });
  let protocol: string | undefined;
  try {
    protocol = new URL(sample).protocol;
  } catch {}
  if (protocol !== 'http:' && protocol !== 'https:') {
    throw usageError(`target profile ${field}: "${sample}" is not an http:// or https:// URL`, 'does --url hold the base URL, e.g. http://127.0.0.1:8080?');
  }
  return t;
}
