/**
 * The swarm's publisher decides which probes are owed to subscribers at all. A probe the server cannot have stored
 * (it answered with an error, or no connection was ever made) is owed to nobody; a probe that may have been stored
 * (the connection was cut after the request was sent) stays expected. Real sockets on 127.0.0.1, port 0.
 */
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { failedBeforeSending } from '../src/transports/codes.js';
import { onCleanup, runCleanup } from './helpers/lifecycle.js';
import { closedPort, publishTen } from './helpers/publisher.js';

afterEach(runCleanup);

async function listen(server: Server | ReturnType<typeof createHttpServer>): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(() => new Promise((r) => server.close(r)));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const allTen = Array.from({ length: 10 }, (_, i) => i + 1);

describe('failedBeforeSending', () => {
  it('is true only for failures before a connection exists (nothing was sent)', () => {
    for (const code of ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']) {
      expect(failedBeforeSending(Object.assign(new Error(code), { code })), code).toBe(true);
    }
    for (const code of ['ECONNRESET', 'EPIPE', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_SOCKET', 'UND_ERR_ABORTED']) {
      expect(failedBeforeSending(Object.assign(new Error(code), { code })), code).toBe(false);
    }
    // Happy eyeballs: every address refused, or one of them connected and then failed.
    const refused = (code: string) => Object.assign(new Error(code), { code });
    expect(failedBeforeSending(new AggregateError([refused('ECONNREFUSED'), refused('ENETUNREACH')]))).toBe(true);
    expect(failedBeforeSending(new AggregateError([refused('ECONNREFUSED'), refused('ECONNRESET')]))).toBe(false);
    expect(failedBeforeSending(new Error('no code'))).toBe(false);
    expect(failedBeforeSending(undefined)).toBe(false);
  });
});

describe('probes the server cannot have stored are owed to nobody', () => {
  it('ECONNREFUSED: every probe is refused (never reached a server), none stays expected', async () => {
    const pub = await publishTen([await closedPort()], 'rpub');
    expect(pub.accepted).toBe(0);
    expect(pub.failures).toEqual({ ECONNREFUSED: 10 });
    expect(pub.refusedJson()).toEqual({ broadcast: allTen });
  });

  it('an HTTP error answer: refused', async () => {
    const url = await listen(createHttpServer((req, res) => req.resume().on('end', () => res.writeHead(500).end())));
    const pub = await publishTen([url], 'rpub');
    expect(pub.failures).toEqual({ 'http-500': 10 });
    expect(pub.refusedJson()).toEqual({ broadcast: allTen });
  });

  it('a connection cut after the request was sent: the probe may be stored, so it stays expected', async () => {
    // Reads the whole request, then resets the connection without an answer.
    const server = createServer((socket) => {
      let got = '';
      socket.setEncoding('utf8').on('data', (c: string) => {
        got += c;
        if (got.includes('\r\n\r\n') && /[}\]]$/.test(got)) socket.resetAndDestroy();
      });
    });
    const pub = await publishTen([await listen(server)], 'rpub');
    expect(pub.accepted).toBe(0);
    expect(Object.values(pub.failures).reduce((a, b) => a + b, 0)).toBe(10);
    expect(
      Object.keys(pub.failures).every((cause) => ['ECONNRESET', 'socket-closed'].includes(cause)),
      JSON.stringify(pub.failures),
    ).toBe(true);
    expect(pub.refusedJson()).toEqual({});
  });
});
