/**
 * Real third-party servers (nginx + nchan, Pushpin) run as child processes: each in a temp dir of its own, on free
 * 127.0.0.1 ports, stopped by `runCleanup`. Their output is kept, so a server that fails to start or answer says why.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onCleanup } from './lifecycle.js';

/** A port nothing listens on right now (bound on port 0 and released; the server binds it a moment later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** A fresh temp dir, removed by `runCleanup` (after the server in it has stopped: cleanup runs newest first). */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `notify-${prefix}-`));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export class ChildServer {
  readonly proc: ChildProcess;
  private out = '';
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exited: Promise<void>;

  constructor(
    readonly name: string,
    command: string,
    args: string[],
    cwd: string,
  ) {
    // Its own process group, so a runner that starts helpers (Pushpin) can be killed with all of them if need be.
    this.proc = spawn(command, args, { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: Buffer) => {
      this.out = (this.out + chunk.toString()).slice(-20_000);
    };
    this.proc.stdout!.on('data', keep);
    this.proc.stderr!.on('data', keep);
    this.exited = new Promise<void>((resolve) => {
      this.proc.once('error', (err) => {
        this.out += `\nspawn failed: ${err.message}`;
        this.exit ??= { code: null, signal: null };
        resolve();
      });
      this.proc.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve();
      });
    });
    onCleanup(() => this.stop());
  }

  /** stdout and stderr so far (the last 20 KB). */
  get output(): string {
    return this.out;
  }

  /** Resolves when `text` has appeared in the output; fails if the process exits first or after `timeoutMs`. */
  async waitOutput(pattern: RegExp, timeoutMs = 5000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = pattern.exec(this.out);
      if (m) return m;
      if (this.exit) throw this.failure(`exited (${this.describeExit()}) before printing ${pattern}`);
      if (Date.now() > deadline) throw this.failure(`printed no ${pattern} within ${timeoutMs}ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Resolves once `check()` succeeds (it is retried while it throws); fails if the process exits first. */
  async waitReady(what: string, check: () => Promise<void>, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      if (this.exit) throw this.failure(`exited (${this.describeExit()}) before ${what}`);
      try {
        await check();
        return;
      } catch (err) {
        last = err;
      }
      if (Date.now() > deadline) throw this.failure(`did not get to ${what} within ${timeoutMs}ms (last: ${String(last)})`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  failure(what: string): Error {
    return new Error(`${this.name} ${what}; its output:\n${this.out.slice(-4000)}`);
  }

  /** SIGTERM, then SIGKILL to the whole process group if it has not exited within `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    if (this.exit || this.proc.pid === undefined) return;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => {
      try {
        process.kill(-this.proc.pid!, 'SIGKILL');
      } catch {}
    }, graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  private describeExit(): string {
    return this.exit?.signal ? `signal ${this.exit.signal}` : `code ${this.exit?.code}`;
  }
}

/** Resolves when a TCP connection to 127.0.0.1:port is accepted; rejects otherwise. */
export function tcpAccepts(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve();
    });
    sock.once('error', reject);
  });
}
