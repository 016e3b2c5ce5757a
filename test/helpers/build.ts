/**
 * The built binary and the swarm's worker processes run dist/, not src/: tests that spawn them call `ensureBuilt`
 * in `beforeAll`. It runs `tsc -p .` when any source is newer than its output (or the output is missing), under a
 * lock directory so that two test files starting in parallel forks do not write dist/ at the same time.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const LOCK = `${ROOT}tmp/.tsc-lock`;
/** A lock older than this was left by a killed test run. */
const STALE_LOCK_MS = 180_000;

function mtime(path: string): number | undefined {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

/** Sources (relative to src/) whose dist/ output is missing or older than they are. */
export function staleSources(dir = ''): string[] {
  const stale: string[] = [];
  for (const entry of readdirSync(`${ROOT}src/${dir}`, { withFileTypes: true })) {
    const rel = dir + entry.name;
    if (entry.isDirectory()) stale.push(...staleSources(`${rel}/`));
    else if (/\.tsx?$/.test(entry.name) && !entry.name.endsWith('.d.ts')) {
      const built = mtime(`${ROOT}dist/${rel.replace(/\.tsx?$/, '.js')}`);
      if (built === undefined || mtime(`${ROOT}src/${rel}`)! > built) stale.push(rel);
    }
  }
  return stale;
}

function tsc(): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [`${ROOT}node_modules/typescript/bin/tsc`, '-p', ROOT], { timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr });
    });
  });
}

async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  mkdirSync(`${ROOT}tmp`, { recursive: true });
  const deadline = Date.now() + STALE_LOCK_MS;
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const age = Date.now() - (mtime(LOCK) ?? Date.now());
      if (age > STALE_LOCK_MS) {
        rmdirSync(LOCK);
        continue;
      }
      if (Date.now() > deadline) throw new Error(`ensureBuilt: ${LOCK} held for more than ${STALE_LOCK_MS} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  try {
    return await fn();
  } finally {
    rmdirSync(LOCK);
  }
}

/**
 * Builds dist/ when a source is newer than its output. Type errors do not stop tsc from emitting, and the build
 * step of CI reports them, so here they are a warning; a build that leaves no entry point fails.
 */
export async function ensureBuilt(): Promise<void> {
  if (staleSources().length === 0) return;
  await withLock(async () => {
    // Another fork may have built while this one waited for the lock.
    if (staleSources().length === 0) return;
    const { code, output } = await tsc();
    if (code !== 0) console.warn(`ensureBuilt: tsc -p . exited with ${code}\n${output}`);
    for (const entry of ['cli.js', 'swarm/worker-main.js']) {
      if (mtime(`${ROOT}dist/${entry}`) === undefined) throw new Error(`ensureBuilt: tsc -p . left no dist/${entry}\n${output}`);
    }
  });
}
