/**
 * Auth: with --token, the stream must be refused (401/403, before any stream head) without it and with a bad one;
 * without --token, a refused stream says the server has auth. Tokens in URL query strings are flagged: access logs
 * of every proxy on the path record them.
 */
import type { CheckContext } from './context.js';
import { FIX } from './fixes.js';
import { fail, pass, skip, warn, type Check, type Outcome } from './outcome.js';
import { TRANSPORT_NAMES } from '../protocol/transports.js';

const BAD_TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJub3RpZnktY2hlY2sifQ.bm90LWEtc2lnbmF0dXJl';

function describe(s: Awaited<ReturnType<CheckContext['sse']>>): string {
  if (!s.head) return `no answer (${s.error})`;
  return `HTTP ${s.head.status}${s.head.headers['content-type'] ? ` ${s.head.headers['content-type']}` : ''}`;
}

async function authRequired(ctx: CheckContext): Promise<Outcome> {
  const token = ctx.config.token;
  if (token === undefined) {
    const s = await ctx.sharedSse();
    const evidence = [`GET ${s.request.url.href} without credentials: ${describe(s)}`];
    if (s.head && (s.head.status === 401 || s.head.status === 403))
      return pass(`refused without credentials (HTTP ${s.head.status}); pass --token to check the rest`, { evidence });
    return skip('no --token given, and the stream opened without one: no auth here (or anonymous readers are allowed)', { evidence });
  }
  const withToken = ctx.render('sse', token);
  const without = ctx.render('sse', null);
  if (withToken.url === without.url && JSON.stringify(withToken.headers) === JSON.stringify(without.headers)) {
    return skip('the target profile sends no {token} on subscribe.sse');
  }
  const tries = [
    { what: 'without a token', s: await ctx.sse({ token: null }) },
    { what: 'with an invalid token', s: await ctx.sse({ token: BAD_TOKEN }) },
  ];
  const evidence = tries.map((t) => `${t.what}: ${describe(t.s)}`);
  const open = tries.filter((t) => t.s.head?.status === 200);
  for (const t of tries) t.s.raw.close();
  if (open.length) return fail(`the stream opens ${open.map((t) => t.what).join(' and ')}: anyone can read it`, { evidence, fix: FIX.auth });
  const other = tries.filter((t) => t.s.head?.status !== 401 && t.s.head?.status !== 403);
  if (other.length)
    return warn(`refused, but not with 401/403 (${other.map((t) => describe(t.s)).join(', ')}): clients cannot tell a bad token from an outage`, {
      evidence,
      fix: FIX.auth,
    });
  return pass('refused without a token and with an invalid one (401/403), before any stream head', { evidence });
}

const SECRET_PARAM = /^(token|access_token|auth|authorization|jwt|api_?key|key|session|sid|password)$/i;

async function queryToken(ctx: CheckContext): Promise<Outcome> {
  const token = ctx.config.token;
  const urls = [ctx.config.url, ...TRANSPORT_NAMES.filter((t) => ctx.has(t)).map((t) => ctx.render(t).url)];
  const found: string[] = [];
  for (const text of urls) {
    let u: URL;
    try {
      u = new URL(text);
    } catch {
      continue;
    }
    for (const [name, value] of u.searchParams) {
      if (value !== '' && ((token !== undefined && value === token) || SECRET_PARAM.test(name))) found.push(`${u.origin}${u.pathname}?${name}=…`);
    }
  }
  if (found.length) {
    return warn('credentials travel in the URL query string, which access logs on the path record', { evidence: [...new Set(found)], fix: FIX.queryToken });
  }
  return pass(token === undefined ? 'no credentials in any subscribe URL' : 'the token travels in headers, not in URLs', {
    evidence: urls.map((u) => `URL: ${u.replace(/\?.*/, '?…')}`),
  });
}

export const AUTH_CHECKS: Check[] = [
  { name: 'auth-required', title: 'unauthorised requests get 401/403, not an open stream', run: authRequired },
  { name: 'auth-query-token', title: 'no token in URL query strings (a logging risk)', run: queryToken },
];
