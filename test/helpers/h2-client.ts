/**
 * A node:http2 client for tests: one session (TLS with any certificate, or h2c by prior knowledge), plain requests
 * and SSE streams on it, each read through eventsource-parser. Closed by `runCleanup`.
 */
import { connect, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type IncomingHttpStatusHeader } from 'node:http2';
import { createParser } from 'eventsource-parser';
import { onCleanup, until } from './lifecycle.js';

export interface H2Response {
  status: number;
  headers: IncomingHttpHeaders & IncomingHttpStatusHeader;
  text: string;
}

export interface H2Event {
  event: string;
  id: string | undefined;
  data: string;
  json: any;
}

export class H2Sse {
  readonly events: H2Event[] = [];
  /** `:` comment lines (heartbeats). */
  comments = 0;
  /** `retry:` values, in order. */
  readonly retries: number[] = [];
  ended = false;

  constructor(
    readonly status: number,
    readonly headers: IncomingHttpHeaders,
  ) {}

  /** The `n`-th event (1-based) of `type`, waited for at most `timeoutMs`. */
  async nth(type: string, n = 1, timeoutMs = 3000): Promise<H2Event> {
    await until(() => this.events.filter((e) => e.event === type).length >= n, `SSE event #${n} "${type}" over h2`, timeoutMs);
    return this.events.filter((e) => e.event === type)[n - 1]!;
  }
}

export class H2Client {
  private constructor(readonly session: ClientHttp2Session) {}

  static async connect(url: string): Promise<H2Client> {
    const session = connect(url, { rejectUnauthorized: false });
    onCleanup(() => session.destroy());
    await new Promise<void>((resolve, reject) => {
      session.once('connect', () => {
        // A paused stream must hold only its own window, not the session's (64 KB by default, shared by every stream).
        session.setLocalWindowSize(16 * 1024 * 1024);
        resolve();
      });
      session.once('error', reject);
    });
    session.on('error', () => undefined);
    return new H2Client(session);
  }

  /** The ALPN protocol the session speaks (`h2` over TLS, `h2c` in clear). */
  get protocol(): string | undefined {
    return this.session.alpnProtocol;
  }

  request(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<H2Response> {
    return new Promise((resolve, reject) => {
      const stream = this.session.request({ ':method': method, ':path': path, ...headers }, { endStream: body === undefined });
      let text = '';
      let head: H2Response['headers'] | undefined;
      stream.setEncoding('utf8');
      stream.on('response', (h) => (head = h));
      stream.on('data', (d: string) => (text += d));
      stream.on('end', () => resolve({ status: Number(head?.[':status']), headers: head!, text }));
      stream.on('error', reject);
      if (body !== undefined) stream.end(body);
    });
  }

  publish(body: unknown): Promise<H2Response> {
    return this.request('POST', '/publish', { 'content-type': 'application/json' }, JSON.stringify(body));
  }

  /** Opens an SSE stream on this session; resolves once its response head is in. */
  sse(path: string, headers: Record<string, string> = {}, onStream?: (s: ClientHttp2Stream) => void): Promise<H2Sse> {
    return new Promise((resolve, reject) => {
      const stream = this.session.request({ ':path': path, accept: 'text/event-stream', ...headers });
      onStream?.(stream);
      onCleanup(() => stream.destroy());
      stream.setEncoding('utf8');
      stream.once('error', reject);
      stream.once('response', (h) => {
        const sse = new H2Sse(Number(h[':status']), h);
        const parser = createParser({
          onEvent: (ev) => {
            let json: unknown;
            try {
              json = JSON.parse(ev.data);
            } catch {
              json = undefined;
            }
            sse.events.push({ event: ev.event ?? 'message', id: ev.id, data: ev.data, json });
          },
          onComment: () => sse.comments++,
          onRetry: (ms) => sse.retries.push(ms),
        });
        stream.on('data', (d: string) => parser.feed(d));
        stream.on('close', () => (sse.ended = true));
        resolve(sse);
      });
    });
  }
}
