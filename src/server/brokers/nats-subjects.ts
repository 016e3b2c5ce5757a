/**
 * How the NATS broker lays notify streams out in JetStream: one stream `NOTIFY`, one subject per notify stream
 * (`notify.broadcast`, `notify.user.<id>`), the notify seq in a `Notify-Seq` header, the epoch from the stream's
 * creation time; and how a stored message reads back as a `StreamEvent`, with JetStream's errors sorted.
 */
import { performance } from 'node:perf_hooks';
import { DiscardPolicy, RetentionPolicy, StorageType, type JetStreamManager, type MsgHdrs, type StreamConfig, type StreamInfo } from 'nats';
import type { Notification } from '../../protocol/notification.js';
import { BROADCAST, USER_ID, USER_STREAM_PREFIX } from '../../protocol/streams.js';
import { HttpError } from '../http-error.js';
import type { StreamEvent } from './broker.js';

export const NATS_STREAM = 'NOTIFY';
const USER_SUBJECT = 'notify.user.';
const BROADCAST_SUBJECT = 'notify.broadcast';
/** Every subject of the stream. */
export const NATS_SUBJECTS = [`${USER_SUBJECT}>`, BROADCAST_SUBJECT];
export const SEQ_HEADER = 'Notify-Seq';

/** A subject's last message: its notify seq and its JetStream stream sequence. */
export interface Head {
  seq: number;
  streamSeq: number;
}

/** A message as read from JetStream, whichever API delivered it. */
export interface RawMsg {
  subject: string;
  data: Uint8Array;
  headers: MsgHdrs | undefined;
  streamSeq: number;
}

/** `user:<id>` -> `notify.user.<id>` with every character outside A-Z a-z 0-9 _ - written `~hh` (ids may hold dots). */
export function streamSubject(stream: string): string {
  if (stream === BROADCAST) return BROADCAST_SUBJECT;
  if (!stream.startsWith(USER_STREAM_PREFIX)) throw new HttpError(400, 'E_STREAM', `unknown stream "${stream.slice(0, 80)}"`);
  const id = stream.slice(USER_STREAM_PREFIX.length);
  return USER_SUBJECT + id.replace(/[^A-Za-z0-9_-]/g, (c) => `~${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** The notify stream of a subject; undefined for a subject notify does not use. */
export function subjectStream(subject: string): string | undefined {
  if (subject === BROADCAST_SUBJECT) return BROADCAST;
  if (!subject.startsWith(USER_SUBJECT)) return undefined;
  const id = subject.slice(USER_SUBJECT.length).replace(/~([0-9a-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  return USER_ID.test(id) ? USER_STREAM_PREFIX + id : undefined;
}

/** The epoch of a stream: its creation time (nanoseconds) in base 36, the same on every instance. */
export function epochOf(info: StreamInfo): string {
  const digits = info.created.replace(/\D/g, '').padEnd(23, '0').slice(0, 23);
  return BigInt(digits).toString(36);
}

/** A broker failure as the 503 (with Retry-After) a request gets. */
export function unavailable(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  const why = err instanceof Error ? err.message : String(err);
  return new HttpError(503, 'E_BROKER_UNAVAILABLE', `the NATS broker is unavailable (${why}); try again`, { 'Retry-After': '2' });
}

/** JetStream refused a publish because another message was stored on the subject since its head was read. */
export function isWrongLast(err: unknown): boolean {
  const e = err as { api_error?: { err_code?: number }; message?: string };
  return e.api_error?.err_code === 10071 || /wrong last sequence/i.test(e.message ?? '');
}

/** No such stream, consumer or message. */
export function isNotFound(err: unknown): boolean {
  const e = err as { api_error?: { err_code?: number }; message?: string };
  return e.api_error?.err_code === 10037 || e.api_error?.err_code === 10059 || /not found/i.test(e.message ?? '');
}

/**
 * A stream's info, the stream created when missing: file storage (a restart of nats-server keeps it and its
 * sequences), the oldest messages going first past the limits in `config`. Another instance creating it at the same
 * moment is fine.
 */
export async function openStream(jsm: JetStreamManager, config: Pick<StreamConfig, 'name' | 'subjects'> & Partial<StreamConfig>): Promise<StreamInfo> {
  try {
    return await jsm.streams.info(config.name);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  try {
    return await jsm.streams.add({ retention: RetentionPolicy.Limits, storage: StorageType.File, discard: DiscardPolicy.Old, num_replicas: 1, ...config });
  } catch {
    return await jsm.streams.info(config.name);
  }
}

const decoder = new TextDecoder();

/** The event a stored message holds; undefined for one notify did not write (skipped). */
export function decodeEvent(m: RawMsg, acceptedAt: number): StreamEvent | undefined {
  const stream = subjectStream(m.subject);
  const seq = Number(m.headers?.get(SEQ_HEADER));
  if (!stream || !Number.isSafeInteger(seq) || seq < 1) return undefined;
  try {
    const json = decoder.decode(m.data);
    const notification = JSON.parse(json) as Notification;
    if (typeof notification !== 'object' || notification === null || typeof notification.id !== 'string') return undefined;
    return { stream, seq, notification, json, acceptedAt };
  } catch {
    return undefined; // not written by notify: skipped
  }
}

/** JetStream's timestamps on this process's performance.now() scale: history from two streams interleaves by them. */
export function nanosToAcceptedAt(nanos: number): number {
  return nanos / 1e6 - performance.timeOrigin;
}

/** An RFC 3339 time with up to nanosecond digits on the performance.now() scale (Date.parse keeps only ms). */
export function isoToAcceptedAt(iso: string): number {
  const m = /^(.*?:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(iso);
  if (!m) return Date.parse(iso) - performance.timeOrigin;
  const fraction = Number(`0.${m[2] ?? '0'}`) * 1000;
  return Date.parse(m[1]! + m[3]!) - performance.timeOrigin + fraction;
}
