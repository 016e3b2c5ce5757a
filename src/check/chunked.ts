/** An incremental decoder of HTTP/1.1 chunked framing: bytes in, the chunks' payload out, across any split. */
export class ChunkedDecoder {
  private buf: Buffer = Buffer.alloc(0);
  /** Payload bytes still owed by the current chunk; -1 while reading a size line; -2 on the CRLF after a chunk. */
  private left = -1;
  /** The terminating 0-size chunk was read. */
  done = false;

  push(data: Buffer): Buffer {
    this.buf = this.buf.length ? Buffer.concat([this.buf, data]) : data;
    const out: Buffer[] = [];
    while (!this.done && this.buf.length > 0) {
      if (this.left === -1) {
        const eol = this.buf.indexOf('\r\n');
        if (eol < 0) break;
        const size = parseInt(this.buf.subarray(0, eol).toString('latin1'), 16);
        this.buf = this.buf.subarray(eol + 2);
        if (!Number.isFinite(size) || size === 0) this.done = true;
        else this.left = size;
      } else if (this.left === -2) {
        if (this.buf.length < 2) break;
        this.buf = this.buf.subarray(2);
        this.left = -1;
      } else {
        const take = Math.min(this.left, this.buf.length);
        out.push(this.buf.subarray(0, take));
        this.buf = this.buf.subarray(take);
        this.left -= take;
        if (this.left === 0) this.left = -2;
      }
    }
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }
}
