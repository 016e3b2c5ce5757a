/**
 * Reading `notify.result/1` files back (report, compare, merge). A file that is missing, not JSON, of another schema
 * or missing a figure the reports need is a usage error (exit 2) that names the file and the first thing wrong.
 */
import { readFile } from 'node:fs/promises';
import { ExitCode, NotifyError } from '../errors.js';
import { RESULT_SCHEMA, resultSchema, type ResultFile } from './schema.js';

function bad(file: string, what: string, hint?: string): NotifyError {
  return new NotifyError('E_RESULT_FILE', `${file}: ${what}`, { exitCode: ExitCode.usage, hint });
}

/**
 * Checks a parsed document against `notify.result/1`.
 * @throws NotifyError E_RESULT_FILE (exit 2) naming `file` and the first field that is wrong.
 */
export function parseResult(file: string, doc: unknown): ResultFile {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw bad(file, `not a notify result: the JSON is ${Array.isArray(doc) ? 'an array' : typeof doc}, not an object`);
  const schema = (doc as { schema?: unknown }).schema;
  if (schema !== RESULT_SCHEMA) {
    throw bad(
      file,
      schema === undefined
        ? `not a notify result: no "schema" field (expected "${RESULT_SCHEMA}")`
        : `wrong schema ${JSON.stringify(schema)} (expected "${RESULT_SCHEMA}")`,
      'result files are written by `notify swarm --out FILE` or `notify report --merge ... --out FILE`',
    );
  }
  const parsed = resultSchema.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length ? issue.path.join('.') : '(top level)';
    throw bad(file, `not a valid ${RESULT_SCHEMA} file: ${where}: ${issue.message}`, 'was the file edited or truncated?');
  }
  return parsed.data;
}

/** Parses the text of a result file. @throws NotifyError E_RESULT_FILE (exit 2) when it is not JSON or not a result. */
export function parseResultText(file: string, text: string): ResultFile {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw bad(
      file,
      `not JSON (${(err as Error).message.replace(/\s+/g, ' ')})`,
      text.trim() === '' ? 'the file is empty' : 'result files are the JSON written by `notify swarm --out FILE`',
    );
  }
  return parseResult(file, doc);
}

/** Reads and checks a result file. @throws NotifyError E_RESULT_FILE (exit 2) when unreadable, not JSON or not a result. */
export async function readResultFile(file: string): Promise<ResultFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw bad(
      file,
      `cannot read the file (${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (code ?? (err as Error).message)})`,
    );
  }
  return parseResultText(file, text);
}
