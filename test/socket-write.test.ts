import net, { type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { directWrites, SocketWriter } from '../src/server/socket-write.js';

/** A loopback pair: `server` is the side written to through a SocketWriter, `client` reads (or does not). */
async function pair(): Promise<{ server: Socket; client: Socket; close: () => void }> {
  const listener = net.createServer();
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  const accepted = new Promise<Socket>((r) => listener.once('connection', r));
  const client = net.connect((listener.address() as net.AddressInfo).port, '127.0.0.1');
  const server = await accepted;
  await new Promise((r) => (client.connecting ? client.once('connect', r) : r(undefined)));
  return {
    server,
    client,
    close: () => {
      server.destroy();
      client.destroy();
      listener.close();
    },
  };
}

function collect(s: Socket, bytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  return new Promise((resolve) => {
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      n += c.length;
      if (n >= bytes) resolve(Buffer.concat(chunks));
    });
  });
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

describe('SocketWriter', () => {
  it('is on for this Node (the binding it needs is there)', () => {
    expect(directWrites).toBe(true);
  });

  it('writes Buffers and strings in order, and the socket counts the bytes', async () => {
    const { server, client, close } = await pair();
    cleanups.push(close);
    const w = new SocketWriter(server);
    const parts = Array.from({ length: 200 }, (_, i) => `frame ${i}\n`);
    const got = collect(client, parts.join('').length);
    parts.forEach((p, i) => w.write(i % 3 === 0 ? p : Buffer.from(p)));
    expect((await got).toString()).toBe(parts.join(''));
    expect(server.bytesWritten).toBe(parts.join('').length);
    expect(w.buffered).toBe(0);
  });

  it('a write the kernel cannot take at once is counted until it is sent; later writes follow it, and drained fires', async () => {
    const { server, client, close } = await pair();
    cleanups.push(close);
    client.pause();
    const w = new SocketWriter(server);
    const big = Buffer.alloc(16 * 1024 * 1024, 'a');
    const tail = Buffer.from('tail\n');
    w.write(big);
    expect(w.buffered).toBeGreaterThan(0);
    w.write(tail);
    w.write('str\n');
    expect(w.buffered).toBeGreaterThan(tail.length);
    const drained = new Promise<void>((r) => w.onceDrained(r));
    const got = collect(client, big.length + tail.length + 4);
    client.resume();
    const all = await got;
    await drained;
    expect(all.length).toBe(big.length + tail.length + 4);
    expect(all.subarray(big.length).toString()).toBe('tail\nstr\n');
    expect(all.subarray(0, big.length).equals(big)).toBe(true);
    expect(w.buffered).toBe(0);
  });

  it('corked writes go through the socket and leave together at uncork', async () => {
    const { server, client, close } = await pair();
    cleanups.push(close);
    const w = new SocketWriter(server);
    const got = collect(client, 6);
    server.cork();
    w.write(Buffer.from('ab'));
    w.write(Buffer.from('cd'));
    expect(server.writableLength).toBe(4);
    w.write(Buffer.from('ef'));
    server.uncork();
    expect((await got).toString()).toBe('abcdef');
  });

  it('a write to a socket the peer has reset ends in close, never a throw', async () => {
    const { server, client, close } = await pair();
    cleanups.push(close);
    server.on('error', () => {});
    const closed = new Promise((r) => server.once('close', r));
    client.resetAndDestroy();
    const w = new SocketWriter(server);
    for (let i = 0; i < 50 && !server.destroyed; i++) {
      w.write(Buffer.alloc(64 * 1024));
      await new Promise((r) => setTimeout(r, 10));
    }
    await closed;
    expect(() => w.write(Buffer.from('late'))).not.toThrow();
  });
});
