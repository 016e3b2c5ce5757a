/** Shared by the transports tests: a sink that records what it is told, and waits with a deadline. */
import net from 'node:net';
import type { ReceivedNotification, TransportSink } from '../src/transports/index.js';

export type Entry =
  | { kind: 'opened'; conn: number; at: number }
  | { kind: 'init'; conn: number; cursor: string; unreadCount: number }
  | { kind: 'notification'; conn: number; id: unknown; cursor: string | undefined; at: number; n: ReceivedNotification }
  | { kind: 'reset'; conn: number; reason: string }
  | { kind: 'read'; conn: number; id: string; readAt: string | undefined }
  | { kind: 'closed'; conn: number; cause: string; retryMs: number | undefined }
  | { kind: 'error'; conn: number; code: string; retryMs: number | undefined };

export class RecordingSink implements TransportSink {
  readonly log: Entry[] = [];
  private readonly byConn = new Map<number, Entry[]>();
  private readonly ends = new Map<number, number>();
  private waiters: { check: () => boolean; resolve: () => void }[] = [];
  /** Called after each entry is recorded (lets a test act from inside a callback, e.g. abort). */
  onEntry: ((e: Entry) => void) | undefined;

  private push(e: Entry): void {
    this.log.push(e);
    const mine = this.byConn.get(e.conn);
    if (mine === undefined) this.byConn.set(e.conn, [e]);
    else mine.push(e);
    if (e.kind === 'closed' || e.kind === 'error') this.ends.set(e.conn, (this.ends.get(e.conn) ?? 0) + 1);
    this.onEntry?.(e);
    this.waiters = this.waiters.filter((w) => {
      if (!w.check()) return true;
      w.resolve();
      return false;
    });
  }

  opened(conn: number, at: number): void {
    this.push({ kind: 'opened', conn, at });
  }
  init(conn: number, cursor: string, unreadCount: number): void {
    this.push({ kind: 'init', conn, cursor, unreadCount });
  }
  notification(conn: number, n: ReceivedNotification, cursor: string | undefined, at: number): void {
    this.push({ kind: 'notification', conn, id: n.id, cursor, at, n });
  }
  reset(conn: number, reason: string): void {
    this.push({ kind: 'reset', conn, reason });
  }
  read(conn: number, id: string, readAt: string | undefined): void {
    this.push({ kind: 'read', conn, id, readAt });
  }
  closed(conn: number, cause: string, retryMs?: number): void {
    this.push({ kind: 'closed', conn, cause, retryMs });
  }
  error(conn: number, code: string, retryMs?: number): void {
    this.push({ kind: 'error', conn, code, retryMs });
  }

  /** Notifications received on `conn` (or on all connections), with their parsed objects. */
  notifications(conn?: number): Extract<Entry, { kind: 'notification' }>[] {
    const from = conn === undefined ? this.log : this.of(conn);
    return from.filter((e): e is Extract<Entry, { kind: 'notification' }> => e.kind === 'notification');
  }

  of(conn: number): Entry[] {
    return this.byConn.get(conn) ?? [];
  }

  /** The log of one connection without timestamps and parsed objects, for exact comparison. */
  plain(conn: number): unknown[] {
    return this.of(conn).map((e) => {
      const { conn: _c, ...rest } = e as Entry & { at?: number; n?: unknown };
      delete (rest as { at?: number }).at;
      delete (rest as { n?: unknown }).n;
      return rest;
    });
  }

  /** Resolves when `check` holds; rejects after `ms` with the log so far, so a failure says what did happen. */
  waitFor(check: () => boolean, what: string, ms = 5000): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        clearInterval(poll);
        this.waiters = this.waiters.filter((w) => w.check !== check);
        reject(new Error(`timed out after ${ms}ms waiting for ${what}; log: ${JSON.stringify(this.plain2())}`));
      }, ms);
      // Re-checked on every entry and on a short interval, for conditions outside the sink (a fake server's state).
      const poll = setInterval(() => {
        if (!check()) return;
        this.waiters = this.waiters.filter((w) => w.check !== check);
        done();
      }, 5);
      const done = (): void => {
        clearTimeout(timer);
        clearInterval(poll);
        resolve();
      };
      this.waiters.push({ check, resolve: done });
    });
  }

  /** Waits until `conn` has ended (closed or error) `count` times in total. */
  ended(conn: number, count = 1, ms = 5000): Promise<void> {
    return this.waitFor(() => (this.ends.get(conn) ?? 0) >= count, `conn ${conn} to end`, ms);
  }

  private plain2(): unknown[] {
    return this.log.slice(-30).map((e) => ({ ...e, n: undefined, at: undefined }));
  }
}

/** A port nobody listens on: bound, then released. */
export async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** Resolves on `emitter`'s next `event`, rejects after `ms`. */
export function once<T = unknown>(emitter: NodeJS.EventEmitter, event: string, what: string, ms = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms}ms waiting for ${what}`)), ms);
    emitter.once(event, (v: T) => {
      clearTimeout(timer);
      resolve(v);
    });
  });
}
