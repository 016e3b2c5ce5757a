/**
 * A server or broker the swarm starts itself for a scenario (`server: {command, ready}`, `broker: ...`), so that a
 * `server-restart` or `broker-restart` phase can kill it and start it again. `ready` is an http(s) URL that answers
 * 2xx once the process serves, or `tcp://host:port` that accepts a connection.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { NotifyError } from '../errors.js';

const READY_TIMEOUT_MS = 30_000;
/** What is kept of the process's output, for the error when it does not come up. */
const OUTPUT_TAIL = 4000;

export class ManagedProcess {
  private child: ChildProcess | undefined;
  private output = '';
  private exited: Promise<void> = Promise.resolve();

  constructor(
    readonly role: 'server' | 'broker',
    readonly command: string,
    readonly ready: string,
  ) {}

  /** Starts the command (through the shell) and resolves once `ready` answers; the time that took, ms. */
  async start(): Promise<number> {
    const t0 = performance.now();
    // `exec`: the shell becomes the command, so a signal reaches the server itself and not only its shell.
    const child = spawn('/bin/sh', ['-c', `exec ${this.command}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const keep = (d: Buffer) => (this.output = (this.output + d.toString()).slice(-OUTPUT_TAIL));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    let gone = false;
    void this.exited.then(() => (gone = true));
    const deadline = performance.now() + READY_TIMEOUT_MS;
    while (!(await this.answers())) {
      if (gone || performance.now() > deadline) {
        const why = gone ? `exited (${child.exitCode ?? child.signalCode})` : `not ready after ${READY_TIMEOUT_MS / 1000} s`;
        await this.stop();
        throw new NotifyError('E_SCENARIO_PROCESS', `the scenario's ${this.role} \`${this.command}\` ${why}: ${this.ready} never answered`, {
          hint: this.output.trim().split('\n').slice(-5).join('\n') || undefined,
        });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return performance.now() - t0;
  }

  /** Sends `signal` and waits for the exit (`command` is one command: the shell `exec`s it, see start). */
  async kill(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    await this.exited;
  }

  /** Ends it for good (SIGTERM, then SIGKILL after 5 s). */
  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const force = setTimeout(() => void this.kill('SIGKILL'), 5000);
    await this.kill('SIGTERM');
    clearTimeout(force);
  }

  private async answers(): Promise<boolean> {
    if (this.ready.startsWith('tcp://')) {
      const url = new URL(this.ready);
      return new Promise((resolve) => {
        const socket = connect({ host: url.hostname, port: Number(url.port) }, () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(false));
      });
    }
    try {
      const res = await fetch(this.ready, { signal: AbortSignal.timeout(1000) });
      await res.body?.cancel();
      return res.ok;
    } catch {
      return false;
    }
  }
}
