/** RFC 6455 framing of the WS client (src/transports/ws-frames.ts), fed raw bytes. */
import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import type { Writable } from 'node:stream';
import { CLOSE, clientFrame, closePayload, FrameReader, OPCODE } from '../src/transports/ws-frames.js';
import { FrameLog } from './helpers/frame-log.js';

/** A server frame (unmasked). */
function frame(opcode: number, payload: Buffer | string, fin = true, extra = 0): Buffer {
  const p = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const len = p.length;
  const head = len < 126 ? Buffer.from([0, len]) : len < 0x10000 ? Buffer.from([0, 126, len >> 8, len & 0xff]) : Buffer.alloc(10);
  if (len >= 0x10000) {
    head[1] = 127;
    head.writeUInt32BE(len, 6);
  }
  head[0] = (fin ? 0x80 : 0) | extra | opcode;
  return Buffer.concat([head, p]);
}

function readAll(chunks: Buffer[]): unknown[] {
  const h = new FrameLog();
  const r = new FrameReader(1024 * 1024);
  for (const c of chunks) r.read(c, h);
  return h.log;
}

/** Every way of cutting `bytes` in two. */
function splits(bytes: Buffer): Buffer[][] {
  const out: Buffer[][] = [];
  for (let i = 1; i < bytes.length; i++) out.push([bytes.subarray(0, i), bytes.subarray(i)]);
  return out;
}

describe('ws frame reader', () => {
  it('reads several frames of one chunk, and the same frames cut at every byte', () => {
    const big = 'x'.repeat(300);
    const bytes = Buffer.concat([frame(OPCODE.text, 'héllo ✓'), frame(OPCODE.ping, 'p'), frame(OPCODE.text, big), frame(OPCODE.binary, Buffer.alloc(3))]);
    const expected = ['héllo ✓', { ping: 'p' }, big, { binary: [0, 0, 0] }];
    expect(readAll([bytes])).toEqual(expected);
    for (const parts of splits(bytes)) expect(readAll(parts)).toEqual(expected);
    expect(readAll([...bytes].map((b) => Buffer.from([b])))).toEqual(expected);
  });

  it('reads 16- and 64-bit lengths', () => {
    const mid = 'm'.repeat(70_000);
    expect(readAll([frame(OPCODE.text, mid)])).toEqual([mid]);
    expect(readAll(splits(frame(OPCODE.text, 'a'.repeat(200)))[3]!)).toEqual(['a'.repeat(200)]);
  });

  it('joins fragments, with a control frame between them', () => {
    const bytes = Buffer.concat([
      frame(OPCODE.text, 'ab', false),
      frame(OPCODE.ping, ''),
      frame(OPCODE.continuation, 'c', false),
      frame(OPCODE.continuation, 'd'),
    ]);
    expect(readAll([bytes])).toEqual([{ ping: '' }, 'abcd']);
    // A UTF-8 character cut between two fragments is whole once they are joined.
    const e = Buffer.from('é');
    expect(readAll([Buffer.concat([frame(OPCODE.text, e.subarray(0, 1), false), frame(OPCODE.continuation, e.subarray(1))])])).toEqual(['é']);
  });

  it('reads a close frame with and without a code, and stops there', () => {
    expect(readAll([Buffer.concat([frame(OPCODE.close, closePayload(4008, 'slow consumer')), frame(OPCODE.text, 'after')])])).toEqual([
      { close: 4008, reason: 'slow consumer' },
    ]);
    expect(readAll([frame(OPCODE.close, '')])).toEqual([{ close: CLOSE.noStatus, reason: '' }]);
  });

  it('fails on what breaks the protocol, with the code ws would close with', () => {
    const masked = frame(OPCODE.text, 'x');
    masked[1]! |= 0x80;
    const cases: [Buffer, number][] = [
      [masked, CLOSE.protocolError],
      [frame(OPCODE.text, 'x', true, 0x40), CLOSE.protocolError], // RSV1 without an extension
      [frame(0x3, 'x'), CLOSE.protocolError], // reserved opcode
      [frame(OPCODE.continuation, 'x'), CLOSE.protocolError], // nothing to continue
      [Buffer.concat([frame(OPCODE.text, 'a', false), frame(OPCODE.text, 'b')]), CLOSE.protocolError],
      [frame(OPCODE.ping, 'p', false), CLOSE.protocolError], // fragmented control frame
      [frame(OPCODE.ping, 'p'.repeat(126)), CLOSE.protocolError],
      [frame(OPCODE.close, Buffer.from([0x03])), CLOSE.protocolError], // one byte: no code
      [frame(OPCODE.close, closePayload(1005)), CLOSE.protocolError], // a code no frame may carry
      [frame(OPCODE.text, Buffer.from([0xc3, 0x28])), CLOSE.invalidData],
      [frame(OPCODE.text, 'x'.repeat(2 * 1024 * 1024)), CLOSE.tooBig],
    ];
    for (const [bytes, code] of cases) expect(readAll([bytes])).toEqual([{ error: code }]);
  });

  it('drops the rest of a chunk once the handler stops reading', () => {
    const h = new FrameLog();
    h.message = function (data) {
      this.log.push(data.toString());
      this.open = false;
    };
    new FrameReader().read(Buffer.concat([frame(OPCODE.text, 'one'), frame(OPCODE.text, 'two')]), h);
    expect(h.log).toEqual(['one']);
  });
});

// ws's own Receiver (exported at run time, not in @types/ws) as the server side reads client frames.
const { Receiver } = createRequire(import.meta.url)('ws') as { Receiver: new (options: { isServer: boolean }) => Writable };

describe('ws client frames', () => {
  it('are masked, and ws reads them back (small, 16-bit and 64-bit lengths)', () => {
    for (const size of [0, 5, 125, 126, 70_000]) {
      const payload = Buffer.from('z'.repeat(size));
      const bytes = clientFrame(OPCODE.text, payload);
      expect(bytes[1]! & 0x80).toBe(0x80);
      if (size > 4) expect(bytes.includes(payload.subarray(0, 4))).toBe(false);
      const got: string[] = [];
      const r = new Receiver({ isServer: true });
      r.on('message', (d: Buffer) => got.push(d.toString()));
      r.write(bytes);
      expect(got).toEqual([payload.toString()]);
    }
  });
});
