/**
 * The history of the Redis broker, written and read: each notify stream is the Redis Stream `notify:stream:<stream>`
 * under explicit ids `<seq>-0` (so XRANGE reads by seq), its head is `notify:seq:<stream>`, and `notify:id:<id>`
 * says where an id's event is for ID_TTL_S seconds (read receipts name events by id), so those keys are bounded by
 * time. The window is exactly `--history` events per stream for reads (XADD trims with `MAXLEN ~`, which keeps a
 * little more). Every read answers 503 while Redis is away.
 */
import type { Redis } from 'ioredis';
import type { HttpError } from '../http-error.js';
import type { HistoryRead, StreamEvent } from './broker.js';
import { toEvents, type RedisEntry } from './redis-entries.js';

const P = 'notify:';
export const EPOCH_KEY = `${P}epoch`;
export const LIVE_CHANNEL = `${P}live`;
export const seqKey = (stream: string): string => `${P}seq:${stream}`;
const streamKey = (stream: string): string => `${P}stream:${stream}`;
const idKey = (id: string): string => `${P}id:${id}`;
/** How long an id -> event mapping lives (read receipts name events by id). */
const ID_TTL_S = 7 * 24 * 3600;

/**
 * KEYS[1] = epoch key; ARGV = epoch, maxlen, id ttl, then (stream, id, json) per item.
 * Returns the seqs, or an `EPOCH` error when the epoch in Redis is not the caller's (history lost meanwhile).
 * Times are microseconds from Redis' clock, made strictly increasing: they interleave streams on replay.
 */
const PUBLISH_LUA = `
local epoch = redis.call('GET', KEYS[1])
if epoch ~= ARGV[1] then return redis.error_reply('EPOCH ' .. tostring(epoch)) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = tonumber(redis.call('GET', '${P}clock') or '0')
if now <= last then now = last + 1 end
local out, seqs = {}, {}
for i = 4, #ARGV, 3 do
  local stream, id, json = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local seq = redis.call('INCR', '${P}seq:' .. stream)
  local ts = string.format('%.0f', now)
  redis.call('XADD', '${P}stream:' .. stream, 'MAXLEN', '~', ARGV[2], seq .. '-0', 't', ts, 'j', json)
  redis.call('SET', '${P}id:' .. id, stream .. '\\n' .. seq, 'EX', ARGV[3])
  out[#out + 1] = { s = stream, q = seq, j = json }
  seqs[#seqs + 1] = seq
  now = now + 1
end
redis.call('SET', '${P}clock', string.format('%.0f', now - 1))
redis.call('PUBLISH', '${LIVE_CHANNEL}', cjson.encode({ e = ARGV[1], v = out }))
return seqs
`;

type PublishScript = (key: string, ...args: (string | number)[]) => Promise<number[]>;

export class RedisHistory {
  constructor(
    private readonly client: Redis,
    /** `--history`: events per stream a read may return (and about as many XADD keeps). */
    private readonly history: number,
    /** Redis failures as the 503 every broker read answers. */
    private readonly fail: (err: unknown) => HttpError,
  ) {
    client.defineCommand('notifyPublish', { numberOfKeys: 1, lua: PUBLISH_LUA });
  }

  /**
   * Numbers the items of one publish and appends them in `epoch`, live message included; resolves with their seqs.
   * Rejects with Redis' own error (`EPOCH <current>` when the epoch is not `epoch` any more).
   */
  append(epoch: string, items: readonly { stream: string; notification: { id: string }; json: string }[]): Promise<number[]> {
    const run = (this.client as unknown as { notifyPublish: PublishScript }).notifyPublish.bind(this.client);
    return run(EPOCH_KEY, epoch, this.history, ID_TTL_S, ...items.flatMap((p) => [p.stream, p.notification.id, p.json]));
  }

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
