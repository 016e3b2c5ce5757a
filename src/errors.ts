/**
 * The one error type of notify. `code` is stable (scripts may match on it), `hint` says what to do,
 * `exitCode` is what the CLI exits with (see README "Exit codes").
 */
export const ExitCode = {
  ok: 0,
  runtime: 1,
  usage: 2,
  thresholds: 99,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface NotifyErrorOptions {
  hint?: string;
  exitCode?: ExitCode;
  cause?: unknown;
}

export class NotifyError extends Error {
  readonly code: string;
  readonly hint?: string;
  readonly exitCode: ExitCode;

  constructor(code: string, message: string, options: NotifyErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'NotifyError';
    this.code = code;
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? ExitCode.runtime;
  }
}

/** A bad flag, value or scenario file: exit 2. The message names the flag and the value. */
export function usageError(message: string, hint?: string): NotifyError {
  return new NotifyError('E_USAGE', message, { hint, exitCode: ExitCode.usage });
}

export function isNotifyError(err: unknown): err is NotifyError {
  return err instanceof NotifyError;
}
