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

/** Per-connection state of an undici-based transport: its client, its last cursor, the attempt in flight. */
export interface UndiciConn extends ClientHolder {
  cursor: string | undefined;
  /** The attempt in flight; undefined when the connection is idle. Callbacks of any other attempt are stale. */
  attempt: unknown;
}

/** The connection bookkeeping the SSE and long-poll transports share; each says how to stop an attempt. */
export abstract class UndiciTransport<C extends UndiciConn> {
  protected readonly conns = new Map<number, C>();

  /** The connection's state for a new attempt: created on first use; an attempt still in flight is aborted first. */
  protected connFor(conn: number, create: () => C): C {
    let st = this.conns.get(conn);
    if (st === undefined) {
      st = create();
      this.conns.set(conn, st);
    } else if (st.attempt !== undefined) {
      this.stop(st, 'aborted', false);
    }
    return st;
  }

  /** Ends the attempt in flight and reports `cause`; `release` also drops the connection's client. */
  protected abstract stop(st: C, cause: 'aborted' | 'client-closed', release: boolean): void;

  abort(conn: number): void {
    const st = this.conns.get(conn);
    if (st?.attempt !== undefined) this.stop(st, 'aborted', false);
  }

  close(conn: number): void {
    const st = this.conns.get(conn);
    if (st?.attempt !== undefined) this.stop(st, 'client-closed', true);
  }

  cursor(conn: number): string | undefined {
    return this.conns.get(conn)?.cursor;
  }

  async dispose(): Promise<void> {
    for (const st of this.conns.values()) st.attempt = undefined;
    const all = [...this.conns.values()];
    this.conns.clear();
    await destroyClients(all);
  }
}
