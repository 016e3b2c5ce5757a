/** The built binary (`node bin/notify.js ...`) as a child process, with its stderr collected as it arrives. */
import { spawn, type ChildProcess } from 'node:child_process';
import { ROOT } from './build.js';
import { onCleanup, until } from './lifecycle.js';

/** The binary runs dist/: call `ensureBuilt` (./build.js) in `beforeAll` first. */
export { ensureBuilt } from './build.js';

export interface NotifyProcess {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Exit code (or the signal's name); resolves when the process has exited. */
  exited: Promise<number | string>;
  /** Waits until stderr matches; returns the match. */
  waitStderr(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

export function runNotify(args: string[], env: Record<string, string> = {}): NotifyProcess {
  const child = spawn(process.execPath, [`${ROOT}bin/notify.js`, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  let done = false;
  const exited = new Promise<number | string>((resolve) =>
    child.on('exit', (code, signal) => {
      done = true;
      resolve(code ?? signal ?? -1);
    }),
  );
  onCleanup(() => {
    if (!done) child.kill('SIGKILL');
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    async waitStderr(re, timeoutMs = 10_000) {
      await until(() => re.test(err) || done, `stderr to match ${re}`, timeoutMs);
      const m = err.match(re);
      if (!m) throw new Error(`process exited (${await exited}) before stderr matched ${re}; stderr:\n${err}`);
      return m;
    },
  };
}

/** Resolves with the exit code, failing when the process is still running after `timeoutMs`. */
export async function exitWithin(p: NotifyProcess, timeoutMs: number): Promise<number | string> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running ${timeoutMs}ms later; stderr:\n${p.stderr()}`)), timeoutMs);
  });
  try {
    return await Promise.race([p.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}
