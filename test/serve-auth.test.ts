/**
 * `--auth jwt`: HS256 tokens (signed here with jose) from the Authorization header or ?token=, `sub` is the user,
 * a user reads only its own stream. Also the refusal to listen beyond loopback without auth.
 */
import { SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveServeOptions } from '../src/server/config.js';
import { NotifyError } from '../src/errors.js';
import { startTestGateway } from './helpers/gateway.js';
import { expectError, http, publishEach } from './helpers/http.js';
import { runCleanup } from './helpers/lifecycle.js';
import { poll } from './helpers/poll.js';
import { refused, type Refused } from './helpers/refusal.js';
import { openSse } from './helpers/sse-client.js';
import { openWs } from './helpers/ws-client.js';

afterEach(runCleanup);

const SECRET = 'test-secret-of-32-characters-xyz';

function token(
  sub: string | undefined,
  { secret = SECRET, expiresIn = '5m', alg = 'HS256' }: { secret?: string; expiresIn?: string | number; alg?: string } = {},
): Promise<string> {
  const jwt = new SignJWT({}).setProtectedHeader({ alg }).setIssuedAt().setExpirationTime(expiresIn);
  if (sub !== undefined) jwt.setSubject(sub);
  return jwt.sign(new TextEncoder().encode(secret));
}

const bearer = (t: string) => ({ Authorization: `Bearer ${t}` });

function expectRefusal(r: Refused, status: number, code: string): string {
  expect(r.status, r.text).toBe(status);
  expect(r.body).toEqual({ error: { code, message: expect.any(String) } });
  return r.body.error.message as string;
}

async function jwtGateway() {
  return startTestGateway({ auth: 'jwt', jwtSecret: SECRET });
}

describe('auth jwt', () => {
  it("a valid token in the Authorization header or ?token= opens the token user's stream on SSE, WS and poll", async () => {
    const gw = await jwtGateway();
    const t = await token('alice');
    const viaHeader = await openSse(`${gw.url}/events`, { headers: bearer(t) });
    const viaQuery = await openSse(`${gw.url}/events?token=${t}`);
    const ws = await openWs(`${gw.wsUrl}/ws?token=${t}`);
    const wsHeader = await openWs(`${gw.wsUrl}/ws?user=alice`, { headers: bearer(t) });
    for (const c of [viaHeader, viaQuery]) expect((await c.next('init')).json.cursor).toBe(gw.cursor(0, 0));
    for (const c of [ws, wsHeader]) expect((await c.next('init')).cursor).toBe(gw.cursor(0, 0));

    const [id] = await publishEach(gw.url, { user: 'alice' }, ['for alice']);
    await publishEach(gw.url, { user: 'mallory' }, ['for mallory']);
    for (const c of [viaHeader, viaQuery]) expect((await c.next('notification')).json.id).toBe(id);
    for (const c of [ws, wsHeader]) expect((await c.next('notification')).notification.id).toBe(id);

    const p = await poll(gw.url, { cursor: gw.cursor(0, 0), timeout: 1, headers: bearer(t) });
    expect(p.status).toBe(200);
    expect(p.body.notifications.map((n) => n.id)).toEqual([id]);
    const list = await http(`${gw.url}/notifications?unread=1`, { headers: bearer(t) });
    expect(list.body.notifications.map((n: any) => n.id)).toEqual([id]);

    // Read receipts are the token user's too.
    const mark = await http(`${gw.url}/notifications/${id}/read`, { method: 'POST', headers: bearer(t) });
    expect(mark.status).toBe(200);
    expect((await viaHeader.next('read')).json).toEqual({ id, readAt: mark.body.readAt });
  });

  it('no token -> 401 on every subscribe endpoint and on /notifications', async () => {
    const gw = await jwtGateway();
    expect(expectRefusal(await refused(openSse(`${gw.url}/events?user=alice`)), 401, 'E_AUTH')).toMatch(/missing token/);
    expectRefusal(await refused(openWs(`${gw.wsUrl}/ws?user=alice`)), 401, 'E_AUTH');
    expectError(await poll(gw.url, { user: 'alice' }), 401, 'E_AUTH');
    expectError(await http(`${gw.url}/notifications?user=alice`), 401, 'E_AUTH');
  });

  it('an expired token -> 401 "token expired"', async () => {
    const gw = await jwtGateway();
    const t = await token('alice', { expiresIn: Math.floor(Date.now() / 1000) - 60 });
    expect(expectRefusal(await refused(openSse(`${gw.url}/events`, { headers: bearer(t) })), 401, 'E_AUTH')).toBe('token expired');
    expectRefusal(await refused(openWs(`${gw.wsUrl}/ws?token=${t}`)), 401, 'E_AUTH');
  });

  it('a token signed with another secret, a garbled token, a token without sub, or another algorithm -> 401', async () => {
    const gw = await jwtGateway();
    const bad = [
      await token('alice', { secret: 'another-secret-of-32-characters!' }),
      'not.a.jwt',
      await token(undefined),
      await token('alice', { alg: 'HS512' }),
    ];
    for (const t of bad) {
      expectRefusal(await refused(openSse(`${gw.url}/events`, { headers: bearer(t) })), 401, 'E_AUTH');
      expectError(await poll(gw.url, { headers: bearer(t) }), 401, 'E_AUTH');
    }
  });

  it('WS upgrade with a bad token is refused with 401 before any frame', async () => {
    const gw = await jwtGateway();
    const t = await token('alice', { secret: 'another-secret-of-32-characters!' });
    const r = await refused(openWs(`${gw.wsUrl}/ws`, { headers: bearer(t) }));
    expectRefusal(r, 401, 'E_AUTH');
    expect(gw.hub.size).toBe(0);
  });

  it("?user= naming another user with a token -> 403 (another user's stream), the same user is fine", async () => {
    const gw = await jwtGateway();
    const t = await token('alice');
    expect(expectRefusal(await refused(openSse(`${gw.url}/events?user=bob`, { headers: bearer(t) })), 403, 'E_FORBIDDEN')).toMatch(/alice.*bob/);
    expectRefusal(await refused(openWs(`${gw.wsUrl}/ws?user=bob&token=${t}`)), 403, 'E_FORBIDDEN');
    expectError(await poll(gw.url, { user: 'bob', headers: bearer(t) }), 403, 'E_FORBIDDEN');
    expectError(await http(`${gw.url}/notifications?user=bob`, { headers: bearer(t) }), 403, 'E_FORBIDDEN');
    const own = await openSse(`${gw.url}/events?user=alice`, { headers: bearer(t) });
    expect((await own.next('init')).json.cursor).toBe(gw.cursor(0, 0));
  });

  it("a user cannot mark another user's notification read -> 403, and bob's stream never hears of it", async () => {
    const gw = await jwtGateway();
    const bob = await openSse(`${gw.url}/events`, { headers: bearer(await token('bob')) });
    await bob.next('init');
    const [id] = await publishEach(gw.url, { user: 'bob' }, ['bob only']);
    await bob.next('notification');
    const r = await http(`${gw.url}/notifications/${id}/read`, { method: 'POST', headers: bearer(await token('alice')) });
    expectError(r, 403, 'E_FORBIDDEN');
    const [next] = await publishEach(gw.url, { user: 'bob' }, ['marker']);
    expect((await bob.next('notification')).json.id).toBe(next);
  });
});

describe('listening beyond loopback', () => {
  it('without auth is a usage error (exit code 2) naming the missing flags', () => {
    let err: unknown;
    try {
      resolveServeOptions({ host: '0.0.0.0' }, {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NotifyError);
    const e = err as NotifyError;
    expect(e.exitCode).toBe(2);
    expect(e.code).toBe('E_USAGE');
    expect(e.message).toContain('0.0.0.0');
    expect(e.message).toContain('--auth jwt');
    expect(e.message).toContain('--publish-key');
    expect(e.hint).toContain('--insecure');
  });

  it('with jwt but no publish key names only --publish-key', () => {
    expect(() => resolveServeOptions({ host: '10.1.2.3', auth: 'jwt', jwtSecret: SECRET }, {})).toThrow(/without --publish-key$/);
  });

  it('is allowed with --auth jwt and --publish-key (secret from the environment), or with --insecure', () => {
    const secured = resolveServeOptions({ host: '0.0.0.0', auth: 'jwt', publishKey: 'k' }, { NOTIFY_JWT_SECRET: SECRET });
    expect(secured).toMatchObject({ host: '0.0.0.0', auth: 'jwt', jwtSecret: SECRET, publishKey: 'k' });
    const insecure = resolveServeOptions({ host: '0.0.0.0', insecure: true }, {});
    expect(insecure).toMatchObject({ host: '0.0.0.0', auth: 'none', insecure: true });
  });

  it('loopback addresses need neither', () => {
    for (const host of ['127.0.0.1', '127.0.0.2', 'localhost', '::1']) expect(resolveServeOptions({ host }, {}).host).toBe(host);
  });

  it('--auth jwt without a secret, or with a short one, is a usage error', () => {
    expect(() => resolveServeOptions({ auth: 'jwt' }, {})).toThrow(/--jwt-secret or set NOTIFY_JWT_SECRET/);
    expect(() => resolveServeOptions({ auth: 'jwt', jwtSecret: 'short' }, {})).toThrow(/at least 16 characters/);
  });
});
