/**
 * Shared pieces of the gateway's property-based tests: fast-check parameters (short in CI, a seed to replay), the
 * liveness check run after every case, and a gateway in its own process for the inputs that could kill one.
 *
 * Replay a failure: `FC_SEED=<seed> FC_PATH=<path> npx vitest run test/serve-fuzz-...` (fast-check prints both in the
 * failure message, which vitest shows). `FC_RUNS_FACTOR=10` runs ten times as many cases.
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import { http } from './http.js';
import { runNotify, type NotifyProcess } from './cli.js';
import { until } from './lifecycle.js';
import { buildRequest, rawExchange } from './raw-http.js';
import type { SseClient } from './sse-client.js';

/** fast-check parameters: `runs` cases (times FC_RUNS_FACTOR), a time cap so CI stays short, the seed from FC_SEED. */
export function fcParams<T>(runs: number, timeLimitMs = 10_000): fc.Parameters<T> {
  const factor = Number(process.env.FC_RUNS_FACTOR ?? 1);
  const seed = process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED);
  const path = process.env.FC_PATH;
  return {
    numRuns: Math.max(1, Math.round(runs * factor)),
    ...(seed === undefined ? {} : { seed }),
    ...(path === undefined ? {} : { path }),
    // A failing case on a network is shrunk for a bounded time only; the seed and path are printed either way.
    interruptAfterTimeLimit: timeLimitMs * factor,
    markInterruptAsFailure: false,
    endOnFailure: false,
  };
}

/** The gateway still answers GET /healthz with 200 {status: ok} (a fresh connection, so a poisoned one cannot hide it). */
export async function expectAlive(port: number, what: string): Promise<void> {
  const r = await rawExchange(port, buildRequest('GET', '/healthz', [['Connection', 'close']]), { timeoutMs: 3000 });
  expect(r.status, `GET /healthz after ${what}: ${r.raw.slice(0, 200)}${r.error ? ` (${r.error})` : ''}`).toBe(200);
  expect(JSON.parse(r.body)).toEqual({ status: 'ok' });
}

export interface SpawnedGateway {
  proc: NotifyProcess;
  url: string;
  port: number;
  /** Fails naming `what` when the process has exited (with its stderr), else checks /healthz. */
  expectAlive(what: string): Promise<void>;
}

/** `node bin/notify.js serve --port 0 ...`: a crash here is a failed assertion, not a dead test worker. */
export async function spawnGateway(args: string[] = []): Promise<SpawnedGateway> {
  const proc = runNotify(['serve', '--port', '0', '--log-level', 'error', ...args]);
  const [, url, port] = await proc.waitStderr(/listening on (http:\/\/127\.0\.0\.1:(\d+))/, 15_000);
  let exit: number | string | undefined;
  void proc.exited.then((c) => (exit = c));
  return {
    proc,
    url: url!,
    port: Number(port),
    async expectAlive(what) {
      // An exit takes a moment to be noticed: give the process a turn before looking.
      await new Promise((r) => setImmediate(r));
      if (exit !== undefined) throw new Error(`gateway process exited (${exit}) after ${what}; stderr:\n${proc.stderr().slice(-2000)}`);
      try {
        await expectAlive(Number(port), what);
      } catch (err) {
        await until(() => exit !== undefined, 'exit', 300).catch(() => {});
        // until() gives the exit handler time to set it; TS still narrows it to undefined from the check above.
        const code = exit as number | string | undefined;
        if (code !== undefined) throw new Error(`gateway process exited (${code}) after ${what}; stderr:\n${proc.stderr().slice(-2000)}`);
        throw err;
      }
    },
  };
}

/** POST /publish of one notification to a user; returns its id (the sentinel that proves nothing came before it). */
export async function publishSentinel(url: string, user: string, title: string): Promise<string> {
  const r = await http<{ ids: string[] }>(`${url}/publish`, { body: { user, notification: { type: 'system', title, body: '' } } });
  expect(r.status, r.text).toBe(202);
  return r.body.ids[0]!;
}

/** Long runs of one character (`[[[[...`) shown as `[×8000`, so a counterexample stays readable in the test output. */
export function abbreviate(text: string, max = 600): string {
  const short = text.replace(/(.)\1{15,}/gsu, (run: string, c: string) => `${c}×${[...run].length}`);
  return short.length > max ? `${short.slice(0, max)}…(${short.length} chars)` : short;
}

/** Gives a generated value a compact printed form in fast-check's failure report. */
export function printable<T extends object>(value: T, show: (v: T) => string): T {
  Object.defineProperty(value, fc.toStringMethod, { value: () => show(value), enumerable: false });
  return value;
}

/** The notifications (id and title) an SSE watcher got so far, single and batched, in order. */
export function deliveredNotes(watcher: SseClient): { id: string; title: string }[] {
  return watcher.inbox.items.flatMap((e) =>
    (e.type === 'notification' ? [e.json] : e.type === 'notifications:batch' ? e.json : []).map((n: any) => ({ id: n.id as string, title: n.title as string })),
  );
}

/** Ids of the notifications an SSE watcher got so far, single and batched, in order. */
export function deliveredIds(watcher: SseClient): string[] {
  return deliveredNotes(watcher).map((n) => n.id);
}

/** Publishes a sentinel to u1 and waits for the watcher (of u1) to get it; returns how many events it had by then. */
export async function fenceAt(watcher: SseClient, url: string): Promise<number> {
  const id = await publishSentinel(url, 'u1', 'fence');
  await watcher.inbox.waitUntil(() => deliveredIds(watcher).includes(id), `the fence ${id} on the watcher`, { timeoutMs: 3000 });
  return deliveredIds(watcher).indexOf(id) + 1;
}
