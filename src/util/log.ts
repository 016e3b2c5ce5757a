/** One line per event worth logging, to the stream it is given (stderr in the CLI). */
import type { Writable } from 'node:stream';
import { usageError } from '../errors.js';

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Logger {
  error(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
}

export function parseLogLevel(flag: string, value: string): LogLevel {
  if ((LOG_LEVELS as readonly string[]).includes(value)) return value as LogLevel;
  throw usageError(`${flag} must be one of ${LOG_LEVELS.join(', ')} (got "${value}")`);
}

export function createLogger(out: Writable, level: LogLevel = 'info'): Logger {
  const max = LOG_LEVELS.indexOf(level);
  const line = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (LOG_LEVELS.indexOf(lvl) > max) return;
    let text = `${new Date().toISOString()} ${lvl.padEnd(5)} ${msg}`;
    if (fields) for (const [k, v] of Object.entries(fields)) text += ` ${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`;
    out.write(text + '\n');
  };
  return {
    error: (m, f) => line('error', m, f),
    warn: (m, f) => line('warn', m, f),
    info: (m, f) => line('info', m, f),
    debug: (m, f) => line('debug', m, f),
  };
}

export const silentLogger: Logger = { error() {}, warn() {}, info() {}, debug() {} };
