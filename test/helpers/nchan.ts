/**
 * A real nginx + nchan (Debian nginx-light + libnginx-mod-nchan) serving docs/nchan.conf, the file the `nchan` target
 * profile assumes, unchanged: it is included into a server block on a free 127.0.0.1 port. Everything nginx writes
 * (pid, error log, temp files) goes to a temp dir of its own, so tests run in parallel and as root.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './build.js';
import type { ChildServer } from './child-server.js';
import { startNginx } from './nginx.js';

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

/** Starts nginx with docs/nchan.conf and resolves once it accepts connections; stopped by `runCleanup`. */
export async function startNchan(): Promise<NchanServer> {
  const { dir, ports, process } = await startNginx({
    name: 'nchan',
    ports: 1,
    modules: [nchanModule()],
    // nchan's message store; the default 128 MB is more than a test needs, and several servers may run at once.
    http: (_dir, [port]) => `  nchan_shared_memory_size 16m;\n  server {\n    listen 127.0.0.1:${port};\n    include ${NCHAN_CONF};\n  }`,
  });
  const port = ports[0]!;
  return { url: `http://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${port}`, port, dir, process };
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
