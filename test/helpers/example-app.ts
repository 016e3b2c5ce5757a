/** The example push servers of examples/ as the tests run them: a real child process on a free loopback port. */
import { ROOT } from './build.js';
import { ChildServer } from './child-server.js';

/** examples/<name>/app.mjs on a free port; resolves with its base URL once it listens (stopped by `runCleanup`). */
export async function startExample(name: string, args: string[]): Promise<string> {
  const proc = new ChildServer(name, process.execPath, [`${ROOT}examples/${name}/app.mjs`, '--port', '0', ...args], ROOT);
  return (await proc.waitOutput(/listening on (http:\/\/127\.0\.0\.1:\d+)\n/))[1]!;
}
