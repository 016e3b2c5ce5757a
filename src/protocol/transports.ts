/**
 * The subscribe transports, in the one order every table, mix and index uses. The swarm speaks all of them; `notify
 * serve` serves the first three (SERVE_TRANSPORTS): Socket.IO is a client of other people's servers.
 */
export const TRANSPORT_NAMES = ['sse', 'ws', 'poll', 'socketio'] as const;
export type TransportName = (typeof TRANSPORT_NAMES)[number];

/** What `notify serve --transports` accepts. */
export const SERVE_TRANSPORTS = ['sse', 'ws', 'poll'] as const;
export type ServeTransport = (typeof SERVE_TRANSPORTS)[number];

/** Position of each transport in TRANSPORT_NAMES, for per-transport counters kept in arrays. */
export const TRANSPORT_INDEX: Readonly<Record<TransportName, number>> = { sse: 0, ws: 1, poll: 2, socketio: 3 };

export function isTransportName(name: string): name is TransportName {
  return (TRANSPORT_NAMES as readonly string[]).includes(name);
}

export function isServeTransport(name: string): name is ServeTransport {
  return (SERVE_TRANSPORTS as readonly string[]).includes(name);
}
