/** A FrameHandler (src/transports/ws-frames.ts) that logs what a FrameReader hands it, for tests of either side. */
import type { FrameHandler } from '../../src/transports/ws-frames.js';

export class FrameLog implements FrameHandler {
  readonly log: unknown[] = [];
  open = true;
  message(data: Buffer, binary: boolean): void {
    this.log.push(binary ? { binary: [...data] } : data.toString('utf8'));
  }
  ping(payload: Buffer): void {
    this.log.push({ ping: payload.toString() });
  }
  pong(payload: Buffer): void {
    this.log.push({ pong: payload.toString() });
  }
  closeFrame(code: number, reason: string): void {
    this.open = false;
    this.log.push({ close: code, reason });
  }
  protocolError(code: number): void {
    this.open = false;
    this.log.push({ error: code });
  }
  reading(): boolean {
    return this.open;
  }
}
