/**
 * `delivered` across instances: the publishing instance asks every instance sharing the broker how many live
 * subscriptions each stream has there, and sums the answers. The broker carries the question and the answers (Redis
 * Pub/Sub, NATS core subjects) and says how many instances got the question; this module is the bookkeeping both
 * share. An instance that does not answer within ANSWER_WAIT_MS is not counted: the 202 is not held for it.
 */

/** How long a publish's answer waits for the other instances' counts. */
const ANSWER_WAIT_MS = 500;

interface Question {
  /** Asking instance. */
  f: string;
  /** Its question number. */
  q: number;
  /** Streams. */
  s: string[];
}

interface Pending {
  sums: number[];
  answered: number;
  /** Instances that got the question (unknown until the broker said). */
  expected: number | undefined;
  finish: () => void;
}

export class AudiencePoll {
  private count: (streams: string[]) => number[] = (streams) => streams.map(() => 0);
  private next = 0;
  private readonly pending = new Map<number, Pending>();

  constructor(private readonly instance: string) {}

  countLocal(count: (streams: string[]) => number[]): void {
    this.count = count;
  }

  /**
   * Counts each stream's subscriptions on every instance. `send` delivers the question to all instances (this one
   * too) and resolves to how many got it.
   */
  async ask(streams: string[], send: (question: string) => Promise<number>): Promise<number[]> {
    const unique = [...new Set(streams)];
    const q = ++this.next;
    const sums = await new Promise<number[]>((resolve, reject) => {
      const p: Pending = { sums: unique.map(() => 0), answered: 0, expected: undefined, finish: () => undefined };
      const timer = setTimeout(() => p.finish(), ANSWER_WAIT_MS);
      p.finish = () => {
        clearTimeout(timer);
        this.pending.delete(q);
        resolve(p.sums);
      };
      this.pending.set(q, p);
      send(JSON.stringify({ f: this.instance, q, s: unique } satisfies Question)).then(
        (n) => {
          p.expected = n;
          if (p.answered >= n) p.finish();
        },
        (err: unknown) => {
          clearTimeout(timer);
          this.pending.delete(q);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
    const byStream = new Map(unique.map((s, i) => [s, sums[i]!]));
    return streams.map((s) => byStream.get(s)!);
  }

  /** A question from some instance: to whom the answer goes, and the answer; undefined for what is not one. */
  answer(text: string): { to: string; text: string } | undefined {
    let m: Partial<Question>;
    try {
      m = JSON.parse(text) as Partial<Question>;
    } catch {
      return undefined;
    }
    if (typeof m.f !== 'string' || typeof m.q !== 'number' || !Array.isArray(m.s) || !m.s.every((s) => typeof s === 'string')) return undefined;
    return { to: m.f, text: JSON.stringify({ q: m.q, c: this.count(m.s) }) };
  }

  /** An answer to one of this instance's questions. */
  onAnswer(text: string): void {
    let m: { q?: unknown; c?: unknown };
    try {
      m = JSON.parse(text) as typeof m;
    } catch {
      return;
    }
    const p = typeof m.q === 'number' ? this.pending.get(m.q) : undefined;
    if (!p || !Array.isArray(m.c) || m.c.length !== p.sums.length) return;
    m.c.forEach((n, i) => {
      if (typeof n === 'number' && Number.isFinite(n)) p.sums[i]! += n;
    });
    p.answered++;
    if (p.expected !== undefined && p.answered >= p.expected) p.finish();
  }
}
