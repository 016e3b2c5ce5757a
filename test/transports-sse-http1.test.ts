/**
 * The SSE transport's own HTTP/1.1 reader (sse-http1.ts) at its edges, against real TCP and TLS peers that write
 * every byte themselves: chunked framing cut inside a size line and inside a UTF-8 character, Content-Length and
 * to-close bodies, an interim 100, a 503 with Retry-After, a reset mid-stream, a cut chunked stream, a head that never
 * completes, a peer that is not HTTP, pause and resume, TLS with a self-signed certificate. The chunked decoder itself
 * is fed every split of a wire image; the SSE parser is held to eventsource-parser's results on every split.
 */
import net from 'node:net';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { SseTransport } from '../src/transports/sse.js';
import { createParser } from 'eventsource-parser';
import { ChunkedDecoder } from '../src/transports/http1-chunked.js';
import { SseParser } from '../src/transports/sse-parser.js';
import { runCleanup } from './helpers/lifecycle.js';
import { selfSignedCert } from './helpers/tls-cert.js';
import { RecordingSink } from './transports-helpers.js';

afterEach(runCleanup);

const TITLE = 'Héllo ✓ 𝄞';
const note = (i: number) => `{"id":"E-${i}","type":"system","title":"${TITLE}","body":"","data":{"probe":{"run":"r","stream":"broadcast","seq":${i},"t":1.5}}}`;
const BODY = 'retry: 700\n\n' + [1, 2, 3].map((i) => `id: E.0.${i}\nevent: notification\ndata: ${note(i)}\n\n`).join('');
const EVENTS = [1, 2, 3].map((i) => ({ kind: 'notification', id: `E-${i}`, cursor: `E.0.${i}` }));
const SSE_HEAD = 'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n';

/** `payload` as chunked framing: one chunk per piece, an extension on the first, then the 0-size chunk. */
function chunked(pieces: string[], end = true): Buffer {
  const parts = pieces.map((p, i) => {
    const b = Buffer.from(p);
    return Buffer.concat([Buffer.from(`${b.length.toString(16)}${i === 0 ? ';x=y' : ''}\r\n`), b, Buffer.from('\r\n')]);
  });
  return Buffer.concat([...parts, Buffer.from(end ? '0\r\n\r\n' : '')]);
}

/** A TCP (or TLS) server that reads one request head, then lets `answer` write to the socket. */
async function peer(answer: (socket: net.Socket, path: string) => void, secure?: { cert: string; key: string }): Promise<string> {
  const onSocket = (socket: net.Socket): void => {
    socket.on('error', () => undefined);
    let head = '';
    const onData = (b: Buffer): void => {
      head += b.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      answer(socket, head.split(' ')[1]!);
    };
    socket.on('data', onData);
  };
  const server = secure ? tls.createServer({ cert: readFileSync(secure.cert), key: readFileSync(secure.key) }, onSocket) : net.createServer(onSocket);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  const closing = (): Promise<void> => new Promise((r) => server.close(() => r()));
  cleanups.push(closing);
  return `${secure ? 'https' : 'http'}://127.0.0.1:${port}`;
}
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

/** Writes `bytes` in pieces cut at `cuts`, each its own TCP write a few ms apart. */
async function writeCut(socket: net.Socket, bytes: Buffer, cuts: number[], end = true): Promise<void> {
  let from = 0;
  for (const at of [...cuts, bytes.length]) {
    await new Promise<void>((r) => socket.write(bytes.subarray(from, at), () => r()));
    await new Promise((r) => setTimeout(r, 2));
    from = at;
  }
  if (end) socket.end();
}

function transport(options: ConstructorParameters<typeof SseTransport>[1] = {}): { sse: SseTransport; sink: RecordingSink } {
  const sink = new RecordingSink();
  const sse = new SseTransport(sink, { connectTimeoutMs: 2000, ...options });
  cleanups.push(() => sse.dispose());
  return { sse, sink };
}

describe('sse over its own HTTP/1.1 reader', () => {
  it('decodes a chunked stream cut at every byte: inside size lines, their CRLF, UTF-8 characters and the terminator', async () => {
    const wire = Buffer.concat([
      Buffer.from(`${SSE_HEAD}Transfer-Encoding: chunked\r\n\r\n`),
      chunked([BODY.slice(0, 40), BODY.slice(40, 200), BODY.slice(200)]),
    ]);
    const url = await peer((socket, path) => {
      const at = Number(new URL(path, 'http://x').searchParams.get('user'));
      // The server keeps the socket open: the 0-size chunk alone must end the stream.
      void writeCut(socket, wire, [at], false);
    });
    const { sse, sink } = transport();
    const cuts: number[] = [];
    for (let at = 1; at < wire.length; at++) cuts.push(at);
    for (let i = 0; i < cuts.length; i += 150) {
      const wave = cuts.slice(i, i + 150);
      for (const at of wave) sse.open(at, { url, user: String(at) });
      await Promise.all(wave.map((at) => sink.ended(at, 1, 10_000)));
    }
    for (const at of cuts) {
      expect(sink.plain(at), `cut at ${at}`).toEqual([{ kind: 'opened' }, ...EVENTS, { kind: 'closed', cause: 'server-closed', retryMs: 700 }]);
    }
    expect(sink.notifications().every((e) => e.n.data !== undefined)).toBe(true);
  }, 30_000);

  it('ends a Content-Length body after its last byte, with the socket still open', async () => {
    const body = Buffer.from(BODY);
    const url = await peer((socket) => void writeCut(socket, Buffer.from(`${SSE_HEAD}Content-Length: ${body.length}\r\n\r\n${BODY}`), [30, 101], false));
    const { sse, sink } = transport();
    sse.open(1, { url });
    await sink.ended(1);
    expect(sink.plain(1)).toEqual([{ kind: 'opened' }, ...EVENTS, { kind: 'closed', cause: 'server-closed', retryMs: 700 }]);
  });

  it('reads to close after an interim 100 Continue, from the same read as the final head', async () => {
    const url = await peer((socket) => void writeCut(socket, Buffer.from(`HTTP/1.1 100 Continue\r\n\r\n${SSE_HEAD}\r\n${BODY}`), []));
    const { sse, sink } = transport();
    sse.open(1, { url });
    await sink.ended(1);
    expect(sink.plain(1)).toEqual([{ kind: 'opened' }, ...EVENTS, { kind: 'closed', cause: 'server-closed', retryMs: 700 }]);
  });

  it('refuses a chunked 503 with its Retry-After, and a peer that is not HTTP', async () => {
    const url = await peer((socket, path) => {
      if (path.includes('junk')) return void socket.end('SSH-2.0-OpenSSH_9.2\r\n\r\n');
      socket.write('HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbusy\r\n0\r\n\r\n');
    });
    const { sse, sink } = transport();
    sse.open(1, { url });
    sse.open(2, { url, user: 'junk' });
    await Promise.all([sink.ended(1), sink.ended(2)]);
    expect(sink.plain(1)).toEqual([{ kind: 'error', code: 'http-503', retryMs: 7000 }]);
    expect(sink.plain(2)).toEqual([{ kind: 'error', code: 'bad-response', retryMs: undefined }]);
  });

  it('tells a reset mid-stream from a chunked stream cut without its terminator', async () => {
    const wire = chunked([BODY], false);
    const url = await peer((socket, path) => {
      const head = `${SSE_HEAD}Transfer-Encoding: chunked\r\n\r\n`;
      void writeCut(socket, Buffer.concat([Buffer.from(head), wire]), [], false).then(() => (path.includes('rst') ? socket.resetAndDestroy() : socket.end()));
    });
    const { sse, sink } = transport();
    sse.open(1, { url, user: 'rst' });
    sse.open(2, { url, user: 'cut' });
    await Promise.all([sink.ended(1), sink.ended(2)]);
    expect(sink.plain(1)).toEqual([{ kind: 'opened' }, ...EVENTS, { kind: 'closed', cause: 'ECONNRESET', retryMs: 700 }]);
    expect(sink.plain(2)).toEqual([{ kind: 'opened' }, ...EVENTS, { kind: 'closed', cause: 'socket-closed', retryMs: 700 }]);
  });

  it('gives up with timeout on a head that never completes, and socket-closed on a peer that hangs up first', async () => {
    const url = await peer((socket, path) => {
      if (path.includes('hangup')) return void socket.end('HTTP/1.1 200 OK\r\n');
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n');
    });
    const { sse, sink } = transport({ connectTimeoutMs: 300 });
    const t0 = performance.now();
    sse.open(1, { url });
    sse.open(2, { url, user: 'hangup' });
    await Promise.all([sink.ended(1), sink.ended(2)]);
    expect(sink.plain(1)).toEqual([{ kind: 'error', code: 'timeout', retryMs: undefined }]);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(290);
    expect(sink.plain(2)).toEqual([{ kind: 'error', code: 'socket-closed', retryMs: undefined }]);
  });

  it('pause stops reading the socket and resume reads on, nothing lost', async () => {
    let server: net.Socket | undefined;
    const url = await peer((socket) => {
      server = socket;
      socket.write(`${SSE_HEAD}\r\nid: E.0.1\nevent: notification\ndata: ${note(1)}\n\n`);
    });
    const { sse, sink } = transport();
    sse.open(1, { url });
    await sink.waitFor(() => sink.notifications(1).length === 1, 'first notification');
    expect(sse.pause(1)).toBe(true);
    // 4 MB while paused: more than the kernel buffers hold, so the server's writes back up.
    const filler = `:${'x'.repeat(1000)}\n\n`.repeat(4096);
    const flushed = server!.write(filler + `id: E.0.2\nevent: notification\ndata: ${note(2)}\n\n`);
    expect(flushed).toBe(false);
    await new Promise((r) => setTimeout(r, 200));
    expect(sink.notifications(1)).toHaveLength(1);
    expect(server!.writableLength).toBeGreaterThan(0);
    sse.resume(1);
    await sink.waitFor(() => sink.notifications(1).length === 2, 'second notification after resume');
    expect(sse.cursor(1)).toBe('E.0.2');
  });

  it('refuses a self-signed certificate unless insecureTls, and then reads the stream over TLS', async () => {
    const cert = selfSignedCert();
    const url = await peer((socket) => void writeCut(socket, Buffer.from(`${SSE_HEAD}\r\n${BODY}`), [50]), cert);
    const strict = transport();
    strict.sse.open(1, { url });
    await strict.sink.ended(1);
    expect(strict.sink.plain(1)).toEqual([{ kind: 'error', code: 'DEPTH_ZERO_SELF_SIGNED_CERT', retryMs: undefined }]);
    const lax = transport({ insecureTls: true });
    lax.sse.open(1, { url, localAddress: '127.0.0.3' });
    await lax.sink.ended(1);
    expect(lax.sink.plain(1)).toEqual([{ kind: 'opened' }, ...EVENTS, { kind: 'closed', cause: 'server-closed', retryMs: 700 }]);
  });
});

describe('ChunkedDecoder', () => {
  it('gives the payload for every split of a wire image with extensions, and flags what is not chunked', () => {
    const wire = chunked(['hello', 'x'.repeat(300), '✓ 𝄞']);
    for (let cut = 0; cut <= wire.length; cut++) {
      const d = new ChunkedDecoder();
      const out = Buffer.concat([d.push(wire.subarray(0, cut)), d.push(wire.subarray(cut))]).toString();
      expect(out, `cut at ${cut}`).toBe('hello' + 'x'.repeat(300) + '✓ 𝄞');
      expect(d.done).toBe(true);
    }
    for (const bad of ['zz\r\n', '\r\n', '5\r\nhelloXX', '5\rX']) {
      const d = new ChunkedDecoder();
      d.push(Buffer.from(bad));
      expect(d.failed, JSON.stringify(bad)).toBe(true);
    }
  });
});

describe('SseParser', () => {
  /** What a parser reports, as one list: eventsource-parser (the reference) and ours must agree on it. */
  type Seen = (string | number | undefined)[][];
  const ours = (text: string, cuts: number[]): Seen => {
    const seen: Seen = [];
    const p = new SseParser({
      sseEvent: (id, name, data) => void seen.push(['event', id, name, data]),
      sseRetry: (ms) => void seen.push(['retry', ms]),
      sseUnknownField: () => void seen.push(['unknown']),
    });
    let from = 0;
    for (const at of [...cuts, text.length]) {
      p.feed(text.slice(from, at));
      from = at;
    }
    return seen;
  };
  const reference = (text: string): Seen => {
    const seen: Seen = [];
    const p = createParser({
      onEvent: (ev) => void seen.push(['event', ev.id, ev.event, ev.data]),
      onRetry: (ms) => void seen.push(['retry', ms]),
      onError: (err) => void (err.type === 'unknown-field' && seen.push(['unknown'])),
    });
    p.feed(text);
    return seen;
  };
  const STREAM = [
    '\ufeffretry: 1500\n\n',
    ': a comment\n',
    'id: 1\nevent: notification\ndata: {"a":1}\n\n',
    'data:no space\ndata:  two spaces\ndata\n\n',
    'id: a\0b\nevent:\ndata: nul id is ignored, empty event is unnamed\n\n',
    'event: only-event-no-data\n\n',
    'retry: soon\nretry: 20\n\n',
    'bogus: field\nbogus\n',
    'id: 7\r\nevent: read\r\ndata: crlf\r\n\r\n',
    'id: 8\revent: cr\rdata: bare cr\r\r',
    'data: Héllo ✓ 𝄞\n\n',
  ].join('');

  it('agrees with eventsource-parser on every field rule, the stream cut at every character', () => {
    // eventsource-parser strips a byte order mark only as raw bytes (EF BB BF), not the decoded U+FEFF we feed; the
    // format says a leading BOM is skipped, so the reference gets the stream without it.
    const want = reference(STREAM.slice(1));
    expect(want[0]).toEqual(['retry', 1500]);
    expect(want.filter((e) => e[0] === 'event')).toHaveLength(6);
    for (let at = 0; at <= STREAM.length; at++) expect(ours(STREAM, [at]), `cut at ${at}`).toEqual(want);
    // And fed a character at a time.
    expect(
      ours(
        STREAM,
        [...STREAM].map((_, i) => i),
      ),
    ).toEqual(want);
  });
});
