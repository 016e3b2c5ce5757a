/**
 * Runs the selected checks at once (most of their time is waiting on the network), each bounded in time, and builds
 * the `notify.check/1` report. A check that throws is a failure of that check, with the error as its evidence.
 */
import { CheckContext } from './context.js';
import type { CheckConfig } from './options.js';
import { fail, ms, skip, Skip, type Check, type Outcome } from './outcome.js';
import { selectChecks } from './registry.js';
import { CHECK_SCHEMA, type CheckReport, type CheckResult } from './schema.js';

/** Beyond the measuring window, what a check may take for its own requests. */
const GRACE_MS = 15_000;

async function runOne(check: Check, ctx: CheckContext): Promise<CheckResult> {
  const started = performance.now();
  const limit = ctx.config.timeoutMs + GRACE_MS;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<Outcome>((resolve) => {
    timer = setTimeout(() => resolve(fail(`the check did not finish within ${ms(limit)}`)), limit);
  });
  let outcome: Outcome;
  try {
    outcome = await Promise.race([check.run(ctx), late]);
  } catch (err) {
    outcome = err instanceof Skip ? skip(err.reason) : fail(`the check failed to run: ${(err as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
  return { name: check.name, title: check.title, ...outcome, durationMs: Math.round(performance.now() - started) };
}

export async function runChecks(config: CheckConfig, checks: readonly Check[] = selectChecks(config.only)): Promise<CheckReport> {
  const ctx = new CheckContext(config);
  const startedAt = new Date().toISOString();
  const started = performance.now();
  let results: CheckResult[];
  try {
    results = await Promise.all(checks.map((c) => runOne(c, ctx)));
  } finally {
    await ctx.dispose();
  }
  const counts = { pass: 0, warn: 0, fail: 0, skip: 0 };
  for (const r of results) counts[r.status]++;
  return {
    schema: CHECK_SCHEMA,
    url: config.url,
    target: config.target.source,
    user: config.user,
    startedAt,
    durationMs: Math.round(performance.now() - started),
    counts,
    checks: results,
  };
}
