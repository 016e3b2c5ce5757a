/**
 * CORS for `--origin`: the stream's answer must allow that origin, and so must the preflight a browser sends when
 * the subscribe request carries headers of its own (Authorization, ...); a plain EventSource sends no preflight.
 */
import type { CheckContext } from './context.js';
import { FIX } from './fixes.js';
import { fail, pass, skip, type Check, type Outcome } from './outcome.js';
import { openRaw, type Head } from './raw-http.js';

const allows = (h: Head | undefined, origin: string) =>
  h?.headers['access-control-allow-origin'] === '*' || h?.headers['access-control-allow-origin'] === origin;

async function preflight(ctx: CheckContext, url: URL, origin: string, headers: string[]): Promise<{ head?: Head; error?: string }> {
  const raw = openRaw({
    url,
    method: 'OPTIONS',
    headers: { Origin: origin, 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': headers.join(', ') },
    headTimeoutMs: ctx.config.eventWaitMs,
  });
  try {
    return { head: await raw.head };
  } catch (err) {
    return { error: (err as Error).message };
  } finally {
    raw.close();
  }
}

function allowsHeaders(h: Head, wanted: string[]): string[] {
  const list = (h.headers['access-control-allow-headers'] ?? '').toLowerCase().split(/\s*,\s*/);
  return list.includes('*') ? [] : wanted.filter((w) => !list.includes(w));
}

async function cors(ctx: CheckContext): Promise<Outcome> {
  const origin = ctx.config.origin;
  if (origin === undefined) return skip('pass --origin https://app.example.com to check CORS for a browser origin');
  const s = await ctx.sse({ headers: { Origin: origin } });
  s.raw.close();
  if (!s.head) return fail(`the stream did not answer (${s.error})`);
  const acao = s.head.headers['access-control-allow-origin'];
  const evidence = [`GET with Origin: ${origin}: HTTP ${s.head.status}, Access-Control-Allow-Origin: ${acao ?? '(absent)'}`];
  const custom = Object.keys(ctx.render('sse').headers ?? {}).map((h) => h.toLowerCase());
  let problems = allows(s.head, origin) ? [] : [`the stream's answer does not allow ${origin}`];
  if (custom.length) {
    const wanted = [...custom, 'last-event-id'];
    const p = await preflight(ctx, s.request.url, origin, wanted);
    const h = p.head;
    evidence.push(
      h
        ? `preflight OPTIONS for ${wanted.join(', ')}: HTTP ${h.status}, Allow-Origin: ${h.headers['access-control-allow-origin'] ?? '(absent)'}, Allow-Headers: ${h.headers['access-control-allow-headers'] ?? '(absent)'}`
        : `preflight OPTIONS: no answer (${p.error})`,
    );
    if (!h || h.status >= 300) problems.push(`the preflight was not answered 2xx`);
    else if (!allows(h, origin)) problems.push(`the preflight does not allow ${origin}`);
    else if (allowsHeaders(h, wanted).length) problems.push(`the preflight does not allow the headers ${allowsHeaders(h, wanted).join(', ')}`);
  } else evidence.push('the subscribe request has no headers of its own: a plain EventSource sends no preflight');
  problems = [...new Set(problems)];
  if (problems.length) return fail(`a browser page on ${origin} cannot read the stream: ${problems.join('; ')}`, { evidence, fix: FIX.cors });
  return pass(`${origin} may read the stream${custom.length ? ' (and the preflight allows its headers)' : ''}`, { evidence });
}

export const CORS_CHECKS: Check[] = [{ name: 'cors', title: 'CORS for --origin (stream answer and preflight)', run: cors }];
