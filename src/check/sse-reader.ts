/**
 * An SSE stream as the checks look at it: every event, comment and `retry:` with the time and socket read that
 * brought it, the probes found in each event, and waits bounded in time for what a check expects next.
 */
import { createParser } from 'eventsource-parser';
import type { Probe } from '../protocol/probe.js';
import { findProbesInText } from '../transports/probe-find.js';
import type { BodyPiece, RawStream } from './raw-http.js';

export interface SseRecord {
  kind: 'event' | 'comment' | 'retry';
  /** Event name (`message` when the event had none), comment text, or the retry value. */
  name: string;
  data: string;
  /** The last event id seen up to and including this event (what EventSource would send back). */
  lastId?: string;
  probes: Probe[];
  at: number;
  read: number;
}

export class SseReader {
  readonly records: SseRecord[] = [];
  private lastId: string | undefined;
  private piece: BodyPiece | undefined;
  private waiters: (() => void)[] = [];
  ended = false;

  constructor(readonly stream: RawStream) {
    const parser = createParser({
      onEvent: (e) => {
        if (e.id !== undefined) this.lastId = e.id;
        const probes = findProbesInText(e.data)?.probes ?? [];
        this.add({ kind: 'event', name: e.event ?? 'message', data: e.data, lastId: this.lastId, probes: [...probes] });
      },
      onComment: (c) => this.add({ kind: 'comment', name: c, data: '', probes: [] }),
      onRetry: (r) => this.add({ kind: 'retry', name: String(r), data: '', probes: [] }),
    });
    stream.onPiece((p) => {
      this.piece = p;
      parser.feed(p.text);
      this.wake();
    });
    void stream.ended.then(() => {
      this.ended = true;
      this.wake();
    });
  }

  private add(r: Omit<SseRecord, 'at' | 'read'>): void {
    this.records.push({ ...r, at: this.piece?.at ?? performance.now(), read: this.piece?.read ?? 0 });
  }

  private wake(): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }

  /** Resolves with the first record `match` accepts (already seen or arriving), or undefined after `timeoutMs` or the end. */
  async waitFor(match: (r: SseRecord) => boolean, timeoutMs: number): Promise<SseRecord | undefined> {
    let found: SseRecord | undefined;
    await this.waitUntil(() => (found = this.records.find(match)) !== undefined, timeoutMs);
    return found;
  }

  /** Resolves with `cond()` once it holds, the stream ends, or `timeoutMs` passes; re-checked on every read. */
  async waitUntil(cond: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const ok = cond();
      if (ok || this.ended) return ok;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** The probe of run `run` with sequence `seq`, when it has arrived. */
  probe(run: string, seq: number): SseRecord | undefined {
    return this.records.find((r) => r.probes.some((p) => p.run === run && p.seq === seq));
  }

  /** Sequence numbers of run `run`'s probes in arrival order (duplicates kept). */
  probeSeqs(run: string): number[] {
    return this.records.flatMap((r) => r.probes.filter((p) => p.run === run).map((p) => p.seq));
  }

  /** Body bytes from the wire so far. */
  wireBytes(): number {
    let n = 0;
    let last = -1;
    for (const p of this.stream.pieces) {
      if (p.read === last) continue;
      n += p.wireBytes;
      last = p.read;
    }
    return n;
  }
}
