/**
 * The generic decoder's scan (decode-generic.ts `scan`): a message that is the swarm's own payload has its probe and
 * id read from the text. Whatever it answers must be what the full parse (findProbes over JSON.parse) gives: the
 * same notifications with the same ids and cursors, for texts it takes and for texts it must leave to the parse.
 */
import { describe, expect, it } from 'vitest';
import { GenericDecoder, type Receiver } from '../src/transports/decode-generic.js';
import { findProbes } from '../src/transports/probe-find.js';
import type { ReceivedNotification, TransportSink } from '../src/transports/transport.js';

type Call = [ReceivedNotification, string | undefined];

function decoder(frames?: 'nchan-meta'): { d: GenericDecoder; r: Receiver; calls: Call[]; unparsable: number[] } {
  const calls: Call[] = [];
  const unparsable: number[] = [];
  const sink = {
    notification: (_c: number, n: ReceivedNotification, cursor: string | undefined) => calls.push([structuredClone(n), cursor]),
    unparsable: (c: number) => unparsable.push(c),
  } as unknown as TransportSink;
  const r: Receiver = { conn: 1, cursor: undefined, live: () => true };
  return { d: new GenericDecoder(sink, frames ? { frames } : {}), r, calls, unparsable };
}

/** What the full parse gives for a json frame (no meta id): text() without the scan, written out. */
function byParse(text: string): { calls: Call[]; cursor: string | undefined } {
  const value = JSON.parse(text) as Record<string, unknown>;
  let id = typeof value.cursor === 'string' ? value.cursor : undefined;
  const found = findProbes(value);
  if (id === undefined && found.ids.length > 0) id = found.ids[found.ids.length - 1];
  const last = found.probes.length - 1;
  return { calls: found.probes.map((p, i) => [{ id: found.ids[i], data: { probe: p } }, i === last ? id : undefined]), cursor: id };
}

const probe = (seq: number) => `{"run":"r1","stream":"b","seq":${seq},"t":1700000000000.5}`;
const TEXTS = [
  // The nchan profile's payload, as published.
  `{"id":"n-1","type":"system","title":"swarm probe","body":"xx","data":{"probe":${probe(1)}},"createdAt":"2026-12-03T00:00:00Z"}`,
  `{"type":"system","data":{"probe":${probe(2)}}}`,
  `{"id":"n-3","data":{"id":"inner","probe":${probe(3)}}}`,
  `{"id":7,"data":{"probe":${probe(4)}}}`,
  `{"type":"x","id":"late","data":{"probe":${probe(5)}}}`,
  `{"run":"r1","stream":"b","seq":6,"t":1,"data":{"probe":${probe(6)}}}`,
  `{"data":{"run":"x","probe":${probe(7)}}}`,
  `{"cursor":"c-8","data":{"probe":${probe(8)}}}`,
  `{"id":"n-9","body":"{}","tags":"[1,2]","data":{"probe":${probe(9)}}}`,
  `{"id":"n-10","data":{"probe":${probe(10)},"extra":{"probe":${probe(11)}}}}`,
  `{"id":"n-12","data":{"probe":{"run":"r1","stream":"b","seq":0,"t":1}}}`,
  `{"id":"n\\u002d13","data":{"probe":${probe(13)}}}`,
  `{"id":"","data":{"probe":${probe(14)}}}`,
];

describe('generic decoder scan', () => {
  it('json frames: the same notifications, ids and cursor as the full parse, for every text', () => {
    for (const text of TEXTS) {
      const { d, r, calls } = decoder();
      d.text(r, text, 0);
      const want = byParse(text);
      expect({ text, calls }).toEqual({ text, calls: want.calls });
      expect({ text, cursor: r.cursor }).toEqual({ text, cursor: want.cursor });
    }
  });

  it('nchan meta frames: the meta id is the cursor, the notification id is the payload’s', () => {
    for (const text of TEXTS) {
      const { d, r, calls } = decoder('nchan-meta');
      d.text(r, `id: 1700000000:0\ncontent-type: application/json\n\n${text}`, 0);
      const found = findProbes(JSON.parse(text));
      const last = found.probes.length - 1;
      expect({ text, calls }).toEqual({
        text,
        calls: found.probes.map((p, i) => [{ id: found.ids[i], data: { probe: p } }, i === last ? '1700000000:0' : undefined]),
      });
      expect(r.cursor).toBe('1700000000:0');
    }
  });

  it('SSE events: the same as the full parse, and text that is not JSON is still unparsable', () => {
    for (const text of TEXTS) {
      const { d, r, calls } = decoder();
      d.sse(r, undefined, text, 'e-1', 0);
      const found = findProbes(JSON.parse(text));
      const last = found.probes.length - 1;
      expect({ text, calls }).toEqual({ text, calls: found.probes.map((p, i) => [{ id: found.ids[i], data: { probe: p } }, i === last ? 'e-1' : undefined]) });
    }
    const { d, r, calls, unparsable } = decoder();
    d.sse(r, undefined, `{"id":"n-1","data":{"probe":${probe(1)}}`, 'e-2', 0);
    expect(calls).toEqual([]);
    expect(unparsable).toEqual([1]);
  });

  it('takes the published payload itself: its id read from the text', () => {
    const { d, r, calls } = decoder('nchan-meta');
    d.text(r, `id: 5:0\n\n${TEXTS[0]}`, 0);
    expect(calls).toEqual([[{ id: 'n-1', data: { probe: { run: 'r1', stream: 'b', seq: 1, t: 1700000000000.5 } } }, '5:0']]);
  });
});
