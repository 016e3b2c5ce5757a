/**
 * `notify swarm` without `--url`: start `notify serve` on a free loopback port as a child process (its own CPU, so
 * the swarm's self-check and the server's load stay apart) and stop it when the run ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { NotifyError } from '../errors.js';

export interface EmbeddedServer {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

const BIN = fileURLToPath(new URL('../../bin/notify.js', import.meta.url));

export async function startEmbeddedServer(args: string[] = []): Promise<EmbeddedServer> {
  const child: ChildProcess = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--log-level', 'warn', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new NotifyError('E_EMBEDDED', `embedded notify serve did not start within 10s: ${log}`)), 10_000);
    child.stderr!.on('data', (chunk: Buffer) => {
      log += chunk.toString();
      const m = /listening on (http:\/\/\S+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new NotifyError('E_EMBEDDED', `embedded notify serve exited with code ${code}: ${log.trim()}`));
    });
  });
  return {
    url,
    pid: child.pid!,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  };
}
