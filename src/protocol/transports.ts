/** The subscribe transports, in the one order every table, mix and index uses. */
export const TRANSPORT_NAMES = ['sse', 'ws', 'poll'] as const;
export type TransportName = (typeof TRANSPORT_NAMES)[number];

/** Position of each transport in TRANSPORT_NAMES, for per-transport counters kept in arrays. */
export const TRANSPORT_INDEX: Readonly<Record<TransportName, number>> = { sse: 0, ws: 1, poll: 2 };

export function isTransportName(name: string): name is TransportName {
  return (TRANSPORT_NAMES as readonly string[]).includes(name);
}
