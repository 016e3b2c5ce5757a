/**
 * An `Io` over in-memory streams for running commands in-process. With `tty`, stderr is a PassThrough that claims to
 * be a terminal (isTTY, columns, rows), which is what ink needs to draw frames into it.
 */
import { PassThrough } from 'node:stream';
import type { Io } from '../../src/io.js';

export interface FakeTerminal extends PassThrough {
  isTTY: boolean;
  columns: number;
  rows: number;
}

/** A writable that collects what is written and says it is a terminal of the given size. */
export function fakeTerminal(columns = 120, rows = 40): FakeTerminal & { text(): string } {
  const s = new PassThrough() as FakeTerminal & { text(): string };
  let text = '';
  s.on('data', (c: Buffer) => (text += c.toString('utf8')));
  s.isTTY = true;
  s.columns = columns;
  s.rows = rows;
  s.text = () => text;
  return s;
}

/** A stdin that claims to be a TTY with raw mode, so ink reads keypresses from it. */
export function fakeKeyboard(): PassThrough & { isTTY: boolean; setRawMode(on: boolean): void; ref(): void; unref(): void; rawMode: boolean } {
  const s = new PassThrough() as PassThrough & { isTTY: boolean; setRawMode(on: boolean): void; ref(): void; unref(): void; rawMode: boolean };
  s.isTTY = true;
  s.rawMode = false;
  s.setRawMode = (on: boolean) => void (s.rawMode = on);
  s.ref = () => {};
  s.unref = () => {};
  return s;
}

export interface FakeIo {
  io: Io;
  stdout(): string;
  stderr(): string;
}

export function fakeIo(opts: { env?: Record<string, string | undefined>; interactive?: boolean; color?: boolean; columns?: number } = {}): FakeIo {
  const out = new PassThrough();
  let stdout = '';
  out.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  const err = fakeTerminal(opts.columns ?? 120);
  if (!opts.interactive) err.isTTY = false;
  return {
    io: {
      stdout: out,
      stderr: err,
      env: opts.env ?? {},
      interactive: opts.interactive ?? false,
      color: opts.color ?? false,
      onSignal: () => () => {},
    },
    stdout: () => stdout,
    stderr: () => err.text(),
  };
}
