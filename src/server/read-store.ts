/**
 * Who has read what. Read marks are per user and per notification id (a broadcast notification is read per user).
 * Marks for notifications that have left every history window are dropped, so memory follows the history.
 */
export interface ReadStore {
  /** Marks read; returns the readAt (the first one if it was already read). */
  markRead(user: string, id: string, at: Date): string;
  readAt(user: string, id: string): string | undefined;
  /** Drops a user's marks for ids `keep` says are gone. */
  prune(user: string, keep: (id: string) => boolean): void;
  size(user: string): number;
}

export class MemoryReadStore implements ReadStore {
  private readonly marks = new Map<string, Map<string, string>>();

  markRead(user: string, id: string, at: Date): string {
    let m = this.marks.get(user);
    if (!m) this.marks.set(user, (m = new Map<string, string>()));
    const existing = m.get(id);
    if (existing) return existing;
    const readAt = at.toISOString();
    m.set(id, readAt);
    return readAt;
  }

  readAt(user: string, id: string): string | undefined {
    return this.marks.get(user)?.get(id);
  }

  prune(user: string, keep: (id: string) => boolean): void {
    const m = this.marks.get(user);
    if (!m) return;
    for (const id of m.keys()) if (!keep(id)) m.delete(id);
  }

  size(user: string): number {
    return this.marks.get(user)?.size ?? 0;
  }
}
