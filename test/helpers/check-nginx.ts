/**
 * nginx from Debian for `notify check`'s tests: one process, one server block per variant of a reverse-proxy
 * config (each on a free 127.0.0.1 port) in front of a notify serve, or nginx + nchan with extra server-level
 * directives. Everything it writes goes to a temp dir; it is stopped by `runCleanup`.
 */
import { NCHAN_CONF, nchanModule } from './nchan.js';
import { startNginx } from './nginx.js';

const UPGRADE_MAP = "  map $http_upgrade $connection_upgrade { default upgrade; '' close; }";

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

/** One nginx serving every variant; resolves with each variant's URL by name. */
export async function startProxies(variants: readonly ProxyVariant[]): Promise<Record<string, string>> {
  const { ports } = await startNginx({
    name: 'check-nginx',
    ports: variants.length,
    http: (_dir, ports) =>
      [
        UPGRADE_MAP,
        ...variants.map((v, i) => `  server {\n${listen(ports[i]!, v.tls)}\n    location / {\n      proxy_pass ${v.upstream};${v.location}\n    }\n  }`),
      ].join('\n'),
  });
  return Object.fromEntries(variants.map((v, i) => [v.name, `${v.tls ? 'https' : 'http'}://127.0.0.1:${ports[i]}`]));
}

/** nginx + nchan serving docs/nchan.conf (the `nchan` profile's), with `extra` server-level directives. */
export async function startNchanWith(extra: string): Promise<string> {
  const { ports } = await startNginx({
    name: 'check-nchan',
    ports: 1,
    modules: [nchanModule()],
    http: (_dir, [port]) => `  nchan_shared_memory_size 16m;\n  server {\n    listen 127.0.0.1:${port};\n${extra}\n    include ${NCHAN_CONF};\n  }`,
  });
  return `http://127.0.0.1:${ports[0]}`;
}
