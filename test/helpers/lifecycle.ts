/**
 * Per-test cleanup: helpers register what they open (gateways, clients, child processes) and each test file calls
 * `runCleanup` in `afterEach`, so a failing test never leaves a socket or a server behind for the next one.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
type Disposer = () => unknown;

const disposers: Disposer[] = [];

export function onCleanup(fn: Disposer): void {
  disposers.push(fn);
}

/** Runs the disposers newest first (clients close before the gateway they talk to). */
export async function runCleanup(): Promise<void> {
  const errors: unknown[] = [];
  while (disposers.length) {
    try {
      await disposers.pop()!();
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length) throw errors[0];
}

/** Resolves when `check()` is true; re-checks on every macrotask turn, fails after `timeoutMs` naming `what`. */
export async function until(check: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Listens on 127.0.0.1, a free port, and closes the server (with its open connections, streams included) at
 * cleanup; returns the base URL. For the purpose-built servers that tests run against.
 */
export async function listenForTest(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onCleanup(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}
