/**
 * The dashboard's modules (ink, react and their dependencies) load only where the dashboard runs. Node's ESM loader
 * reads a static import graph with many files open at once; with ink in the graph of every command, `notify serve`
 * died with EMFILE at `ulimit -n 300` before it listened.
 */
import { spawn } from 'node:child_process';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, ensureBuilt } from './helpers/build.js';
import { onCleanup, runCleanup, until } from './helpers/lifecycle.js';

beforeAll(ensureBuilt, 120_000);
afterEach(runCleanup);

/** `node bin/notify.js <args>` under `ulimit -n <fds>`; resolves with stderr once it matches `re` or the process ends. */
async function underUlimit(fds: number, args: string[], re: RegExp): Promise<{ stderr: string; exitCode: number | null }> {
  const child = spawn('bash', ['-c', `ulimit -n ${fds} && exec "$0" "$@"`, process.execPath, `${ROOT}bin/notify.js`, ...args], {
    env: { PATH: process.env.PATH ?? '', NO_COLOR: '1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  let ended = false;
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  child.on('exit', () => (ended = true));
  onCleanup(() => {
    if (!ended) child.kill('SIGKILL');
  });
  await until(() => re.test(stderr) || ended, `stderr to match ${re}`, 15_000);
  return { stderr, exitCode: child.exitCode };
}

describe('commands without the dashboard do not load it', () => {
  it('notify serve starts and listens at ulimit -n 300', async () => {
    const { stderr } = await underUlimit(300, ['serve', '--port', '0'], /listening on http:\/\/127\.0\.0\.1:\d+/);
    expect(stderr).not.toContain('EMFILE');
    expect(stderr).toMatch(/listening on http:\/\/127\.0\.0\.1:\d+/);
  }, 20_000);

  it('notify doctor runs at ulimit -n 300', async () => {
    const { stderr, exitCode } = await underUlimit(300, ['doctor', '--json'], /(?!)/);
    expect(stderr).not.toContain('EMFILE');
    expect(exitCode).toBe(0);
  }, 20_000);
});
