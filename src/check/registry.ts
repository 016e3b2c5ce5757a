/** Every check by name, in report order. `--only NAME` picks from these; an unknown name lists them. */
import { HEARTBEAT_CHECKS } from './checks-heartbeat.js';
import { SSE_HEAD_CHECKS } from './checks-sse-head.js';
import { STREAMING_CHECKS } from './checks-streaming.js';
import type { Check } from './outcome.js';

export const CHECKS: readonly Check[] = [...SSE_HEAD_CHECKS, ...STREAMING_CHECKS, ...HEARTBEAT_CHECKS];

export const CHECK_NAMES: readonly string[] = CHECKS.map((c) => c.name);

export function selectChecks(only: readonly string[] | undefined): Check[] {
  return only === undefined || only.length === 0 ? [...CHECKS] : CHECKS.filter((c) => only.includes(c.name));
}
