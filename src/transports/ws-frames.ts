/**
 * RFC 6455 framing, both sides: the swarm's client reads the server's frames (unmasked, no extensions) and writes its
 * own (masked); the gateway (src/server/ws.ts) reads its clients' masked frames with the same reader, unmasked in
 * place. ws.ts keeps one `FrameReader` per connection attempt and reads each socket chunk with it; the frames of a
 * chunk are cut as views of it (`subarray`), so a message costs no copy unless it was split across reads or
 * fragmented. A profile of the swarm on ws@8 put its Receiver (a Writable stream per connection,
 * events per frame and per message) at ~60% of the receive path; this reader is a loop over the chunk.
 */
import { isUtf8 } from 'node:buffer';
import { randomFillSync } from 'node:crypto';

export const OPCODE = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

/** Close codes this side sends (RFC 6455 section 7.4.1). */
export const CLOSE = { normal: 1000, protocolError: 1002, noStatus: 1005, abnormal: 1006, invalidData: 1007, tooBig: 1009 } as const;

/** ws's default `maxPayload`: a larger message closes the connection with 1009. */
export const DEFAULT_MAX_PAYLOAD = 100 * 1024 * 1024;

/** What a reader hands its connection. Methods, so the connection state itself can be the handler. */
export interface FrameHandler {
  /** A whole message (fragments joined); text messages are valid UTF-8. */
  message(data: Buffer, binary: boolean): void;
  ping(payload: Buffer): void;
  /** A pong (the client side ignores them; the gateway's heartbeat waits for one). */
  pong?(payload: Buffer): void;
  /** The peer's close frame: its code (1005 when it gave none) and reason. */
  closeFrame(code: number, reason: string): void;
  /** The peer broke the protocol; the connection must close with `code`. */
  protocolError(code: number): void;
  /** False once a handler call ended the connection: the rest of the chunk is dropped. */
  reading(): boolean;
}

/** RFC 6455 7.4: codes a close frame may carry (ws's isValidStatusCode). */
function validCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

export class FrameReader {
  /** Bytes of a frame that a read cut short, and how many of them the next step needs. */
  private held: Buffer[] | undefined;
  private heldBytes = 0;
  private need = 0;
  /** A fragmented message being gathered. */
  private fragments: Buffer[] | undefined;
  private fragmentBytes = 0;
  private fragmentBinary = false;

  /**
   * `masked`: the server side, reading a client's frames, which must be masked (RFC 6455 5.1: an unmasked one is a
   * protocol error, 1002); the client side reads a server's, which must not be.
   */
  constructor(
    private readonly maxPayload = DEFAULT_MAX_PAYLOAD,
    private readonly masked = false,
  ) {}

  /** Reads every complete frame of `chunk` (after what earlier reads left) into `h`. */
  read(chunk: Buffer, h: FrameHandler): void {
    let buf = chunk;
    if (this.held !== undefined) {
      this.heldBytes += chunk.length;
      this.held.push(Buffer.from(chunk)); // a copy: the chunk may be a read buffer that is reused
      if (this.heldBytes < this.need) return;
      buf = Buffer.concat(this.held, this.heldBytes);
      this.held = undefined;
    }
    const end = buf.length;
    // Read once per chunk, not per frame: the client side's loop stays as it was.
    const maskBit = this.masked ? 0x80 : 0;
    const keyBytes = maskBit >>> 5;
    let at = 0;
    while (end - at >= 2) {
      const b0 = buf[at]!;
      const b1 = buf[at + 1]!;
      let len = b1 & 0x7f;
      let off = at + 2;
      if (len === 126) {
        if (end - at < 4) return this.hold(buf, at, 4);
        len = buf.readUInt16BE(at + 2);
        off = at + 4;
      } else if (len === 127) {
        if (end - at < 10) return this.hold(buf, at, 10);
        const high = buf.readUInt32BE(at + 2);
        // Past 2^53 a length is not a safe integer; far past maxPayload anyway.
        len = high > 0x1fffff ? Infinity : high * 0x1_0000_0000 + buf.readUInt32BE(at + 6);
        off = at + 10;
      }
      // A server's frames are never masked, a client's always are; no extension was negotiated, so RSV1-3 are 0.
      if ((b1 & 0x80) !== maskBit || (b0 & 0x70) !== 0) return h.protocolError(CLOSE.protocolError);
      if (len > this.maxPayload) return h.protocolError(CLOSE.tooBig);
      off += keyBytes;
      if (end - off < len) return this.hold(buf, at, off - at + len);
      at = off + len;
      if (keyBytes !== 0) unmask(buf, off - 4, off, at);
      if (!this.frame(b0, buf.subarray(off, at), h) || !h.reading()) return;
    }
    if (at < end) this.hold(buf, at, 2);
  }

  /** Drops what a frame split across reads left; the reader starts clean. */
  reset(): void {
    this.held = undefined;
    this.fragments = undefined;
  }

  private hold(buf: Buffer, at: number, need: number): void {
    // A copy: a view would keep the whole chunk alive for the few bytes of a partial frame.
    const rest = Buffer.from(buf.subarray(at));
    this.held = [rest];
    this.heldBytes = rest.length;
    this.need = need;
  }

  /** One frame; false when the connection must stop reading. */
  private frame(b0: number, payload: Buffer, h: FrameHandler): boolean {
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    switch (opcode) {
      case OPCODE.text:
      case OPCODE.binary:
        if (this.fragments !== undefined) return this.fail(h, CLOSE.protocolError);
        if (fin) return this.deliver(payload, opcode === OPCODE.binary, h);
        this.fragments = [Buffer.from(payload)]; // copies, as `held`: kept past the read
        this.fragmentBytes = payload.length;
        this.fragmentBinary = opcode === OPCODE.binary;
        return true;
      case OPCODE.continuation: {
        const parts = this.fragments;
        if (parts === undefined) return this.fail(h, CLOSE.protocolError);
        this.fragmentBytes += payload.length;
        if (this.fragmentBytes > this.maxPayload) return this.fail(h, CLOSE.tooBig);
        parts.push(fin ? payload : Buffer.from(payload));
        if (!fin) return true;
        this.fragments = undefined;
        return this.deliver(Buffer.concat(parts, this.fragmentBytes), this.fragmentBinary, h);
      }
      case OPCODE.close:
      case OPCODE.ping:
      case OPCODE.pong:
        if (!fin || payload.length > 125) return this.fail(h, CLOSE.protocolError);
        return this.control(opcode, payload, h);
      default:
        return this.fail(h, CLOSE.protocolError);
    }
  }

  private control(opcode: number, payload: Buffer, h: FrameHandler): boolean {
    if (opcode === OPCODE.ping) {
      h.ping(payload);
      return true;
    }
    if (opcode === OPCODE.pong) {
      h.pong?.(payload);
      return true;
    }
    if (payload.length === 0) {
      h.closeFrame(CLOSE.noStatus, '');
      return false;
    }
    const code = payload.length >= 2 ? payload.readUInt16BE(0) : 0;
    const reason = payload.subarray(2);
    if (!validCloseCode(code)) return this.fail(h, CLOSE.protocolError);
    if (!isUtf8(reason)) return this.fail(h, CLOSE.invalidData);
    h.closeFrame(code, reason.toString('utf8'));
    return false;
  }

  private deliver(data: Buffer, binary: boolean, h: FrameHandler): boolean {
    if (!binary && !isUtf8(data)) return this.fail(h, CLOSE.invalidData);
    h.message(data, binary);
    return true;
  }

  private fail(h: FrameHandler, code: number): boolean {
    this.reset();
    h.protocolError(code);
    return false;
  }
}

/** XORs `buf[from, to)` with the 4-byte key at `key` (RFC 6455 5.3), in place: the chunk is this reader's to change. */
function unmask(buf: Buffer, key: number, from: number, to: number): void {
  const k0 = buf[key]!;
  const k1 = buf[key + 1]!;
  const k2 = buf[key + 2]!;
  const k3 = buf[key + 3]!;
  let i = from;
  for (; i + 3 < to; i += 4) {
    buf[i] ^= k0;
    buf[i + 1] ^= k1;
    buf[i + 2] ^= k2;
    buf[i + 3] ^= k3;
  }
  if (i < to) buf[i++] ^= k0;
  if (i < to) buf[i++] ^= k1;
  if (i < to) buf[i] ^= k2;
}

/** Masking keys come from one random pool, refilled when used up (crypto per frame would cost more than the frame). */
const maskPool = Buffer.alloc(4096);
let maskAt = maskPool.length;

/** Bytes of a frame's head before the masking key, for a payload of `len` bytes (7-bit, 16-bit or 64-bit length). */
export function frameHeadSize(len: number): 2 | 4 | 10 {
  return len < 126 ? 2 : len < 0x10000 ? 4 : 10;
}

/**
 * Writes a final frame's head at the start of `out`: FIN + `opcode`, then the mask bit (`mask`: 0x80 for a client's
 * frame, 0 for a server's) with the payload length in frameHeadSize(len) bytes (RFC 6455 5.2).
 */
export function writeFrameHead(out: Buffer, opcode: number, len: number, mask: 0 | 0x80): void {
  out[0] = 0x80 | opcode;
  if (len < 126) out[1] = mask | len;
  else if (len < 0x10000) {
    out[1] = mask | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = mask | 127;
    out.writeUInt32BE(Math.floor(len / 0x1_0000_0000), 2);
    out.writeUInt32BE(len >>> 0, 6);
  }
}

/** A client frame (FIN set, masked as RFC 6455 5.3 requires) carrying `payload`. */
export function clientFrame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  const head = frameHeadSize(len);
  const out = Buffer.allocUnsafe(head + 4 + len);
  writeFrameHead(out, opcode, len, 0x80);
  if (maskAt + 4 > maskPool.length) {
    randomFillSync(maskPool);
    maskAt = 0;
  }
  maskPool.copy(out, head, maskAt, maskAt + 4);
  maskAt += 4;
  for (let i = 0; i < len; i++) out[head + 4 + i] = payload[i]! ^ out[head + (i & 3)]!;
  return out;
}

/** The payload of a close frame: the code, then the reason. */
export function closePayload(code: number, reason = ''): Buffer {
  const out = Buffer.allocUnsafe(2 + Buffer.byteLength(reason));
  out.writeUInt16BE(code, 0);
  out.write(reason, 2);
  return out;
}

/**
 * A server frame (FIN set, unmasked as RFC 6455 5.1 requires) carrying `payload`, a string written as UTF-8 straight
 * into the frame (one allocation, no intermediate Buffer).
 */
export function serverFrame(opcode: number, payload: Buffer | string): Buffer {
  const len = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  const head = frameHeadSize(len);
  const out = Buffer.allocUnsafe(head + len);
  writeFrameHead(out, opcode, len, 0);
  if (typeof payload === 'string') out.write(payload, head, 'utf8');
  else payload.copy(out, head);
  return out;
}
