/**
 * nginx from Debian for `notify check`'s tests: one process, one server block per variant of a reverse-proxy
 * config (each on a free 127.0.0.1 port) in front of a notify serve, or nginx + nchan with extra server-level
 * directives. Everything it writes goes to a temp dir; it is stopped by `runCleanup`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChildServer, freePort, tcpAccepts, tempDir } from './child-server.js';
import { NCHAN_CONF, nchanModule } from './nchan.js';

/** The location of the right config for an event stream behind nginx (README "notify check"). */
export const RIGHT_LOCATION = `
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_buffering off;
      proxy_read_timeout 3600s;`;

export interface ProxyVariant {
  name: string;
  /** http://127.0.0.1:PORT of the upstream. */
  upstream: string;
  /** Directives inside `location /`. */
  location: string;
  /** Listen with TLS (the URL is https://), HTTP/2 on or off. */
  tls?: { cert: string; key: string; http2: boolean };
}

function listen(port: number, tls: ProxyVariant['tls']): string {
  if (!tls) return `    listen 127.0.0.1:${port};`;
  // Debian's nginx predates `http2 on;` (1.25.1): HTTP/2 is a listen parameter there.
  return `    listen 127.0.0.1:${port} ssl${tls.http2 ? ' http2' : ''};\n    ssl_certificate ${tls.cert};\n    ssl_certificate_key ${tls.key};`;
}

function httpBlock(dir: string, servers: string, head = ''): string {
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  return `${head}${user}worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log notice;
error_log stderr warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
${servers}
}
`;
}

async function startNginx(name: string, conf: (dir: string, ports: number[]) => string, count: number): Promise<{ urls: string[]; process: ChildServer }> {
  const dir = tempDir(name);
  mkdirSync(join(dir, 'tmp'));
  for (let attempt = 1; ; attempt++) {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) ports.push(await freePort());
    writeFileSync(join(dir, 'nginx.conf'), conf(dir, ports));
    const proc = new ChildServer(name, 'nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], dir);
    try {
      await proc.waitReady(`accepting on ${ports.join(', ')}`, async () => void (await Promise.all(ports.map((p) => tcpAccepts(p)))));
      return { urls: ports.map((p) => `http://127.0.0.1:${p}`), process: proc };
    } catch (err) {
      await proc.stop();
      if (attempt >= 3 || !/Address already in use/.test(proc.output)) throw err;
    }
  }
}

/** One nginx serving every variant; resolves with each variant's URL by name. */
export async function startProxies(variants: readonly ProxyVariant[]): Promise<Record<string, string>> {
  const { urls } = await startNginx(
    'check-nginx',
    (dir, ports) =>
      httpBlock(
        dir,
        variants
          .map((v, i) => `  server {\n${listen(ports[i]!, v.tls)}\n    location / {\n      proxy_pass ${v.upstream};${v.location}\n    }\n  }`)
          .join('\n'),
      ),
    variants.length,
  );
  return Object.fromEntries(variants.map((v, i) => [v.name, v.tls ? urls[i]!.replace(/^http:/, 'https:') : urls[i]!]));
}

/** nginx + nchan serving docs/nchan.conf (the `nchan` profile's), with `extra` server-level directives. */
export async function startNchanWith(extra: string): Promise<string> {
  const { urls } = await startNginx(
    'check-nchan',
    (dir, [port]) =>
      httpBlock(
        dir,
        `  nchan_shared_memory_size 16m;\n  server {\n    listen 127.0.0.1:${port};\n${extra}\n    include ${NCHAN_CONF};\n  }`,
        `load_module ${nchanModule()};\n`,
      ),
    1,
  );
  return urls[0]!;
}
