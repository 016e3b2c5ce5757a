/**
 * A cheaper write for a socket the gateway writes to alone (a detached SSE stream, a WebSocket). Node 20's
 * `socket.write(buf)` goes Writable.write -> _write -> _writeGeneric -> writeGeneric and makes a WriteWrap (a C++-backed
 * object) per write, even when the kernel takes every byte at once, which on a loopback or LAN subscriber that keeps
 * up is nearly always. While nothing is queued (the Writable holds nothing, the handle has nothing in flight, the
 * socket is not corked) a `SocketWriter` hands the Buffer to the handle's `writeBuffer` with one request object it
 * reuses; only when the kernel did not take it all does that request stay with the write (and a new one is made), and
 * the writer counts the bytes in flight itself until the handle calls back. Everything else (corked writes, strings,
 * a queue, a closing socket) goes through `socket.write`, so ordering, cork/uncork, 'drain', end and errors stay
 * Node's. Where the handle is not the one this Node is known to have, every write is `socket.write`.
 */
import type { Socket } from 'node:net';
import { getSystemErrorName } from 'node:util';

/** The parts of Node's stream handle (lib/internal/stream_base_commons.js, src/stream_base.cc) used here. */
interface StreamHandle {
  writeBuffer(req: object, data: Buffer): number;
  writeQueueSize: number;
}
interface WriteReq {
  handle: StreamHandle | null;
  buffer?: Buffer;
  oncomplete: (status: number) => void;
}
interface StreamWrapBinding {
  WriteWrap: new () => WriteReq;
  streamBaseState: Int32Array;
  kLastWriteWasAsync: number;
}
interface NodeSocket extends Socket {
  _handle: StreamHandle | null;
  _unrefTimer(): void;
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace -- how @types/node declares Process
  namespace NodeJS {
    interface Process {
      /** Deprecated (DEP0111, documentation-only) and left out of @types/node, still there in Node 20. */
      binding?(name: string): unknown;
    }
  }
}

function streamWrap(): StreamWrapBinding | undefined {
  try {
    const b = process.binding?.('stream_wrap') as Partial<StreamWrapBinding> | undefined;
    if (typeof b?.WriteWrap !== 'function' || !(b.streamBaseState instanceof Int32Array)) return undefined;
    if (typeof b.kLastWriteWasAsync !== 'number') return undefined;
    return b as StreamWrapBinding;
  } catch {
    return undefined;
  }
}

/** Undefined (every write is `socket.write`) on a Node whose binding is not there or not shaped as expected. */
const native = streamWrap();
/** The request for the next direct write: one serves them all, since C++ keeps it only for a write it had to queue. */
let spare: WriteReq | undefined;
/** Whether writers take the direct path on this Node. */
export const directWrites = native !== undefined;

export class SocketWriter {
  /** Bytes of a direct write the kernel has not taken yet; 0 when none is in flight. */
  private inFlight = 0;
  private waiters: (() => void)[] | undefined;

  constructor(private readonly socket: Socket) {}

  /** Bytes waiting to be sent: the Writable's and a direct write's still in flight. */
  get buffered(): number {
    return this.socket.writableLength + this.inFlight;
  }

  /** Like `socket.write(data)`, in the same order, with no callback. */
  write(data: string | Buffer): void {
    const s = this.socket as NodeSocket;
    const handle = s._handle;
    if (
      native === undefined ||
      typeof data === 'string' ||
      this.inFlight > 0 ||
      handle === null ||
      s.writableLength !== 0 ||
      s.writableCorked !== 0 ||
      handle.writeQueueSize !== 0 ||
      !s.writable ||
      s.connecting
    ) {
      s.write(data);
      return;
    }
    const req = (spare ??= new native.WriteWrap());
    req.handle = handle;
    const err = handle.writeBuffer(req, data);
    s._unrefTimer();
    if (err !== 0) {
      req.handle = null;
      s.destroy(writeError(err));
    } else if (native.streamBaseState[native.kLastWriteWasAsync]) {
      // C++ holds this request until the kernel has taken the rest, but not the Buffer: the request keeps it alive
      // (as Node's handleWriteReq does).
      spare = undefined;
      req.buffer = data;
      // Counted whole until done, as the Writable counts a chunk until its callback.
      this.inFlight = data.length;
      req.oncomplete = (status) => this.completed(status);
    } else {
      req.handle = null;
    }
  }

  /** Calls `fn` once the socket has flushed what it holds: the Writable's 'drain', or a direct write's completion. */
  onceDrained(fn: () => void): void {
    if (this.inFlight > 0) (this.waiters ??= []).push(fn);
    else this.socket.once('drain', fn);
  }

  private completed(status: number): void {
    this.inFlight = 0;
    if (this.socket.destroyed) return;
    if (status < 0) {
      this.socket.destroy(writeError(status));
      return;
    }
    const waiters = this.waiters;
    this.waiters = undefined;
    if (waiters) for (const fn of waiters) fn();
  }
}

function writeError(status: number): Error {
  const code = getSystemErrorName(status);
  return Object.assign(new Error(`write ${code}`), { code, errno: status, syscall: 'write' });
}
