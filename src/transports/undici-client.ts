/**
 * One undici `Client` per connection, shared by the SSE and long-poll transports. A per-origin Pool would scan
 * all its busy clients on each dispatch, and an SSE stream keeps its client busy for good; a Client of our own
 * also makes `abort` exact (destroying it drops the one socket, even mid-connect).
 */
import type { Client } from 'undici';

export interface ClientHolder {
  client: Client | undefined;
  /** Origin and source address the client was made for. */
  clientKey: string;
}

/** The holder's client when it still fits (same origin and source address, not destroyed), else a new one. */
export function clientFor<H extends ClientHolder>(
  h: H,
  origin: string,
  localAddress: string | undefined,
  create: (h: H, origin: string, localAddress: string | undefined) => Client,
): Client {
  const key = localAddress === undefined ? origin : `${origin}|${localAddress}`;
  if (h.client !== undefined && h.clientKey === key && !h.client.destroyed && !h.client.closed) return h.client;
  dropClient(h);
  h.client = create(h, origin, localAddress);
  h.clientKey = key;
  return h.client;
}

export function dropClient(h: ClientHolder): void {
  // destroy() settles once the socket is gone; nobody waits for it here and it has nothing to report.
  h.client?.destroy().catch(() => undefined);
  h.client = undefined;
}

export async function destroyClients(holders: Iterable<ClientHolder>): Promise<void> {
  const closing: Promise<void>[] = [];
  for (const h of holders) {
    if (h.client !== undefined) closing.push(h.client.destroy().catch(() => undefined));
    h.client = undefined;
  }
  await Promise.all(closing);
}
