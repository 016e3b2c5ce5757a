/**
 * Who has read what. Read marks are per user and per notification id (a broadcast notification is read per user).
 * Marks for notifications that have left every history window are dropped, so what is kept follows the history.
 * The memory store serves one process; a shared broker brings its own (`ReadSharing`), so that every instance sees
 * the same marks and the first readAt wins wherever the read happened.
 */

/** A read as told to the user's other connections: the `read` event's `{id, readAt}`, and whose it is. */
export interface ReadReceipt {
  user: string;
  id: string;
  readAt: string;
}

export interface ReadStore {
  /**
   * Marks read; resolves to the readAt stored (the first one if it was already read) and, when the store knows it
   * cheaply, how many marks the user holds now (the caller prunes past a bound).
   */
  markRead(user: string, id: string, at: Date): Promise<{ readAt: string; marks?: number }>;
  /** The user's marks among `ids` (id -> readAt), and how many marks the user holds in all. */
  marks(user: string, ids: readonly string[]): Promise<{ readAt: Map<string, string>; total: number }>;
  /** Drops a user's marks for ids `keep` says are gone. */
  prune(user: string, keep: (id: string) => boolean): Promise<void>;
}

export class MemoryReadStore implements ReadStore {
  private readonly byUser = new Map<string, Map<string, string>>();

  async markRead(user: string, id: string, at: Date): Promise<{ readAt: string; marks: number }> {
    let m = this.byUser.get(user);
    if (!m) this.byUser.set(user, (m = new Map<string, string>()));
    let readAt = m.get(id);
    if (readAt === undefined) m.set(id, (readAt = at.toISOString()));
    return { readAt, marks: m.size };
  }

  async marks(user: string, ids: readonly string[]): Promise<{ readAt: Map<string, string>; total: number }> {
    return this.marksNow(user, ids);
  }

  /** `marks`, answered at once (the memory store has them at hand). */
  marksNow(user: string, ids: readonly string[]): { readAt: Map<string, string>; total: number } {
    const m = this.byUser.get(user);
    const readAt = new Map<string, string>();
    if (m) {
      for (const id of ids) {
        const at = m.get(id);
        if (at !== undefined) readAt.set(id, at);
      }
    }
    return { readAt, total: m?.size ?? 0 };
  }

  async prune(user: string, keep: (id: string) => boolean): Promise<void> {
    const m = this.byUser.get(user);
    if (!m) return;
    for (const id of m.keys()) if (!keep(id)) m.delete(id);
    if (m.size === 0) this.byUser.delete(user);
  }
}

/**
 * A read receipt as the gateways sharing a broker send it to each other: JSON `{o, u, i, r}` (sending instance, user,
 * notification id, readAt; the Redis script writes the same shape). Undefined for one of our own, or one malformed.
 */
export function decodeRemoteRead(text: string, self: string): ReadReceipt | undefined {
  let m: { o?: unknown; u?: unknown; i?: unknown; r?: unknown };
  try {
    m = JSON.parse(text) as typeof m;
  } catch {
    return undefined;
  }
  if (m.o === self || typeof m.u !== 'string' || typeof m.i !== 'string' || typeof m.r !== 'string') return undefined;
  return { user: m.u, id: m.i, readAt: m.r };
}

export function encodeRemoteRead(self: string, receipt: ReadReceipt): string {
  return JSON.stringify({ o: self, u: receipt.user, i: receipt.id, r: receipt.readAt });
}
