/**
 * A small SSE client on node:http. The bytes go through eventsource-parser, so the server's framing is checked by
 * an independent parser: events, `retry:` lines and `:` comments are recorded separately.
 */
import { request, type IncomingMessage, type ClientRequest, type IncomingHttpHeaders } from 'node:http';
import { createParser } from 'eventsource-parser';
import { Inbox, type WaitOptions } from './inbox.js';
import { onCleanup } from './lifecycle.js';
import { Refused } from './refusal.js';

export interface SseEvent {
  /** The `event:` name (`message` when absent). */
  type: string;
  id: string | undefined;
  data: string;
  /** `data` parsed as JSON (undefined when it is not JSON). */
  json: any;
}

export interface SseOptions {
  headers?: Record<string, string>;
  timeoutMs?: number;
}

export class SseClient {
  readonly inbox = new Inbox<SseEvent>((e) => `${e.type} id=${e.id ?? '-'} ${e.data.slice(0, 120)}`);
  readonly comments: string[] = [];
  readonly retries: number[] = [];
  /** The id of the last event that carried one: the cursor to resume from. */
  lastId: string | undefined;
  closed = false;
  private readonly closedPromise: Promise<void>;

  constructor(
    private readonly req: ClientRequest,
    readonly res: IncomingMessage,
  ) {
    const parser = createParser({
      onEvent: (e) => {
        let json: unknown;
        try {
          json = JSON.parse(e.data);
        } catch {
          json = undefined;
        }
        if (e.id !== undefined) this.lastId = e.id;
        this.inbox.push({ type: e.event ?? 'message', id: e.id, data: e.data, json });
      },
      onRetry: (ms) => {
        this.retries.push(ms);
        this.inbox.wake();
      },
      onComment: (c) => {
        this.comments.push(c);
        this.inbox.wake();
      },
    });
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => parser.feed(chunk));
    this.closedPromise = new Promise<void>((resolve) => {
      const done = (why: string) => {
        if (this.closed) return;
        this.closed = true;
        this.inbox.end(why);
        resolve();
      };
      res.on('end', () => done('end'));
      res.on('close', () => done('close'));
      res.on('error', () => done('error'));
    });
  }

  get headers(): IncomingHttpHeaders {
    return this.res.headers;
  }

  next(type?: string, opts?: WaitOptions): Promise<SseEvent> {
    return this.inbox.next(type, opts);
  }

  waitFor(n: number, type?: string, opts?: WaitOptions): Promise<SseEvent[]> {
    return this.inbox.waitFor(n, type, opts);
  }

  /** Waits for a `:` comment (e.g. `hb`, the parser strips the colon). */
  waitComment(text: string, opts?: WaitOptions): Promise<void> {
    return this.inbox.waitUntil(() => this.comments.includes(text), `comment ":${text}"`, opts);
  }

  /** Waits for the `retry:` line number `n` (1 = the first one) and returns its value in ms. */
  async waitRetry(n: number, opts?: WaitOptions): Promise<number> {
    await this.inbox.waitUntil(() => this.retries.length >= n, `retry line #${n}`, opts, false);
    return this.retries[n - 1]!;
  }

  /** Waits until the server has closed the stream. */
  waitClosed({ timeoutMs = 3000 }: WaitOptions = {}): Promise<void> {
    return this.inbox.waitUntil(() => this.closed, 'the stream to close', { timeoutMs }, false);
  }

  /** Stops reading: the socket's receive buffer fills and the server's send buffer grows (a slow consumer). */
  pause(): void {
    this.res.pause();
    this.res.socket?.pause();
  }

  resume(): void {
    this.res.socket?.resume();
    this.res.resume();
  }

  /** Drops the connection, like a client that goes away. Resolves once the socket is closed. */
  close(): Promise<void> {
    this.req.destroy();
    this.res.destroy();
    return this.closedPromise;
  }
}

/** Opens `GET url` as an event stream; resolves on a 200, rejects with `Refused` otherwise. */
export function openSse(url: string, { headers = {}, timeoutMs = 3000 }: SseOptions = {}): Promise<SseClient> {
  return new Promise<SseClient>((resolve, reject) => {
    const req = request(url, { headers: { Accept: 'text/event-stream', ...headers }, agent: false });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`no response from ${url} within ${timeoutMs}ms`));
    }, timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.on('response', (res) => {
      clearTimeout(timer);
      if (res.statusCode !== 200) {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => reject(new Refused(res.statusCode ?? 0, res.headers, text)));
        res.on('error', reject);
        return;
      }
      const client = new SseClient(req, res);
      onCleanup(() => client.close());
      resolve(client);
    });
    req.end();
  });
}
