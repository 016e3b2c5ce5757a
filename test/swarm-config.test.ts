/** `notify swarm` flag parsing (src/swarm/config.ts): pure functions, no I/O. */
import { describe, expect, it } from 'vitest';
import { assignTransports, parseAddressRange, parseMix, parseStorm, resolveSwarmOptions, SWARM_DEFAULTS, type RawSwarmOptions } from '../src/swarm/config.js';
import { TRANSPORT_NAMES } from '../src/protocol/transports.js';
import { usage } from './helpers/usage.js';

/** How many connections of the first `n` got each transport. */
function counts(order: Uint8Array, n = order.length): Record<string, number> {
  const c: Record<string, number> = { sse: 0, ws: 0, poll: 0 };
  for (let i = 0; i < n; i++) c[TRANSPORT_NAMES[order[i]!]!]!++;
  return c;
}

describe('parseMix', () => {
  it('takes a single transport name as the whole mix', () => {
    expect(parseMix('sse')).toEqual({ sse: 1 });
    expect(parseMix('ws')).toEqual({ ws: 1 });
    expect(parseMix('poll')).toEqual({ poll: 1 });
  });

  it('normalises weights to shares that sum to 1, whatever their scale', () => {
    expect(parseMix('mix:sse=70,ws=20,poll=10')).toEqual({ sse: 0.7, ws: 0.2, poll: 0.1 });
    expect(parseMix('mix:sse=7,ws=2,poll=1')).toEqual({ sse: 0.7, ws: 0.2, poll: 0.1 });
    expect(parseMix('mix:sse=1,ws=1')).toEqual({ sse: 0.5, ws: 0.5 });
    expect(parseMix('mix: sse=3 , poll=1')).toEqual({ sse: 0.75, poll: 0.25 });
    expect(parseMix('mix:ws=0.5,poll=1.5')).toEqual({ ws: 0.25, poll: 0.75 });
  });

  it('leaves out a transport whose weight is 0', () => {
    expect(parseMix('mix:sse=3,ws=0,poll=1')).toEqual({ sse: 0.75, poll: 0.25 });
  });

  it('rejects unknown names, malformed parts, an all-zero mix and a transport named twice, naming --transport', () => {
    expect(usage(() => parseMix('bogus'))).toBe('--transport must be sse, ws, poll, socketio or mix:sse=70,ws=20,poll=10 (got "bogus")');
    expect(usage(() => parseMix('mix:sse=a'))).toBe('--transport mix part must look like sse=70 (got "sse=a" in "mix:sse=a")');
    expect(usage(() => parseMix('mix:http=1'))).toMatch(/^--transport mix part must look like sse=70 \(got "http=1"/);
    expect(usage(() => parseMix('mix:'))).toMatch(/^--transport mix part/);
    expect(usage(() => parseMix('mix:sse=-1'))).toMatch(/^--transport mix part/);
    expect(usage(() => parseMix('mix:sse=0,ws=0'))).toBe('--transport mix weights must add up to more than 0 (got "mix:sse=0,ws=0")');
    expect(usage(() => parseMix('mix:sse=70,sse=30'))).toBe('--transport mix names sse twice (got "mix:sse=70,sse=30")');
  });
});

describe('assignTransports', () => {
  it('keeps the mix in every prefix: the first 10 of 70/20/10 are 7/2/1', () => {
    const order = assignTransports(parseMix('mix:sse=70,ws=20,poll=10'), 1000);
    expect(counts(order, 10)).toEqual({ sse: 7, ws: 2, poll: 1 });
    expect(counts(order, 100)).toEqual({ sse: 70, ws: 20, poll: 10 });
    expect(counts(order)).toEqual({ sse: 700, ws: 200, poll: 100 });
    // Every prefix is within one connection of its exact share.
    const given = [0, 0, 0];
    const shares = [0.7, 0.2, 0.1];
    for (let i = 0; i < order.length; i++) {
      given[order[i]!]!++;
      for (let t = 0; t < 3; t++) expect(Math.abs(given[t]! - shares[t]! * (i + 1))).toBeLessThan(1);
    }
  });

  it('interleaves rather than grouping: 50/30/20 over 10 is 3/1/1 after 5 and 5/3/2 after 10', () => {
    const order = assignTransports(parseMix('mix:sse=50,ws=30,poll=20'), 10);
    expect(counts(order)).toEqual({ sse: 5, ws: 3, poll: 2 });
    expect(counts(order, 5)).toEqual({ sse: 3, ws: 1, poll: 1 });
  });

  it('gives every connection the only transport of a single-transport mix, and handles n = 0', () => {
    expect([...assignTransports({ ws: 1 }, 5)]).toEqual([1, 1, 1, 1, 1]);
    expect(assignTransports({ sse: 1 }, 0)).toHaveLength(0);
  });
});

describe('parseStorm', () => {
  it('reads share@time with the duration units of every flag', () => {
    expect(parseStorm('50%@20s')).toEqual({ share: 0.5, atMs: 20_000 });
    expect(parseStorm('12.5%@1500ms')).toEqual({ share: 0.125, atMs: 1500 });
    expect(parseStorm('100%@1m')).toEqual({ share: 1, atMs: 60_000 });
    expect(parseStorm(' 10%@0s ')).toEqual({ share: 0.1, atMs: 0 });
  });

  it('rejects a missing time, a bare number, a share above 100% and a bad time, naming --storm', () => {
    expect(usage(() => parseStorm('50'))).toBe('--storm must look like 50%@20s (got "50")');
    expect(usage(() => parseStorm('50%'))).toBe('--storm must look like 50%@20s (got "50%")');
    expect(usage(() => parseStorm('0.5@20s'))).toBe('--storm must be a percentage like 50% (got "0.5")');
    expect(usage(() => parseStorm('150%@1s'))).toBe('--storm must be a percentage like 50% (got "150%")');
    expect(usage(() => parseStorm('50%@soon'))).toBe('--storm must be a duration like 15s, 500ms or 1m (got "soon")');
  });
});

describe('parseAddressRange', () => {
  it('expands a loopback range, a single address and a comma list', () => {
    const eight = parseAddressRange('127.0.0.1-127.0.0.8');
    expect(eight).toHaveLength(8);
    expect(eight).toEqual(Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 1}`));
    expect(parseAddressRange('127.0.0.2')).toEqual(['127.0.0.2']);
    expect(parseAddressRange('127.1.2.3-127.1.2.4, 127.0.0.9')).toEqual(['127.1.2.3', '127.1.2.4', '127.0.0.9']);
  });

  it('rejects non-loopback addresses, ranges across subnets, reversed ranges and bad octets, naming --local-address', () => {
    expect(usage(() => parseAddressRange('10.0.0.1-10.0.0.3'))).toBe(
      '--local-address must be 127.x.y.z or a range like 127.0.0.1-127.0.0.8 (got "10.0.0.1-10.0.0.3")',
    );
    expect(usage(() => parseAddressRange('192.168.1.5'))).toMatch(/^--local-address must be 127\.x\.y\.z/);
    expect(usage(() => parseAddressRange('127.0.0.1-127.0.1.8'))).toMatch(/^--local-address must be 127\.x\.y\.z/);
    expect(usage(() => parseAddressRange('127.0.0.5-127.0.0.2'))).toBe('--local-address range is not valid (got "127.0.0.5-127.0.0.2")');
    expect(usage(() => parseAddressRange('127.0.0.0'))).toBe('--local-address range is not valid (got "127.0.0.0")');
    expect(usage(() => parseAddressRange('127.0.0.1-127.0.0.255'))).toBe('--local-address range is not valid (got "127.0.0.1-127.0.0.255")');
    expect(usage(() => parseAddressRange('127.256.0.1'))).toBe('--local-address range is not valid (got "127.256.0.1")');
  });
});

describe('resolveSwarmOptions', () => {
  it('takes the target profile: notify by default; its transports, streams and --url rules apply', () => {
    const url = ['http://127.0.0.1:9'];
    expect(resolveSwarmOptions({}, {}).target).toMatchObject({ name: 'notify', source: 'built-in notify', dialect: 'notify' });
    // Each profile's first transport is the default: Socket.IO apps have only the one.
    expect(resolveSwarmOptions({ target: 'socketio', url }, {}).mix).toEqual({ socketio: 1 });
    expect(resolveSwarmOptions({ target: 'nchan', url, transport: 'mix:sse=1,ws=1,poll=2' }, {}).mix).toEqual({ sse: 0.25, ws: 0.25, poll: 0.5 });
    expect(usage(() => resolveSwarmOptions({ target: 'pushpin', url, transport: 'ws' }, {}))).toBe(
      '--transport ws: the built-in pushpin profile subscribes with sse only (got "ws")',
    );
    // The sse profile's subscribers receive broadcasts only: no user rate, and a given one is refused.
    const sse = resolveSwarmOptions({ target: 'sse', url, targetVar: ['publishUrl=http://127.0.0.1:9/pub'] }, {});
    expect([sse.rate, sse.userRate]).toEqual([10, 0]);
    expect(usage(() => resolveSwarmOptions({ target: 'sse', url, userRate: '5/s', targetVar: ['publishUrl=http://127.0.0.1:9/pub'] }, {}))).toMatch(
      /^--user-rate: the built-in sse profile's subscribers receive no user stream/,
    );
    // Only notify serve can be started by the swarm itself.
    expect(usage(() => resolveSwarmOptions({ target: 'nchan' }, {}))).toMatch(/^--target nchan: give the server's --url/);
    // --publish-key is the notify profile's publishKey var.
    expect(resolveSwarmOptions({ publishKey: 'k1' }, {}).target.publish.http?.headers).toEqual({ 'X-Publish-Key': 'k1' });
  });

  it('fills the documented defaults', () => {
    const c = resolveSwarmOptions({}, {});
    expect(c).toMatchObject({
      urls: [],
      mix: { sse: 1 },
      conns: 100,
      users: 100,
      userPrefix: 'u',
      rampMs: 5000,
      durationMs: 30_000,
      drainMs: 3000,
      rate: 10,
      userRate: 0,
      storms: [],
      reconnect: 'backoff',
      backoffBaseMs: 100,
      backoffCapMs: 10_000,
      thresholds: [],
      dashboard: true,
      workers: 0,
      localAddresses: [],
      bailout: 0,
      pollTimeoutS: 25,
    });
    expect(c.out).toBeUndefined();
    expect(c.publishKey).toBeUndefined();
    expect(c.jwtSecret).toBeUndefined();
    expect(c.run).toMatch(/^r[0-9a-f]{8}$/);
    expect(resolveSwarmOptions({}, {}).run).not.toBe(c.run);
    expect(SWARM_DEFAULTS.conns).toBe('100');
  });

  it('resolves every flag, with users defaulting to one per connection and storms sorted by time', () => {
    const raw: RawSwarmOptions = {
      url: ['http://127.0.0.1:8080/', 'http://127.0.0.1:8081'],
      transport: 'mix:sse=70,ws=20,poll=10',
      conns: '300',
      ramp: '1.5s',
      duration: '1m',
      drain: '500ms',
      rate: '600/m',
      userRate: '20/s',
      storm: ['10%@30s', '50%@20s'],
      reconnect: 'immediate',
      backoffBase: '50ms',
      backoffCap: '2s',
      threshold: ['p99<250ms', 'lost==0'],
      out: 'r.json',
      dashboard: false,
      workers: '2',
      localAddress: '127.0.0.1-127.0.0.4',
      bailout: '10',
      pollTimeout: '5s',
      run: 'fixed',
    };
    const c = resolveSwarmOptions(raw, {});
    expect(c).toMatchObject({
      run: 'fixed',
      urls: ['http://127.0.0.1:8080', 'http://127.0.0.1:8081'],
      mix: { sse: 0.7, ws: 0.2, poll: 0.1 },
      conns: 300,
      users: 300,
      rampMs: 1500,
      durationMs: 60_000,
      drainMs: 500,
      rate: 10,
      userRate: 20,
      storms: [
        { share: 0.5, atMs: 20_000 },
        { share: 0.1, atMs: 30_000 },
      ],
      reconnect: 'immediate',
      backoffBaseMs: 50,
      backoffCapMs: 2000,
      out: 'r.json',
      dashboard: false,
      workers: 2,
      localAddresses: ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4'],
      bailout: 10,
      pollTimeoutS: 5,
    });
    expect(c.thresholds.map((t) => [t.metric, t.op, t.value])).toEqual([
      ['latency.p99', '<', 250],
      ['lost', '==', 0],
    ]);
    expect(resolveSwarmOptions({ conns: '10', users: '3' }, {}).users).toBe(3);
  });

  it('takes the URL, publish key and JWT secret from the environment when no flag is given; a flag wins', () => {
    const env = { NOTIFY_URL: 'http://127.0.0.1:9000/', NOTIFY_PUBLISH_KEY: 'k1', NOTIFY_JWT_SECRET: 's1' };
    expect(resolveSwarmOptions({}, env)).toMatchObject({ urls: ['http://127.0.0.1:9000'], publishKey: 'k1', jwtSecret: 's1' });
    expect(resolveSwarmOptions({ url: ['http://h:1'], publishKey: 'k2', jwtSecret: 's2' }, env)).toMatchObject({
      urls: ['http://h:1'],
      publishKey: 'k2',
      jwtSecret: 's2',
    });
  });

  it.each<[RawSwarmOptions, string]>([
    [{ conns: '0' }, '--conns must be >= 1 (got 0)'],
    [{ conns: 'many' }, '--conns must be a whole number (got "many")'],
    [{ users: '0' }, '--users must be >= 1 (got 0)'],
    [{ transport: 'bogus' }, '--transport must be sse, ws, poll, socketio or mix:sse=70,ws=20,poll=10 (got "bogus")'],
    [{ storm: ['50'] }, '--storm must look like 50%@20s (got "50")'],
    [{ rate: 'fast' }, '--rate must be a rate like 20/s or 600/m (got "fast")'],
    [{ rate: '200000/s' }, '--rate must be <= 100000/s (got "200000/s")'],
    [{ userRate: 'lots' }, '--user-rate must be a rate like 20/s or 600/m (got "lots")'],
    [{ ramp: 'soon' }, '--ramp must be a duration like 15s, 500ms or 1m (got "soon")'],
    [{ duration: '0s' }, '--duration must be more than 0 (got "0s")'],
    [{ drain: '-1s' }, '--drain must be a duration like 15s, 500ms or 1m (got "-1s")'],
    [{ reconnect: 'sometimes' }, '--reconnect must be one of immediate, backoff, retry (got "sometimes")'],
    [{ backoffBase: 'x' }, '--backoff-base must be a duration like 15s, 500ms or 1m (got "x")'],
    [{ url: ['ftp://x'] }, '--url must be an http:// or https:// URL (got "ftp://x")'],
    [{ url: ['not a url'] }, '--url must be an http:// URL (got "not a url")'],
    [{ workers: '65' }, '--workers must be <= 64 (got 65)'],
    [{ localAddress: '10.0.0.1' }, '--local-address must be 127.x.y.z or a range like 127.0.0.1-127.0.0.8 (got "10.0.0.1")'],
    [{ userPrefix: 'a b' }, '--user-prefix may use A-Z a-z 0-9 _ . @ : + = - (got "a b")'],
    [{ bailout: '-1' }, '--bailout must be >= 0 (got -1)'],
    [{ pollTimeout: 'forever' }, '--poll-timeout must be a duration like 15s, 500ms or 1m (got "forever")'],
  ])('%o -> exit 2: %s', (raw, message) => {
    expect(usage(() => resolveSwarmOptions(raw, {}))).toBe(message);
  });

  it('rejects a storm at or after the end of the run (it would never fire), naming --storm and the run length', () => {
    expect(usage(() => resolveSwarmOptions({ ramp: '1s', duration: '3s', drain: '2s', storm: ['50%@2s', '50%@6s'] }, {}))).toBe(
      '--storm at 6s is after the end of the run (ramp + duration + drain = 6s)',
    );
    expect(resolveSwarmOptions({ ramp: '1s', duration: '3s', drain: '2s', storm: ['50%@5999ms'] }, {}).storms).toEqual([{ share: 0.5, atMs: 5999 }]);
  });

  it('names --threshold and the expression when a threshold does not parse', () => {
    expect(usage(() => resolveSwarmOptions({ threshold: ['p99<<3'] }, {}))).toMatch(/^--threshold "p99<<3": /);
  });
});
