/**
 * A real redis-server (Debian `redis-server`) on a free 127.0.0.1 port, with no persistence and its working dir a
 * temp dir, stopped by `runCleanup`; and a subscriber that files what it receives in an Inbox (type = channel).
 */
import { Redis } from 'ioredis';
import { ChildServer, freePort, tempDir } from './child-server.js';
import { Inbox } from './inbox.js';
import { onCleanup } from './lifecycle.js';

export interface RedisServer {
  /** redis://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  readonly process: ChildServer;
}

/**
 * Starts redis-server (on `port` when given, e.g. to restart one) and resolves once it answers PING. In `dir` when
 * given: a restart there loads the data a `SAVE` left (`restartableRedis`).
 */
export async function startRedis(port?: number, dir = tempDir('redis')): Promise<RedisServer> {
  // A free port can be taken before redis binds it: try again with another one (not when the port was asked for).
  for (let attempt = 1; ; attempt++) {
    const p = port ?? (await freePort());
    const args = ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
    const proc = new ChildServer('redis-server', 'redis-server', args, dir);
    try {
      await proc.waitReady(`answering PING on 127.0.0.1:${p}`, () => ping(p));
      return { url: `redis://127.0.0.1:${p}`, port: p, process: proc };
    } catch (err) {
      await proc.stop();
      if (port !== undefined || attempt >= 3 || !/Address already in use/i.test(proc.output)) throw err;
    }
  }
}

/** A redis-server that can be stopped and started again on its port with its data (SAVEd before it stops). */
export async function restartableRedis(): Promise<{ url: string; port: number; start(): Promise<void>; stop(): Promise<void> }> {
  const dir = tempDir('redis-restart');
  let server = await startRedis(undefined, dir);
  const { port, url } = server;
  return {
    url,
    port,
    start: async () => void (server = await startRedis(port, dir)),
    stop: async () => {
      const client = new Redis(url, { maxRetriesPerRequest: 0 });
      await client.save();
      client.disconnect();
      await server.process.stop();
    },
  };
}

/** One PING on a connection of its own, no retries. */
async function ping(port: number): Promise<void> {
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, retryStrategy: () => null, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const answer: string = await client.ping();
    if (answer !== 'PONG') throw new Error(`PING answered ${answer}`);
  } finally {
    client.disconnect();
  }
}

/** Subscribes to `channels` and resolves once Redis has confirmed them; closed by `runCleanup`. */
export async function redisSubscriber(url: string, channels: string[]): Promise<Inbox<{ type: string; text: string }>> {
  const inbox = new Inbox<{ type: string; text: string }>((m) => `${m.type}: ${m.text.slice(0, 120)}`);
  const client = new Redis(url, { maxRetriesPerRequest: 0 });
  client.on('error', () => undefined);
  onCleanup(() => client.disconnect());
  client.on('message', (channel: string, text: string) => inbox.push({ type: channel, text }));
  await client.subscribe(...channels);
  return inbox;
}
