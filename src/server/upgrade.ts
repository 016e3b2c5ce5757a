/**
 * WebSocket upgrade requests. They arrive as a raw socket, outside the HTTP route table, so everything a route gets
 * for free is done here: the target must parse, the handshake headers are checked before any work (so a bad one is
 * a JSON 4xx like every other refusal, not ws's plain-text answer), and a peer that resets the socket while it is
 * being refused or admitted is an expected event, not a crash.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import { HttpError, refuseSocket } from './http-error.js';
import { parseTarget } from './request.js';

/** RFC 6455 section 4.1: a base64-encoded 16-byte nonce. */
const WS_KEY = /^[+/0-9A-Za-z]{22}==$/;

function checkHandshake(req: IncomingMessage): void {
  if (req.method !== 'GET') throw new HttpError(405, 'E_METHOD', `a WebSocket upgrade must be GET (got ${req.method})`, { Allow: 'GET' });
  const upgrade = req.headers.upgrade ?? '';
  if (upgrade.toLowerCase() !== 'websocket')
    throw new HttpError(400, 'E_UPGRADE', `only WebSocket upgrades are served (got Upgrade: "${upgrade.slice(0, 40)}")`);
  const key = req.headers['sec-websocket-key'];
  if (key === undefined || !WS_KEY.test(key)) throw new HttpError(400, 'E_HANDSHAKE', 'missing or invalid Sec-WebSocket-Key header');
  const version = req.headers['sec-websocket-version'];
  if (version !== '13' && version !== '8') {
    throw new HttpError(400, 'E_HANDSHAKE', `Sec-WebSocket-Version must be 13 (got "${(version ?? '').slice(0, 20)}")`, { 'Sec-WebSocket-Version': '13, 8' });
  }
}

export interface UpgradeHandler {
  /** Admission of an upgrade to `/ws`: throws an HttpError to refuse. Returns what `open` needs. */
  admit(req: IncomingMessage, url: URL): Promise<(ws: WebSocket) => void>;
  /** Every refusal, for the error metrics. */
  refused(err: HttpError): void;
  /** An exception that is not an HttpError: logged, answered 500. */
  failed(err: unknown, req: IncomingMessage): void;
}

function destroySelf(this: Duplex): void {
  this.destroy();
}

/** Wires `server.on('upgrade')` for `/ws` to the ws server through `handler`. */
export function upgradeListener(wss: WebSocketServer, handler: UpgradeHandler) {
  const refuse = (socket: Duplex, err: unknown, req: IncomingMessage) => {
    if (!(err instanceof HttpError)) handler.failed(err, req);
    const httpErr = err instanceof HttpError ? err : new HttpError(500, 'E_INTERNAL', 'internal error');
    handler.refused(httpErr);
    refuseSocket(socket, httpErr);
  };
  // What ws itself still refuses after our checks (e.g. a malformed Sec-WebSocket-Protocol) is answered the same way.
  wss.on('wsClientError', (err: Error, socket: Duplex, req: IncomingMessage) => refuse(socket, new HttpError(400, 'E_HANDSHAKE', err.message), req));

  return (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // Until ws takes the socket over, nobody else listens for its errors: a reset would be an uncaught exception.
    // A module-level function, not a closure: this listener stays for the socket's life, and a closure here would
    // keep the request (its headers, ~0.7 KB) alive with it.
    socket.on('error', destroySelf);
    (async () => {
      const url = parseTarget(req.url);
      if (url.pathname !== '/ws') throw new HttpError(404, 'E_NOT_FOUND', `no WebSocket endpoint at ${url.pathname}`);
      checkHandshake(req);
      const open = await handler.admit(req, url);
      // The peer may have gone while it was being admitted (a token being verified, say): nothing to open then.
      if (socket.destroyed || !socket.writable) return;
      wss.handleUpgrade(req, socket, head, open);
    })().catch((err: unknown) => refuse(socket, err, req));
  };
}
