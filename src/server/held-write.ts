/**
 * A response head written on a raw socket and held (corked) until this tick's work is done, as node:http holds the
 * heads it writes: what the subscription sends next in the same tick (the init, or a replay's first page, when the
 * history answers at once) goes out in the same write. One syscall instead of two, and on loopback a write also
 * costs the receiver's side of the stack. Before/after figures: BENCHMARKS.md.
 */
import type { Duplex } from 'node:stream';

export function writeHeld(socket: Duplex, head: string): void {
  socket.cork();
  socket.write(head);
  process.nextTick(uncork, socket);
}

function uncork(socket: Duplex): void {
  socket.uncork();
}
