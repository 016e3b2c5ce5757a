/**
 * A TCP relay on 127.0.0.1 in front of a port, that a test can shut (every relayed connection is cut and new ones
 * are refused) and open again: one gateway instance losing its broker while the others keep theirs. Closed by
 * `runCleanup`.
 */
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { onCleanup } from './lifecycle.js';

export interface TcpGate {
  readonly port: number;
  /** Cuts every relayed connection and refuses new ones until `open`. */
  shut(): void;
  open(): void;
}

export async function tcpGate(upstreamPort: number): Promise<TcpGate> {
  let isOpen = true;
  const live = new Set<Socket>();
  const server = createServer((down) => {
    if (!isOpen) return void down.destroy();
    const up = connect(upstreamPort, '127.0.0.1');
    for (const s of [down, up]) {
      live.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        live.delete(s);
        down.destroy();
        up.destroy();
      });
    }
    down.pipe(up).pipe(down);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onCleanup(() => {
    for (const s of live) s.destroy();
    return new Promise((resolve) => server.close(resolve));
  });
  return {
    port: (server.address() as AddressInfo).port,
    shut() {
      isOpen = false;
      for (const s of live) s.destroy();
    },
    open() {
      isOpen = true;
    },
  };
}
