/**
 * `{token}` (DESIGN.md "Target profiles"): an HS256 JWT with `sub` = the user, minted from `--jwt-secret`: what
 * `notify serve --auth jwt` accepts as that user. The same for a user's subscribers and for the probes published to
 * that user; minted synchronously (node:crypto) once per user, valid for TOKEN_TTL_S from then.
 */
import { createHmac } from 'node:crypto';

const TOKEN_TTL_S = 24 * 3600;
const HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');

/** The token of each user under `secret`, minted on first use and then reused. */
export function tokenMinter(secret: string, nowMs: () => number = Date.now): (user: string) => string {
  const key = Buffer.from(secret, 'utf8');
  const minted = new Map<string, string>();
  return (user) => {
    let token = minted.get(user);
    if (token === undefined) {
      const iat = Math.floor(nowMs() / 1000);
      const body = Buffer.from(JSON.stringify({ sub: user, iat, exp: iat + TOKEN_TTL_S })).toString('base64url');
      const signature = createHmac('sha256', key).update(`${HEADER}.${body}`).digest('base64url');
      minted.set(user, (token = `${HEADER}.${body}.${signature}`));
    }
    return token;
  };
}
