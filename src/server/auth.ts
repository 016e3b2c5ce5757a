/**
 * Who is asking. `--auth none`: the user named by `?user=` (or nobody: broadcast only). `--auth jwt`: the `sub` of
 * an HS256 token from `Authorization: Bearer` or `?token=` (EventSource cannot set headers). The publish key guards
 * `/publish` separately, because publishers are services, not users.
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { jwtVerify, errors as joseErrors } from 'jose';
import { HttpError } from './http-error.js';
import { USER_ID, USER_ID_RULE } from '../protocol/streams.js';

export interface Identity {
  /** Undefined: anonymous, sees only the broadcast stream. */
  user?: string;
}

export interface Authenticator {
  identify(headers: IncomingHttpHeaders, query: URLSearchParams): Promise<Identity>;
  /**
   * `identify` at once (its answer, or its error thrown) when that needs no asynchronous check (`--auth none`);
   * undefined when it does (a token to verify): then call `identify`.
   */
  identifyNow(headers: IncomingHttpHeaders, query: URLSearchParams): Identity | undefined;
  checkPublishKey(headers: IncomingHttpHeaders): void;
}

export function createAuthenticator(opts: { auth: 'none' | 'jwt'; jwtSecret?: string; publishKey?: string }): Authenticator {
  const secret = opts.jwtSecret ? new TextEncoder().encode(opts.jwtSecret) : undefined;
  const publishKey = opts.publishKey ? Buffer.from(opts.publishKey) : undefined;

  function identifyNow(_headers: IncomingHttpHeaders, query: URLSearchParams): Identity | undefined {
    return opts.auth === 'none' ? { user: askedUser(query) } : undefined;
  }

  async function identify(headers: IncomingHttpHeaders, query: URLSearchParams): Promise<Identity> {
    const asked = askedUser(query);
    if (opts.auth === 'none') return { user: asked };
    const token = bearer(headers) ?? query.get('token') ?? undefined;
    if (!token) throw new HttpError(401, 'E_AUTH', 'missing token: send Authorization: Bearer <jwt> or ?token=<jwt>');
    let sub: unknown;
    try {
      const { payload } = await jwtVerify(token, secret!, { algorithms: ['HS256'] });
      sub = payload.sub;
    } catch (err) {
      const why = err instanceof joseErrors.JWTExpired ? 'token expired' : 'invalid token';
      throw new HttpError(401, 'E_AUTH', why);
    }
    // RFC 7519 4.1.2: sub is a string. A number would name a stream that `?user=` and every publish spell differently.
    if (typeof sub !== 'string') throw new HttpError(401, 'E_AUTH', `token sub must be a string (got ${sub === undefined ? 'none' : typeof sub})`);
    if (!USER_ID.test(sub)) throw new HttpError(401, 'E_AUTH', `token sub must be ${USER_ID_RULE}`);
    if (asked !== undefined && asked !== sub) {
      throw new HttpError(403, 'E_FORBIDDEN', `user ${sub} may not read the stream of user ${asked}`);
    }
    return { user: sub };
  }

  function checkPublishKey(headers: IncomingHttpHeaders): void {
    if (!publishKey) return;
    const given = (headers['x-publish-key'] as string | undefined) ?? bearer(headers);
    const g = given === undefined ? undefined : Buffer.from(given);
    const ok = g !== undefined && g.length === publishKey.length && timingSafeEqual(g, publishKey);
    if (!ok) {
      throw new HttpError(401, 'E_PUBLISH_KEY', given ? 'wrong publish key' : 'missing publish key: send X-Publish-Key');
    }
  }

  return { identify, identifyNow, checkPublishKey };
}

/** `?user=`, checked. */
function askedUser(query: URLSearchParams): string | undefined {
  const asked = query.get('user') ?? undefined;
  if (asked !== undefined && !USER_ID.test(asked)) {
    throw new HttpError(400, 'E_USER', `user must be ${USER_ID_RULE} (got "${asked.slice(0, 50)}")`);
  }
  return asked;
}

function bearer(headers: IncomingHttpHeaders): string | undefined {
  const h = headers.authorization;
  return h && h.startsWith('Bearer ') ? h.slice(7).trim() : undefined;
}
