/**
 * HTTP version: over https, whether TLS offers HTTP/2 (ALPN); over plain http, the version that answered (browsers
 * speak HTTP/2 only over TLS, so h2c is not probed). On HTTP/1.1 a browser opens at most six connections per origin.
 */
import { isIP } from 'node:net';
import { connect } from 'node:tls';
import type { CheckContext } from './context.js';
import { FIX } from './fixes.js';
import { fail, pass, skip, warn, type Check, type Outcome } from './outcome.js';
import { describeTlsError } from './tls.js';

function alpn(url: URL, timeoutMs: number, insecureTls: boolean): Promise<{ protocol?: string; error?: string }> {
  return new Promise((resolve) => {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const servername = isIP(host) ? undefined : host;
    const socket = connect({ host, port: Number(url.port || 443), servername, ALPNProtocols: ['h2', 'http/1.1'], rejectUnauthorized: !insecureTls });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ error: `no TLS handshake within ${timeoutMs} ms` });
    }, timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      resolve({ protocol: socket.alpnProtocol || undefined });
      socket.end();
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ error: describeTlsError(err) });
    });
  });
}

async function httpVersion(ctx: CheckContext): Promise<Outcome> {
  const url = new URL(ctx.config.url);
  const s = await ctx.sharedSse();
  const answered = s.head ? `the stream answered over HTTP/${s.head.version}` : `the stream did not answer (${s.error})`;
  if (url.protocol === 'http:') {
    return skip('plain http: HTTP/1.x; HTTP/2 cleartext (h2c) is unknown and not probed, since browsers use HTTP/2 only over TLS', {
      evidence: [answered, 'over HTTP/1.1 a browser opens at most 6 connections per origin: a 7th tab with an EventSource stalls'],
      values: { http: s.head ? `1.x` : null, h2: null },
    });
  }
  const a = await alpn(url, ctx.config.eventWaitMs, ctx.config.insecureTls);
  const evidence = [answered, `TLS ALPN offered h2, http/1.1; the server chose ${a.protocol ?? (a.error ? 'nothing' : 'none (no ALPN)')}`];
  if (a.error) return fail(`TLS handshake failed: ${a.error}`, { evidence });
  if (a.protocol === 'h2') return pass('HTTP/2 offered (ALPN h2): EventSource streams share one connection', { evidence, values: { h2: true } });
  return warn('HTTP/2 not offered (ALPN): browsers stay on HTTP/1.1, at most 6 connections per origin', { evidence, fix: FIX.http2, values: { h2: false } });
}

export const HTTP_CHECKS: Check[] = [{ name: 'http-version', title: 'HTTP version, HTTP/2 offered (ALPN)', run: httpVersion }];
