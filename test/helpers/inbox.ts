/**
 * What a test client has received, in order, with bounded waits: `next(type)` takes the next message and insists
 * on its type (so "nothing else arrived in between" is part of every wait), `waitFor(n)` takes the next n.
 */
export interface Typed {
  type: string;
}

export interface WaitOptions {
  timeoutMs?: number;
}

export const DEFAULT_WAIT_MS = 3000;

export class Inbox<T extends Typed> {
  readonly items: T[] = [];
  private taken = 0;
  private waiters = new Set<() => void>();
  private endedWith: string | undefined;

  constructor(private readonly describeItem: (item: T) => string) {}

  push(item: T): void {
    this.items.push(item);
    this.wake();
  }

  /** No more items will come (connection closed); pending waits fail at once instead of at their timeout. */
  end(why: string): void {
    this.endedWith ??= why;
    this.wake();
  }

  /** Items not taken yet. */
  get pending(): T[] {
    return this.items.slice(this.taken);
  }

  wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Waits until `check()` holds; `check` is re-run whenever something arrives or the state changes. */
  waitUntil(check: () => boolean, what: string, { timeoutMs = DEFAULT_WAIT_MS }: WaitOptions = {}, failOnEnd = true): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        if (err) reject(err);
        else resolve();
      };
      const waiter = () => {
        if (check()) done();
        else if (failOnEnd && this.endedWith !== undefined)
          done(new Error(`connection ended (${this.endedWith}) while waiting for ${what}; ${this.describePending()}`));
      };
      const timer = setTimeout(() => done(new Error(`timed out after ${timeoutMs}ms waiting for ${what}; ${this.describePending()}`)), timeoutMs);
      this.waiters.add(waiter);
      waiter();
    });
  }

  /** The next item; when `type` is given it must be of that type (anything else in between fails the test). */
  async next(type?: string, opts: WaitOptions = {}): Promise<T> {
    await this.waitUntil(() => this.items.length > this.taken, type ? `a "${type}" message` : 'a message', opts);
    const item = this.items[this.taken++]!;
    if (type !== undefined && item.type !== type) {
      throw new Error(`expected a "${type}" message, got ${this.describeItem(item)}`);
    }
    return item;
  }

  /** The next n items (of `type`, if given: every one must be). */
  async waitFor(n: number, type?: string, opts: WaitOptions = {}): Promise<T[]> {
    await this.waitUntil(() => this.items.length >= this.taken + n, `${n} ${type ?? ''} messages`, opts);
    const got = this.items.slice(this.taken, this.taken + n);
    this.taken += n;
    if (type !== undefined) {
      const wrong = got.find((i) => i.type !== type);
      if (wrong) throw new Error(`expected ${n} "${type}" messages, got ${this.describeItem(wrong)} among them`);
    }
    return got;
  }

  private describePending(): string {
    const rest = this.pending;
    return rest.length ? `untaken: ${rest.slice(0, 5).map(this.describeItem).join(' | ')}` : 'nothing untaken';
  }
}
