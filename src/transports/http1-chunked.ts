/**
 * An incremental decoder of HTTP/1.1 chunked framing: wire bytes in, the chunks' payload out as views of the input,
 * across any split (inside a size line, its CRLF, the payload or the CRLF after it). Its state is a few numbers, so a
 * read never has to be kept or copied: the SSE transport feeds it the one read buffer all its sockets share.
 */

/** Receives payload pieces; each is a view of the bytes just given to `decode` and valid only during the call. */
export interface ChunkSink {
  chunk(payload: Buffer): void;
}

const SIZE = 0;
const EXT = 1;
const SIZE_LF = 2;
const DATA = 3;
const DATA_CR = 4;
const DATA_LF = 5;
const DONE = 6;
const BAD = 7;

/** A hex digit's value, -1 for any other byte. */
function hex(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  const l = b | 0x20;
  return l >= 0x61 && l <= 0x66 ? l - 0x61 + 10 : -1;
}

export class ChunkedDecoder {
  private state = SIZE;
  /** Size line: the size so far; payload: bytes still owed by the current chunk. */
  private left = 0;
  /** Digits of the size line read so far (a line with none is not framing). */
  private digits = 0;

  /** The terminating 0-size chunk was read (trailers, if any, are not read). */
  get done(): boolean {
    return this.state === DONE;
  }

  /** The bytes were not chunked framing; nothing more is decoded. */
  get failed(): boolean {
    return this.state === BAD;
  }

  /** Decodes `data`, handing each payload piece to `out` as it is found. */
  decode(data: Buffer, out: ChunkSink): void {
    const n = data.length;
    let i = 0;
    while (i < n && this.state < DONE) {
      if (this.state === DATA) {
        const take = Math.min(this.left, n - i);
        out.chunk(data.subarray(i, i + take));
        i += take;
        this.left -= take;
        if (this.left === 0) this.state = DATA_CR;
        continue;
      }
      this.step(data[i++]!);
    }
  }

  /** One framing byte (everything but payload). */
  private step(b: number): void {
    switch (this.state) {
      case SIZE: {
        const d = hex(b);
        if (d >= 0 && this.digits < 12) {
          this.left = this.left * 16 + d;
          this.digits++;
        } else if (this.digits === 0) this.state = BAD;
        else if (b === 0x0d) this.state = SIZE_LF;
        else if (b === 0x0a) this.sizeLine();
        else if (b === 0x3b || b === 0x20 || b === 0x09) this.state = EXT;
        else this.state = BAD;
        return;
      }
      case EXT:
        // A chunk extension (`;name=value`) is skipped to the line end.
        if (b === 0x0a) this.sizeLine();
        return;
      case SIZE_LF:
        if (b === 0x0a) this.sizeLine();
        else this.state = BAD;
        return;
      case DATA_CR:
        // CRLF after the payload; a bare LF is taken too, as llhttp's lenient mode would.
        if (b === 0x0d) this.state = DATA_LF;
        else if (b === 0x0a) this.state = SIZE;
        else this.state = BAD;
        return;
      case DATA_LF:
        this.state = b === 0x0a ? SIZE : BAD;
        return;
    }
  }

  private sizeLine(): void {
    this.state = this.left === 0 ? DONE : DATA;
    this.digits = 0;
  }

  /** The payload of `data` as one Buffer (a copy when it came in several pieces), for readers off the hot path. */
  push(data: Buffer): Buffer {
    const pieces: Buffer[] = [];
    this.decode(data, { chunk: (p) => void pieces.push(p) });
    return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
  }
}
