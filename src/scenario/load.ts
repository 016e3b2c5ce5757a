/**
 * `--scenario FILE`: reads a `notify.scenario/1` file, validates it, and turns it into the swarm flags it stands for
 * (for resolveSwarmOptions, under the command line's own) and its phases. A wrong file fails before the run (exit 2)
 * naming the field path, what was expected and what was there: `phases[2].share: expected a percentage like 50%, got "half"`.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse, YAMLParseError } from 'yaml';
import type { ZodIssue } from 'zod';
import { usageError } from '../errors.js';
import type { RawSwarmOptions } from '../swarm/config.js';
import { builtinTargetNames } from '../targets/load.js';
import { scenarioSchema, type Phase, type ScenarioFile } from './schema.js';

export type { Phase } from './schema.js';

export interface Scenario {
  name: string;
  /** The path it was loaded from. */
  file: string;
  /** The file's settings as raw swarm flags (strings, as commander would give them), for resolveSwarmOptions. */
  raw: RawSwarmOptions & { html?: string; junit?: string };
  /** In order, after the ramp. */
  phases: Phase[];
  server?: { command: string; ready: string };
  broker?: { command: string; ready: string };
  /** Size of each probe's notification, bytes. */
  payloadBytes?: number;
}

/** Enough issues to fix a file in one go, few enough to read on one line. */
const MAX_ISSUES = 5;

/** The scenario in `file`; `read` reads it (tests pass their own). */
export function loadScenario(file: string, read = (path: string) => readFileSync(path, 'utf8')): Scenario {
  let text: string;
  try {
    text = read(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw usageError(`--scenario ${file}: cannot read the file (${code === 'ENOENT' ? 'no such file' : (err as Error).message})`);
  }
  const doc = parseYaml(text, file);
  const result = scenarioSchema.safeParse(doc);
  if (!result.success) throw usageError(`scenario ${file}: ${describeIssues(result.error.issues, doc)}`);
  const { schema: _schema, description: _description, name, phases, server, broker, payloadBytes, thresholds, targetVar, target, out, ...flags } = result.data;
  const raw: Scenario['raw'] = {
    ...flags,
    threshold: thresholds,
    targetVar: targetVar && Object.entries(targetVar).map(([key, value]) => `${key}=${value}`),
    target: target && targetPath(target, file),
    ...outputs(out),
  };
  return { name, file, raw, phases, server, broker, payloadBytes };
}

/**
 * The file's flags under the command line's: a flag given there (not undefined) wins, and a repeatable flag's list
 * given there replaces the file's list.
 */
export function withOverrides(file: Scenario['raw'], cli: Partial<Scenario['raw']>): Scenario['raw'] {
  const given = Object.fromEntries(Object.entries(cli).filter(([, value]) => value !== undefined)) as Partial<Scenario['raw']>;
  return { ...file, ...given };
}

/**
 * A target that names a file is relative to the scenario, so that a scenario and its profile move together. "Names a
 * file" as loadTarget decides it: not a built-in, and a `/` or `.` in it (anything else is refused there, with the
 * list of built-ins).
 */
function targetPath(target: string, file: string): string {
  return builtinTargetNames().includes(target) || !/[/.]/.test(target) ? target : resolve(dirname(file), target);
}

function outputs(out: ScenarioFile['out']): Pick<Scenario['raw'], 'out' | 'html' | 'junit'> {
  return typeof out === 'object' ? { out: out.json, html: out.html, junit: out.junit } : { out };
}

function parseYaml(text: string, file: string): unknown {
  try {
    return parse(text);
  } catch (err) {
    if (!(err instanceof YAMLParseError)) throw err;
    // The first line names the problem, its line and column; the rest is a snippet of the source.
    throw usageError(`scenario ${file}: invalid YAML: ${err.message.split('\n')[0]!.replace(/:$/, '')}`);
  }
}

function describeIssues(issues: readonly ZodIssue[], doc: unknown): string {
  const shown = issues.slice(0, MAX_ISSUES).map((issue) => {
    const what = describeIssue(issue, valueAt(doc, issue.path));
    return issue.path.length === 0 ? what : `${fieldPath(issue.path)}: ${what}`;
  });
  if (issues.length > MAX_ISSUES) shown.push(`and ${issues.length - MAX_ISSUES} more`);
  return shown.join('; ');
}

/** `phases[2].share`: the path as a reader finds it in the file. */
function fieldPath(path: readonly (string | number)[]): string {
  return path.map((key, i) => (typeof key === 'number' ? `[${key}]` : i === 0 ? key : `.${key}`)).join('');
}

const TYPE_NOUNS: Partial<Record<string, string>> = { string: 'a string', number: 'a number', boolean: 'true or false', array: 'a list', object: 'a mapping' };

/** `expected X, got Y`, or `missing, expected X`: zod's words, reworded where they would not say what to write instead. */
function describeIssue(issue: ZodIssue, value: unknown): string {
  if (issue.code === 'unrecognized_keys') return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
  const expected = expectation(issue);
  if (value === undefined) return `missing, ${expected}`;
  if (value === null || ['string', 'number', 'boolean'].includes(typeof value)) return `${expected}, got ${JSON.stringify(value)}`;
  // A wrong type says what it got; for anything else a mapping or a list is better read in the file than on one line.
  return issue.code === 'invalid_type' ? `${expected}, got ${Array.isArray(value) ? 'a list' : 'a mapping'}` : expected;
}

function expectation(issue: ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${TYPE_NOUNS[issue.expected] ?? issue.expected}`;
    case 'invalid_literal':
      return `expected ${JSON.stringify(issue.expected)}`;
    case 'invalid_enum_value':
      return `expected one of ${issue.options.join(', ')}`;
    case 'invalid_union_discriminator':
      return `expected one of ${issue.options.map(String).join(', ')}`;
    default:
      return issue.message;
  }
}

function valueAt(doc: unknown, path: readonly (string | number)[]): unknown {
  let at = doc;
  for (const key of path) {
    if (typeof at !== 'object' || at === null) return undefined;
    at = (at as Record<string | number, unknown>)[key];
  }
  return at;
}
