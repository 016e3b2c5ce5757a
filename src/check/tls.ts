/**
 * TLS for the checks: `--insecure-tls` (accept any certificate, as for notify swarm), and a certificate error told
 * as what it is, with the flag that gets past it on a test server.
 */

/** Codes OpenSSL and Node give a certificate that does not verify. */
const CERT_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ALTNAME/;

/** How a certificate error's text begins. */
export const TLS_CERT_ERROR = 'TLS certificate not accepted';

/** `code: message`, and for a certificate error the fix; for anything else the code or the message. */
export function describeTlsError(err: NodeJS.ErrnoException): string {
  const code = err.code ?? '';
  if (!CERT_CODES.test(code)) return code || err.message;
  return `${TLS_CERT_ERROR} (${code}: ${err.message}); fix the certificate, or for a test server with a self-signed one pass --insecure-tls`;
}

/** The error behind a fetch failure (undici puts it in `cause`). */
export function fetchErrorText(err: Error): string {
  const cause = err.cause as NodeJS.ErrnoException | undefined;
  return cause ? describeTlsError(cause) : err.message;
}
