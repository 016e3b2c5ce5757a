/**
 * The publisher's failover (`--publish-to first` over several --url): when the server it publishes to cannot be
 * reached, it moves on to the next --url and sends there once more what the first certainly did not store. The
 * accounting stays exact: a probe is refused only when no server took it, and a probe the first server may have
 * stored (the connection was cut after sending) is never sent a second time. Real sockets on 127.0.0.1, port 0.
 */
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { listenForTest, onCleanup, runCleanup } from './helpers/lifecycle.js';
import { closedPort, publishTen } from './helpers/publisher.js';

afterEach(runCleanup);

/** A stand-in for POST /publish: answers `status` and records the probe seqs of every request it answers 202. */
async function publishServer(status = 202): Promise<{ url: string; seqs: number[]; requests: () => number }> {
  const seqs: number[] = [];
  let requests = 0;
  const server = createHttpServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (c: string) => (body += c));
    req.on('end', () => {
      requests++;
      if (status !== 202) return void res.writeHead(status).end();
      const list = [JSON.parse(body)].flat() as { notification: { data: { probe: { seq: number } } } }[];
      for (const r of list) seqs.push(r.notification.data.probe.seq);
      res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ ids: list.map((_, i) => String(i)), delivered: 0 }));
    });
  });
  return { url: await listenForTest(server), seqs, requests: () => requests };
}

const allTen = Array.from({ length: 10 }, (_, i) => i + 1);

describe('publisher failover over --url (--publish-to first)', () => {
  it('the first server refuses connections: every probe goes to the next, once, none refused or lost', async () => {
    const b = await publishServer();
    const pub = await publishTen([await closedPort(), b.url], 'rfo');
    expect(pub.accepted).toBe(10);
    expect(pub.failures).toEqual({});
    expect(pub.refusedJson()).toEqual({});
    expect(b.seqs.sort((x, y) => x - y)).toEqual(allTen);
  });

  it('503 (a draining gateway) fails over too; the following probes go straight to the next server', async () => {
    const a = await publishServer(503);
    const b = await publishServer();
    const pub = await publishTen([a.url, b.url], 'rfo');
    expect(pub.accepted).toBe(10);
    expect(pub.refusedJson()).toEqual({});
    expect(b.seqs.sort((x, y) => x - y)).toEqual(allTen);
    // Only the first send asked the draining server; the publisher stayed on the next one after it.
    expect(a.requests()).toBe(1);
  });

  it('every server refuses: each probe is refused once, by the cause of its last attempt, and owed to nobody', async () => {
    const pub = await publishTen([await closedPort(), await closedPort()], 'rfo');
    expect(pub.accepted).toBe(0);
    expect(pub.failures).toEqual({ ECONNREFUSED: 10 });
    expect(pub.refusedJson()).toEqual({ broadcast: allTen });
  });

  it('an error answer of a live server (400) is not failed over: refused where it was', async () => {
    const a = await publishServer(400);
    const b = await publishServer();
    const pub = await publishTen([a.url, b.url], 'rfo');
    expect(pub.failures).toEqual({ 'http-400': 10 });
    expect(pub.refusedJson()).toEqual({ broadcast: allTen });
    expect(b.requests()).toBe(0);
  });

  it('a connection cut after the request was sent: the probe may be stored, so it is not sent again and stays expected', async () => {
    // Reads the whole request, then resets the connection without an answer.
    const server = createServer((socket) => {
      let got = '';
      socket.setEncoding('utf8').on('data', (c: string) => {
        got += c;
        if (got.includes('\r\n\r\n') && /[}\]]$/.test(got)) socket.resetAndDestroy();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    onCleanup(() => new Promise((r) => server.close(r)));
    const b = await publishServer();
    const pub = await publishTen([`http://127.0.0.1:${(server.address() as AddressInfo).port}`, b.url], 'rfo');
    expect(pub.accepted).toBe(0);
    expect(pub.refusedJson()).toEqual({});
    expect(b.requests()).toBe(0);
  });
});
