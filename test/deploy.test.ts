/**
 * deploy/, offline: every Kubernetes manifest parsed and validated against the API schema (kubernetes-models: types,
 * required fields, enums), and type-checked against the same models' TypeScript types, which catch a misspelt field
 * that the OpenAPI schema lets through. Then what ties the files together: the gateway's args parse, resolve and
 * serve its probe routes; the Job is Indexed and its wrapper script, run with a stub `notify`, passes
 * `--shard k+1/N` and prints the result between the markers; Service selectors match pod labels; the guide's
 * collection loop, run with a stub `kubectl`, writes shard-I.json; every flag used exists in `--help`.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Job } from 'kubernetes-models/batch/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { ConfigMap, Service } from 'kubernetes-models/v1';
import ts from 'typescript';
import { afterEach, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { run } from '../src/cli.js';
import { serveCommand } from '../src/commands/serve.js';
import { resolveServeOptions, type RawServeOptions } from '../src/server/config.js';
import { startGateway } from '../src/server/gateway.js';
import { silentLogger } from '../src/util/log.js';
import { ROOT } from './helpers/build.js';
import { tempDir } from './helpers/child-server.js';
import { fakeIo } from './helpers/fake-io.js';
import { onCleanup, runCleanup } from './helpers/lifecycle.js';

afterEach(runCleanup);

const DIR = `${ROOT}deploy/kubernetes/`;
/** Each kind the manifests use: its model (schema validation) and its TypeScript type (unknown fields). */
const KINDS: Record<string, { model: new (data: never) => { validate(): void }; type: string; from: string }> = {
  'apps/v1 Deployment': { model: Deployment, type: 'IDeployment', from: 'kubernetes-models/apps/v1' },
  'batch/v1 Job': { model: Job, type: 'IJob', from: 'kubernetes-models/batch/v1' },
  'v1 ConfigMap': { model: ConfigMap, type: 'IConfigMap', from: 'kubernetes-models/v1' },
  'v1 Service': { model: Service, type: 'IService', from: 'kubernetes-models/v1' },
};
/** Flags of `notify swarm --shard` that the shards work adds; required here like every other flag. */
const SHARD_FLAGS = ['--shard', '--run', '--start-at'];

interface Manifest {
  file: string;
  key: string;
  body: Record<string, unknown>;
}
// The manifests are read as loosely typed trees: the schema checks below are what vouch for their shape.
type Tree = any;

function loadManifests(): Manifest[] {
  const out: Manifest[] = [];
  for (const file of readdirSync(DIR).filter((f) => f.endsWith('.yaml'))) {
    for (const doc of parseAllDocuments(readFileSync(DIR + file, 'utf8'))) {
      expect(doc.errors, file).toEqual([]);
      const body = doc.toJS() as Record<string, unknown>;
      out.push({ file, key: `${String(body.apiVersion)} ${String(body.kind)}`, body });
    }
  }
  return out;
}
const MANIFESTS = loadManifests();

function find(kind: string, name: string): Tree {
  const found = MANIFESTS.find((m) => m.body.kind === kind && (m.body.metadata as { name?: string }).name === name);
  if (!found) throw new Error(`no ${kind} ${name} in deploy/kubernetes/`);
  return found.body;
}

/** TypeScript's complaints about the documents as literals of their kubernetes-models types (excess properties). */
function typeErrors(docs: Manifest[]): string[] {
  const file = join(ROOT, 'test', '__deploy-manifests__.ts');
  const imports = Object.values(KINDS).map((k) => `import type { ${k.type} } from '${k.from}';`);
  const lines = docs.map((d, i) => `export const d${i}: ${KINDS[d.key]!.type} = ${JSON.stringify(d.body)};`);
  const source = [...imports, ...lines].join('\n');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.getSourceFile = (name, lang, ...rest) => (name === file ? ts.createSourceFile(name, source, lang) : getSourceFile(name, lang, ...rest));
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  return ts.getPreEmitDiagnostics(program, program.getSourceFile(file)).map((d) => {
    const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line - imports.length : -1;
    const where = docs[line] ? `${docs[line].file} ${docs[line].key}` : 'manifests';
    return `${where}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
  });
}

/** The long flags a command's `--help` lists. */
async function helpFlags(command: string): Promise<Set<string>> {
  const { io, stdout } = fakeIo();
  expect(await run([command, '--help'], io)).toBe(0);
  return new Set([...stdout().matchAll(/^ {2}(?:-\w, )?(--[a-z][\w-]*)/gm)].map((m) => m[1]!));
}
const flagsOf = (args: string[]) => args.filter((a) => a.startsWith('--'));

/** A directory on a PATH of its own, holding executable stub scripts. */
function stubBin(stubs: Record<string, string>): string {
  const dir = tempDir('deploy-stub');
  for (const [name, body] of Object.entries(stubs)) {
    writeFileSync(join(dir, name), `#!/bin/sh\n${body}`);
    chmodSync(join(dir, name), 0o755);
  }
  return dir;
}

function sh(script: string, env: Record<string, string>, cwd: string) {
  const r = spawnSync('sh', ['-c', script], { cwd, env: { ...env, PATH: `${env.PATH}:${process.env.PATH}` }, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const labelsMatch = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);

describe('manifests against the Kubernetes schema', () => {
  it('deploy/kubernetes/ holds the four files, every document of a known kind', () => {
    expect(new Set(MANIFESTS.map((m) => m.file))).toEqual(new Set(['redis.yaml', 'gateway.yaml', 'run-config.yaml', 'swarm-job.yaml']));
    for (const m of MANIFESTS) expect(Object.keys(KINDS), `${m.file}: ${m.key}`).toContain(m.key);
  });

  it('every document validates, and a broken one does not (the validator bites)', () => {
    for (const m of MANIFESTS) expect(() => new KINDS[m.key]!.model(m.body as never).validate(), `${m.file} ${m.key}`).not.toThrow();
    const job = structuredClone(find('Job', 'notify-swarm'));
    job.spec.completionMode = 'Indexd';
    expect(() => new Job(job).validate()).toThrow(/completionMode/);
  });

  it('no field the API does not know (type-checked against the models), and a misspelt one is caught', () => {
    expect(typeErrors(MANIFESTS)).toEqual([]);
    const job = structuredClone(find('Job', 'notify-swarm'));
    job.spec.template.spec.containers[0].volumeMount = [];
    expect(typeErrors([{ file: 'x', key: 'batch/v1 Job', body: job }]).join('\n')).toMatch(/volumeMount/);
  }, 30_000);

  it('each Deployment selects its own pods, each Service a Deployment and a named container port', () => {
    const deployments = MANIFESTS.filter((m) => m.body.kind === 'Deployment').map((m) => m.body as Tree);
    for (const d of deployments) expect(labelsMatch(d.spec.selector.matchLabels, d.spec.template.metadata.labels), d.metadata.name).toBe(true);
    for (const s of MANIFESTS.filter((m) => m.body.kind === 'Service').map((m) => m.body as Tree)) {
      const target = deployments.filter((d) => labelsMatch(s.spec.selector, d.spec.template.metadata.labels));
      expect(
        target.map((d) => d.metadata.name),
        `Service ${s.metadata.name}`,
      ).toEqual([s.metadata.name]);
      const ports = target[0].spec.template.spec.containers.flatMap((c: Tree) => c.ports ?? []);
      for (const p of s.spec.ports)
        expect(
          ports.map((cp: Tree) => cp.name),
          `Service ${s.metadata.name} port ${p.name}`,
        ).toContain(p.targetPort);
    }
  });

  it('every container asks for CPU and memory and caps memory', () => {
    for (const m of MANIFESTS.filter((x) => x.body.kind === 'Deployment' || x.body.kind === 'Job')) {
      for (const c of (m.body as Tree).spec.template.spec.containers) {
        expect(c.resources.requests, `${m.file} ${c.name}`).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
        expect(c.resources.limits.memory, `${m.file} ${c.name}`).toMatch(/^\d+[MG]i$/);
      }
    }
  });
});

describe('gateway', () => {
  const deployment = find('Deployment', 'gateway');
  const container = deployment.spec.template.spec.containers[0];
  const args: string[] = container.args;
  const argAfter = (flag: string) => args[args.indexOf(flag) + 1];

  it('runs notify serve, 3 replicas, with flags that `notify serve --help` lists', async () => {
    expect(deployment.spec.replicas).toBe(3);
    expect(args[0]).toBe('serve');
    const known = await helpFlags('serve');
    expect(known.has('--broker')).toBe(true);
    expect(flagsOf(args).filter((f) => !known.has(f))).toEqual([]);
    expect(argAfter('--host')).toBe('0.0.0.0');
  });

  it('reaches Redis through the redis Service, and listens on the port its probes and Service use', () => {
    const redis = find('Service', 'redis');
    expect(argAfter('--broker')).toBe(`redis://redis:${redis.spec.ports[0].port}`);
    const http = container.ports.find((p: Tree) => p.name === 'http');
    expect(String(http.containerPort)).toBe(argAfter('--port'));
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(find('Service', 'gateway').spec.ports[0].port).toBe(http.containerPort);
  });

  it('its args resolve (non-loopback host with jwt and the publish key from its env), and the probe routes answer 200', async () => {
    let raw: RawServeOptions | undefined;
    const cmd = serveCommand(fakeIo().io, () => {})
      .exitOverride()
      .action((opts: RawServeOptions) => void (raw = opts));
    await cmd.parseAsync(args.slice(1), { from: 'user' });
    const env = Object.fromEntries(container.env.map((e: Tree) => [e.name, `secret-${e.valueFrom.secretKeyRef.key}`]));
    const config = resolveServeOptions(raw!, env);
    expect(config).toMatchObject({ host: '0.0.0.0', port: 8080, auth: 'jwt', publishKey: 'secret-publish-key' });
    // The same gateway on loopback, a free port and the memory broker: the routes the probes name exist.
    const gw = await startGateway({ ...config, host: '127.0.0.1', port: 0, broker: 'memory', shutdownGraceMs: 500 }, silentLogger);
    onCleanup(() => gw.shutdown());
    for (const probe of [container.readinessProbe, container.livenessProbe]) expect((await fetch(gw.url + probe.httpGet.path)).status).toBe(200);
    expect((await fetch(`${gw.url}/readyz-not`)).status).toBe(404);
  });
});

describe('swarm Job', () => {
  const job = find('Job', 'notify-swarm');
  const pod = job.spec.template.spec;
  const container = pod.containers[0];
  const n: number = job.spec.completions;
  const script: string = container.command[2];
  const results = container.volumeMounts.find((v: Tree) => v.name === 'results').mountPath as string;
  const stub = `printf '%s\\n' "$@" > "$ARGV_FILE"
while [ $# -gt 0 ]; do [ "$1" = --out ] && out=$2; shift; done
[ -n "$STUB_RESULT" ] && printf '%s\\n' "$STUB_RESULT" > "$out"
exit "$STUB_CODE"
`;

  /** The container's script as the pod runs it, with a stub notify and the results volume in a temp dir. */
  function runShard(index: number, code: number, result: string) {
    const dir = tempDir('deploy-shard');
    const bin = stubBin({ notify: stub });
    const r = sh(
      script.replaceAll(`${results}/`, `${dir}/`),
      {
        PATH: bin,
        JOB_COMPLETION_INDEX: String(index),
        RUN_ID: 'run-7',
        START_AT: '2030-01-01T00:00:00Z',
        ARGV_FILE: join(dir, 'argv'),
        STUB_CODE: String(code),
        STUB_RESULT: result,
      },
      dir,
    );
    const argv = existsSync(join(dir, 'argv')) ? readFileSync(join(dir, 'argv'), 'utf8').trimEnd().split('\n') : [];
    return { ...r, argv, dir };
  }

  it('is Indexed, completions == parallelism, restartPolicy Never, retries bounded per index', () => {
    expect(job.spec.completionMode).toBe('Indexed');
    expect(n).toBeGreaterThan(1);
    expect(job.spec.parallelism).toBe(n);
    expect(pod.restartPolicy).toBe('Never');
    expect(job.spec.backoffLimitPerIndex).toBeLessThanOrEqual(2);
    expect(job.spec.backoffLimit).toBeLessThanOrEqual(n);
  });

  it('pod k runs notify swarm --shard k+1/N of the run and start time from the ConfigMap, against the gateway Service', () => {
    for (const index of [0, n - 1]) {
      const r = runShard(index, 0, '{"shard":true}');
      expect(r.code, r.stderr).toBe(0);
      const at = (flag: string) => r.argv[r.argv.indexOf(flag) + 1];
      expect(r.argv[0]).toBe('swarm');
      expect(at('--shard')).toBe(`${index + 1}/${n}`);
      expect(at('--run')).toBe('run-7');
      expect(at('--start-at')).toBe('2030-01-01T00:00:00Z');
      expect(at('--out')).toBe(join(r.dir, `shard-${index + 1}.json`));
      const gateway = find('Service', 'gateway');
      expect(at('--url')).toBe(`http://${gateway.metadata.name}:${gateway.spec.ports[0].port}`);
      expect(Number(at('--conns'))).toBeGreaterThanOrEqual(n);
    }
    const config = find('ConfigMap', 'notify-run');
    for (const name of ['RUN_ID', 'START_AT']) {
      const ref = container.env.find((e: Tree) => e.name === name).valueFrom.configMapKeyRef;
      expect(ref).toEqual({ name: 'notify-run', key: name });
      expect(config.data[name]).toEqual(expect.any(String));
    }
    expect(new Date(config.data.START_AT).toISOString()).toBe(config.data.START_AT.replace('Z', '.000Z'));
  });

  it('uses only flags that `notify swarm --help` lists (the shards work adds --shard --run --start-at)', async () => {
    const used = flagsOf(runShard(0, 0, '{}').argv);
    for (const flag of SHARD_FLAGS) expect(used).toContain(flag);
    const known = await helpFlags('swarm');
    expect(known.has('--conns')).toBe(true);
    expect(used.filter((f) => !known.has(f))).toEqual([]);
  });

  it('prints a written result between the markers and exits 0 whatever the verdict; without one it fails', () => {
    for (const code of [0, 1, 99]) {
      const r = runShard(1, code, '{"verdict":"x"}');
      expect(r.code, `swarm exit ${code}`).toBe(0);
      expect(r.stdout).toBe('notify-result-begin\n{"verdict":"x"}\nnotify-result-end\n');
      expect(r.stderr).toContain(`exited with ${code}`);
    }
    expect(runShard(1, 1, '').code).toBe(1);
    expect(runShard(1, 0, '').code).toBe(1);
    expect(runShard(1, 2, '').code).toBe(2);
    // A usage error (2) is the same on a retry: the Job's failure policy ends it at once.
    const rule = job.spec.podFailurePolicy.rules.find((r: Tree) => r.action === 'FailJob');
    expect(rule.onExitCodes).toEqual({ containerName: container.name, operator: 'In', values: [2] });
  });

  it('takes its secrets from the same Secret keys as the gateway', () => {
    const secrets = (c: Tree) => c.env.filter((e: Tree) => e.valueFrom.secretKeyRef).map((e: Tree) => [e.name, e.valueFrom.secretKeyRef]);
    expect(secrets(container)).toEqual(secrets(find('Deployment', 'gateway').spec.template.spec.containers[0]));
    expect(secrets(container).length).toBe(2);
  });
});

describe('image and guide', () => {
  const guide = readFileSync(`${ROOT}deploy/README.md`, 'utf8');
  const blocks = [...guide.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);

  it('the Dockerfile builds on node:20-slim, copies files that exist, and runs bin/notify.js, the image the manifests name', () => {
    const dockerfile = readFileSync(`${ROOT}deploy/Dockerfile`, 'utf8');
    expect(dockerfile.match(/^FROM (\S+)/gm)).toEqual(['FROM node:20-slim', 'FROM node:20-slim']);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "\/app\/bin\/notify\.js"\]$/m);
    const ignored = readFileSync(`${ROOT}.dockerignore`, 'utf8').split('\n');
    for (const [, from] of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
      for (const path of from!.split(' ')) {
        expect(existsSync(ROOT + path), path).toBe(true);
        expect(ignored, path).not.toContain(path);
      }
    }
    const tag = /docker build -f deploy\/Dockerfile -t (\S+) \./.exec(guide)![1];
    const images = MANIFESTS.filter((m) => m.file !== 'redis.yaml' && m.body.kind !== 'Service' && m.body.kind !== 'ConfigMap');
    for (const m of images) expect((m.body as Tree).spec.template.spec.containers[0].image, m.file).toBe(tag);
    expect(guide).toContain(`sed "s|image: ${tag}|image: $IMAGE|"`);
  });

  it('the guide creates the Secret with the keys the manifests read', () => {
    const keys = find('Deployment', 'gateway').spec.template.spec.containers[0].env.map((e: Tree) => e.valueFrom.secretKeyRef);
    for (const { name, key } of keys) {
      expect(guide).toContain(`kubectl create secret generic ${name}`);
      expect(guide).toContain(`--from-literal=${key}=`);
    }
  });

  it("the guide's loop writes each succeeded shard's result to shard-I.json and names the missing ones", () => {
    const loop = blocks.find((b) => b.includes('notify-result-begin'))!;
    const n = find('Job', 'notify-swarm').spec.completions;
    expect(loop).toContain(`N=${n}\n`);
    // Index 2 has no succeeded pod; the others log status lines around their result.
    const kubectl = `case "$1" in
get) for a in "$@"; do case "$a" in *job-completion-index=*) i=\${a##*=};; esac; done
     [ "$i" = 2 ] || echo "pod/notify-swarm-$i-abcde";;
logs) i=$(echo "$2" | cut -d- -f3); printf 'status line\\nnotify-result-begin\\n{\\n  "index": %s\\n}\\nnotify-result-end\\n' "$i";;
esac
`;
    const dir = tempDir('deploy-collect');
    const r = sh(loop, { PATH: stubBin({ kubectl }) }, dir);
    expect(r.code, r.stderr).toBe(0);
    for (let i = 1; i <= n; i++) {
      if (i === 3) expect(existsSync(join(dir, 'shard-3.json'))).toBe(false);
      else expect(JSON.parse(readFileSync(join(dir, `shard-${i}.json`), 'utf8'))).toEqual({ index: i - 1 });
    }
    expect(r.stderr).toContain(`shard 3/${n}: no result`);
  });

  it("the guide's merge names every shard file and uses flags that `notify report --help` lists", async () => {
    const merge = blocks.flatMap((b) => b.split('\n')).find((l) => l.startsWith('notify report --merge'))!;
    const n = find('Job', 'notify-swarm').spec.completions;
    const files = Array.from({ length: n }, (_, i) => `shard-${i + 1}.json`).join(' ');
    expect(merge).toContain(`--merge ${files} `);
    const known = await helpFlags('report');
    expect(flagsOf(merge.split(' ')).filter((f) => !known.has(f))).toEqual([]);
  });
});
