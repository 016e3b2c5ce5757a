/**
 * A real nats-server (Debian `nats-server`) on a free 127.0.0.1 port, with JetStream storing in a temp dir when asked,
 * stopped by `runCleanup`; and a subscriber that files what it receives in an Inbox (type = subject).
 */
import { connect, type NatsConnection } from 'nats';
import { ChildServer, freePort, tempDir } from './child-server.js';
import { Inbox } from './inbox.js';
import { onCleanup } from './lifecycle.js';

export interface NatsServer {
  /** nats://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  readonly process: ChildServer;
}

/** Starts nats-server and resolves once it says it is ready (it prints that after it listens). */
export async function startNats(options: { jetstream?: boolean } = {}): Promise<NatsServer> {
  const dir = tempDir('nats');
  // A free port can be taken before nats-server binds it: try again with another one.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const args = ['-a', '127.0.0.1', '-p', String(port), ...(options.jetstream ? ['-js', '-sd', dir] : [])];
    const proc = new ChildServer('nats-server', 'nats-server', args, dir);
    try {
      await proc.waitOutput(/Server is ready/);
      return { url: `nats://127.0.0.1:${port}`, port, process: proc };
    } catch (err) {
      await proc.stop();
      if (attempt >= 3 || !/address already in use/i.test(proc.output)) throw err;
    }
  }
}

/** A client connection of the test's own, closed by `runCleanup`. */
export async function natsClient(url: string): Promise<NatsConnection> {
  const nc = await connect({ servers: url, reconnect: false });
  onCleanup(() => nc.close());
  return nc;
}

/** Subscribes to `subject` (wildcards allowed) and resolves once the server has the subscription. */
export async function natsSubscriber(url: string, subject: string): Promise<Inbox<{ type: string; text: string }>> {
  const inbox = new Inbox<{ type: string; text: string }>((m) => `${m.type}: ${m.text.slice(0, 120)}`);
  const nc = await natsClient(url);
  nc.subscribe(subject, { callback: (err, msg) => (err ? inbox.end(err.message) : inbox.push({ type: msg.subject, text: msg.string() })) });
  await nc.flush();
  return inbox;
}

/** A nats-server on a fixed port and store dir, so it can be stopped and started again with its history. */
export async function restartableNats(): Promise<{ url: string; start(): Promise<void>; stop(): Promise<void> }> {
  const dir = tempDir('nats-restart');
  const port = await freePort();
  let proc: ChildServer | undefined;
  const start = async () => {
    proc = new ChildServer('nats-server', 'nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], dir);
    await proc.waitOutput(/Server is ready/);
  };
  await start();
  return { url: `nats://127.0.0.1:${port}`, start, stop: () => proc!.stop() };
}
