/**
 * The client's opening handshake (RFC 6455 4.1) over node:http's upgrade: node parses the 101 response and hands
 * over the socket, already detached from the request, which is then dropped (nothing of HTTP stays on an open
 * connection). Checks what ws@8's client checks: the accept key, the Upgrade header, no extension we did not ask
 * for, a subprotocol among those offered.
 */
import { createHash, randomBytes } from 'node:crypto';
import http, { type ClientRequest, type IncomingMessage } from 'node:http';
import https from 'node:https';
import net, { type Socket } from 'node:net';
import tls from 'node:tls';
import { errorCode, retryAfterMs } from './codes.js';
import type { SubscribeRequest } from './target-url.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** `Sec-WebSocket-Accept` for `key` (RFC 6455 4.2.2): what the server answers and the client checks. */
export function acceptKey(key: string): string {
  return createHash('sha1')
    .update(key + GUID)
    .digest('base64');
}

/** Who waits for the handshake's outcome: exactly one call, unless `cancel()` came first. */

export interface HandshakeOwner {
  /** 101 and valid: the socket is ours, `head` holds bytes already read past the response head. */
  upgraded(socket: Socket, head: Buffer): void;
  /** 'http-<status>', 'timeout', 'bad-handshake', or a socket error code (errorCode). */
  refused(code: string, retryMs?: number): void;
}

export interface HandshakeOptions {
  /** Subprotocols to offer (`Sec-WebSocket-Protocol`); the server must pick one of them, or none when empty. */
  protocols: string[];
  localAddress?: string;
  /** Connect plus response head, ms (an idle timeout on the socket, as ws's `handshakeTimeout`). */
  timeoutMs: number;
  rejectUnauthorized: boolean;
}

const kHandshake = Symbol('notify.ws.handshake');
type TaggedRequest = ClientRequest & { [kHandshake]?: Handshake };

type ConnectOptions = net.NetConnectOpts & tls.ConnectionOptions & { path?: string; socketPath?: string; host?: string };

// http.request would pass the request's `path` to net.connect, which reads it as an IPC path (ws does the same).
function netConnect(options: ConnectOptions): Socket {
  return net.connect({ ...options, path: options.socketPath } as net.NetConnectOpts);
}

function tlsConnect(options: ConnectOptions): Socket {
  const host = options.host ?? '';
  return tls.connect({ ...options, path: undefined, servername: options.servername ?? (net.isIP(host) ? '' : host) });
}

export class Handshake {
  private req: TaggedRequest | undefined;
  private readonly accept: string;

  constructor(
    private readonly owner: HandshakeOwner,
    r: SubscribeRequest,
    private readonly options: HandshakeOptions,
  ) {
    const url = new URL(r.origin + r.path);
    const secure = url.protocol === 'https:' || url.protocol === 'wss:';
    if (!secure && url.protocol !== 'http:' && url.protocol !== 'ws:') throw new Error(`not a WebSocket URL: ${url.href}`);
    const key = randomBytes(16).toString('base64');
    this.accept = acceptKey(key);
    const headers: Record<string, string> = {
      ...r.headers,
      connection: 'Upgrade',
      upgrade: 'websocket',
      'sec-websocket-version': '13',
      'sec-websocket-key': key,
    };
    if (options.protocols.length > 0) headers['sec-websocket-protocol'] = options.protocols.join(',');
    const req: TaggedRequest = (secure ? https : http).request({
      host: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
      port: url.port || (secure ? 443 : 80),
      path: url.pathname + url.search,
      headers,
      localAddress: options.localAddress,
      timeout: options.timeoutMs,
      rejectUnauthorized: options.rejectUnauthorized,
      createConnection: (secure ? tlsConnect : netConnect) as unknown as http.RequestOptions['createConnection'],
    });
    req[kHandshake] = this;
    req.on('upgrade', onUpgrade);
    req.on('response', onResponse);
    req.on('error', onError);
    req.on('timeout', onTimeout);
    req.end();
    this.req = req;
  }

  /** Stops the attempt without telling the owner; resolves once the request has closed. */
  cancel(): Promise<void> {
    const req = this.req;
    this.req = undefined;
    if (req === undefined || req.closed) return Promise.resolve();
    const closed = new Promise<void>((resolve) => req.once('close', () => resolve()));
    req.destroy();
    return closed;
  }

  /** The request is done with, one way or the other; false when it was cancelled before. */
  private settle(req: TaggedRequest): boolean {
    if (this.req !== req) return false;
    this.req = undefined;
    return true;
  }

  refuse(req: TaggedRequest, code: string, retryMs?: number): void {
    if (!this.settle(req)) return;
    req.destroy();
    this.owner.refused(code, retryMs);
  }

  upgrade(req: TaggedRequest, res: IncomingMessage, socket: Socket, head: Buffer): void {
    if (!this.settle(req)) return void socket.destroy();
    if (!this.valid(res)) {
      socket.destroy();
      return this.owner.refused('bad-handshake');
    }
    socket.setTimeout(0);
    socket.setNoDelay(true);
    this.owner.upgraded(socket, head);
  }

  private valid(res: IncomingMessage): boolean {
    const h = res.headers;
    if (h['sec-websocket-accept'] !== this.accept) return false;
    if (typeof h.upgrade !== 'string' || h.upgrade.toLowerCase() !== 'websocket') return false;
    if (h['sec-websocket-extensions'] !== undefined) return false;
    const chosen = h['sec-websocket-protocol'];
    if (chosen === undefined) return this.options.protocols.length === 0;
    return this.options.protocols.includes(chosen);
  }
}

function onUpgrade(this: TaggedRequest, res: IncomingMessage, socket: Socket, head: Buffer): void {
  this[kHandshake]!.upgrade(this, res, socket, head);
}

function onResponse(this: TaggedRequest, res: IncomingMessage): void {
  res.resume();
  this[kHandshake]!.refuse(this, `http-${res.statusCode ?? 0}`, retryAfterMs(res.headers['retry-after']));
}

function onError(this: TaggedRequest, err: Error): void {
  this[kHandshake]!.refuse(this, errorCode(err));
}

function onTimeout(this: TaggedRequest): void {
  this[kHandshake]!.refuse(this, 'timeout');
}
