/**
 * What every request is checked for before a route sees it: a request-target that parses, path segments whose
 * percent-escapes decode, and (for bodies) a JSON content type. Each failure is a 4xx the client can act on, never
 * an exception that reaches the catch-all.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { HttpError } from './http-error.js';

/** The request-target as a URL; 400 when it is not one (e.g. `GET http://[ HTTP/1.1`). */
export function parseTarget(target: string | undefined): URL {
  try {
    return new URL(target ?? '/', 'http://localhost');
  } catch {
    throw new HttpError(400, 'E_BAD_TARGET', `request-target is not a valid URL: "${(target ?? '').slice(0, 80)}"`);
  }
}

/** One path segment with its percent-escapes decoded; 400 on a malformed escape such as `%ZZ`. */
export function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, 'E_BAD_PATH', `malformed percent-escape in path segment "${segment.slice(0, 80)}"`);
  }
}

const JSON_TYPE = /^application\/(?:[a-z0-9!#$&^_.+-]+\+)?json\s*(?:;.*)?$/i;

/**
 * Bodies must say they are JSON. `text/plain`, form types and a missing type are what a page on any origin can send
 * without a CORS preflight, so accepting them would let any web page publish to a gateway on loopback.
 */
export function requireJsonBody(headers: IncomingHttpHeaders): void {
  const type = headers['content-type'];
  if (type === undefined || !JSON_TYPE.test(type.trim())) {
    throw new HttpError(415, 'E_CONTENT_TYPE', `Content-Type must be application/json (got ${type === undefined ? 'none' : `"${type.slice(0, 80)}"`})`, {
      Accept: 'application/json',
    });
  }
}
