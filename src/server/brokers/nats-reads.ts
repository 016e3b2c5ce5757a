/**
 * Read state of the NATS broker: a JetStream KV bucket `notify-reads`, one key per mark, `<user>.<id>` -> readAt.
 * `create` only succeeds on a key that does not exist, so the first readAt wins whichever instance it came from;
 * a later read gets the stored one back. A user's marks are read with one watch over `<user>.>` (a consumer that
 * sends the last value of each key, then ends), not one request per notification. Pruned with the history like the
 * other stores (History drops marks for ids that left the window), not by the bucket's age limit: a notification
 * still in the window stays read however old it is.
 */
import type { JetStreamClient, KV, KvEntry, QueuedIterator } from 'nats';
import type { HttpError } from '../http-error.js';
import type { ReadReceipt, ReadStore } from '../read-store.js';

const BUCKET = 'notify-reads';
/** A watch over a user's marks that has not sent them all by then fails (503), instead of holding the request. */
const SCAN_TIMEOUT_MS = 3000;

/** A KV key token: bytes outside A-Z a-z 0-9 _ - written `=hh` (user ids hold dots, which separate tokens). */
function keyToken(text: string): string {
  return text.replace(/[^A-Za-z0-9_-]/g, (c) => [...Buffer.from(c, 'utf8')].map((b) => `=${b.toString(16).padStart(2, '0')}`).join(''));
}

/** The text of a key token; undefined for one notify did not write. */
function fromKeyToken(token: string): string | undefined {
  try {
    return /^(?:[A-Za-z0-9_-]|=[0-9a-f]{2})+$/.test(token) ? decodeURIComponent(token.replace(/=([0-9a-f]{2})/g, '%$1')) : undefined;
  } catch {
    return undefined;
  }
}

function isKeyExists(err: unknown): boolean {
  const e = err as { api_error?: { err_code?: number }; message?: string };
  return e.api_error?.err_code === 10071 || /wrong last sequence|key exists/i.test(e.message ?? '');
}

export class NatsReadStore implements ReadStore {
  private kv: KV | undefined;

  constructor(
    private readonly js: JetStreamClient,
    /** NATS failures as the 503 every broker read answers. */
    private readonly fail: (err: unknown) => HttpError,
    /** Tells the other instances about a read stored here. */
    private readonly announce: (receipt: ReadReceipt) => void,
  ) {}

  /** Opens the bucket, creating it when missing (file storage, one value per key). */
  async start(): Promise<void> {
    this.kv = await this.js.views.kv(BUCKET, { history: 1 });
  }

  private bucket(): KV {
    if (!this.kv) throw this.fail(new Error('read marks bucket not open'));
    return this.kv;
  }

  async markRead(user: string, id: string, at: Date): Promise<{ readAt: string }> {
    const kv = this.bucket();
    const key = `${keyToken(user)}.${keyToken(id)}`;
    const readAt = at.toISOString();
    let stored = readAt;
    try {
      await kv.create(key, readAt);
    } catch (err) {
      if (!isKeyExists(err)) throw this.fail(err);
      stored = await this.read(kv, key, readAt);
    }
    this.announce({ user, id, readAt: stored });
    return { readAt: stored };
  }

  /** A key that exists already: the first readAt, stored by whichever instance got there first. */
  private async read(kv: KV, key: string, fallback: string): Promise<string> {
    try {
      const e = await kv.get(key);
      return e && e.operation === 'PUT' ? e.string() : fallback;
    } catch (err) {
      throw this.fail(err);
    }
  }

  async marks(user: string, ids: readonly string[]): Promise<{ readAt: Map<string, string>; total: number }> {
    const all = await this.scan(user);
    const readAt = new Map<string, string>();
    for (const id of ids) {
      const at = all.get(id);
      if (at !== undefined) readAt.set(id, at);
    }
    return { readAt, total: all.size };
  }

  async prune(user: string, keep: (id: string) => boolean): Promise<void> {
    const kv = this.bucket();
    const prefix = keyToken(user);
    for (const id of (await this.scan(user)).keys()) {
      if (keep(id)) continue;
      try {
        await kv.purge(`${prefix}.${keyToken(id)}`);
      } catch (err) {
        throw this.fail(err);
      }
    }
  }

  /** Every mark of the user, id -> readAt. */
  private async scan(user: string): Promise<Map<string, string>> {
    const kv = this.bucket();
    const prefix = `${keyToken(user)}.`;
    const found = new Map<string, string>();
    let initialized = false;
    let iter: QueuedIterator<KvEntry> | undefined;
    // The watch says when it has sent every key's last value; that can happen before `watch` even returns.
    const stop = (): void => {
      initialized = true;
      iter?.stop();
    };
    const timer = setTimeout(() => iter?.stop(), SCAN_TIMEOUT_MS);
    try {
      iter = await kv.watch({ key: `${prefix}>`, initializedFn: stop });
      if (initialized) iter.stop();
      for await (const e of iter) {
        const id = fromKeyToken(e.key.slice(prefix.length));
        if (id === undefined) continue;
        if (e.operation === 'PUT') found.set(id, e.string());
        else found.delete(id);
      }
    } catch (err) {
      throw this.fail(err);
    } finally {
      clearTimeout(timer);
    }
    if (!initialized) throw this.fail(new Error(`reading ${user}'s read marks took over ${SCAN_TIMEOUT_MS} ms`));
    return found;
  }
}
