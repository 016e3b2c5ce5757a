/** The usage error a call throws: exit code 2, code E_USAGE, and its message (for the test to compare). */
import { expect } from 'vitest';
import { NotifyError } from '../../src/errors.js';

export function usage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(NotifyError);
    expect((err as NotifyError).exitCode).toBe(2);
    expect((err as NotifyError).code).toBe('E_USAGE');
    return (err as Error).message;
  }
  throw new Error('expected a usage error, nothing was thrown');
}
