/**
 * quickPublishRequest (src/server/publish-schema.ts), the check of a publish request's common shape without zod: for
 * every input it takes, the result is exactly zod's (the same object, keys in the same order); it takes the requests
 * publishers send most; anything else is left to zod.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { publishRequestSchema, quickPublishRequest } from '../src/server/publish-schema.js';
import { fcParams } from './helpers/fuzz.js';

const userId = fc.oneof(
  fc.constantFrom('u1', '42', 'a@b.c', 'a b', '', 'x'.repeat(200), 'x'.repeat(201), '__proto__'),
  fc.integer({ min: -3, max: 1_000_000 }),
  fc.constantFrom(1.5, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2, null, true),
);
const text = (max: number) => fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('', 'y'.repeat(max), 'y'.repeat(max + 1)), fc.constantFrom(3, null));
const deep = (n: number): unknown => (n === 0 ? 1 : { a: deep(n - 1) });
const notification = fc.record(
  {
    type: fc.constantFrom('comment', 'mention', 'order', 'system', 'alert', 'nope', 1),
    title: text(1000),
    body: text(60_000),
    actorId: text(200),
    entityType: text(200),
    entityId: text(200),
    actionUrl: text(2000),
    imageUrl: text(2000),
    data: fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constantFrom({}, { probe: { seq: 1 } }, deep(32), deep(33), [1], null)),
    createdAt: fc.constantFrom('2026-12-04T20:00:00Z', '2026-12-04T20:00:00+01:00', 'yesterday'),
    extra: fc.constant('x'),
  },
  { requiredKeys: [] },
);
const request = fc.record(
  {
    user: userId,
    users: fc.array(userId, { maxLength: 3 }),
    broadcast: fc.constantFrom(true, false, 'true', 1),
    notification,
    extra: fc.constant(1),
  },
  { requiredKeys: [] },
);
// Requests of the shape taken (one target, fields of the right types), with every length at and just past its limit,
// so the property is about something and a limit that moved is found.
const validUser = fc.oneof(fc.stringMatching(/^[A-Za-z0-9_.@:+=-]{1,12}$/), fc.nat(), fc.constantFrom('x'.repeat(200), 'x'.repeat(201)));
const bounded = (max: number, min = 0) =>
  fc.oneof({ weight: 3, arbitrary: fc.string({ minLength: min, maxLength: 5 }) }, fc.constantFrom('y'.repeat(max), 'y'.repeat(max + 1)));
const validNotification = fc.record(
  {
    type: fc.constantFrom('comment', 'mention', 'order', 'system', 'alert'),
    title: bounded(1000, 1),
    body: bounded(60_000),
    actorId: bounded(200),
    entityType: bounded(200),
    entityId: bounded(200),
    actionUrl: bounded(2000),
    imageUrl: bounded(2000),
    data: fc.oneof(fc.dictionary(fc.string({ maxLength: 4 }), fc.jsonValue({ maxDepth: 2 })), fc.constantFrom(deep(31), deep(32), deep(33))),
  },
  { requiredKeys: ['type', 'title'] },
);
const validRequest = fc.oneof(
  fc.record({ user: validUser, notification: validNotification }),
  fc.record({ users: fc.array(validUser, { minLength: 1, maxLength: 3 }), notification: validNotification }),
  fc.record({ broadcast: fc.constant(true), notification: validNotification }),
);
// As a body arrives: through JSON (no undefined, no -0, own __proto__ keys as JSON.parse makes them).
const asBody = (v: unknown) => JSON.parse(JSON.stringify(v)) as unknown;

describe('quickPublishRequest', () => {
  it('gives exactly what zod gives, keys in the same order, for every request it takes', () => {
    let taken = 0;
    fc.assert(
      fc.property(fc.oneof(validRequest, request), (v) => {
        const raw = asBody(v);
        const quick = quickPublishRequest(raw);
        if (quick === undefined) return;
        taken++;
        const z = publishRequestSchema.safeParse(raw);
        expect(z.success, JSON.stringify(raw)).toBe(true);
        expect(JSON.stringify(quick)).toBe(JSON.stringify(z.data));
        expect(quick).toStrictEqual(z.data);
      }),
      fcParams(3000),
    );
    // The generator reaches the shape it takes (a check that never says yes would pass the above).
    expect(taken).toBeGreaterThan(100);
  });

  it('takes what publishers send most: one user or a broadcast, type, title, a body, a probe in data', () => {
    const probe = { data: { probe: { run: 'r', seq: 3, t: 1, s: 'u1' } } };
    for (const raw of [
      { user: 'u1', notification: { type: 'system', title: 'swarm probe', body: '', ...probe } },
      { broadcast: true, notification: { type: 'alert', title: 'hi' } },
      { users: ['a', 7], notification: { type: 'comment', title: 't', actorId: 'x' } },
    ]) {
      const quick = quickPublishRequest(asBody(raw));
      expect(quick, JSON.stringify(raw)).toBeDefined();
      expect(quick).toStrictEqual(publishRequestSchema.parse(asBody(raw)));
    }
  });

  it.each([
    ['a createdAt', { user: 'u1', notification: { type: 'system', title: 't', createdAt: '2026-12-04T20:00:00Z' } }],
    ['a __proto__ key in data', JSON.parse('{"user":"u1","notification":{"type":"system","title":"t","data":{"__proto__":{"x":1}}}}')],
    ['two targets', { user: 'u1', broadcast: true, notification: { type: 'system', title: 't' } }],
    ['an unknown field', { user: 'u1', notification: { type: 'system', title: 't', color: 'red' } }],
  ])('leaves %s to zod', (_what, raw) => {
    expect(quickPublishRequest(raw)).toBeUndefined();
  });
});
