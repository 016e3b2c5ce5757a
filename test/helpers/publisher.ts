/** The swarm's Publisher on its own, against real sockets on 127.0.0.1: ten probes, and a port nothing listens on. */
import { createServer, type AddressInfo } from 'node:net';
import { expect } from 'vitest';
import { Publisher } from '../../src/swarm/publisher.js';
import { loadTarget } from '../../src/targets/load.js';
import { onCleanup } from './lifecycle.js';

/** A port nothing listens on: bound, then released. */
export async function closedPort(): Promise<string> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  await new Promise((r) => srv.close(r));
  return `http://127.0.0.1:${port}`;
}

/**
 * Publishes 10 broadcast probes (50/s for 200 ms) of run `run` to `urls[0]`, failing over to the rest
 * (`--publish-to first`), and waits for every answer.
 */
export async function publishTen(urls: string[], run: string): Promise<Publisher> {
  const pub = new Publisher({
    run,
    urls: urls.slice(0, 1),
    ...(urls.length > 1 ? { failoverUrls: urls.slice(1) } : {}),
    target: loadTarget(undefined, []),
    rate: 50,
    userRate: 0,
    users: 1,
    userPrefix: 'u',
  });
  onCleanup(() => pub.close(0));
  await pub.run(Date.now(), 200);
  await pub.close(5000);
  expect(pub.sent).toBe(10);
  return pub;
}
