/** The small pure parts of src/transports: registry, probe, UTF-8 cut points, error codes, request building. */
import { describe, expect, it } from 'vitest';
import { isNotifyError } from '../src/errors.js';
import { errorCode, retryAfterMs, slug } from '../src/transports/codes.js';
import { epochMs, latencyMs, nowEpochMs } from '../src/protocol/probe.js';
import { createTransport, hasReadReceipts, probeOf, transportNames } from '../src/transports/index.js';
import { subscribeRequest } from '../src/transports/target-url.js';
import { completeLength } from '../src/transports/utf8.js';
import { RecordingSink } from './transports-helpers.js';
import { TRANSPORT_NAMES } from '../src/protocol/transports.js';

describe('transport registry', () => {
  it('creates each transport by name', async () => {
    for (const name of TRANSPORT_NAMES) {
      const t = createTransport(name, new RecordingSink());
      expect(t.name).toBe(name);
      expect(hasReadReceipts(t)).toBe(name === 'ws');
      await t.dispose();
    }
    expect(transportNames()).toEqual(['sse', 'ws', 'poll', 'socketio']);
  });

  it('reports a target that is not a usable URL as a failed attempt, not a throw', async () => {
    for (const name of TRANSPORT_NAMES) {
      const sink = new RecordingSink();
      const t = createTransport(name, sink);
      t.open(1, { url: 'not a url' });
      t.open(2, { url: 'ftp://127.0.0.1/' });
      expect([...sink.plain(1), ...sink.plain(2)], name).toEqual([
        { kind: 'error', code: 'bad-url', retryMs: undefined },
        { kind: 'error', code: 'bad-url', retryMs: undefined },
      ]);
      await t.dispose();
    }
  });

  it('fails on an unknown name with a usage error listing the valid ones', () => {
    let err: unknown;
    try {
      createTransport('grpc', new RecordingSink());
    } catch (e) {
      err = e;
    }
    expect(isNotifyError(err)).toBe(true);
    expect(err).toMatchObject({ code: 'E_USAGE', exitCode: 2, message: '--transport must be one of sse, ws, poll, socketio (got "grpc")' });
  });
});

describe('probe', () => {
  it('extracts a well-formed probe and rejects malformed ones', () => {
    const probe = { run: 'r1', stream: 'user:42', seq: 7, t: 1732190400123.25 };
    expect(probeOf({ id: 'x', data: { probe, other: 1 } })).toEqual(probe);
    expect(probeOf({ id: 'x' })).toBeUndefined();
    expect(probeOf({ id: 'x', data: {} })).toBeUndefined();
    expect(probeOf({ id: 'x', data: { probe: null } })).toBeUndefined();
    expect(probeOf({ id: 'x', data: { probe: { ...probe, seq: '7' } } })).toBeUndefined();
    expect(probeOf({ id: 'x', data: { probe: { ...probe, t: undefined } } })).toBeUndefined();
    expect(probeOf({ id: 'x', data: { probe: { ...probe, seq: 0 } } })).toBeUndefined();
    expect(probeOf({ id: 'x', data: { probe: { ...probe, seq: 1.5 } } })).toBeUndefined();
    expect(probeOf({ id: 'x', data: { probe: { ...probe, t: Number.NaN } } })).toBeUndefined();
  });

  it('puts performance.now() readings on the epoch clock of probe.t', () => {
    const at = performance.now();
    expect(Math.abs(epochMs(at) - Date.now())).toBeLessThan(50);
    expect(epochMs(at)).toBe(performance.timeOrigin + at);
    expect(nowEpochMs()).toBeGreaterThanOrEqual(epochMs(at));
    expect(latencyMs({ run: 'r', stream: 'broadcast', seq: 1, t: epochMs(at) - 12.5 }, at)).toBeCloseTo(12.5, 6);
  });
});

describe('completeLength', () => {
  it('never cuts inside a UTF-8 character', () => {
    const text = 'aé✓𝄞z';
    const bytes = Buffer.from(text);
    // Every prefix must decode to a prefix of the text, and the held-back tail must be shorter than 4 bytes.
    for (let n = 0; n <= bytes.length; n++) {
      const cut = completeLength(bytes.subarray(0, n));
      expect(cut).toBeLessThanOrEqual(n);
      expect(n - cut).toBeLessThan(4);
      expect(text.startsWith(bytes.subarray(0, cut).toString('utf8'))).toBe(true);
    }
    expect(completeLength(bytes)).toBe(bytes.length);
    expect(completeLength(Buffer.from([0x61, 0xf0, 0x9d]))).toBe(1);
  });
});

describe('codes', () => {
  it('maps library errors to stable codes', () => {
    expect(errorCode(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBe('ECONNREFUSED');
    expect(errorCode(Object.assign(new Error('x'), { code: 'UND_ERR_CONNECT_TIMEOUT' }))).toBe('timeout');
    expect(errorCode(Object.assign(new Error('x'), { code: 'UND_ERR_BODY_TIMEOUT' }))).toBe('idle-timeout');
    expect(errorCode(new AggregateError([Object.assign(new Error('a'), { code: 'ECONNREFUSED' })]))).toBe('ECONNREFUSED');
    expect(errorCode(new Error('Opening handshake has timed out'))).toBe('timeout');
    expect(errorCode('weird')).toBe('error');
  });

  it('reads Retry-After as seconds or a date', () => {
    expect(retryAfterMs('2')).toBe(2000);
    expect(retryAfterMs(undefined)).toBeUndefined();
    expect(retryAfterMs('soon')).toBeUndefined();
    const ms = retryAfterMs(new Date(Date.now() + 5000).toUTCString())!;
    expect(ms).toBeGreaterThan(3000);
    expect(ms).toBeLessThanOrEqual(5000);
    expect(slug('slow consumer')).toBe('slow-consumer');
    expect(slug(undefined)).toBe('unknown');
  });
});

describe('subscribeRequest', () => {
  it('builds path, query and headers from a target', () => {
    const r = subscribeRequest({ url: 'http://127.0.0.1:8080/gw/?tenant=a', user: 'u 1', token: 'T', headers: { 'x-a': 'b' } }, '/events', [
      ['cursor', 'E.1.2'],
      ['timeout', undefined],
    ]);
    expect(r).toEqual({
      origin: 'http://127.0.0.1:8080',
      path: '/gw/events?tenant=a&user=u+1&cursor=E.1.2',
      headers: { 'x-a': 'b', authorization: 'Bearer T' },
    });
    expect(subscribeRequest({ url: 'https://h', path: '/socket' }, '/ws', [], 'ws')).toEqual({ origin: 'wss://h', path: '/socket', headers: {} });
  });
});
