/**
 * A real nginx + nchan (Debian nginx-light + libnginx-mod-nchan) serving docs/nchan.conf, the file the `nchan` target
 * profile assumes, unchanged: it is included into a server block on a free 127.0.0.1 port. Everything nginx writes
 * (pid, error log, temp files) goes to a temp dir of its own, so tests run in parallel and as root.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './build.js';
import { ChildServer, freePort, tcpAccepts, tempDir } from './child-server.js';

export const NCHAN_CONF = `${ROOT}docs/nchan.conf`;

/** Where Debian puts the module (the package installs /usr/lib; /usr/share/nginx/modules links to it). */
const MODULE_CANDIDATES = ['/usr/lib/nginx/modules/ngx_nchan_module.so', '/usr/share/nginx/modules/ngx_nchan_module.so'];

/** The nchan module's path: a known location, else what /etc/nginx/modules-enabled loads. */
export function nchanModule(): string {
  const found = MODULE_CANDIDATES.find((p) => existsSync(p));
  if (found) return found;
  const enabled = '/etc/nginx/modules-enabled';
  for (const f of existsSync(enabled) ? readdirSync(enabled) : []) {
    const m = /load_module\s+(\S+nchan\S*\.so)\s*;/.exec(readFileSync(join(enabled, f), 'utf8'));
    if (m) return m[1]!.startsWith('/') ? m[1]! : `/usr/share/nginx/${m[1]}`;
  }
  throw new Error(`ngx_nchan_module.so not found (looked in ${MODULE_CANDIDATES.join(', ')} and ${enabled}): apt-get install nginx-light libnginx-mod-nchan`);
}

export interface NchanServer {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** ws://127.0.0.1:PORT */
  readonly wsUrl: string;
  readonly port: number;
  readonly dir: string;
  readonly process: ChildServer;
}

function nginxConf(dir: string, port: number): string {
  // As root, nginx's workers would switch to `nobody`, who cannot write to this 0700 temp dir.
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  return `load_module ${nchanModule()};
${user}worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log notice;
error_log stderr warn;
events {
  worker_connections 1024;
}
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  # nchan's message store; the default 128 MB is more than a test needs, and several servers may run at once.
  nchan_shared_memory_size 16m;
  server {
    listen 127.0.0.1:${port};
    include ${NCHAN_CONF};
  }
}
`;
}

/** Starts nginx with docs/nchan.conf and resolves once it accepts connections; stopped by `runCleanup`. */
export async function startNchan(): Promise<NchanServer> {
  const dir = tempDir('nchan');
  mkdirSync(join(dir, 'tmp'));
  // The port is free when chosen but could be taken before nginx binds it: try again with another one.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    writeFileSync(join(dir, 'nginx.conf'), nginxConf(dir, port));
    const proc = new ChildServer('nginx (nchan)', 'nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], dir);
    try {
      await proc.waitReady(`accepting on 127.0.0.1:${port}`, () => tcpAccepts(port));
      return { url: `http://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${port}`, port, dir, process: proc };
    } catch (err) {
      await proc.stop();
      if (attempt >= 3 || !/Address already in use/.test(proc.output)) throw err;
    }
  }
}

export interface Published {
  status: number;
  /** The channel's last message id after this publish, from nchan's JSON answer (`<time>:<tag>`). */
  lastMessageId: string;
}

/** POSTs `body` to a publish location (`/pub/user/u1`, `/pub/broadcast`); nchan answers 201 or 202 (no subscriber). */
export async function nchanPublish(server: NchanServer, path: string, body: string, contentType = 'application/json'): Promise<Published> {
  const res = await fetch(`${server.url}${path}`, { method: 'POST', body, headers: { 'Content-Type': contentType, Accept: 'text/json' } });
  const text = await res.text();
  if (res.status !== 201 && res.status !== 202) throw new Error(`publish to ${path}: HTTP ${res.status} ${text}`);
  return { status: res.status, lastMessageId: (JSON.parse(text) as { last_message_id: string }).last_message_id };
}
