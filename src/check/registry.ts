/** Every check by name, in report order. `--only NAME` picks from these; an unknown name lists them. */
import { HEARTBEAT_CHECKS } from './checks-heartbeat.js';
import { SSE_HEAD_CHECKS } from './checks-sse-head.js';
import { STREAMING_CHECKS } from './checks-streaming.js';
import type { Check } from './outcome.js';
import { AUTH_CHECKS } from './checks-auth.js';
import { CORS_CHECKS } from './checks-cors.js';
import { HTTP_CHECKS } from './checks-http.js';
import { POLL_CHECKS } from './checks-poll.js';
import { RESUME_CHECKS } from './checks-resume.js';
import { WS_CHECKS } from './checks-ws.js';

export const CHECKS: readonly Check[] = [
  ...HTTP_CHECKS,
  ...SSE_HEAD_CHECKS,
  ...STREAMING_CHECKS,
  ...HEARTBEAT_CHECKS,
  ...RESUME_CHECKS,
  ...WS_CHECKS,
  ...POLL_CHECKS,
  ...AUTH_CHECKS,
  ...CORS_CHECKS,
];

export const CHECK_NAMES: readonly string[] = CHECKS.map((c) => c.name);

export function selectChecks(only: readonly string[] | undefined): Check[] {
  return only === undefined || only.length === 0 ? [...CHECKS] : CHECKS.filter((c) => only.includes(c.name));
}
