/**
 * Read state of the Redis broker: one hash per user, `notify:read:<user>`, notification id -> readAt. HSETNX keeps the
 * first readAt whichever instance it came from. The same script that marks a read PUBLISHes the receipt on
 * `notify:reads`, so the user's connections on every other instance get their `read` event; the instance that made
 * the read delivers it itself and skips its own message. The hash is pruned with the history (History drops marks
 * for ids that left the window once a user holds more than a few windows' worth), not by a TTL: a notification
 * still in the window stays read however old it is.
 *
 * PUBLISH reaches only the instances subscribed at that moment. An instance whose subscriber connection was away
 * (an outage that ended for the others first, a partition) reads what it missed from the log `notify:reads:log`,
 * the last LOG_MAX receipts, when it is back: its tabs get those `read` events late, never twice. Receipts older
 * than the log are not sent; their marks are in the unread snapshot and list as always.
 */
import type { Redis } from 'ioredis';
import type { HttpError } from '../http-error.js';
import { decodeRemoteRead, type ReadReceipt, type ReadStore } from '../read-store.js';

export const READS_CHANNEL = 'notify:reads';
const readKey = (user: string): string => `notify:read:${user}`;
/** Ids per HMGET / HDEL: one command stays small however many notifications the window holds. */
const CHUNK = 1000;

/** The receipts of the last reads, for an instance that was away when they were published. */
const LOG_KEY = 'notify:reads:log';
/** Receipts the log keeps (about: XADD trims with `MAXLEN ~`). */
const LOG_MAX = 10_000;

/**
 * KEYS[1] = the user's hash; ARGV = id, readAt, instance, user, log length. Returns {stored readAt, marks of the user}.
 * The receipt goes into the log, and out on the channel with its log id (`x`).
 */
const MARK_LUA = `
redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
local at = redis.call('HGET', KEYS[1], ARGV[1])
local receipt = { o = ARGV[3], u = ARGV[4], i = ARGV[1], r = at }
receipt.x = redis.call('XADD', '${LOG_KEY}', 'MAXLEN', '~', ARGV[5], '*', 'm', cjson.encode(receipt))
redis.call('PUBLISH', '${READS_CHANNEL}', cjson.encode(receipt))
return { at, redis.call('HLEN', KEYS[1]) }
`;

/** Stream ids `<ms>-<n>` in order. */
function idAfter(a: string, b: string): boolean {
  const [am, an] = a.split('-').map(Number) as [number, number];
  const [bm, bn] = b.split('-').map(Number) as [number, number];
  return am > bm || (am === bm && an > bn);
}

type MarkScript = (key: string, id: string, readAt: string, instance: string, user: string, logMax: number) => Promise<[string, number]>;

export class RedisReadStore implements ReadStore {
  private readonly listeners: ((receipt: ReadReceipt) => void)[] = [];
  /** The log id of the last receipt given (or skipped as this instance's own); undefined until the log was read. */
  private seen: string | undefined;

  constructor(
    private readonly client: Redis,
    /** This gateway's tag: its own receipts come back on the channel and are skipped. */
    private readonly instance: string,
    /** Redis failures as the 503 every broker read answers. */
    private readonly fail: (err: unknown) => HttpError,
  ) {
    client.defineCommand('notifyMarkRead', { numberOfKeys: 1, lua: MARK_LUA });
  }

  async markRead(user: string, id: string, at: Date): Promise<{ readAt: string; marks: number }> {
    const run = (this.client as unknown as { notifyMarkRead: MarkScript }).notifyMarkRead.bind(this.client);
    try {
      const [readAt, marks] = await run(readKey(user), id, at.toISOString(), this.instance, user, LOG_MAX);
      return { readAt, marks };
    } catch (err) {
      throw this.fail(err);
    }
  }

  async marks(user: string, ids: readonly string[]): Promise<{ readAt: Map<string, string>; total: number }> {
    const key = readKey(user);
    const multi = this.client.multi().hlen(key);
    for (let i = 0; i < ids.length; i += CHUNK) multi.hmget(key, ...ids.slice(i, i + CHUNK));
    let replies: [Error | null, unknown][] | null;
    try {
      replies = await multi.exec();
    } catch (err) {
      throw this.fail(err);
    }
    const readAt = new Map<string, string>();
    if (!replies) throw this.fail(new Error('transaction aborted'));
    for (const [err] of replies) if (err) throw this.fail(err);
    replies.slice(1).forEach(([, values], chunk) => {
      (values as (string | null)[]).forEach((at, j) => {
        if (at !== null) readAt.set(ids[chunk * CHUNK + j]!, at);
      });
    });
    return { readAt, total: Number(replies[0]![1]) || 0 };
  }

  async prune(user: string, keep: (id: string) => boolean): Promise<void> {
    const key = readKey(user);
    try {
      const gone = (await this.client.hkeys(key)).filter((id) => !keep(id));
      for (let i = 0; i < gone.length; i += CHUNK) await this.client.hdel(key, ...gone.slice(i, i + CHUNK));
    } catch (err) {
      throw this.fail(err);
    }
  }

  onRemoteRead(listener: (receipt: ReadReceipt) => void): void {
    this.listeners.push(listener);
  }

  /**
   * A message on READS_CHANNEL (from the broker's subscriber connection), in order with `catchUp`: a receipt the
   * log already gave is not given again.
   */
  onMessage(text: string): void {
    let x: unknown;
    try {
      x = (JSON.parse(text) as { x?: unknown }).x;
    } catch {
      return;
    }
    if (typeof x === 'string' && this.seen !== undefined) {
      if (!idAfter(x, this.seen)) return;
      this.seen = x;
    }
    this.deliver(text);
  }

  /**
   * After the subscriber connection is back (and subscribed again), the receipts it missed meanwhile, from the log;
   * the first call only notes where the log is. A log that could not be read is read again at the next call.
   */
  async catchUp(): Promise<void> {
    try {
      if (this.seen === undefined) {
        const last = (await this.client.xrevrange(LOG_KEY, '+', '-', 'COUNT', 1))[0];
        this.seen = last?.[0] ?? '0-0';
        return;
      }
      for (;;) {
        const entries: [id: string, fields: string[]][] = await this.client.xrange(LOG_KEY, `(${this.seen}`, '+', 'COUNT', CHUNK);
        for (const [id, fields] of entries) {
          this.seen = id;
          const text = fields[fields.indexOf('m') + 1];
          if (text !== undefined) this.deliver(text);
        }
        if (entries.length < CHUNK) return;
      }
    } catch {
      // Redis away again: the next reconnect reads on from `seen`.
    }
  }

  private deliver(text: string): void {
    const receipt = decodeRemoteRead(text, this.instance);
    if (receipt) for (const l of this.listeners) l(receipt);
  }
}
