/**
 * `notify check --json`: schema `notify.check/1`, one report per run. Declared once, as the schema that validates it;
 * the types are derived from it.
 */
import { z } from 'zod';

export const CHECK_SCHEMA = 'notify.check/1';

export const CHECK_STATUSES = ['pass', 'warn', 'fail', 'skip'] as const;
export type CheckStatus = (typeof CHECK_STATUSES)[number];

/** Measured figures a script may read (`values.intervalMs`), next to the human-readable evidence. */
const value = z.union([z.number(), z.string(), z.boolean(), z.null()]);

export const checkResultSchema = z
  .object({
    /** The registry name (`--only NAME`). */
    name: z.string(),
    title: z.string(),
    status: z.enum(CHECK_STATUSES),
    /** One line: what was found. */
    summary: z.string(),
    /** What was seen on the wire: bytes, times, headers. */
    evidence: z.array(z.string()),
    /** What to change, per product (nginx, AWS ALB, Cloudflare, Heroku, the server itself); empty on a pass. */
    fix: z.array(z.string()),
    values: z.record(z.string(), value),
    durationMs: z.number(),
  })
  .strict();

export const checkReportSchema = z
  .object({
    schema: z.literal(CHECK_SCHEMA),
    url: z.string(),
    /** `built-in NAME` or the profile file's path. */
    target: z.string(),
    user: z.string(),
    startedAt: z.string(),
    durationMs: z.number(),
    counts: z.object({ pass: z.number(), warn: z.number(), fail: z.number(), skip: z.number() }).strict(),
    checks: z.array(checkResultSchema),
  })
  .strict();

export type CheckResult = z.infer<typeof checkResultSchema>;
export type CheckReport = z.infer<typeof checkReportSchema>;
