/** Files a run or a report leaves behind for people and CI: result JSON, HTML report, JUnit XML. */
import { writeFile } from 'node:fs/promises';
import { NotifyError } from '../errors.js';
import type { Io } from '../io.js';
import { renderHtml } from './html.js';
import { renderJunit } from './junit.js';
import type { ResultFile } from '../result/schema.js';

export interface ArtifactPaths {
  /** Result JSON; `-` for stdout. */
  out?: string;
  html?: string;
  junit?: string;
}

async function write(file: string, text: string, what: string): Promise<void> {
  try {
    await writeFile(file, text);
  } catch (err) {
    throw new NotifyError('E_WRITE', `cannot write the ${what} to ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, {
      hint: 'does the directory exist and is it writable?',
    });
  }
}

/** Writes whichever of the result, HTML and JUnit files were asked for, and says so on stderr. */
export async function writeArtifacts(result: ResultFile, paths: ArtifactPaths, io: Io, title?: string): Promise<void> {
  if (paths.out === '-') io.stdout.write(JSON.stringify(result, null, 2) + '\n');
  else if (paths.out) {
    await write(paths.out, JSON.stringify(result, null, 2) + '\n', 'result');
    io.stderr.write(`result written to ${paths.out}\n`);
  }
  if (paths.html) {
    await write(paths.html, renderHtml(result, title), 'HTML report');
    io.stderr.write(`HTML report written to ${paths.html}\n`);
  }
  if (paths.junit) {
    await write(paths.junit, renderJunit(result), 'JUnit report');
    io.stderr.write(`JUnit report written to ${paths.junit}\n`);
  }
}
