/**
 * `probeOnly`: the probe read from the JSON text (probe-scan.ts) must be exactly what a full parse gives, and
 * every text the scan is not certain of must fall back to the full parse. Unit tests feed texts; the last part runs
 * the three transports against a real notify serve, side by side with and without probeOnly.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createTransport, probeOf, type ReceivedNotification, type Transport } from '../src/transports/index.js';
import { ProbeScanner } from '../src/transports/probe-scan.js';
import { startTestGateway } from './helpers/gateway.js';
import { http } from './helpers/http.js';
import { runCleanup } from './helpers/lifecycle.js';
import { RecordingSink } from './transports-helpers.js';

afterEach(runCleanup);

const PROBE = { run: 'r8f3k2', stream: 'user:42', seq: 17, t: 1763727600123.25 };
const probeJson = (p: Record<string, unknown> = PROBE) => JSON.stringify(p);
/** A notification as notify serve writes it: data before createdAt and userId. */
const served = (probe = probeJson(), title = 'swarm probe 17') =>
  `{"id":"k3Jx9aQ2-h","type":"system","title":"${title}","body":"","data":{"probe":${probe}},"createdAt":"2026-11-21T12:00:00.000Z","userId":"42"}`;

const scanner = new ProbeScanner();

/** What a full parse gives: the probe, or undefined when none (or the text is not JSON at all: 'bad-json'). */
function fullProbe(text: string): ReturnType<typeof probeOf> | 'bad-json' {
  let n: unknown;
  try {
    n = JSON.parse(text);
  } catch {
    return 'bad-json';
  }
  return typeof n === 'object' && n !== null && !Array.isArray(n) ? probeOf(n as ReceivedNotification) : undefined;
}

/** The invariant: when the scan answers, its probe is the full parse's (same fields, valid JSON). */
function expectSound(text: string): void {
  const probe = scanner.notification(text);
  if (probe !== undefined) expect({ ...probe }, text).toEqual({ ...(fullProbe(text) as object) });
}

describe('probe scan: one notification', () => {
  it('reads the probe of a notification as notify serve writes it, equal to the full parse', () => {
    const text = served();
    const probe = scanner.notification(text);
    expect(probe).toEqual(PROBE);
    expect(probe).toEqual(fullProbe(text));
    // Any layout of scalar members around it, non-ASCII text, other data members, numbers in every JSON form.
    const others = [
      '{"data":{"probe":' + probeJson() + '}}',
      '{"a":1,"b":-0.5e-3,"c":true,"d":false,"e":null,"f":"Héllo ✓ 𝄞","data":{"x":2,"probe":' + probeJson() + ',"y":"z"},"g":0}',
      '{"probe":"a root key of that name is not data.probe","data":{"probe":' + probeJson() + '}}',
      '{"title":"data: probe: {run} text without quotes","data":{"probe":' + probeJson() + '}}',
    ];
    for (const o of others) expect(scanner.notification(o), o).toEqual(fullProbe(o));
    for (const t of [0, 1e21, 1.5e-7, 123456789012345.7, -12.5, 1763727600000]) {
      const text2 = served(probeJson({ ...PROBE, t }));
      expect(scanner.notification(text2), text2).toEqual({ ...PROBE, t });
      expect(Object.is(scanner.notification(text2)!.t, t)).toBe(true);
    }
    for (const seq of [1, 9, 10, 123456789012345]) expect(scanner.notification(served(probeJson({ ...PROBE, seq })))).toEqual({ ...PROBE, seq });
    expect(scanner.notification(served('{"run":"r","stream":"broadcast","seq":1,"t":2E+3}'))).toEqual({ run: 'r', stream: 'broadcast', seq: 1, t: 2000 });
    expect(Object.is(scanner.notification(served('{"run":"r","stream":"s","seq":1,"t":-0}'))!.t, -0)).toBe(true);
  });

  it('falls back when there is no probe where a full parse would look, or it is not the only one', () => {
    const notProbes = [
      '{"id":"x","type":"system","title":"t","body":"","createdAt":"2026-11-21T12:00:00.000Z"}',
      '{"id":"x","data":{}}',
      '{"id":"x","data":null}',
      '{"id":"x","data":"probe"}',
      '{"id":"x","data":{"probe":null}}',
      // A probe key elsewhere: nested in data, in another object, at the root.
      '{"data":{"meta":{"probe":' + probeJson() + '}}}',
      '{"meta":{"probe":' + probeJson() + '},"data":{}}',
      '{"probe":' + probeJson() + '}',
      '[' + served() + ']',
    ];
    for (const text of notProbes) {
      expect(scanner.notification(text), text).toBeUndefined();
      expect(fullProbe(text), text).toBeUndefined();
    }
    // Repeated keys: JSON.parse keeps the last one, so the first probe found is not the answer.
    const other = probeJson({ ...PROBE, seq: 99 });
    const repeated = [
      `{"data":{"probe":${probeJson()}},"data":{"probe":${other}}}`,
      `{"data":{"probe":${probeJson()},"probe":${other}}}`,
      `{"data":{"probe":${probeJson()}},"data":{}}`,
      `{"data":{"probe":${probeJson()},"probe":1}}`,
      `{"data":{"probe":${probeJson()}},"data":1}`,
    ];
    for (const text of repeated) {
      expect(scanner.notification(text), text).toBeUndefined();
      expect(fullProbe(text)).not.toEqual(PROBE);
    }
    // Nested objects outside the probe are outside the grammar: parsed in full (which finds the same probe).
    const nested = [
      `{"meta":{"a":1},"data":{"probe":${probeJson()}}}`,
      `{"tags":["a"],"data":{"probe":${probeJson()}}}`,
      `{"data":{"probe":${probeJson()},"x":{}}}`,
    ];
    for (const text of nested) {
      expect(scanner.notification(text), text).toBeUndefined();
      expect(fullProbe(text)).toEqual(PROBE);
    }
  });

  it('falls back on escaped text: the key and probe text inside a string, or a key spelled with escapes', () => {
    const evil = JSON.stringify(`","data":{"probe":${probeJson({ ...PROBE, seq: 666 })}}`);
    const cases = [
      // The text of a probe inside a string value is escaped, so it is a backslash to the scan.
      `{"title":${evil},"data":{"probe":${probeJson()}}}`,
      `{"title":${evil}}`,
      // Keys spelled with escapes are the same keys to JSON.parse.
      `{"data":{"probe":${probeJson({ ...PROBE, seq: 1 })}},"\\u0064ata":{"probe":${probeJson()}}}`,
      `{"data":{"\\u0070robe":${probeJson()}}}`,
      `{"data":{"probe":{"run":"r\\u0031","stream":"s","seq":1,"t":1}}}`,
      `{"data":{"probe":{"\\u0072un":"r","stream":"s","seq":1,"t":1}}}`,
      `{"title":"line\\nbreak","data":{"probe":${probeJson()}}}`,
    ];
    for (const text of cases) {
      expect(scanner.notification(text), text).toBeUndefined();
      expect(fullProbe(text)).not.toBe('bad-json');
    }
    expect(fullProbe(cases[0]!)).toEqual(PROBE);
    expect(fullProbe(cases[1]!)).toBeUndefined();
    expect(fullProbe(cases[2]!)).toEqual(PROBE);
    expect(fullProbe(cases[4]!)).toEqual({ run: 'r1', stream: 's', seq: 1, t: 1 });
  });

  it('falls back on other formatting, another probe key order, and probes probeOf would refuse', () => {
    const formatted = [
      JSON.stringify(JSON.parse(served()), null, 2),
      served().replace('"data":', '"data": '),
      ' ' + served(),
      served() + '\n',
      served('{"stream":"user:42","run":"r8f3k2","seq":17,"t":1763727600123.25}'),
      served('{"run":"r8f3k2","stream":"user:42","seq":17,"t":1763727600123.25,"x":1}'),
      served('{"run":"r8f3k2","stream":"user:42","seq":17.0,"t":1}'),
      served('{"run":"r8f3k2","stream":"user:42","seq":1e2,"t":1}'),
      served('{"run":"r8f3k2","stream":"user:42","seq":1234567890123456,"t":1}'),
      served(`{"run":"r8f3k2","stream":"user:42","seq":1${'0'.repeat(300)},"t":1}`),
    ];
    for (const text of formatted) {
      expect(scanner.notification(text), text).toBeUndefined();
      expect(fullProbe(text), text).toBeTypeOf('object');
    }
    const refused = [
      served('{"run":"r","stream":"s","seq":0,"t":1}'),
      served('{"run":"r","stream":"s","seq":-1,"t":1}'),
      served('{"run":"r","stream":"s","seq":"7","t":1}'),
      served('{"run":"r","stream":"s","seq":1,"t":"1"}'),
      served('{"run":"r","stream":"s","seq":1,"t":1e400}'),
      served('{"run":"r","stream":"s","seq":1,"t":null}'),
      served('{"run":1,"stream":"s","seq":1,"t":1}'),
      served('{"run":"r","stream":"s","seq":1}'),
      // Past 2^1024: Infinity, not an integer. (1e300 written out is an integer to probeOf, and parsed in full.)
      served(`{"run":"r","stream":"s","seq":1${'0'.repeat(400)},"t":1}`),
    ];
    for (const text of refused) {
      expect(scanner.notification(text), text).toBeUndefined();
      expect(fullProbe(text), text).toBeUndefined();
    }
  });

  it('falls back on text that is not JSON, so the transport still reports bad-event', () => {
    const good = served();
    const broken = [
      '',
      good.slice(0, -1),
      good + '}',
      good + ',',
      good.replace('"body":""', '"body":'),
      good.replace('"body":""', '"body":01'),
      good.replace('"body":""', '"body":1.'),
      good.replace('"body":""', '"body":-'),
      good.replace('"body":""', '"body":tru'),
      good.replace('"body":""', '"body":.5'),
      good.replace('"body":""', '"body":"tab\there"'),
      good.replace('"body":""', '"body":"\u0000"'),
      good.replace(',"type"', '"type"'),
      good.replace(',"type"', ',,"type"'),
      good.replace('"title":', '"title"'),
      good.replace('"k3Jx9aQ2-h"', '"k3Jx9aQ2-h'),
      good.replace('{"id"', '{"id":"a",{"id"'),
      good.replace('"seq":17', '"seq":017'),
      good.replace('"t":1763727600123.25', '"t":1763727600123.'),
      good.replace('"t":1763727600123.25', '"t":+1'),
      good.replace('"t":1763727600123.25', '"t":1e'),
    ];
    for (const text of broken) {
      expect(fullProbe(text), JSON.stringify(text)).toBe('bad-json');
      expect(scanner.notification(text), JSON.stringify(text)).toBeUndefined();
    }
  });

  it('never answers differently from the full parse on thousands of mutated notifications', () => {
    // Deterministic mutations (xorshift): delete, duplicate, insert or replace one or two characters anywhere.
    let x = 0x2545f491;
    const rand = (n: number) => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) % n;
    };
    const alphabet = '{}[]":,.-+eE0123456789 \\tnulrfasdb\u0001é';
    const base = served();
    let answered = 0;
    for (let k = 0; k < 20_000; k++) {
      let text = base;
      for (let m = 1 + rand(2); m > 0; m--) {
        const at = rand(text.length + 1);
        const c = alphabet[rand(alphabet.length)]!;
        const op = rand(4);
        if (op === 0) text = text.slice(0, at) + text.slice(at + 1);
        else if (op === 1) text = text.slice(0, at) + text.slice(at, at + 1) + text.slice(at);
        else if (op === 2) text = text.slice(0, at) + c + text.slice(at);
        else text = text.slice(0, at) + c + text.slice(at + 1);
      }
      if (scanner.notification(text) !== undefined) answered++;
      expectSound(text);
    }
    // Most mutations land in strings and keep a valid notification: the fast path is still taken for them.
    expect(answered).toBeGreaterThan(2000);
  });

  it('stays linear on a long text', () => {
    const long = served(probeJson(), 'x'.repeat(1_000_000));
    const started = performance.now();
    expect(scanner.notification(long)).toEqual(PROBE);
    expect(scanner.notification(long.slice(0, -1))).toBeUndefined();
    expect(scanner.notification(`{${'"a":1,'.repeat(100_000)}"b":[]}`)).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(2000);
  });
});

describe('probe scan: batches and envelopes', () => {
  const p = (seq: number) => ({ ...PROBE, seq });
  const n = (seq: number) => served(probeJson(p(seq)));

  it('reads an SSE batch array, all or nothing', () => {
    expect(scanner.list(`[${n(1)},${n(2)},${n(3)}]`)).toEqual([p(1), p(2), p(3)]);
    expect(scanner.list(`[${n(1)}]`)).toEqual([p(1)]);
    expect(scanner.list('[]')).toEqual([]);
    for (const text of [
      `[${n(1)},${served('{"run":"r","stream":"s","seq":0,"t":1}')}]`,
      `[${n(1)},{"id":"no probe"}]`,
      `[${n(1)},]`,
      `[${n(1)}`,
      `[${n(1)}]]`,
      `[${n(1)}] `,
      `[,${n(1)}]`,
      n(1),
      '[1]',
      '[',
    ]) {
      expect(scanner.list(text), text).toBeUndefined();
    }
  });

  it('reads WS notification and batch frames with their cursor, and nothing else', () => {
    expect(scanner.wsFrame(`{"type":"notification","cursor":"E.3.4","notification":${n(4)}}`)).toEqual(p(4));
    expect(scanner.cursor).toBe('E.3.4');
    expect(scanner.wsFrame(`{"type":"notifications:batch","cursor":"E.5.6","notifications":[${n(5)},${n(6)}]}`)).toEqual([p(5), p(6)]);
    expect(scanner.cursor).toBe('E.5.6');
    expect(scanner.wsFrame('{"type":"notifications:batch","cursor":"E.5.6","notifications":[]}')).toEqual([]);
    const others = [
      '{"type":"init","cursor":"E.0.1","unread":[],"unreadCount":0}',
      `{"cursor":"E.3.4","type":"notification","notification":${n(4)}}`,
      `{"type":"notification","cursor":"E.3.4","notification":${n(4)},"type":"notifications:batch"}`,
      `{"type":"notification","cursor":"E.3.4","notification":${n(4)}} `,
      `{"type":"notification","cursor":"E.3.4","notification":${n(4)}`,
      `{"type":"notification","cursor":"E.3\\u002e4","notification":${n(4)}}`,
      `{"type":"notification","cursor":"E.3.4","notification":[${n(4)}]}`,
      `{"type":"notifications:batch","cursor":"E.3.4","notifications":${n(4)}}`,
      `{"type":"notification","cursor":5,"notification":${n(4)}}`,
      `{"type":"notification","cursor":"E.3.4","notification":{"id":"no probe"}}`,
    ];
    for (const text of others) expect(scanner.wsFrame(text), text).toBeUndefined();
  });

  it('reads long-poll answers that carry only notifications', () => {
    expect(scanner.pollAnswer(`{"cursor":"E.1.2","notifications":[${n(1)},${n(2)}]}`)).toEqual([p(1), p(2)]);
    expect(scanner.cursor).toBe('E.1.2');
    expect(scanner.pollAnswer('{"cursor":"E.1.2","notifications":[]}')).toEqual([]);
    const others = [
      '{"cursor":"E.0.1","unread":[],"unreadCount":0,"notifications":[]}',
      '{"cursor":"E.0.1","reset":{"reason":"window"},"unread":[],"unreadCount":0,"notifications":[]}',
      `{"cursor":"E.1.2","notifications":[${n(1)}],"read":[{"id":"a","readAt":"b"}]}`,
      `{"cursor":"E.1.2","notifications":[${n(1)},{"id":"x"}]}`,
      `{"notifications":[${n(1)}],"cursor":"E.1.2"}`,
    ];
    for (const text of others) expect(scanner.pollAnswer(text), text).toBeUndefined();
  });
});

describe('probeOnly transports against notify serve', () => {
  const probe = (seq: number) => ({ run: 'run-1', stream: 'broadcast', seq, t: 1763727600000 + seq / 4 });
  /** A notification exactly as the swarm's publisher sends it. */
  const swarmProbe = (seq: number) =>
    `{"broadcast":true,"notification":{"type":"system","title":"swarm probe ${seq}","data":{"probe":${JSON.stringify(probe(seq))}}}}`;
  /** Published in one request, then two more probes in another; `fast`: whether the scan can take it on its own. */
  const mixed = [
    { fast: true, body: swarmProbe(1) },
    // The text of another probe, escaped in a title, and a real probe: parsed in full, which finds the real one.
    {
      fast: false,
      body: JSON.stringify({
        broadcast: true,
        notification: { type: 'system', title: `"data":{"probe":${JSON.stringify(probe(9))}}`, data: { probe: probe(2) } },
      }),
    },
    // No probe at all, and a probe nested where the audit does not look.
    { fast: false, body: JSON.stringify({ broadcast: true, notification: { type: 'comment', title: 'plain' } }) },
    { fast: false, body: JSON.stringify({ broadcast: true, notification: { type: 'comment', title: 'nested', data: { meta: { probe: probe(3) } } } }) },
    { fast: true, body: `{"broadcast":true,"notification":{"type":"system","title":"Héllo ✓ 𝄞","data":{"probe":${JSON.stringify(probe(4))}}}}` },
  ];
  const probesOnly = [swarmProbe(5), swarmProbe(6)];

  for (const batch of ['0ms', '300ms']) {
    it.each(['sse', 'ws', 'poll'])(`%s (server --batch ${batch}): the same probes and cursors as a full parse`, async (name) => {
      const gw = await startTestGateway({ batch });
      const full = new RecordingSink();
      const fast = new RecordingSink();
      const transports: Transport[] = [createTransport(name, full, { pollTimeoutS: 5 }), createTransport(name, fast, { pollTimeoutS: 5, probeOnly: true })];
      try {
        transports.forEach((t) => t.open(1, { url: gw.url, user: '7' }));
        await full.waitFor(() => full.log.some((e) => e.kind === 'init'), 'init (full)');
        await fast.waitFor(() => fast.log.some((e) => e.kind === 'init'), 'init (probeOnly)');
        // Each list in one publish request: with --batch, and always with long-poll, it arrives as one array.
        let count = 0;
        for (const list of [mixed.map((m) => m.body), probesOnly]) {
          const r = await http(`${gw.url}/publish`, { body: `[${list.join(',')}]` });
          expect(r.status, r.text).toBe(202);
          count += list.length;
          for (const sink of [full, fast]) await sink.waitFor(() => sink.notifications(1).length === count, `${count} notifications`);
        }

        const a = full.notifications(1);
        const b = fast.notifications(1);
        expect(b.map((e) => probeOf(e.n))).toEqual(a.map((e) => probeOf(e.n)));
        expect(b.map((e) => e.cursor)).toEqual(a.map((e) => e.cursor));
        expect(transports[1]!.cursor(1)).toBe(transports[0]!.cursor(1));
        expect(a.every((e) => typeof e.n.id === 'string')).toBe(true);
        // The fast path took exactly the swarm's own probes, which arrive without the other fields. An array is
        // all or nothing: the mixed one is parsed in full.
        const arrays = name === 'poll' || batch !== '0ms';
        const expectFast = [...mixed.map((m) => m.fast && !arrays), true, true];
        expect(b.map((e) => e.n.id === undefined)).toEqual(expectFast);
        const fastOnes = arrays ? [5, 6] : [1, 4, 5, 6];
        expect(b.filter((e) => e.n.id === undefined).map((e) => e.n)).toEqual(fastOnes.map((seq) => ({ data: { probe: probe(seq) } })));
      } finally {
        await Promise.all(transports.map((t) => t.dispose()));
      }
    });
  }
});
