/**
 * `--target NAME|FILE`: finds a profile (a built-in or a YAML file), fills its `{var.NAME}`, validates it against
 * `notify.target/1` and compiles every template once with the placeholders its field may use, so that a wrong
 * profile fails before the run (exit 2) with the field's path, never halfway through it.
 */
import { readFileSync } from 'node:fs';
import { parse, YAMLParseError } from 'yaml';
import type { ZodIssue } from 'zod';
import { usageError } from '../errors.js';
import { BUILTIN_TARGETS } from './builtins.js';
import { targetSchema, type TargetProfile } from './schema.js';
import { FIELD_PLACEHOLDERS, fillVars, parseTargetVars, Template, type Placeholder } from './template.js';

export type LoadedTarget = TargetProfile & {
  /** Where the profile came from, for messages and the report: `built-in NAME` or the file's path. */
  source: string;
};

/** What each kind of field may use; the rest of a run's values do not exist yet where the field is used. */
const {
  subscribe: CONNECT,
  payload: PAYLOAD,
  publishUrl: PUBLISH_URL,
  publishHeader: PUBLISH_HEADER,
  publishBody: BODY,
  channel: CHANNEL,
} = FIELD_PLACEHOLDERS;

/** Enough issues to fix a file in one go, few enough to read on one line. */
const MAX_ISSUES = 5;

export function builtinTargetNames(): string[] {
  return [...BUILTIN_TARGETS.keys()];
}

/**
 * The profile `--target` names (`undefined`: the built-in `notify`), with `--target-var NAME=VALUE` applied.
 * `read` reads a profile file (tests pass their own).
 */
export function loadTarget(nameOrFile: string | undefined, targetVars: readonly string[], read = (path: string) => readFileSync(path, 'utf8')): LoadedTarget {
  const { source, text } = locate(nameOrFile ?? 'notify', read);
  const doc = parseYaml(text, source);
  // Filled before validation, so what is validated is what the run will use.
  const filled = fillVars(doc, profileVars(doc, parseTargetVars(targetVars)));
  const result = targetSchema.safeParse(filled);
  if (!result.success) throw usageError(`target profile ${source}: ${describeIssues(result.error.issues, filled)}`);
  checkSubscribe(result.data, source);
  checkPayload(result.data, source);
  checkPublish(result.data, source);
  return { ...result.data, source };
}

function locate(nameOrFile: string, read: (path: string) => string): { source: string; text: string } {
  const builtin = BUILTIN_TARGETS.get(nameOrFile);
  if (builtin !== undefined) return { source: `built-in ${nameOrFile}`, text: builtin };
  if (!/[/.]/.test(nameOrFile)) {
    throw usageError(`--target must be a built-in profile (${builtinTargetNames().join(', ')}) or a YAML file (got "${nameOrFile}")`);
  }
  try {
    return { source: nameOrFile, text: read(nameOrFile) };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw usageError(`--target ${nameOrFile}: cannot read the file (${code === 'ENOENT' ? 'no such file' : (err as Error).message})`);
  }
}

function parseYaml(text: string, source: string): unknown {
  try {
    return parse(text);
  } catch (err) {
    if (!(err instanceof YAMLParseError)) throw err;
    // The first line names the problem, its line and column; the rest is a snippet of the source.
    const what = err.message.split('\n')[0]!.replace(/:$/, '');
    throw usageError(
      `target profile ${source}: invalid YAML: ${what}`,
      'quote every string that starts with a placeholder, or YAML reads it as a mapping: url: "{base}/events"',
    );
  }
}

/** The profile's `vars` defaults, overridden by `--target-var`. */
function profileVars(doc: unknown, given: ReadonlyMap<string, string>): Map<string, string> {
  // Defaults that are not strings are left to the schema to report, with their path.
  const defaults = isRecord(doc) && isRecord(doc.vars) ? Object.entries(doc.vars).filter((e): e is [string, string] => typeof e[1] === 'string') : [];
  return new Map([...defaults, ...given]);
}

function describeIssues(issues: readonly ZodIssue[], doc: unknown): string {
  const shown = issues.slice(0, MAX_ISSUES).map((issue) => {
    const what = describeIssue(issue, valueAt(doc, issue.path));
    return issue.path.length === 0 ? what : `${issue.path.join('.')}: ${what}`;
  });
  if (issues.length > MAX_ISSUES) shown.push(`and ${issues.length - MAX_ISSUES} more`);
  return shown.join('; ');
}

/** Zod's words, reworded where they would not say what to write instead. */
function describeIssue(issue: ZodIssue, value: unknown): string {
  if (issue.code === 'invalid_type') return value === undefined ? `missing (expected ${issue.expected})` : `expected ${issue.expected}${got(value)}`;
  if (issue.code === 'invalid_literal') return `expected ${JSON.stringify(issue.expected)}${got(value)}`;
  if (issue.code === 'invalid_enum_value') return `expected one of ${issue.options.join(', ')}${got(value)}`;
  if (issue.code === 'unrecognized_keys') return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
  return `${issue.message}${got(value)}`;
}

/** ` (got VALUE)` for a scalar; a mapping or a list is better read in the file than on one line. */
function got(value: unknown): string {
  return value === null || ['string', 'number', 'boolean'].includes(typeof value) ? ` (got ${JSON.stringify(value)})` : '';
}

function valueAt(doc: unknown, path: readonly (string | number)[]): unknown {
  let at = doc;
  for (const key of path) {
    if (!isRecord(at) && !Array.isArray(at)) return undefined;
    at = (at as Record<string | number, unknown>)[key];
  }
  return at;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Compiles `text` (when the field is set) for its field, which throws on a placeholder the field may not use. */
function compile(source: string, text: string | undefined, field: string, allowed: readonly Placeholder[]): Template | undefined {
  return text === undefined ? undefined : new Template(text, `${source}: ${field}`, allowed);
}

function compileEach(source: string, record: Record<string, string> | undefined, field: string, allowed: readonly Placeholder[]): void {
  for (const [key, text] of Object.entries(record ?? {})) compile(source, text, `${field}.${key}`, allowed);
}

function checkSubscribe({ subscribe }: TargetProfile, source: string): void {
  const { sse, ws, poll, socketio } = subscribe;
  for (const [transport, block] of [
    ['sse', sse],
    ['ws', ws],
    ['poll', poll],
    ['socketio', socketio],
  ] as const) {
    if (block === undefined) continue;
    const at = `subscribe.${transport}`;
    compile(source, block.url, `${at}.url`, CONNECT);
    compile(source, block.broadcastUrl, `${at}.broadcastUrl`, CONNECT);
    compileEach(source, block.headers, `${at}.headers`, CONNECT);
  }
  ws?.send?.forEach((text, i) => compile(source, text, `subscribe.ws.send.${i}`, CONNECT));
  compileEach(source, socketio?.auth, 'subscribe.socketio.auth', CONNECT);
  compileEach(source, socketio?.query, 'subscribe.socketio.query', CONNECT);
  socketio?.emit?.forEach((args, i) => args.forEach((text, j) => compile(source, text, `subscribe.socketio.emit.${i}.${j}`, CONNECT)));
}

function checkPayload({ payload }: TargetProfile, source: string): void {
  if (!compile(source, payload, 'payload', PAYLOAD)!.uses('probe')) {
    throw usageError(`target profile ${source}: payload must contain {probe}, which is how the swarm knows each message (got ${JSON.stringify(payload)})`);
  }
}

function checkPublish({ publish }: TargetProfile, source: string): void {
  const { http, redis, nats } = publish;
  if (http !== undefined) {
    for (const key of ['url', 'userUrl', 'broadcastUrl'] as const) compile(source, http[key], `publish.http.${key}`, PUBLISH_URL);
    compileEach(source, http.headers, 'publish.http.headers', PUBLISH_HEADER);
    for (const key of ['user', 'broadcast'] as const) {
      const body = compile(source, http[key], `publish.http.${key}`, BODY);
      // Unset, the body is {payload}.
      if (body !== undefined && !body.uses('payload') && !body.uses('probe')) {
        throw usageError(`target profile ${source}: publish.http.${key} must contain {payload} (or {probe}), or no probe is ever sent`);
      }
    }
  }
  for (const [broker, block] of [
    ['redis', redis],
    ['nats', nats],
  ] as const) {
    compile(source, block?.user, `publish.${broker}.user`, CHANNEL);
    compile(source, block?.broadcast, `publish.${broker}.broadcast`, CHANNEL);
  }
}
