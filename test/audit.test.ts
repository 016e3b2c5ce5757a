import { asProbe } from '../src/protocol/probe.js';
import { describe, expect, it } from 'vitest';
import {
  addCounts,
  AuditTally,
  emptyCounts,
  liveCounts,
  publishLogFromTimes,
  rangesReceived,
  Receipt,
  settle,
  streamKind,
  SubscriberAudit as Core,
  toEventCounts,
  type PublishLog,
  type StreamAuditCounts,
} from '../src/swarm/audit.js';

const RUN = 'run-a';

/** The publisher's send log per stream on a virtual clock: each probe sent one ms after the previous one. */
class Publisher {
  now = 0;
  private readonly times = new Map<string, number[]>();
  readonly lookup: PublishLog = publishLogFromTimes(this.times);
  publish(stream: string, n = 1): void {
    let a = this.times.get(stream);
    if (!a) this.times.set(stream, (a = []));
    for (let i = 0; i < n; i++) a.push(++this.now);
  }
  /** Intended send time of a probe (a probe not sent yet gets "now"). */
  t(stream: string, seq: number): number {
    return this.times.get(stream)?.[seq - 1] ?? this.now;
  }
}

/** The audit as a worker drives it: open times on the publisher's clock, probe t from the send log. */
class SubscriberAudit {
  private readonly core: Core;
  constructor(
    run: string,
    streams: string[],
    private readonly pub: Publisher,
  ) {
    this.core = new Core(run, streams);
  }
  opened(): void {
    this.core.opened(this.pub.now + 0.5);
  }
  closed(): void {
    this.core.closed();
  }
  receive(run: string, stream: string, seq: number): number {
    return this.core.receive(run, stream, seq, this.pub.t(stream, seq));
  }
  finish(log: PublishLog): StreamAuditCounts[] {
    return this.core.finish(log);
  }
}

/** A log whose final count is `n` on every stream (receipts above it are not delivered). */
const finalAt = (pub: Publisher, n: number): PublishLog => ({ sentBefore: (s, at) => pub.lookup.sentBefore(s, at), final: () => n });

function setup(streams = ['broadcast']): { pub: Publisher; audit: SubscriberAudit } {
  const pub = new Publisher();
  return { pub, audit: new SubscriberAudit(RUN, streams, pub) };
}

function feed(audit: SubscriberAudit, seqs: number[], stream = 'broadcast'): number[] {
  return seqs.map((seq) => audit.receive(RUN, stream, seq));
}

function only(result: StreamAuditCounts[]): StreamAuditCounts {
  expect(result).toHaveLength(1);
  return result[0]!;
}

describe('SubscriberAudit', () => {
  it('counts a complete in-order delivery', () => {
    const { pub, audit } = setup();
    audit.opened();
    pub.publish('broadcast', 10);
    expect(feed(audit, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).every((f) => f === Receipt.New)).toBe(true);
    expect(only(audit.finish(pub.lookup))).toEqual({
      stream: 'broadcast',
      expected: 10,
      delivered: 10,
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
      recovered: 0,
      misrouted: 0,
      early: 0,
      ignored: 0,
    });
  });

  it('counts gaps as lost, including probes never received at the end', () => {
    const { pub, audit } = setup();
    audit.opened();
    pub.publish('broadcast', 8);
    feed(audit, [1, 2, 4, 5, 7]);
    expect(only(audit.finish(pub.lookup))).toMatchObject({ expected: 8, delivered: 5, lost: 3, outOfOrder: 0 });
  });

  it('counts every extra receipt of a probe as a duplicate', () => {
    const { pub, audit } = setup();
    audit.opened();
    pub.publish('broadcast', 3);
    expect(feed(audit, [1, 2, 2, 3, 3, 3])).toEqual([Receipt.New, Receipt.New, Receipt.Duplicate, Receipt.New, Receipt.Duplicate, Receipt.Duplicate]);
    expect(only(audit.finish(pub.lookup))).toMatchObject({ expected: 3, delivered: 3, lost: 0, duplicated: 3 });
  });

  it('counts a probe below the highest seq already seen as out of order, and still delivered', () => {
    const { pub, audit } = setup();
    audit.opened();
    pub.publish('broadcast', 6);
    const flags = feed(audit, [1, 3, 2, 5, 4, 6]);
    expect(flags[2]).toBe(Receipt.New | Receipt.OutOfOrder);
    expect(flags[4]).toBe(Receipt.New | Receipt.OutOfOrder);
    expect(flags[5]).toBe(Receipt.New);
    expect(only(audit.finish(pub.lookup))).toMatchObject({ expected: 6, delivered: 6, lost: 0, outOfOrder: 2 });
  });

  it('counts probes missed during a disconnect and replayed after the re-open as recovered, in order', () => {
    const { pub, audit } = setup();
    audit.opened();
    pub.publish('broadcast', 3);
    feed(audit, [1, 2, 3]);
    audit.closed();
    pub.publish('broadcast', 3); // 4..6 while down
    audit.opened();
    const flags = feed(audit, [4, 5, 6]);
    expect(flags).toEqual([0, 0, 0].map(() => Receipt.New | Receipt.Recovered));
    pub.publish('broadcast'); // 7 live on the new connection
    expect(feed(audit, [7])).toEqual([Receipt.New]);
    expect(only(audit.finish(pub.lookup))).toMatchObject({ expected: 7, delivered: 7, lost: 0, outOfOrder: 0, recovered: 3 });
  });

  it('counts what the replay could not bring back (history window) as lost', () => {
    const { pub, audit } = setup();
    audit.opened();
    pub.publish('broadcast', 3);
    feed(audit, [1, 2, 3]);
    audit.closed();
    pub.publish('broadcast', 7); // 4..10 while down; 4..7 leave the history window
    audit.opened();
    feed(audit, [8, 9, 10]);
    pub.publish('broadcast');
    feed(audit, [11]);
    expect(only(audit.finish(pub.lookup))).toMatchObject({ expected: 11, delivered: 7, lost: 4, recovered: 3 });
  });

  it('flags a replayed probe that arrives after a newer live one as recovered and out of order', () => {
    const { pub, audit } = setup();
    audit.opened();
    pub.publish('broadcast', 2);
    feed(audit, [1, 2]);
    audit.closed();
    pub.publish('broadcast', 2); // 3, 4 while down
    audit.opened();
    pub.publish('broadcast'); // 5 live
    expect(feed(audit, [5, 3, 4, 4])).toEqual([
      Receipt.New,
      Receipt.New | Receipt.OutOfOrder | Receipt.Recovered,
      Receipt.New | Receipt.OutOfOrder | Receipt.Recovered,
      Receipt.Duplicate,
    ]);
    expect(only(audit.finish(pub.lookup))).toMatchObject({ delivered: 5, lost: 0, recovered: 2, outOfOrder: 2, duplicated: 1 });
  });

  it('counts a resend of an already received probe after a reconnect as a duplicate, not recovered', () => {
    const { pub, audit } = setup();
    audit.opened();
    pub.publish('broadcast', 3);
    feed(audit, [1, 2, 3]);
    audit.closed();
    audit.opened();
    expect(feed(audit, [3])).toEqual([Receipt.Duplicate]);
    expect(only(audit.finish(pub.lookup))).toMatchObject({ delivered: 3, duplicated: 1, recovered: 0 });
  });

  it('does not expect probes published before a late joiner subscribed', () => {
    const { pub, audit } = setup();
    pub.publish('broadcast', 5);
    audit.opened(); // watermark 5
    pub.publish('broadcast', 3); // 6..8
    // Early is known only at finish, when the send log gives the watermark.
    expect(feed(audit, [4, 5, 6, 7])).toEqual([Receipt.New, Receipt.New, Receipt.New, Receipt.New]);
    expect(only(audit.finish(pub.lookup))).toMatchObject({ expected: 3, delivered: 2, lost: 1, early: 2, outOfOrder: 0 });
  });

  it('takes the watermark at the first successful open only, not at re-opens', () => {
    const { pub, audit } = setup();
    pub.publish('broadcast', 2);
    audit.opened();
    audit.opened(); // duplicate report: no-op
    pub.publish('broadcast', 2);
    audit.closed();
    pub.publish('broadcast', 2);
    audit.opened();
    feed(audit, [5, 6]);
    expect(only(audit.finish(pub.lookup))).toMatchObject({ expected: 4, delivered: 2, lost: 2, recovered: 2 });
  });

  it('expects nothing from a subscriber that never opened', () => {
    const { pub, audit } = setup();
    pub.publish('broadcast', 4);
    expect(feed(audit, [1])).toEqual([Receipt.Ignored]);
    expect(only(audit.finish(pub.lookup))).toMatchObject({ expected: 0, delivered: 0, lost: 0, ignored: 1 });
  });

  it('ignores probes of another run, with bad seqs or far ahead of the publisher', () => {
    const { pub, audit } = setup();
    audit.opened();
    pub.publish('broadcast', 2);
    expect(audit.receive('run-b', 'broadcast', 1)).toBe(Receipt.Ignored);
    expect(audit.receive('run-b', 'user:7', 1)).toBe(Receipt.Ignored);
    expect(feed(audit, [0, -1, 1.5, Number.NaN, 2_000_000_000])).toEqual(Array(5).fill(Receipt.Ignored));
    feed(audit, [1]);
    expect(only(audit.finish(pub.lookup))).toMatchObject({ expected: 2, delivered: 1, lost: 1, duplicated: 0, misrouted: 0, ignored: 7 });
  });

  it("counts every receipt of this run's probe of a stream the subscriber must not get as misrouted, before the first open too", () => {
    const { pub, audit } = setup(['user:3', 'broadcast']);
    expect(audit.receive(RUN, 'user:7', 1)).toBe(Receipt.Misrouted); // before the open: still a leak
    audit.opened();
    pub.publish('user:3', 1);
    pub.publish('user:7', 2);
    pub.publish('broadcast', 1);
    expect(audit.receive(RUN, 'user:7', 1)).toBe(Receipt.Misrouted); // again: every receipt counts
    expect(audit.receive(RUN, 'user:7', 2)).toBe(Receipt.Misrouted);
    expect(audit.receive(RUN, 'user:3', 1)).toBe(Receipt.New);
    expect(audit.receive(RUN, 'broadcast', 1)).toBe(Receipt.New);
    const [user, broadcast] = audit.finish(pub.lookup);
    // Charged to the subscriber's first stream; never expected, never delivered.
    expect(user).toMatchObject({ stream: 'user:3', expected: 1, delivered: 1, lost: 0, misrouted: 3, ignored: 0 });
    expect(broadcast).toMatchObject({ stream: 'broadcast', expected: 1, delivered: 1, misrouted: 0 });
  });

  it('audits each stream of a subscriber on its own watermark and order', () => {
    const { pub, audit } = setup(['broadcast', 'user:42']);
    pub.publish('broadcast', 10);
    pub.publish('user:42', 1);
    audit.opened();
    pub.publish('broadcast', 2); // 11, 12
    pub.publish('user:42', 2); // 2, 3
    feed(audit, [11, 12]);
    expect(feed(audit, [3, 2], 'user:42')).toEqual([Receipt.New, Receipt.New | Receipt.OutOfOrder]);
    expect(audit.finish(pub.lookup)).toEqual([
      { stream: 'broadcast', expected: 2, delivered: 2, lost: 0, duplicated: 0, outOfOrder: 0, recovered: 0, misrouted: 0, early: 0, ignored: 0 },
      { stream: 'user:42', expected: 2, delivered: 2, lost: 0, duplicated: 0, outOfOrder: 1, recovered: 0, misrouted: 0, early: 0, ignored: 0 },
    ]);
  });

  it('stays exact over many probes (bitset growth, word boundaries)', () => {
    const { pub, audit } = setup();
    pub.publish('broadcast', 37);
    audit.opened(); // watermark 37: bits start at seq 38
    const total = 10_000;
    pub.publish('broadcast', total);
    let lost = 0;
    for (let seq = 38; seq < 38 + total; seq++) {
      if (seq % 7 === 0) lost++;
      else audit.receive(RUN, 'broadcast', seq);
    }
    feed(audit, [38 + 31, 38 + 63, 38 + 64]); // duplicates on word edges (bits 31, 63, 64)
    expect(only(audit.finish(pub.lookup))).toMatchObject({ expected: total, delivered: total - lost, lost, duplicated: 3 });
  });

  it('owes nobody a probe the server refused, and does not count it if it arrives anyway', () => {
    const { pub, audit } = setup();
    audit.opened();
    pub.publish('broadcast', 10);
    feed(audit, [1, 2, 3, 4, 6, 7, 9, 10]); // 5 refused and absent; 8 lost; 9 refused but received
    const log: PublishLog = { ...pub.lookup, refused: () => [5, 9] };
    expect(only(audit.finish(log))).toMatchObject({ expected: 8, delivered: 7, lost: 1 });
  });

  it('does not count receipts above the final published seq as delivered', () => {
    const { pub, audit } = setup();
    audit.opened();
    pub.publish('broadcast', 40);
    feed(
      audit,
      Array.from({ length: 40 }, (_, i) => i + 1),
    );
    expect(only(audit.finish(finalAt(pub, 33)))).toMatchObject({ expected: 33, delivered: 33, lost: 0 });
  });
});

describe('asProbe', () => {
  it('accepts the probe shape (the object itself, not a copy) and rejects anything else', () => {
    const probe = { run: RUN, stream: 'user:1', seq: 3, t: 1_763_726_400_000.25 };
    const extra = { ...probe, extra: true };
    expect(asProbe(extra)).toBe(extra);
    for (const bad of [
      null,
      'x',
      {},
      { ...probe, seq: 0 },
      { ...probe, seq: 1.5 },
      { ...probe, seq: '3' },
      { ...probe, t: Number.NaN },
      { ...probe, run: 1 },
    ]) {
      expect(asProbe(bad)).toBeUndefined();
    }
  });
});

describe('AuditTally', () => {
  const sub = (stream: string, delivered: number, expected: number): StreamAuditCounts => ({
    ...emptyCounts(),
    stream,
    expected,
    delivered,
    lost: expected - delivered,
  });

  it('groups by stream kind and merges worker totals exactly', () => {
    expect(streamKind('user:42')).toBe('user');
    expect(streamKind('broadcast')).toBe('broadcast');
    const w1 = new AuditTally();
    w1.addAll([sub('broadcast', 10, 10), sub('user:1', 4, 5)]);
    w1.addAll([sub('broadcast', 9, 10), sub('user:2', 5, 5)]);
    const w2 = new AuditTally();
    w2.add('broadcast', { ...emptyCounts(), expected: 10, delivered: 10, duplicated: 2 });
    const main = new AuditTally();
    main.merge(JSON.parse(JSON.stringify(w1)) as Record<string, ReturnType<typeof emptyCounts>>);
    main.merge(w2);
    expect(main.toJSON()).toEqual({
      broadcast: { ...emptyCounts(), expected: 30, delivered: 29, lost: 1, duplicated: 2 },
      user: { ...emptyCounts(), expected: 10, delivered: 9, lost: 1 },
    });
    const total = main.total();
    expect(total).toEqual(addCounts(addCounts(emptyCounts(), main.toJSON().broadcast!), main.toJSON().user!));
    expect(toEventCounts(total, 25)).toEqual({
      published: 25,
      expected: 40,
      delivered: 38,
      lost: 2,
      duplicated: 2,
      outOfOrder: 0,
      recovered: 0,
      misrouted: 0,
    });
  });

  it('sums real subscriber audits', () => {
    const tally = new AuditTally((s) => s);
    const pub = new Publisher();
    const a = new SubscriberAudit(RUN, ['broadcast'], pub);
    const b = new SubscriberAudit(RUN, ['broadcast'], pub);
    a.opened();
    pub.publish('broadcast', 2);
    b.opened();
    pub.publish('broadcast', 2);
    feed(a, [1, 2, 3, 4]);
    feed(b, [3, 3]);
    tally.addAll(a.finish(pub.lookup));
    tally.addAll(b.finish(pub.lookup));
    expect(tally.total()).toMatchObject({ expected: 6, delivered: 5, lost: 1, duplicated: 1 });
  });
});

describe('a shard ledger settled later', () => {
  /** A random walk of receipts (gaps, duplicates, reorders, late opens) with a log that has refusals. */
  function scenario(seed: number): { core: Core; log: PublishLog } {
    let x = seed;
    const rnd = () => (x = (x * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const times = new Map<string, number[]>([
      ['broadcast', Array.from({ length: 300 }, (_, i) => i * 10)],
      ['user:1', Array.from({ length: 70 }, (_, i) => i * 37)],
    ]);
    const refused = new Map([['broadcast', [3, 64, 65, 200]]]);
    const log = publishLogFromTimes(times, refused);
    const core = new Core(RUN, ['broadcast', 'user:1']);
    if (seed % 5 !== 0) core.opened(rnd() * 500);
    for (let k = 0; k < 400; k++) {
      const stream = rnd() < 0.8 ? 'broadcast' : 'user:1';
      const seq = 1 + Math.floor(rnd() * (stream === 'broadcast' ? 330 : 80));
      core.receive(RUN, stream, seq, 0);
    }
    return { core, log };
  }

  it('gives what finish gives, for every stream of every subscriber', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const { core, log } = scenario(seed);
      const direct = core.finish(log);
      const later = core.ledger().map((e) => ({ stream: e.stream, ...settle(rangesReceived(e.ranges), e.firstOpenAt, e.stream, log) }));
      expect(later, `seed ${seed}`).toEqual(direct.map(({ stream, expected, delivered, lost, early }) => ({ stream, expected, delivered, lost, early })));
    }
  });

  it('keeps the seqs received as inclusive ranges', () => {
    const core = new Core(RUN, ['broadcast']);
    core.opened(0);
    for (const seq of [1, 2, 3, 5, 31, 32, 33, 64, 65]) core.receive(RUN, 'broadcast', seq, 0);
    expect(core.ledger()).toEqual([{ stream: 'broadcast', firstOpenAt: 0, ranges: [1, 3, 5, 5, 31, 33, 64, 65] }]);
    expect(new Core(RUN, ['broadcast']).ledger()).toEqual([{ stream: 'broadcast', firstOpenAt: null, ranges: [] }]);
  });
});

describe('the live audit (liveCounts, once a tick)', () => {
  /**
   * A run on a virtual clock: probes on two streams with refusals, subscribers opening late, dropping and re-opening,
   * receiving with gaps, duplicates and reorders (replays of old seqs too), and a tick every 50 probes. Each tick's
   * live figures are checked against the ledger's ranges settled by `settle` (which shares no counting with the
   * bitsets' cached prefix counts), and the last tick's against the final audit.
   */
  it('equals the ledger settled at every tick, and the final audit at the end of the run', () => {
    let x = 7;
    const rnd = () => (x = (x * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const streams = ['broadcast', 'user:1'];
    const times = new Map<string, number[]>(streams.map((s) => [s, []]));
    const refused = new Map<string, number[]>(streams.map((s) => [s, []]));
    const log = publishLogFromTimes(times, refused);
    const subs = Array.from({ length: 40 }, () => new Core(RUN, streams));
    const openAt = subs.map(() => Math.floor(rnd() * 1500));
    const ledgerCounts = (cutoff: number) => {
      const upTo: PublishLog = { ...log, final: (s) => log.sentBefore(s, cutoff) };
      const sum = { expected: 0, lost: 0 };
      for (const core of subs) {
        for (const e of core.ledger()) {
          const c = settle(rangesReceived(e.ranges), e.firstOpenAt, e.stream, upTo);
          sum.expected += c.expected;
          sum.lost += c.lost;
        }
      }
      return sum;
    };
    let ticks = 0;
    for (let now = 1; now <= 4000; now++) {
      const stream = streams[now % 3 === 0 ? 1 : 0]!;
      const sent = times.get(stream)!;
      sent.push(now);
      if (rnd() < 0.01) refused.get(stream)!.push(sent.length);
      subs.forEach((core, k) => {
        if (now === openAt[k]) core.opened(now + 0.5);
        if (now < openAt[k]! || rnd() < 0.05) return; // not yet subscribed, or missed live
        if (rnd() < 0.002) core.closed();
        if (rnd() < 0.01) core.opened(now + 0.5);
        const back = rnd() < 0.03 ? Math.floor(rnd() * sent.length) : 0; // a replay of an older seq
        core.receive(RUN, stream, sent.length - back, now);
        if (rnd() < 0.01) core.receive(RUN, stream, sent.length, now); // a duplicate
      });
      if (now % 50 === 0) {
        const cutoff = now - 20; // the grace: probes of the last 20 ms are not owed yet
        const live = liveCounts(subs, log, cutoff);
        expect({ expected: live.expected, lost: live.lost }, `tick at ${now}`).toEqual(ledgerCounts(cutoff));
        ticks++;
      }
    }
    const final = new AuditTally();
    for (const core of subs) final.addAll(core.finish(log));
    const total = final.total();
    const end = liveCounts(subs, log, Infinity);
    expect(end).toEqual({
      expected: total.expected,
      lost: total.lost,
      duplicated: total.duplicated,
      outOfOrder: total.outOfOrder,
      recovered: total.recovered,
    });
    expect(ticks).toBe(80);
    // The run had all of it: late joiners, losses, duplicates, reorders, recoveries and refusals.
    expect(total.lost).toBeGreaterThan(0);
    expect(total.duplicated).toBeGreaterThan(0);
    expect(total.outOfOrder).toBeGreaterThan(0);
    expect(total.recovered).toBeGreaterThan(0);
    expect(total.early).toBeGreaterThan(0);
    expect(refused.get('broadcast')!.length).toBeGreaterThan(0);
  });
});
