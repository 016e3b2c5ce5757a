/** Target profiles (src/targets/load.ts): the built-ins, --target-var, and the errors a wrong profile file gets. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NotifyError } from '../src/errors.js';
import { builtinTargetNames, loadTarget } from '../src/targets/load.js';
import { Template } from '../src/targets/template.js';
import { usage } from './helpers/usage.js';

const dir = mkdtempSync(join(tmpdir(), 'notify-targets-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Writes `text` as a profile file in the temp dir and returns its path. */
function profileFile(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** A valid profile, as YAML lines, for the invalid ones to change one thing in. */
const VALID = [
  'schema: notify.target/1',
  'name: acme',
  'subscribe:',
  '  sse:',
  '    url: "{base}/stream?user={user}"',
  '    resume: last-event-id',
  'publish:',
  '  http:',
  '    url: "{base}/notify"',
];

function loadLines(name: string, lines: readonly string[]): () => unknown {
  const path = profileFile(name, lines.join('\n') + '\n');
  return () => loadTarget(path, []);
}

describe('built-in profiles', () => {
  it('lists the five built-ins, and every one loads and validates (sse once it has its publish URL)', () => {
    expect(builtinTargetNames()).toEqual(['notify', 'nchan', 'pushpin', 'socketio', 'sse']);
    for (const name of builtinTargetNames()) {
      const target = loadTarget(name, name === 'sse' ? ['publishUrl=http://127.0.0.1:9000/emit'] : []);
      expect(target.name).toBe(name);
      expect(target.source).toBe(`built-in ${name}`);
      expect(target.payload).toContain('{probe}');
    }
  });

  it('takes notify when --target is not given: the notify dialect on all three transports, batched publishes', () => {
    const target = loadTarget(undefined, []);
    expect(target.source).toBe('built-in notify');
    expect(target.dialect).toBe('notify');
    expect(Object.keys(target.subscribe).sort()).toEqual(['poll', 'sse', 'ws']);
    expect(target.subscribe.ws?.resume).toBe('query:cursor');
    expect(target.publish.http).toMatchObject({ url: '{base}/publish', headers: { 'X-Publish-Key': '' }, batch: 'array', okStatus: [202] });
    expect(loadTarget('notify', ['publishKey=s3cret']).publish.http?.headers).toEqual({ 'X-Publish-Key': 's3cret' });
  });

  it('nchan subscribes on /sub/both/<user> and renders to a real URL', () => {
    const { subscribe, publish } = loadTarget('nchan', []);
    const url = new Template(subscribe.sse!.url, 'x', ['base', 'user', 'token']).render({ base: 'http://h', user: 'u1' });
    expect(url).toBe('http://h/sub/both/u1');
    expect(subscribe.ws).toMatchObject({ protocols: ['ws+meta.nchan'], frames: 'nchan-meta', broadcastUrl: '{base}/sub/broadcast' });
    expect(publish.http).toMatchObject({ userUrl: '{base}/pub/user/{user}', broadcastUrl: '{base}/pub/broadcast', batch: 'each' });
  });

  it("pushpin's publish bodies are JSON whose http-stream content is an SSE event carrying the payload, quotes and all", () => {
    const { publish } = loadTarget('pushpin', []);
    expect(publish.http?.url).toBe('http://127.0.0.1:5561/publish/');
    const payload = JSON.stringify({ title: 'say "hi"\\now', data: { probe: { seq: 1 } } });
    const fields = ['payload', 'user', 'stream', 'id', 'now', 'probe'] as const;
    const broadcast = JSON.parse(new Template(publish.http!.broadcast!, 'x', fields).render({ payload }));
    expect(broadcast.items[0].channel).toBe('broadcast');
    expect(broadcast.items[0].formats['http-stream'].content).toBe(`event: notification\ndata: ${payload}\n\n`);
    const user = JSON.parse(new Template(publish.http!.user!, 'x', fields).render({ payload, user: 'u7' }));
    expect(user.items[0].channel).toBe('user-u7');
  });

  it('--target-var overrides a default (pushpin publishUrl)', () => {
    expect(loadTarget('pushpin', ['publishUrl=http://10.0.0.5:5561/publish/']).publish.http?.url).toBe('http://10.0.0.5:5561/publish/');
  });

  it('sse has no default publish URL: the error names the field and the flag to pass', () => {
    expect(usage(() => loadTarget('sse', []))).toMatch(
      /^target profile built-in sse: publish\.http\.url: \{var\.publishUrl\} has no value; pass --target-var publishUrl=/,
    );
    const target = loadTarget('sse', ['publishUrl=http://127.0.0.1:9000/emit']);
    expect(target.publish.http?.url).toBe('http://127.0.0.1:9000/emit');
    expect(target.streams).toEqual(['broadcast']);
  });

  it('a malformed --target-var is refused', () => {
    expect(usage(() => loadTarget('nchan', ['novalue']))).toMatch(/--target-var must look like NAME=VALUE \(got "novalue"\)/);
  });
});

describe('finding the profile', () => {
  it('an unknown name lists the built-ins', () => {
    expect(usage(() => loadTarget('nginx', []))).toBe(
      '--target must be a built-in profile (notify, nchan, pushpin, socketio, sse) or a YAML file (got "nginx")',
    );
  });

  it('a missing file names its path', () => {
    const path = join(dir, 'nope.yaml');
    expect(usage(() => loadTarget(path, []))).toBe(`--target ${path}: cannot read the file (no such file)`);
  });

  it('reads a file through the given reader, and names the file as its source', () => {
    const target = loadTarget('./acme.yaml', [], (path) => (path === './acme.yaml' ? VALID.join('\n') : ''));
    expect(target).toMatchObject({ name: 'acme', source: './acme.yaml', streams: ['user', 'broadcast'], dialect: 'generic' });
  });

  it('a YAML syntax error gives the file and the line', () => {
    const path = profileFile('syntax.yaml', ['schema: notify.target/1', 'name: acme', 'subscribe:', '  sse:', '    url: {base}/stream'].join('\n'));
    const err = (() => {
      try {
        loadTarget(path, []);
      } catch (e) {
        return e as NotifyError;
      }
    })();
    expect(err?.exitCode).toBe(2);
    expect(err?.message).toMatch(new RegExp(`^target profile ${path}: invalid YAML: .* at line 5, column \\d+$`));
    expect(err?.hint).toMatch(/quote/);
  });
});

describe('invalid profiles name the field', () => {
  it('missing publish', () => {
    expect(usage(loadLines('no-publish.yaml', VALID.slice(0, 6)))).toMatch(/no-publish\.yaml: publish: missing \(expected object\)$/);
  });

  it('two publishers', () => {
    const lines = [...VALID, '  redis:', '    user: "n:{user}"', '    broadcast: n:all'];
    expect(usage(loadLines('two.yaml', lines))).toMatch(/two\.yaml: publish: needs exactly one of http, redis, nats$/);
  });

  it('a bad resume value, with what was given', () => {
    const lines = VALID.map((l) => l.replace('resume: last-event-id', 'resume: sometimes'));
    expect(usage(loadLines('resume.yaml', lines))).toMatch(
      /resume\.yaml: subscribe\.sse\.resume: expected last-event-id, none or query:NAME \(got "sometimes"\)$/,
    );
  });

  it('the wrong schema string', () => {
    const lines = VALID.map((l) => l.replace('notify.target/1', 'notify.target/2'));
    expect(usage(loadLines('schema.yaml', lines))).toMatch(/schema\.yaml: schema: expected "notify\.target\/1" \(got "notify\.target\/2"\)$/);
  });

  it('several problems at once, each with its path, and unknown fields by name', () => {
    const lines = [...VALID.map((l) => l.replace('resume: last-event-id', 'ulr: x')), 'dialect: nchan'];
    const message = usage(loadLines('many.yaml', lines));
    expect(message).toMatch(/subscribe\.sse: unknown field ulr/);
    expect(message).toMatch(/dialect: expected one of notify, generic \(got "nchan"\)/);
  });

  it('an unknown placeholder, naming the field and what it may use', () => {
    const lines = VALID.map((l) => l.replace('?user={user}', '?user={usr}'));
    expect(usage(loadLines('usr.yaml', lines))).toMatch(
      /usr\.yaml: subscribe\.sse\.url: unknown placeholder \{usr\}; this field can use \{base\}, \{user\}, \{token\}$/,
    );
  });

  it('a placeholder not known where it is used (no {payload} in a URL)', () => {
    const lines = VALID.map((l) => l.replace('"{base}/notify"', '"{base}/notify/{payload}"'));
    expect(usage(loadLines('payload-url.yaml', lines))).toMatch(/publish\.http\.url: unknown placeholder \{payload\}/);
  });

  it('a payload without {probe}', () => {
    const lines = [...VALID, `payload: '{"title":"hi"}'`];
    expect(usage(loadLines('probe.yaml', lines))).toMatch(/probe\.yaml: payload must contain \{probe\}/);
  });

  it('a publish body without {payload}', () => {
    const lines = [...VALID, `    broadcast: '{"all":true}'`];
    expect(usage(loadLines('body.yaml', lines))).toMatch(/body\.yaml: publish\.http\.broadcast must contain \{payload\}/);
  });

  it('an unfilled {var.NAME} in a file, and the same file filled by --target-var', () => {
    const path = profileFile('var.yaml', VALID.map((l) => l.replace('"{base}/notify"', '"{var.hook}"')).join('\n'));
    expect(usage(() => loadTarget(path, []))).toMatch(/var\.yaml: publish\.http\.url: \{var\.hook\} has no value; pass --target-var hook=VALUE/);
    expect(loadTarget(path, ['hook=http://hooks/x']).publish.http?.url).toBe('http://hooks/x');
  });
});
