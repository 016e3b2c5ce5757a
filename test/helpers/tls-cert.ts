/** A self-signed certificate for 127.0.0.1 and localhost, made with Debian's openssl in a temp dir (removed at cleanup). */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { tempDir } from './child-server.js';

export function selfSignedCert(): { cert: string; key: string; dir: string } {
  const dir = tempDir('tls');
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: 'pipe' },
  );
  return { cert, key, dir };
}
