/**
 * The connection table the SSE and long-poll transports share (`ConnTransport`), and the long-poll's one undici
 * `Client` per connection. A per-origin Pool would scan all its busy clients on each dispatch; a Client of our own
 * also makes `abort` exact (destroying it drops the one socket, even mid-connect). SSE over HTTP/1.1 has its own
 * socket per connection (sse-http1.ts) and no Client.
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

/** Per-connection state of a transport on `ConnTransport`: its last cursor and the attempt in flight. */
export interface TransportConn {
  cursor: string | undefined;
  /** The attempt in flight; undefined when the connection is idle. Callbacks of any other attempt are stale. */
  attempt: unknown;
}

/** Per-connection state of an undici-based transport: a `TransportConn` with its client. */
export interface UndiciConn extends TransportConn, ClientHolder {}

/** The connection bookkeeping the SSE and long-poll transports share; each says how to stop an attempt. */
export abstract class ConnTransport<C extends TransportConn> {
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

  /** Detaches every attempt (so nothing more is reported) and drops what the connections hold: sockets, clients. */
  protected abstract release(all: C[]): Promise<void>;

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
    const all = [...this.conns.values()];
    this.conns.clear();
    await this.release(all);
  }
}

/** A `ConnTransport` whose connections each hold an undici Client (long-poll). */
export abstract class UndiciTransport<C extends UndiciConn> extends ConnTransport<C> {
  protected release(all: C[]): Promise<void> {
    for (const st of all) st.attempt = undefined;
    return destroyClients(all);
  }
}
