/**
 * Debian's nginx as a test server, the one starter the nginx helpers share (check-nginx.ts, nchan.ts): a temp dir of
 * its own for the pid, logs and temp files (so tests run in parallel and as root), free 127.0.0.1 ports, the module
 * load lines, the master/worker settings; started in the foreground, ready once every port accepts, stopped by
 * `runCleanup`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChildServer, freePort, tcpAccepts, tempDir } from './child-server.js';

export interface NginxOptions {
  /** Names the temp dir and the process in errors. */
  name: string;
  /** How many free ports to pick. */
  ports: number;
  /** What goes inside `http { }` (the server blocks and their http-level settings), for the picked ports. */
  http: (dir: string, ports: number[]) => string;
  /** Paths of dynamic modules to load (`load_module`). */
  modules?: string[];
}

export interface Nginx {
  dir: string;
  ports: number[];
  process: ChildServer;
}

function nginxConf(dir: string, http: string, modules: readonly string[]): string {
  // As root, nginx's workers would switch to `nobody`, who cannot write to this 0700 temp dir.
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  const load = modules.map((m) => `load_module ${m};\n`).join('');
  return `${load}${user}worker_processes 1;
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
${http}
}
`;
}

export async function startNginx(options: NginxOptions): Promise<Nginx> {
  const dir = tempDir(options.name);
  mkdirSync(join(dir, 'tmp'));
  // A port is free when chosen but could be taken before nginx binds it: try again with others.
  for (let attempt = 1; ; attempt++) {
    const ports: number[] = [];
    for (let i = 0; i < options.ports; i++) ports.push(await freePort());
    writeFileSync(join(dir, 'nginx.conf'), nginxConf(dir, options.http(dir, ports), options.modules ?? []));
    const proc = new ChildServer(options.name, 'nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], dir);
    try {
      await proc.waitReady(`accepting on ${ports.join(', ')}`, async () => void (await Promise.all(ports.map((p) => tcpAccepts(p)))));
      return { dir, ports, process: proc };
    } catch (err) {
      await proc.stop();
      if (attempt >= 3 || !/Address already in use/.test(proc.output)) throw err;
    }
  }
}
