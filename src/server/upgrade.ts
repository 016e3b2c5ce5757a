/**
 * WebSocket upgrade requests. They arrive as a raw socket, outside the HTTP route table, so everything a route gets
 * for free is done here: the target must parse, the handshake headers are checked before any work (so a bad one is
 * a JSON 4xx like every other refusal), and a peer that resets the socket while it is being refused or admitted is
 * an expected event, not a crash. An admitted one is answered 101 here (RFC 6455 4.2.2, as ws answered it: no
 * extension, the first subprotocol offered) and its socket handed to ws.ts.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { acceptKey } from '../transports/ws-handshake.js';
import { writeHeld } from './held-write.js';
import { HttpError, refuseSocket } from './http-error.js';
import { parseTarget } from './request.js';

/** What is read of an upgrade request: node:http's IncomingMessage, or a head the front door read (front-door.ts). */
export type UpgradeRequest = Pick<IncomingMessage, 'method' | 'url' | 'headers'>;

/** RFC 6455 section 4.1: a base64-encoded 16-byte nonce. */
const WS_KEY = /^[+/0-9A-Za-z]{22}==$/;

/** RFC 7230 token characters: a subprotocol name. */
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
/** `Sec-WebSocket-Protocol`: tokens separated by commas, optional blanks around them (ws's subprotocol.parse). */
const PROTOCOLS = new RegExp(`^${TOKEN}[ \\t]*(?:,[ \\t]*${TOKEN}[ \\t]*)*$`);

/**
 * The subprotocol to answer: ws (without handleProtocols) chose the first one offered, and the gateway speaks one
 * protocol whatever the name. A malformed or repeated list is refused as ws refused it.
 */
function chooseProtocol(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const names = PROTOCOLS.test(header) ? header.split(',').map((n) => n.trim()) : [];
  if (names.length === 0 || new Set(names).size !== names.length) throw new HttpError(400, 'E_HANDSHAKE', 'invalid Sec-WebSocket-Protocol header');
  return names[0];
}

/** Checks the handshake; returns the subprotocol to answer with, if any. */
function checkHandshake(req: UpgradeRequest): string | undefined {
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
  return chooseProtocol(req.headers['sec-websocket-protocol']);
}

/** The 101 answer (RFC 6455 4.2.2). */
function switchingProtocols(key: string, protocol: string | undefined): string {
  return (
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n` +
    (protocol === undefined ? '' : `Sec-WebSocket-Protocol: ${protocol}\r\n`) +
    '\r\n'
  );
}

export interface UpgradeHandler {
  /** Admission of an upgrade to `/ws`: throws an HttpError to refuse. Returns what `open` needs. */
  admit(req: UpgradeRequest, url: URL): Promise<(socket: Socket, head: Buffer) => void>;
  /** Every refusal, for the error metrics. */
  refused(err: HttpError): void;
  /** An exception that is not an HttpError: logged, answered 500. */
  failed(err: unknown, req: UpgradeRequest): void;
}

function destroySelf(this: Duplex): void {
  this.destroy();
}

/** Wires `server.on('upgrade')` for `/ws` through `handler`. */
export function upgradeListener(handler: UpgradeHandler) {
  const refuse = (socket: Duplex, err: unknown, req: UpgradeRequest) => {
    if (!(err instanceof HttpError)) handler.failed(err, req);
    const httpErr = err instanceof HttpError ? err : new HttpError(500, 'E_INTERNAL', 'internal error');
    handler.refused(httpErr);
    refuseSocket(socket, httpErr);
  };

  return (req: UpgradeRequest, socket: Duplex, head: Buffer): void => {
    // Nobody else listens for the socket's errors (ws.ts relies on this one too): a reset would be an uncaught
    // exception. A module-level function, not a closure: this listener stays for the socket's life, and a closure
    // here would keep the request (its headers, ~0.7 KB) alive with it.
    socket.on('error', destroySelf);
    (async () => {
      const url = parseTarget(req.url);
      if (url.pathname !== '/ws') throw new HttpError(404, 'E_NOT_FOUND', `no WebSocket endpoint at ${url.pathname}`);
      const protocol = checkHandshake(req);
      const open = await handler.admit(req, url);
      // The peer may have gone (or half-closed) while it was being admitted (a token being verified, say): nothing to
      // open then.
      if (socket.destroyed || !socket.writable || !socket.readable) return void socket.destroy();
      writeHeld(socket, switchingProtocols(req.headers['sec-websocket-key']!, protocol));
      open(socket as Socket, head);
    })().catch((err: unknown) => refuse(socket, err, req));
  };
}
