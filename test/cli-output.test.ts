/** The CLI's own output streams: a reader that goes away early ends the output quietly, as Unix tools do. */
import { spawn } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, ensureBuilt } from './helpers/build.js';

beforeAll(ensureBuilt, 120_000);

describe('stdout closed by its reader', () => {
  it('`notify swarm --help | head -0`: exit 0 and no EPIPE stack trace', async () => {
    const child = spawn(process.execPath, [`${ROOT}bin/notify.js`, 'swarm', '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    // The reader is gone before the first byte: every write the CLI makes meets a closed pipe.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(stderr).not.toMatch(/EPIPE|Unhandled/);
    expect(code).toBe(0);
  });
});
