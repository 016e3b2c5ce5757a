/**
 * The gateway's own RFC 6455 server side (src/server/ws.ts on the FrameReader of src/transports/ws-frames.ts): the
 * reader fed a client's masked frames as raw bytes, then the gateway against the ws package as the client (a real,
 * independent implementation): read receipts cut at every byte and fragmented, ping/pong, the close handshake, the
 * protocol errors and their close codes, and a half-open peer cut by the heartbeat.
 */
import { createRequire } from 'node:module';
import { connect, createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { WS_MAX_PAYLOAD } from '../src/server/ws.js';
import { CLOSE, closePayload, FrameReader, OPCODE } from '../src/transports/ws-frames.js';
import { FrameLog } from './helpers/frame-log.js';
import { startTestGateway } from './helpers/gateway.js';
import { metricValue, publishEach, scrape } from './helpers/http.js';
import { onCleanup, runCleanup, until } from './helpers/lifecycle.js';
import { refused } from './helpers/refusal.js';
import { openWs, WsClient } from './helpers/ws-client.js';

afterEach(runCleanup);

interface FrameOptions {
  fin: boolean;
  opcode: number;
  mask: boolean;
  readOnly: boolean;
  rsv1: boolean;
}
// ws's own Sender (exported at run time, its static `frame` not in @types/ws) builds the client's frames.
const { Sender } = createRequire(import.meta.url)('ws') as { Sender: { frame(data: Buffer, options: FrameOptions): Buffer[] } };

/** A client frame as ws frames it: masked (unless told not to). */
function wsFrame(opcode: number, payload: Buffer | string, { fin = true, mask = true } = {}): Buffer {
  const data = Buffer.from(payload);
  return Buffer.concat(Sender.frame(data, { fin, opcode, mask, readOnly: false, rsv1: false }));
}

/** Reads `chunks` on the server side; each chunk is copied first, as the reader unmasks in place. */
function serverRead(chunks: Buffer[], maxPayload = WS_MAX_PAYLOAD): unknown[] {
  const h = new FrameLog();
  const r = new FrameReader(maxPayload, true);
  for (const c of chunks) r.read(Buffer.from(c), h);
  return h.log;
}

describe('ws frame reader, server side (masked client frames)', () => {
  const receipt = '{"type":"read","id":"e-1"}';
  const big = 'é'.repeat(200);
  const bytes = Buffer.concat([
    wsFrame(OPCODE.text, receipt),
    wsFrame(OPCODE.ping, 'p1'),
    wsFrame(OPCODE.text, big.slice(0, 7), { fin: false }),
    wsFrame(OPCODE.pong, 'p2'),
    wsFrame(OPCODE.continuation, big.slice(7)),
    wsFrame(OPCODE.binary, Buffer.from([1, 2, 3, 4, 5])),
  ]);
  const expected = [receipt, { ping: 'p1' }, { pong: 'p2' }, big, { binary: [1, 2, 3, 4, 5] }];

  it('unmasks them, whole and cut at every byte, and in one-byte reads', () => {
    expect(serverRead([bytes])).toEqual(expected);
    for (let i = 1; i < bytes.length; i++) expect(serverRead([bytes.subarray(0, i), bytes.subarray(i)]), `cut at ${i}`).toEqual(expected);
    expect(serverRead([...bytes].map((b) => Buffer.from([b])))).toEqual(expected);
  });

  it('unmasks every payload length around the word boundary and the 16- and 64-bit lengths', () => {
    for (const n of [0, 1, 2, 3, 4, 5, 6, 7, 125, 126, 127, 65_535, 65_536, 70_000]) {
      const text = 'abcdefghij'.repeat(7001).slice(0, n);
      expect(serverRead([wsFrame(OPCODE.text, text)], 100_000)).toEqual([text]);
    }
  });

  it('fails an unmasked frame with 1002, a long message with 1009, invalid UTF-8 with 1007, as ws would', () => {
    const cases: [Buffer[], number][] = [
      [[wsFrame(OPCODE.text, 'x', { mask: false })], CLOSE.protocolError],
      [[wsFrame(OPCODE.text, 'x'.repeat(WS_MAX_PAYLOAD + 1))], CLOSE.tooBig],
      [[wsFrame(OPCODE.text, 'x'.repeat(40_000), { fin: false }), wsFrame(OPCODE.continuation, 'x'.repeat(40_000))], CLOSE.tooBig],
      [[wsFrame(OPCODE.text, Buffer.from([0xc3, 0x28]))], CLOSE.invalidData],
      [[wsFrame(OPCODE.close, Buffer.from([0x03, 0xe8, 0xff]))], CLOSE.invalidData],
      [[wsFrame(OPCODE.close, closePayload(1006))], CLOSE.protocolError],
    ];
    for (const [chunks, code] of cases) expect(serverRead(chunks)).toEqual([{ error: code }]);
  });

  it('reads the close frame, and nothing after it', () => {
    expect(serverRead([Buffer.concat([wsFrame(OPCODE.close, closePayload(4321, 'bye')), wsFrame(OPCODE.text, 'late')])])).toEqual([
      { close: 4321, reason: 'bye' },
    ]);
    expect(serverRead([wsFrame(OPCODE.close, '')])).toEqual([{ close: CLOSE.noStatus, reason: '' }]);
  });
});

/** The client's raw socket, to write frames ws itself would not send. */
function rawSocket(c: WsClient): Socket {
  return (c.ws as WebSocket & { _socket: Socket })._socket;
}

async function subscriber(query = '?user=f', options?: Parameters<typeof openWs>[1]) {
  const gw = await startTestGateway(options?.autoPong === false ? { heartbeat: '200ms' } : {});
  const c = await openWs(`${gw.wsUrl}/ws${query}`, options);
  await c.next('init');
  return { gw, c };
}

describe('WS gateway: frames from a ws client', () => {
  it('reads a read receipt written one byte per write, and one sent in fragments', async () => {
    const { gw, c } = await subscriber();
    const [a, b] = await publishEach(gw.url, { user: 'f' }, ['a', 'b']);
    await c.waitFor(2, 'notification');
    const socket = rawSocket(c);
    socket.setNoDelay(true);
    for (const byte of wsFrame(OPCODE.text, JSON.stringify({ type: 'read', id: a }))) {
      socket.write(Buffer.from([byte]));
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(await c.next('read')).toMatchObject({ type: 'read', id: a });

    const text = JSON.stringify({ type: 'read', id: b });
    c.ws.send(text.slice(0, 5), { fin: false });
    c.ws.send(text.slice(5, 20), { fin: false });
    c.ws.send(text.slice(20), { fin: true });
    expect(await c.next('read')).toMatchObject({ type: 'read', id: b });
  });

  it('reads frames that came in the same packet as the upgrade request (the head)', async () => {
    const gw = await startTestGateway();
    const socket = connect(gw.port, '127.0.0.1');
    onCleanup(() => void socket.destroy());
    const request =
      'GET /ws?user=h HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
    socket.write(Buffer.concat([Buffer.from(request), wsFrame(OPCODE.text, 'not json')]));
    let got = '';
    socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
    await until(() => got.includes('E_JSON'), 'the error frame answering the frame sent with the request');
    // RFC 6455 4.2.2's own example key and accept value.
    expect(got).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n[^]*Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/);
  });

  it('answers the first subprotocol offered, as ws did, and refuses a malformed list as JSON 400', async () => {
    const gw = await startTestGateway();
    const ws = new WebSocket(`${gw.wsUrl}/ws?user=s`, ['notify.v1', 'other']);
    onCleanup(() => ws.terminate());
    const c = new WsClient(ws);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    expect(ws.protocol).toBe('notify.v1');
    expect((await c.next('init')).type).toBe('init');
    const refusal = await refused(openWs(`${gw.wsUrl}/ws?user=s`, { headers: { 'Sec-WebSocket-Protocol': 'a,,b' } }));
    expect([refusal.status, refusal.body?.error?.code]).toEqual([400, 'E_HANDSHAKE']);
  });

  it('answers a ping with a pong carrying the same payload', async () => {
    const { c } = await subscriber();
    const pong = new Promise<string>((resolve) => c.ws.once('pong', (data: Buffer) => resolve(data.toString())));
    c.ws.ping('are you there');
    expect(await pong).toBe('are you there');
  });

  it('echoes the close code of the client (RFC 6455 5.5.1), and the subscription ends', async () => {
    const { gw, c } = await subscriber();
    c.ws.close(4321, 'bye');
    expect((await c.waitClose()).code).toBe(4321);
    await until(() => gw.hub.size === 0, 'the hub to drop the closed subscriber');
  });

  it('closes an unmasked client frame with 1002, a 65 KB message with 1009, invalid UTF-8 with 1007', async () => {
    const cases: [(c: WsClient) => void, number][] = [
      [(c) => rawSocket(c).write(wsFrame(OPCODE.text, '{}', { mask: false })), CLOSE.protocolError],
      [(c) => c.ws.send('x'.repeat(65 * 1024)), CLOSE.tooBig],
      [(c) => c.ws.send(Buffer.from([0x7b, 0xff, 0x7d]), { binary: false }), CLOSE.invalidData],
    ];
    const gw = await startTestGateway();
    for (const [send, code] of cases) {
      const c = await openWs(`${gw.wsUrl}/ws?user=p`);
      await c.next('init');
      send(c);
      expect((await c.waitClose()).code, `close code ${code}`).toBe(code);
    }
    await until(() => gw.hub.size === 0, 'the hub to drop every broken subscriber');
    expect(metricValue(await scrape(gw.url), 'notify_connections', { transport: 'ws' })).toBe(0);
  });

  it('cuts a half-open peer (a relay that stopped passing anything, no FIN) at the heartbeat', async () => {
    const gw = await startTestGateway({ heartbeat: '200ms' });
    // A relay between client and gateway that can go silent both ways while keeping both connections open.
    const pairs: Socket[][] = [];
    const relay = createServer((down) => {
      const up = connect(gw.port, '127.0.0.1');
      pairs.push([down, up]);
      for (const s of [down, up]) s.on('error', () => undefined);
      down.pipe(up);
      up.pipe(down);
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    onCleanup(async () => {
      for (const s of pairs.flat()) s.destroy();
      await new Promise((resolve) => relay.close(resolve));
    });
    const port = (relay.address() as { port: number }).port;
    const c = await openWs(`ws://127.0.0.1:${port}/ws?user=h`);
    await c.next('init');
    await c.waitPing(1, { timeoutMs: 2000 });
    for (const [down, up] of pairs) {
      down!.unpipe(up!);
      up!.unpipe(down!);
      up!.pause();
      down!.pause();
    }
    const upClosed = new Promise((resolve) => pairs[0]![1]!.once('close', resolve));
    await until(() => gw.hub.size === 0, 'the heartbeat to drop the silent peer', 3000);
    expect(metricValue(await scrape(gw.url), 'notify_connections', { transport: 'ws' })).toBe(0);
    // The gateway dropped the TCP connection too (its FIN/RST reaches the relay, which no longer passes it on).
    pairs[0]![1]!.resume();
    await upClosed;
    expect(c.close_).toBeUndefined();
  });
});
