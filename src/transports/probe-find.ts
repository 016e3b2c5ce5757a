/**
 * The generic decoder's probe search: finds the swarm's probes in whatever a server sends, without knowing its
 * layout (DESIGN.md "Target profiles"). A probe is a value with the probe's shape (`asProbe`) under a `probe` key at
 * any depth, or the top-level value itself (or a JSON string's whole content); a string that holds JSON (starts with `{` or `[`) is searched as well,
 * because servers that relay a published body often wrap it as a string (`{"data":"{\"probe\":...}"}`).
 *
 * Depth is bounded (MAX_DEPTH), so a hostile server cannot make the swarm recurse without end; what lies deeper is
 * not searched.
 */
import { asProbe, type Probe } from '../protocol/probe.js';

const MAX_DEPTH = 32;

/** What a decoded frame carried: the probes in document order, and the `id` of the notification that held each. */
export interface Found {
  probes: Probe[];
  /**
   * The `id` member (string or number, as a string) of the innermost object that holds a probe's `probe` key, or of
   * its nearest enclosing object with one; undefined when none has an id.
   */
  ids: (string | undefined)[];
}

/** Searches a parsed JSON value; appends to `into` (cleared by the caller) and returns it. */
export function findProbes(value: unknown, into: Found = { probes: [], ids: [] }): Found {
  walk(value, into, undefined, 0, true);
  return into;
}

/** Searches JSON text: undefined when the text is not JSON at all (then it is the server's stray text, not ours). */
export function findProbesInText(text: string, into: Found = { probes: [], ids: [] }): Found | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  walk(value, into, undefined, 0, true);
  return into;
}

/** `root`: the top-level value, or the content of a JSON string; such a value may be a probe itself. */
function walk(value: unknown, into: Found, id: string | undefined, depth: number, root: boolean): void {
  if (depth > MAX_DEPTH) return;
  if (typeof value === 'string') {
    const c = value.charCodeAt(0);
    // `{` or `[`: a string that may hold JSON.
    if (c !== 123 && c !== 91) return;
    let inner: unknown;
    try {
      inner = JSON.parse(value);
    } catch {
      return;
    }
    return walk(inner, into, id, depth + 1, true);
  }
  if (typeof value !== 'object' || value === null) return;
  if (Array.isArray(value)) {
    for (const item of value) walk(item, into, id, depth + 1, false);
    return;
  }
  const obj = value as Record<string, unknown>;
  if (root) {
    const self = asProbe(obj);
    if (self !== undefined) {
      into.probes.push(self);
      into.ids.push(id);
      return;
    }
  }
  const own = obj.id;
  const here = typeof own === 'string' ? own : typeof own === 'number' ? String(own) : id;
  for (const key in obj) {
    const member = obj[key];
    if (key === 'probe') {
      const p = asProbe(member);
      if (p !== undefined) {
        into.probes.push(p);
        into.ids.push(here);
        continue;
      }
    }
    walk(member, into, here, depth + 1, false);
  }
}
