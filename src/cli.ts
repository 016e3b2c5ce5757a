/**
 * The commander program. Maps every failure to an exit code (0 ok, 1 runtime, 2 usage, 99 thresholds) and prints
 * errors as `notify: <message>` plus a hint. `run` takes an Io so tests can drive the CLI in-process.
 */
import { Command, CommanderError } from 'commander';
import { ExitCode, isNotifyError } from './errors.js';
import { processIo, setExitCode, type Io } from './io.js';
import { COMMANDS } from './commands/index.js';
import { VERSION } from './version.js';

/** What an action reports back: the exit code it wants. */
export type ActionResult = number | void;

export function buildProgram(io: Io, done: (code: number) => void): Command {
  const program = new Command('notify')
    .description('Load-test and audit real-time notification streams (SSE, WebSocket, long-poll), and serve them.')
    .version(VERSION, '-v, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => void io.stdout.write(s), writeErr: (s) => void io.stderr.write(s) })
    .addHelpText(
      'after',
      `
Examples:
  $ notify serve                                   # gateway on http://127.0.0.1:8080, in-memory broker
  $ curl -N 'http://127.0.0.1:8080/events?user=42' # watch user 42's stream
  $ notify publish --user 42 --title 'Hello'       # ... and send it a notification
  $ notify swarm --conns 1000 --threshold 'p99<250ms' --threshold 'lost==0'   # embedded server, audited, CI gate
  $ notify report result.json --compare baseline.json

Exit codes: 0 ok, 1 runtime failure, 2 usage error, 99 thresholds crossed.`,
    );
  for (const register of COMMANDS) {
    const cmd = register(io, done);
    cmd.exitOverride().configureOutput({ writeOut: (s) => void io.stdout.write(s), writeErr: (s) => void io.stderr.write(s) });
    program.addCommand(cmd);
  }
  return program;
}

export function reportError(io: Io, err: unknown): number {
  if (isNotifyError(err)) {
    io.stderr.write(`notify: ${err.message}\n`);
    if (err.hint) io.stderr.write(`  hint: ${err.hint}\n`);
    return err.exitCode;
  }
  const e = err as Error;
  io.stderr.write(`notify: unexpected error: ${e?.stack ?? String(err)}\n`);
  return ExitCode.runtime;
}

/** Runs the CLI; resolves with the exit code. Long-running commands resolve when they finish. */
export async function run(argv: string[], io: Io): Promise<number> {
  let code: number = ExitCode.ok;
  const program = buildProgram(io, (c) => (code = c));
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version print and "fail" with exitCode 0; every other commander error is a usage error.
      return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    return reportError(io, err);
  }
}

/** Entry point used by bin/notify.js, which passes `process.argv.slice(2)`. */
export function main(argv: string[]): void {
  const io = processIo();
  run(argv, io).then(setExitCode, (err) => setExitCode(reportError(io, err)));
}
