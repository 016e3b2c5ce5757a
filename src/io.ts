/**
 * The only module that touches `process`. Everything else receives an `Io`, so the CLI can run in-process in
 * tests with fake streams, a fake environment and fake signals.
 */
import type { Writable } from 'node:stream';

export interface Io {
  stdout: Writable;
  stderr: Writable;
  env: Record<string, string | undefined>;
  /** True when the terminal is interactive: stderr is a TTY, not CI, TERM is not dumb. */
  interactive: boolean;
  /** NO_COLOR set (https://no-color.org) or not interactive. */
  color: boolean;
  /** Subscribe to SIGINT/SIGTERM; returns an unsubscribe function. */
  onSignal(handler: (signal: 'SIGINT' | 'SIGTERM') => void): () => void;
  /** Raw-mode keypresses from stdin when interactive (for the dashboard's `q`); may be a no-op. */
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (on: boolean) => unknown };
}

export function decideInteractive(isTTY: boolean | undefined, env: Record<string, string | undefined>): boolean {
  return Boolean(isTTY) && !env.CI && env.TERM !== 'dumb';
}

/**
 * A reader that goes away (`notify swarm --help | head`, `--out - | jq` stopped early) is not an error of ours: the
 * output ends there, quietly, as Unix tools do, instead of an unhandled EPIPE with a stack trace.
 */
function endQuietlyOnEpipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(process.exitCode ?? 0);
  });
}

export function processIo(): Io {
  const env = process.env;
  endQuietlyOnEpipe(process.stdout);
  const interactive = decideInteractive(process.stderr.isTTY, env);
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env,
    interactive,
    color: interactive && env.NO_COLOR === undefined,
    stdin: process.stdin,
    onSignal(handler) {
      const onInt = () => handler('SIGINT');
      const onTerm = () => handler('SIGTERM');
      process.on('SIGINT', onInt);
      process.on('SIGTERM', onTerm);
      return () => {
        process.off('SIGINT', onInt);
        process.off('SIGTERM', onTerm);
      };
    },
  };
}

/** Sets the process exit code; the only other place `process` is written. */
export function setExitCode(code: number): void {
  process.exitCode = code;
}
