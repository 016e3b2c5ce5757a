/**
 * Placeholders in a target profile's strings (DESIGN.md "Target profiles"). A template is compiled once into literal
 * parts and slots, so rendering one per message is a join, not a regular expression.
 *
 * A placeholder is `{name}` with a name of letters and dots: JSON templates hold `{"` and `{}` freely, and those are
 * never placeholders. `{pad}` (payload only) is filler that brings the payload to `--payload-bytes`. `{var.NAME}` is filled when the profile is loaded (`--target-var NAME=VALUE`); every other name
 * is filled at run time, and a field may only use the names that make sense there. `{NAME.json}` is the value escaped
 * for the inside of a JSON string (JSON.stringify without its quotes): a payload carried as a string in another body.
 */
import { usageError } from '../errors.js';

export const PLACEHOLDERS = ['base', 'user', 'token', 'stream', 'id', 'now', 'probe', 'payload', 'pad'] as const;
export type Placeholder = (typeof PLACEHOLDERS)[number];
export type TemplateValues = Partial<Record<Placeholder, string>>;

/**
 * What each kind of profile field may use: the one list the loader checks files with and the swarm compiles with.
 * The other values do not exist where the field is used (a subscribe URL has no message; a channel no payload).
 */
export const FIELD_PLACEHOLDERS = {
  subscribe: ['base', 'user', 'token'],
  payload: ['id', 'now', 'probe', 'user', 'stream', 'pad'],
  publishUrl: ['base', 'user', 'stream'],
  publishHeader: ['base', 'user', 'token', 'stream', 'id', 'now'],
  publishBody: ['payload', 'user', 'stream', 'id', 'now', 'probe'],
  channel: ['user', 'stream'],
} as const satisfies Record<string, readonly Placeholder[]>;

const SLOT = /\{([A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)?)\}/g;

export class Template {
  private readonly parts: string[] = [];
  private readonly slots: Placeholder[] = [];
  /** Per slot: render JSON-escaped (`{NAME.json}`). */
  private readonly escaped: boolean[] = [];

  /**
   * `field`: the profile path, for errors (`subscribe.sse.url`). `allowed`: the placeholders this field may use;
   * any other, or a `{var.NAME}` left unfilled, is a usage error naming the field.
   */
  constructor(
    readonly text: string,
    readonly field: string,
    allowed: readonly Placeholder[],
  ) {
    let last = 0;
    for (const m of text.matchAll(SLOT)) {
      const name = m[1]!;
      if (name.startsWith('var.')) throw usageError(`target profile ${field}: {${name}} has no value; pass --target-var ${name.slice(4)}=VALUE`);
      const json = name.endsWith('.json');
      const base = json ? name.slice(0, -5) : name;
      if (!(allowed as readonly string[]).includes(base)) {
        throw usageError(`target profile ${field}: unknown placeholder {${name}}; this field can use ${allowed.map((a) => `{${a}}`).join(', ')}`);
      }
      this.parts.push(text.slice(last, m.index));
      this.slots.push(base as Placeholder);
      this.escaped.push(json);
      last = m.index + m[0].length;
    }
    this.parts.push(text.slice(last));
  }

  uses(name: Placeholder): boolean {
    return this.slots.includes(name);
  }

  /** The text with every slot filled; a value not given renders as the empty string. */
  render(values: TemplateValues): string {
    const { parts, slots, escaped } = this;
    let out = parts[0]!;
    for (let i = 0; i < slots.length; i++) {
      const v = values[slots[i]!] ?? '';
      out += (escaped[i] ? JSON.stringify(v).slice(1, -1) : v) + parts[i + 1]!;
    }
    return out;
  }
}

/**
 * Fills `{var.NAME}` in every string of a parsed profile (before validation, so the filled values are what is
 * validated). A name with no value is left as it is; Template reports it with the field that uses it.
 */
export function fillVars(value: unknown, vars: ReadonlyMap<string, string>): unknown {
  if (typeof value === 'string') {
    return value.replace(SLOT, (whole, name: string) => (name.startsWith('var.') ? (vars.get(name.slice(4)) ?? whole) : whole));
  }
  if (Array.isArray(value)) return value.map((v) => fillVars(v, vars));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fillVars(v, vars)]));
  }
  return value;
}

/** `--target-var NAME=VALUE`, each; a repeated name keeps the last. */
export function parseTargetVars(list: readonly string[]): Map<string, string> {
  const vars = new Map<string, string>();
  for (const item of list) {
    const eq = item.indexOf('=');
    const name = eq > 0 ? item.slice(0, eq) : '';
    if (!/^[A-Za-z0-9_-]+$/.test(name)) throw usageError(`--target-var must look like NAME=VALUE (got "${item}")`);
    vars.set(name, item.slice(eq + 1));
  }
  return vars;
}
