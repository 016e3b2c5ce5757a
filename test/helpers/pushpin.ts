/**
 * A real Pushpin (Debian `pushpin`: condure, zurl, pushpin-proxy, pushpin-handler) in front of the GRIP origin the
 * project ships (docs/pushpin/grip-origin.mjs), configured by docs/pushpin/pushpin.conf and routes with only the
 * ports and paths changed: free 127.0.0.1 ports for subscribers and for the publish API, and a temp dir for the
 * runtime files and every ZeroMQ ipc socket, so several instances run at once and as root.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './build.js';
import { ChildServer, freePort, tcpAccepts, tempDir } from './child-server.js';

const DOCS = `${ROOT}docs/pushpin`;

export interface PushpinServer {
  /** Where subscribers connect: http://127.0.0.1:PORT (GET /events?user=U). */
  readonly url: string;
  /** The HTTP publish API: http://127.0.0.1:PORT/publish/ */
  readonly publishUrl: string;
  /** The origin behind Pushpin, for checks that bypass it. */
  readonly originUrl: string;
  readonly dir: string;
  readonly process: ChildServer;
}

/** Replaces the one `key=...` line of an ini text; a key that is missing or repeated fails (the file changed shape). */
function setKey(ini: string, key: string, value: string): string {
  const re = new RegExp(`^${key}=.*$`, 'gm');
  const n = ini.match(re)?.length ?? 0;
  if (n !== 1) throw new Error(`docs/pushpin/pushpin.conf: expected one "${key}=" line, found ${n}`);
  return ini.replace(re, `${key}=${value}`);
}

async function startOrigin(dir: string): Promise<{ url: string; port: number }> {
  const origin = new ChildServer('grip-origin.mjs', process.execPath, [`${DOCS}/grip-origin.mjs`, '--port', '0'], dir);
  const m = await origin.waitOutput(/listening on (http:\/\/127\.0\.0\.1:(\d+))\n/);
  return { url: m[1]!, port: Number(m[2]) };
}

function writeConfig(dir: string, originPort: number, httpPort: number, publishPort: number): string {
  const routes = readFileSync(`${DOCS}/routes`, 'utf8');
  if (!routes.includes('127.0.0.1:8000')) throw new Error('docs/pushpin/routes no longer routes to 127.0.0.1:8000');
  writeFileSync(join(dir, 'routes'), routes.replace('127.0.0.1:8000', `127.0.0.1:${originPort}`));
  let conf = readFileSync(`${DOCS}/pushpin.conf`, 'utf8');
  conf = setKey(conf, 'rundir', join(dir, 'run'));
  conf = setKey(conf, 'logdir', join(dir, 'log'));
  conf = setKey(conf, 'http_port', `127.0.0.1:${httpPort}`);
  conf = setKey(conf, 'push_in_http_port', String(publishPort));
  const path = join(dir, 'pushpin.conf');
  writeFileSync(path, conf);
  return path;
}

/**
 * Resolves once Pushpin works end to end: a held stream opens (condure, proxy, zurl, origin and the handler are all
 * connected; until then the proxy answers 500 "Accept service unavailable") and an item published on its channel
 * reaches it (the publish API and the handler's subscriptions work). Rejects otherwise, to be retried.
 */
async function ready(url: string, publishUrl: string): Promise<void> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 1000);
  try {
    const res = await fetch(`${url}/events?user=ready-check`, { signal: abort.signal });
    if (res.status !== 200) throw new Error(`a subscribe through Pushpin answered ${res.status}: ${await res.text()}`);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let seen = '';
    const read = async (until: string) => {
      while (!seen.includes(until)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`the stream ended before ${JSON.stringify(until)}; got ${JSON.stringify(seen)}`);
        seen += decoder.decode(value, { stream: true });
      }
    };
    await read(': stream open\n\n');
    const items = { items: [{ channel: 'user-ready-check', formats: { 'http-stream': { content: ': ready\n\n' } } }] };
    const pub = await fetch(publishUrl, { method: 'POST', body: JSON.stringify(items), signal: abort.signal });
    if (pub.status !== 200) throw new Error(`the publish API answered ${pub.status}: ${await pub.text()}`);
    await read(': ready\n\n');
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}

/** Starts the origin and Pushpin; resolves once both answer. Stopped (and the dir removed) by `runCleanup`. */
export async function startPushpin(): Promise<PushpinServer> {
  const dir = tempDir('pushpin');
  mkdirSync(join(dir, 'run'));
  mkdirSync(join(dir, 'log'));
  const origin = await startOrigin(dir);
  for (let attempt = 1; ; attempt++) {
    const [httpPort, publishPort] = [await freePort(), await freePort()];
    const conf = writeConfig(dir, origin.port, httpPort, publishPort);
    // --merge-output: the services log to the runner's stdout (kept for failure messages), not to files in logdir.
    const proc = new ChildServer('pushpin', 'pushpin', ['--config', conf, '--merge-output'], dir);
    const url = `http://127.0.0.1:${httpPort}`;
    const publishUrl = `http://127.0.0.1:${publishPort}/publish/`;
    try {
      await proc.waitReady(`accepting on ${httpPort} and ${publishPort}`, async () => {
        await tcpAccepts(httpPort);
        await tcpAccepts(publishPort);
        await ready(url, publishUrl);
      });
      return { url, publishUrl, originUrl: origin.url, dir, process: proc };
    } catch (err) {
      await proc.stop();
      if (attempt >= 3 || !/in use/i.test(proc.output)) throw err;
    }
  }
}

/** An SSE event as Pushpin's http-stream format carries it: `event: notification` and one data line. */
export function sseEvent(data: string, event = 'notification'): string {
  return `event: ${event}\ndata: ${data}\n\n`;
}

/** Publishes one http-stream item on `channel` through the HTTP publish API (200 "Published"). */
export async function pushpinPublish(server: PushpinServer, channel: string, content: string): Promise<void> {
  const body = JSON.stringify({ items: [{ channel, formats: { 'http-stream': { content } } }] });
  const res = await fetch(server.publishUrl, { method: 'POST', body, headers: { 'Content-Type': 'application/json' } });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`publish on ${channel}: HTTP ${res.status} ${text}`);
}
