/** A WebSocket test client (ws library) that records JSON frames, pings and the close code. */
import WebSocket from 'ws';
import { Inbox, type WaitOptions } from './inbox.js';
import { onCleanup } from './lifecycle.js';
import { Refused } from './refusal.js';

export interface WsFrame {
  type: string;
  [key: string]: any;
}

export interface WsOptions {
  headers?: Record<string, string>;
  /** false: never answer pings (a dead peer, as far as the server can tell). */
  autoPong?: boolean;
  timeoutMs?: number;
}

export class WsClient {
  readonly inbox = new Inbox<WsFrame>((f) => JSON.stringify(f).slice(0, 160));
  pings = 0;
  /** Cursor of the last frame that carried one. */
  lastCursor: string | undefined;
  close_: { code: number; reason: string } | undefined;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      // A Buffer: the socket keeps ws's default binaryType ('nodebuffer'); RawData also allows ArrayBuffer and Buffer[].
      const frame = JSON.parse(isBinary ? '' : (data as Buffer).toString()) as WsFrame;
      if (typeof frame.cursor === 'string' && frame.type !== 'reset') this.lastCursor = frame.cursor;
      this.inbox.push(frame);
    });
    ws.on('ping', () => {
      this.pings++;
      this.inbox.wake();
    });
    ws.on('close', (code, reason) => {
      this.close_ = { code, reason: reason.toString() };
      this.inbox.end(`close ${code}`);
    });
    ws.on('error', () => {});
  }

  next(type?: string, opts?: WaitOptions): Promise<WsFrame> {
    return this.inbox.next(type, opts);
  }

  waitFor(n: number, type?: string, opts?: WaitOptions): Promise<WsFrame[]> {
    return this.inbox.waitFor(n, type, opts);
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  async waitPing(n = 1, opts?: WaitOptions): Promise<void> {
    await this.inbox.waitUntil(() => this.pings >= n, `ping #${n}`, opts);
  }

  /** Waits for the close and returns its code and reason. */
  async waitClose(opts?: WaitOptions): Promise<{ code: number; reason: string }> {
    await this.inbox.waitUntil(() => this.close_ !== undefined, 'the WebSocket to close', opts, false);
    return this.close_!;
  }

  /** Stops reading from the socket (a slow consumer). */
  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  /** Drops the connection without a close handshake, like a client whose network went away. */
  async close(): Promise<void> {
    if (this.close_) return;
    this.ws.terminate();
    await this.waitClose({ timeoutMs: 2000 });
  }
}

/** Opens a WebSocket; resolves once open, rejects with `Refused` when the upgrade is answered with an HTTP error. */
export function openWs(url: string, { headers = {}, autoPong = true, timeoutMs = 3000 }: WsOptions = {}): Promise<WsClient> {
  return new Promise<WsClient>((resolve, reject) => {
    const ws = new WebSocket(url, { headers, autoPong, handshakeTimeout: timeoutMs });
    const client = new WsClient(ws);
    ws.once('open', () => {
      onCleanup(() => client.close());
      resolve(client);
    });
    ws.once('unexpected-response', (req, res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        req.destroy();
        reject(new Refused(res.statusCode ?? 0, res.headers, text));
      });
    });
    ws.once('error', (err) => reject(err));
  });
}
