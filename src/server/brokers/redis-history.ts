/**
 * History reads of the Redis broker: each notify stream is the Redis Stream `notify:stream:<stream>` under explicit
 * ids `<seq>-0` (so XRANGE reads by seq), its head is `notify:seq:<stream>`, and `notify:id:<id>` says where an id's
 * event is (read receipts name events by id). The window is exactly `--history` events per stream for reads (XADD
 * trims with `MAXLEN ~`, which keeps a little more). Every read answers 503 while Redis is away.
 */
import type { Redis } from 'ioredis';
import type { HttpError } from '../http-error.js';
import type { HistoryRead, StreamEvent } from './broker.js';
import { toEvents, type RedisEntry } from './redis-entries.js';

export const KEY_PREFIX = 'notify:';
export const seqKey = (stream: string): string => `${KEY_PREFIX}seq:${stream}`;
const streamKey = (stream: string): string => `${KEY_PREFIX}stream:${stream}`;
const idKey = (id: string): string => `${KEY_PREFIX}id:${id}`;

export class RedisHistory {
  constructor(
    private readonly client: Redis,
    /** `--history`: events per stream a read may return. */
    private readonly history: number,
    /** Redis failures as the 503 every broker read answers. */
    private readonly fail: (err: unknown) => HttpError,
  ) {}

  async readAfter(stream: string, after: number): Promise<HistoryRead> {
    const [lastSeq, entries] = await this.headAnd(stream, (m) => m.xrange(streamKey(stream), `(${Math.max(0, Math.floor(after))}-0`, '+'));
    if (after > lastSeq) return { events: [], complete: false, lastSeq };
    const floor = this.windowStart(lastSeq);
    const events = toEvents(stream, entries).filter((ev) => ev.seq >= floor && ev.seq <= lastSeq);
    // Seqs are distinct and in (after, lastSeq]: all there means none trimmed, outside the window or unreadable.
    return { events, complete: events.length === lastSeq - after, lastSeq };
  }

  lastSeq(stream: string): Promise<number> {
    return this.read(async () => Number(await this.client.get(seqKey(stream))) || 0);
  }

  async recent(stream: string, limit: number): Promise<StreamEvent[]> {
    const n = Math.max(0, Math.min(limit, this.history));
    if (n === 0) return [];
    const [lastSeq, entries] = await this.headAnd(stream, (m) => m.xrevrange(streamKey(stream), '+', '-', 'COUNT', n));
    const floor = this.windowStart(lastSeq);
    return toEvents(stream, entries.reverse()).filter((ev) => ev.seq >= floor);
  }

  async find(id: string): Promise<StreamEvent | undefined> {
    const where = await this.read(() => this.client.get(idKey(id)));
    if (!where) return undefined;
    const nl = where.lastIndexOf('\n');
    const stream = where.slice(0, nl);
    const seq = Number(where.slice(nl + 1));
    if (!Number.isSafeInteger(seq) || seq < 1) return undefined;
    const [lastSeq, entries] = await this.headAnd(stream, (m) => m.xrange(streamKey(stream), `${seq}-0`, `${seq}-0`));
    const ev = toEvents(stream, entries)[0];
    return ev && ev.seq >= this.windowStart(lastSeq) && ev.notification.id === id ? ev : undefined;
  }

  /** The stream's head and some of its entries, read in one MULTI so that they agree. */
  private headAnd(stream: string, entries: (m: ReturnType<Redis['multi']>) => unknown): Promise<readonly [number, RedisEntry[]]> {
    return this.read(async () => {
      const m = this.client.multi().get(seqKey(stream));
      entries(m);
      const r = await m.exec();
      return [Number(r?.[0]?.[1] ?? 0) || 0, (r?.[1]?.[1] ?? []) as RedisEntry[]] as const;
    });
  }

  /** Oldest seq inside the window of a stream whose newest is `lastSeq`. */
  private windowStart(lastSeq: number): number {
    return lastSeq - this.history + 1;
  }

  private async read<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.fail(err);
    }
  }
}
