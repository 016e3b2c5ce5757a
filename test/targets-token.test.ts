/**
 * `{token}` (src/targets/token.ts): the HS256 JWT of a user minted from --jwt-secret. A real `notify serve --auth
 * jwt` (in-process, port 0) takes it as that user and refuses one minted with another secret; and a swarm run with
 * --jwt-secret, whose subscribers carry their users' tokens, reaches every one of them.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { tokenMinter } from '../src/targets/token.js';
import { startTestGateway } from './helpers/gateway.js';
import { http, note } from './helpers/http.js';
import { runCleanup } from './helpers/lifecycle.js';
import { openSse } from './helpers/sse-client.js';
import { eventCounts, loadSwarm, scheduled, swarm, swarmConfig } from './helpers/swarm.js';

beforeAll(loadSwarm, 120_000);
afterEach(runCleanup);

const SECRET = 'token-test-secret-0123456789';

describe('{token}: the HS256 JWT of a user from --jwt-secret', () => {
  it('notify serve --auth jwt takes it as that user, once minted, and refuses another secret’s', async () => {
    const gw = await startTestGateway({ auth: 'jwt', jwtSecret: SECRET });
    const mint = tokenMinter(SECRET);
    expect(mint('alice')).toBe(mint('alice'));
    const c = await openSse(`${gw.url}/events`, { headers: { authorization: `Bearer ${mint('alice')}` } });
    await c.next('init');
    const sent = await http<{ delivered: number }>(`${gw.url}/publish`, { body: { user: 'alice', notification: note('for alice') } });
    expect(sent.status, sent.text).toBe(202);
    expect(sent.body.delivered).toBe(1);
    expect((await c.next('notification')).json.title).toBe('for alice');
    const other = await http(`${gw.url}/notifications?unread=1`, { headers: { authorization: `Bearer ${tokenMinter('another-secret-0123456789')('alice')}` } });
    expect(other.status).toBe(401);
  });

  it('a swarm run with --jwt-secret against it: every subscriber opens as its user and is owed and gets every probe', async () => {
    const gw = await startTestGateway({ auth: 'jwt', jwtSecret: SECRET });
    const conns = 30;
    const config = swarmConfig({
      url: [gw.url],
      jwtSecret: SECRET,
      transport: 'mix:sse=50,ws=30,poll=20',
      conns: String(conns),
      users: '10',
      ramp: '300ms',
      duration: '1s',
      rate: '10/s',
      userRate: '10/s',
      drain: '1s',
    });
    const total = (await swarm(config)).outcome.summary.total;
    expect(total.connections).toMatchObject({ target: conns, failed: 0 });
    expect(total.errors).toEqual({});
    const counts = eventCounts(total);
    // Each subscriber every broadcast, and each user probe reaches the 3 subscribers of its user.
    expect(counts).toMatchObject({ expected: conns * scheduled(10, 1000) + 3 * scheduled(10, 1000), lost: 0, duplicated: 0 });
    expect(counts.delivered).toBe(counts.expected);
  }, 30_000);
});
