/** `check` end to end in this process: flags, exit codes, enforcement, namespaces, --cluster. */
import t from 'tap';
import { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { registerCheck } from '../../../src/cli/check.ts';
import { runCheck, type CheckOptions } from '../../../src/check/run.ts';
import type { CheckReport } from '../../../src/check/report.ts';
import { kubeconfigFor, startFakeCluster } from './fake-cluster.ts';

process.chdir(fileURLToPath(new URL('../../../', import.meta.url)));

interface Run {
  code: number | undefined;
  out: string;
  error?: { code?: string; message: string };
}

/** Runs `check <args>` the way main() does: commander errors and thrown errors are exit 2. */
async function check(args: string[], stdin?: string): Promise<Run> {
  let out = '';
  let code: number | undefined;
  const program = new Command('redis-istio-guard').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  registerCheck(program, {
    io: { stdout: (s) => void (out += s), ...(stdin !== undefined ? { stdin: Readable.from([stdin]) } : {}) },
    setExitCode: (c) => void (code = c),
  });
  try {
    await program.parseAsync(['check', ...args], { from: 'user' });
    return { code, out };
  } catch (err) {
    const e = err as { code?: string; message: string };
    return { code: 2, out, error: { ...(e.code ? { code: e.code } : {}), message: e.message } };
  }
}

const json = (r: Run) => JSON.parse(r.out) as CheckReport;

t.test('exit codes', async (t) => {
  const cases: { args: string[]; code: number; summary?: RegExp; error?: RegExp }[] = [
    { args: ['examples/good'], code: 0, summary: /^ok: 0 errors, 0 warnings; checked 3 objects/m },
    { args: ['examples/bad'], code: 1, summary: /^failed: 13 errors, 6 warnings/m },
    { args: ['examples/bad/rec-api-covered.yaml'], code: 0, summary: /^ok: 0 errors, 1 warning/m },
    { args: ['examples/bad/rec-api-covered.yaml', '--warnings-as-errors'], code: 1, summary: /^failed: 0 errors, 1 warning; .*; warnings count as errors \(--warnings-as-errors\)$/m },
    { args: ['examples/good', '--warnings-as-errors'], code: 0 },
    { args: ['examples/bad/rec-api-covered.yaml', '--rule', 'rec-api-covered=off', '--warnings-as-errors'], code: 0, summary: /^ok: 0 errors, 0 warnings/m },
    { args: ['examples/bad/rec-api-covered.yaml', '--rule', 'rec-api-covered=deny'], code: 1, summary: /^failed: 1 error, 0 warnings/m },
    { args: ['examples/bad/rec-db-suffix.yaml', '--rule', 'rec-db-suffix=warn'], code: 0, summary: /^ok: 0 errors, 1 warning/m },
    { args: ['examples/bad/rec-db-suffix.yaml', '--rule', 'rec-db-suffix=warn', '--rule', 'rec-api-host=off,gateway-host=deny'], code: 0 },
    { args: ['examples/good', 'nowhere.yaml'], code: 2, summary: /^could not check every input: 0 errors, 0 warnings, 1 input error/m },
    { args: ['examples/bad', 'test/golden/inputs/broken.yaml'], code: 2 },
    // Bad flags: no report, a message, exit 2.
    { args: [], code: 2, error: /give files, directories, or - for stdin/ },
    { args: ['examples', '--rule', 'no-such-rule=off'], code: 2, error: /unknown rule "no-such-rule"; known rules: rec-db-suffix, / },
    { args: ['examples', '--rule', 'vs-host=maybe'], code: 2, error: /mode must be deny, warn or off/ },
    { args: ['examples', '--output', 'yaml'], code: 2, error: /argument 'yaml' is invalid. Allowed choices are text, json, github/ },
    { args: ['examples', '--context', 'prod'], code: 2, error: /--kubeconfig and --context go with --cluster/ },
    { args: ['examples', '--no-such-flag'], code: 2, error: /unknown option '--no-such-flag'/ },
  ];
  for (const c of cases) {
    const r = await check(c.args);
    t.equal(r.code, c.code, `${c.args.join(' ')}: exit ${c.code}`);
    if (c.summary) t.match(r.out, c.summary, c.args.join(' '));
    if (c.error) t.match(r.error?.message, c.error, c.args.join(' '));
    else t.notOk(r.error, `${c.args.join(' ')}: no error thrown`);
  }
});

t.test('every rule has a bad example that fires it, and only it; the good set is clean', async (t) => {
  const { builtinRules } = await import('../../../src/rules/engine.ts');
  for (const rule of builtinRules) {
    const r = await check([`examples/bad/${rule.id}.yaml`, '-o', 'json']);
    const rules = [...new Set(json(r).findings.map((f) => f.rule))];
    t.same(rules, [rule.id], `examples/bad/${rule.id}.yaml`);
  }
  const good = json(await check(['examples/good', '-o', 'json']));
  t.same(good.findings, []);
  t.same(good.summary.notJudged, []);
});

t.test('namespace: metadata.namespace, else --namespace', async (t) => {
  const vs = (ns: string) =>
    `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: vs\n${ns}spec:\n  hosts: [db.example.com]\n  gateways: [mesh]\n  tcp:\n  - route:\n    - destination: {host: db, port: {number: 1}}\n`;
  const svc = 'apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: team}\nspec: {ports: [{port: 1}]}\n';
  const inTeam = await check(['-', '-o', 'json', '-n', 'team'], `${vs('')}---\n${svc}`);
  t.same(json(inTeam).findings, [], 'the Service is found in the namespace given with -n');
  t.equal(inTeam.code, 0);
  const inDefault = await check(['-', '-o', 'json'], `${vs('')}---\n${svc}`);
  t.same(json(inDefault).summary.notJudged.map((n) => `${n.kind} ${n.namespace}`), ['Service default']);
  const explicit = await check(['-', '-o', 'json', '-n', 'other'], `${vs('  namespace: team\n')}---\n${svc}`);
  t.same(json(explicit).findings, [], 'metadata.namespace wins over -n');
  t.equal(json(explicit).findings.length, 0);
});

t.test('a skip-rules annotation on a Namespace in the input switches a rule off, with a warning', async (t) => {
  const input = [
    'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n  annotations:\n    redis-istio-guard.io/skip-rules: vs-destination-service\n',
    'apiVersion: v1\nkind: Service\nmetadata: {name: other, namespace: team}\nspec: {ports: [{port: 1}]}\n',
    'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs, namespace: team}\nspec:\n  hosts: [db.example.com]\n  gateways: [mesh]\n  tcp:\n  - route:\n    - destination: {host: missing, port: {number: 1}}\n',
  ].join('---\n');
  const r = await check(['-', '-o', 'json'], input);
  t.equal(r.code, 0);
  t.same(
    json(r).findings.map((f) => [f.severity, f.rule, f.line, f.message]),
    [['warning', 'vs-destination-service', 15, 'rule vs-destination-service not checked: switched off by the annotation redis-istio-guard.io/skip-rules on namespace "team"']],
  );
  const without = await check(['-', '-o', 'json'], input.replace('vs-destination-service', 'nothing-known'));
  t.equal(without.code, 1);
  t.same(json(without).findings.map((f) => f.rule).sort(), ['skip-rules', 'vs-destination-service']);
});

t.test('--cluster reads the live cluster once, read only', async (t) => {
  const dir = t.testdir({});
  const cluster = await startFakeCluster(dir, {
    pageSize: 2,
    lists: {
      '/api/v1/namespaces': [{ metadata: { name: 'redis' } }, { metadata: { name: 'prod' } }],
      '/api/v1/services': [
        { metadata: { name: 'rec', namespace: 'redis' }, spec: { ports: [{ name: 'api', port: 9443 }] } },
        { metadata: { name: 'db1', namespace: 'redis' }, spec: { ports: [{ name: 'redis', port: 12000 }] } },
        { metadata: { name: 'cache', namespace: 'prod' }, spec: { ports: [{ port: 6379 }] } },
      ],
      '/apis/networking.istio.io/v1/gateways': [
        { apiVersion: 'networking.istio.io/v1', kind: 'Gateway', metadata: { name: 'redis-gateway', namespace: 'redis' }, spec: { servers: [{ hosts: ['*.redis.example.com'] }] } },
      ],
      // v1 of the REC is not served: the older version is tried.
      '/apis/app.redislabs.com/v1alpha1/redisenterpriseclusters': [],
      '/apis/app.redislabs.com/v1alpha1/redisenterprisedatabases': [
        { apiVersion: 'app.redislabs.com/v1alpha1', kind: 'RedisEnterpriseDatabase', metadata: { name: 'db2', namespace: 'redis' }, spec: { databasePort: 12002 } },
      ],
    },
  });
  t.teardown(() => cluster.close());
  const vs = (host: string, port: number, gateway = 'redis-gateway') =>
    `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs, namespace: redis}\nspec:\n  gateways: [${gateway}]\n  hosts: ["*.redis.example.com"]\n  tls:\n  - match: [{port: 443, sniHosts: [x.redis.example.com]}]\n    route:\n    - destination: {host: ${host}, port: {number: ${port}}}\n`;

  const ok = await check(['-', '--cluster', '--kubeconfig', cluster.kubeconfig, '-o', 'json'], vs('db1', 12000));
  t.equal(ok.code, 0, ok.error?.message ?? '');
  t.same(json(ok).findings, []);
  t.same(json(ok).summary.notJudged, [], 'with the live cluster every namespace is judged');
  t.equal(json(ok).summary.cluster, true);
  t.ok(cluster.requests.every((r) => r.startsWith('GET ')), 'only GETs');
  t.ok(cluster.requests.some((r) => r.includes('/api/v1/services?') && r.includes('continue=2')), 'lists are paged');

  const bad = await check(['-', '--cluster', '--kubeconfig', cluster.kubeconfig, '--context', 'other', '-o', 'json'], vs('db9', 12000, 'redis-gw'));
  t.equal(bad.code, 1);
  t.same(json(bad).findings.map((f) => f.rule), ['vs-destination-service', 'vs-gateway-exists']);
  t.match(json(bad).findings[0]?.message, /did you mean "db1" or "db2"\?/, 'close names come from the cluster and its predicted Services');

  const pending = await check(['-', '--cluster', '--kubeconfig', cluster.kubeconfig, '-o', 'json'], vs('db2', 12002));
  t.same(json(pending).findings.map((f) => f.rule), ['vs-destination-pending'], 'a REDB in the cluster predicts its Service');

  // The input wins over the cluster: a Service redefined in the manifests with another port.
  const redefined = await check(
    ['-', '--cluster', '--kubeconfig', cluster.kubeconfig, '-o', 'json'],
    `${vs('db1', 12000)}---\napiVersion: v1\nkind: Service\nmetadata: {name: db1, namespace: redis}\nspec: {ports: [{port: 13000}]}\n`,
  );
  t.same(json(redefined).findings.map((f) => f.rule), ['vs-destination-service-port']);

  // Without --cluster, the same input is not judged.
  const offline = await check(['-', '-o', 'json'], vs('db9', 12000));
  t.same(json(offline).findings, []);
  t.same(json(offline).summary.notJudged.map((n) => `${n.kind} ${n.namespace}`), ['Gateway redis', 'Service redis']);
});

t.test('--cluster without a cluster is exit 2 with a clear message, in bounded time', async (t) => {
  const dir = t.testdir({ 'empty.yaml': 'apiVersion: v1\nkind: Config\n' });
  const forbidden = await startFakeCluster(dir, { lists: {}, status: 403 });
  t.teardown(() => forbidden.close());
  const hanging = await startFakeCluster(dir, { lists: {}, hang: true });
  t.teardown(() => hanging.close());

  const cases: { name: string; args: string[]; error: RegExp }[] = [
    { name: 'connection refused', args: ['--kubeconfig', kubeconfigFor(dir, 'http://127.0.0.1:1', 'refused')], error: /^check --cluster: cannot list Namespaces at http:\/\/127\.0\.0\.1:1: .*(ECONNREFUSED|fetch failed|connect)/ },
    { name: 'forbidden', args: ['--kubeconfig', forbidden.kubeconfig], error: /^check --cluster: cannot list Namespaces at .*: HTTP 403: forbidden: User "reader" cannot list \/api\/v1\/namespaces/ },
    { name: 'no such kubeconfig', args: ['--kubeconfig', join(dir, 'missing')], error: /^check --cluster: cannot load the kubeconfig .*missing: ENOENT/ },
    { name: 'a kubeconfig without clusters', args: ['--kubeconfig', join(dir, 'empty.yaml')], error: /^check --cluster: the kubeconfig names no cluster/ },
    { name: 'no such context', args: ['--kubeconfig', forbidden.kubeconfig, '--context', 'prod'], error: /^check --cluster: no context "prod" in the kubeconfig; it has: fake, other$/ },
  ];
  for (const c of cases) {
    const started = Date.now();
    const r = await check(['examples/good', '--cluster', ...c.args]);
    t.equal(r.code, 2, c.name);
    t.match(r.error?.message, c.error, c.name);
    t.equal(r.out, '', `${c.name}: no report`);
    t.ok(Date.now() - started < 15_000, `${c.name}: ${Date.now() - started} ms`);
  }

  // An API server that accepts the connection and never answers: the deadline ends it.
  const opts: CheckOptions = {
    paths: ['examples/good'],
    output: 'text',
    warningsAsErrors: false,
    enforcement: {},
    namespace: 'default',
    clusterDomain: 'cluster.local',
    cluster: { kubeconfig: hanging.kubeconfig, timeoutMs: 500 },
  };
  const started = Date.now();
  await t.rejects(runCheck(opts, { stdout: () => {} }), /listing Namespaces at http:\/\/127\.0\.0\.1:\d+: no answer within 0\.5 s/);
  t.ok(Date.now() - started < 5000);
});

t.test('KUBECONFIG is read when --kubeconfig is not given', async (t) => {
  const dir = t.testdir({});
  const cluster = await startFakeCluster(dir, { lists: { '/api/v1/namespaces': [], '/api/v1/services': [] } });
  t.teardown(() => cluster.close());
  const saved = process.env.KUBECONFIG;
  process.env.KUBECONFIG = cluster.kubeconfig;
  t.teardown(() => {
    if (saved === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = saved;
  });
  writeFileSync(join(dir, 'vs.yaml'), 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs, namespace: a}\nspec:\n  hosts: [x.example.com]\n  gateways: [mesh]\n  tcp:\n  - route:\n    - destination: {host: nothing}\n');
  const r = await check([join(dir, 'vs.yaml'), '--cluster', '-o', 'json']);
  t.equal(r.code, 1, r.error?.message ?? '');
  t.same(json(r).findings.map((f) => f.rule), ['vs-destination-service']);
  t.ok(cluster.requests.length >= 5);
});
