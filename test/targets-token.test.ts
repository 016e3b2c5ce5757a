/**
 * `{token}` (src/targets/token.ts): the HS256 JWT of a user minted from --jwt-secret. A real `notify serve --auth
 * jwt` (in-process, port 0) takes it as that user and refuses one minted with another secret; and a swarm run with
 * --jwt-secret, whose subscribers carry their users' tokens, reaches every one of them.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jwtVerify } from 'jose';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BUILTIN_TARGETS } from '../src/targets/builtins.js';
import { tokenMinter } from '../src/targets/token.js';
import { startTestGateway } from './helpers/gateway.js';
import { http, note } from './helpers/http.js';
import { listenForTest, onCleanup, runCleanup } from './helpers/lifecycle.js';
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

  it('a swarm run with --jwt-secret sends each user probe with its user’s token in a publish header', async () => {
    const gw = await startTestGateway({ auth: 'jwt', jwtSecret: SECRET });
    // A real hop in front of the gateway's POST /publish: notes each request's Authorization and passes it on.
    const seen: { authorization: string | undefined; user: string }[] = [];
    const hop = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        seen.push({ authorization: req.headers.authorization, user: (JSON.parse(body) as { user: string }).user });
        fetch(`${gw.url}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then(
          async (r) => res.writeHead(r.status, { 'content-type': 'application/json' }).end(await r.text()),
          () => res.writeHead(502).end(),
        );
      });
    });
    const hopUrl = await listenForTest(hop);
    const dir = mkdtempSync(join(tmpdir(), 'notify-token-'));
    onCleanup(() => rmSync(dir, { recursive: true, force: true }));
    // The built-in notify profile, publishing one request per probe through the hop with the user's token.
    const notifyProfile = BUILTIN_TARGETS.get('notify')!;
    const profile = notifyProfile
      .replace('name: notify', 'name: notify-token')
      .replace('url: "{base}/publish"', 'url: "{var.hop}/publish"')
      .replace('headers: { X-Publish-Key: "{var.publishKey}" }', 'headers: { Authorization: "Bearer {token}" }')
      .replace(/\n *# notify serve takes an array[^\n]*\n *batch: array/, '');
    expect(profile).toContain('Bearer {token}" }\n    user:');
    const file = join(dir, 'notify-token.yaml');
    writeFileSync(file, profile);
    const config = swarmConfig({
      url: [gw.url],
      target: file,
      targetVar: [`hop=${hopUrl}`],
      jwtSecret: SECRET,
      conns: '10',
      users: '5',
      ramp: '200ms',
      duration: '1s',
      rate: '0/s',
      userRate: '10/s',
      drain: '1s',
    });
    const total = (await swarm(config)).outcome.summary.total;
    expect(eventCounts(total)).toMatchObject({ expected: 2 * scheduled(10, 1000), lost: 0, duplicated: 0 });
    expect(seen).toHaveLength(scheduled(10, 1000));
    const key = new TextEncoder().encode(SECRET);
    for (const { authorization, user } of seen) {
      expect(authorization).toMatch(/^Bearer /);
      expect((await jwtVerify(authorization!.slice('Bearer '.length), key)).payload.sub).toBe(user);
    }
  }, 30_000);
});
