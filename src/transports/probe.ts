/** The probe a received notification carries (the probe's shape and its clock: src/protocol/probe.ts). */
import { asProbe, type Probe } from '../protocol/probe.js';
import type { ReceivedNotification } from './transport.js';

/** The probe in `data.probe`, or undefined when there is none or it is malformed. */
export function probeOf(n: ReceivedNotification): Probe | undefined {
  const data = n.data;
  if (typeof data !== 'object' || data === null) return undefined;
  return asProbe((data as { probe?: unknown }).probe);
}
