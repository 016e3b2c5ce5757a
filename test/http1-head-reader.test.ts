/** ResponseHeadReader (src/transports/http1-wire.ts): the response head shared by the swarm's SSE and WS sockets. */
import { describe, expect, it } from 'vitest';
import { ResponseHeadReader } from '../src/transports/http1-wire.js';

const UPGRADED = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n';

describe('ResponseHeadReader', () => {
  it('gathers a head cut at every byte, copying what it keeps, and hands back the bytes after it', () => {
    const bytes = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: x\n\n`);
    const headEnd = bytes.indexOf('\r\n\r\n') + 4;
    for (let cut = 1; cut < headEnd; cut++) {
      const r = new ResponseHeadReader();
      const shared = Buffer.from(bytes.subarray(0, cut));
      expect(r.read(shared)).toBe('more');
      shared.fill(0); // a shared read buffer, reused by the next read
      const got = r.read(bytes.subarray(cut));
      expect(got).toMatchObject({ head: { status: 200, headers: { 'content-type': 'text/event-stream' } } });
      expect(typeof got === 'object' && got.rest.toString()).toBe('data: x\n\n');
    }
  });

  it('skips interim answers; a 101 is interim for a plain GET and the answer for an upgrade', () => {
    const bytes = Buffer.from(`HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n${UPGRADED}rest`);
    expect(new ResponseHeadReader(true).read(bytes)).toMatchObject({ head: { status: 101 } });
    expect(new ResponseHeadReader().read(bytes)).toBe('more');
  });

  it('refuses what is not HTTP/1.x, and a head past 64 KB', () => {
    expect(new ResponseHeadReader().read(Buffer.from('SSH-2.0-OpenSSH\r\n\r\n'))).toBe('bad-response');
    const r = new ResponseHeadReader();
    expect(r.read(Buffer.from(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(60 * 1024)}\r\n`))).toBe('more');
    expect(r.read(Buffer.from(`Y: ${'b'.repeat(8 * 1024)}\r\n`))).toBe('bad-response');
  });
});
