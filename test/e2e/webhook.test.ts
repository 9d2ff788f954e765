/**
 * End-to-end: the webhook registered the way users register it (the chart's Validating and Mutating
 * WebhookConfigurations, rendered with helm, pointed at a URL on 127.0.0.1 with its caBundle) in
 * front of a real kube-apiserver, driven with the kubectl built from the pinned Kubernetes module.
 * Every scenario asserts kubectl's exit code and what it printed, since that is what a user or a CI
 * log shows. The in-process webhook runs with the cluster-aware checks on, its informers reading
 * the same API server through the control plane's kubeconfig.
 *
 * Webhook configurations reach the apiserver's admission chain through an informer, so after each
 * change a dry-run sentinel is polled until the change is in effect (waitForWebhook).
 */
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { parse as parseYaml } from 'yaml';
import { alwaysComplete, ClusterIndex } from '../../src/cluster/index.ts';
import { defaultServeSettings } from '../../src/config.ts';
import { defaultContext, type ClusterView } from '../../src/rules/context.ts';
import { decide, kindOfObject } from '../../src/rules/engine.ts';
import type { KubeObject } from '../../src/rules/types.ts';
import { startServer } from '../../src/server/serve.ts';
import { selfSignedPair } from '../../src/server/tls.ts';
import { rec } from '../fixtures/objects.ts';
import { startControlPlane, type ExecResult } from '../harness/controlplane.ts';
import {
  CONFIGURATION_NAME,
  MUTATING_CONFIGURATION_NAME,
  VALIDATING_WEBHOOK,
  assertNamespaceSelected,
  mutatingWebhookConfiguration,
  validatingWebhookConfiguration,
  type FailurePolicy,
} from '../harness/webhook-config.ts';
import { get } from '../helpers/review.ts';

// A first run may build kube-apiserver, kubectl and etcd from source.
t.setTimeout(30 * 60 * 1000);

const fileStarted = Date.now();
const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');
const MANIFESTS = join(here, 'manifests');
const PROBE_NS = 'rig-probe';
const REC_RESOURCE = 'redisenterprisecluster.app.redislabs.com';
const DENIED = `admission webhook "${VALIDATING_WEBHOOK}" denied the request:`;

/** Relative to the cwd, as a user would type it (kubectl echoes the name in its errors). */
const manifest = (name: string) => relative(process.cwd(), join(MANIFESTS, name));
const readManifest = (name: string) => parseYaml(readFileSync(join(MANIFESTS, name), 'utf8')) as KubeObject;

/**
 * What the rule engine itself says about a manifest: the words kubectl must show. `cluster` is the
 * cluster the test expects the webhook to see (for the cluster-aware VirtualService rules).
 */
function engineSays(name: string, namespace: string, operation: 'CREATE' | 'UPDATE' = 'CREATE', oldObject?: KubeObject, cluster?: ClusterView) {
  const object = { ...readManifest(name) };
  object.metadata = { ...(object.metadata as object), namespace };
  const kind = kindOfObject(object);
  if (!kind) throw new Error(`${name}: not a kind the rules know`);
  const d = decide({ operation, kind, object, oldObject }, { ...defaultContext(namespace), ...(cluster ? { cluster } : {}) });
  return { errors: d.errors.map((f) => f.message), warnings: d.warnings.map((f) => f.message) };
}

const lines = (s: string) => s.split('\n').filter((l) => l.trim() !== '');
const show = (r: ExecResult) => `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until cond holds; throws after timeoutMs. Returns the time it took. */
async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await cond()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await sleep(100);
  }
}

// ---- the control plane and the webhook under test ----

const cp = await startControlPlane();
t.teardown(() => cp.stop());
t.comment(
  `control plane up in ${((Date.now() - fileStarted) / 1000).toFixed(1)} s ` +
    `(apiserver /readyz ${cp.timings.apiserverMs} ms, CRDs ${cp.timings.crdsMs} ms)`,
);

/** The in-process webhook's log lines, to prove which requests it judged. */
const webhookLog: Record<string, unknown>[] = [];
const logStream = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line) continue;
      try {
        webhookLog.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        /* not JSON: ignore */
      }
    }
    done();
  },
});
const serverStarted = Date.now();
const server = await startServer(
  {
    ...defaultServeSettings,
    port: 0,
    host: '127.0.0.1',
    selfSigned: true,
    mutate: true,
    shutdownDelaySeconds: 0,
    logLevel: 'info',
    clusterChecks: 'on',
    kubeconfig: cp.kubeconfig,
  },
  { logger: pino({ level: 'info', base: { app: 'redis-istio-guard' } }, logStream) },
);
t.teardown(() => server.shutdown('test over'));
if (!/^https:\/\/127\.0\.0\.1:\d+$/.test(server.url)) throw new Error(`webhook URL ${server.url} is not on 127.0.0.1`);
if (!server.cluster) throw new Error('the webhook server started without cluster checks');
/** The webhook's live cache, to wait for the informers to catch up. */
const liveIndex = server.cluster.index;
// Ready means every informer has listed (caches synced): only then can a missing Service be judged.
await until('webhook /readyz 200 (cluster caches synced)', async () => (await get(server.url, server.certificate, '/readyz')).status === 200, 60_000);
t.comment(`webhook ready (cluster caches synced) ${Date.now() - serverStarted} ms after start`);

const admissions = (filter: Record<string, unknown>) =>
  webhookLog.filter((l) => l.msg === 'admission' && Object.entries(filter).every(([k, v]) => l[k] === v));

async function freshNamespace(name: string): Promise<string> {
  assertNamespaceSelected(name);
  const res = await cp.kubectl(['create', 'namespace', name]);
  if (res.code !== 0) throw new Error(`create namespace ${name}: ${show(res)}`);
  return name;
}

async function applyObject(obj: unknown): Promise<void> {
  await cp.applyYaml(JSON.stringify(obj));
}

async function registerValidating(url: string, caPem: string, failurePolicy: FailurePolicy): Promise<void> {
  await applyObject(validatingWebhookConfiguration({ url, caPem, failurePolicy }));
}

async function storedRec(ns: string, name = 'rec'): Promise<any> {
  const res = await cp.request('GET', `/apis/app.redislabs.com/v1/namespaces/${ns}/redisenterpriseclusters/${name}`);
  return res.status === 200 ? res.body : undefined;
}

// ---- sentinels: dry-run creates in a probe namespace, nothing is stored ----

await freshNamespace(PROBE_NS);
const probe = (obj: object) =>
  cp.request('POST', `/apis/app.redislabs.com/v1/namespaces/${PROBE_NS}/redisenterpriseclusters?dryRun=All`, obj);
/** Refused by every rule set (a scheme in apiFqdnUrl), and the mutation leaves it alone. */
const badProbe = rec(
  { method: 'istio', apiFqdnUrl: 'https://probe.redis.example.com', dbFqdnSuffix: '.redis.example.com' },
  { name: 'probe-bad', namespace: PROBE_NS },
);
const goodProbe = rec(undefined, { name: 'probe-good', namespace: PROBE_NS });
/** Allowed with a warning by the default rules, refused by a server run with rec-api-covered=deny. */
const uncoveredProbe = rec(
  { method: 'istio', apiFqdnUrl: 'probe-api.example.com', dbFqdnSuffix: '.redis.example.com' },
  { name: 'probe-uncovered', namespace: PROBE_NS },
);
/** Refused by the validator, rewritten to the dot form by the mutator. */
const hyphenProbe = rec(
  { method: 'istio', apiFqdnUrl: 'api.redis.example.com', dbFqdnSuffix: '-redis.example.com' },
  { name: 'probe-hyphen', namespace: PROBE_NS },
);

const deniedByUs = (r: { status: number; body: any }) => r.status === 403 && String(r.body?.message).startsWith(DENIED);
const validatorOn = async () => deniedByUs(await probe(badProbe));
const validatorOff = async () => (await probe(badProbe)).status === 201;

async function waitFor(what: string, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  await cp.waitForWebhook(check, 60_000).catch((err: Error) => {
    throw new Error(`${what}: ${err.message}`);
  });
  return Date.now() - started;
}

/** The in-process webhook as the validating webhook, failurePolicy Fail: the state every scenario starts in. */
async function restoreValidator(): Promise<void> {
  await registerValidating(server.url, server.certificate, 'Fail');
  await waitFor('validating webhook on the in-process server', validatorOn);
}

const registerStarted = Date.now();
// No assertion at the top level: tap ends the root test once it has results and is idle.
const unregistered = await probe(badProbe);
if (unregistered.status !== 201) throw new Error(`before registration the bad probe should pass: ${JSON.stringify(unregistered)}`);
await restoreValidator();
t.comment(`validating webhook registered and active after ${Date.now() - registerStarted} ms`);

const timings: Record<string, number> = {};
const transcript: string[] = [];
/** stderr first: kubectl prints warnings while the request runs, and its result after. */
function record(title: string, command: string, res: ExecResult): void {
  transcript.push(`## ${title}\n$ ${command}\n${res.stderr}${res.stdout}(exit ${res.code})\n`);
}
type TapTest = Parameters<Parameters<typeof t.test>[0]>[0];
function scenario(name: string, fn: (t: TapTest) => Promise<void>) {
  return t.test(name, async (t) => {
    const started = Date.now();
    await fn(t);
    timings[name] = Date.now() - started;
  });
}

// ---- scenarios ----

void scenario('1 REC with method istio and a hyphen suffix is refused with our message', async (t) => {
  const ns = await freshNamespace('s1-rec-hyphen');
  const file = manifest('rec-istio-hyphen.yaml');
  const res = await cp.kubectl(['apply', '-n', ns, '-f', file]);
  record('kubectl apply refused', `kubectl apply -n ${ns} -f ${file}`, res);
  t.equal(res.code, 1, show(res));
  t.equal(res.stdout, '', 'nothing on stdout');
  const expected =
    'spec.ingressOrRouteSpec.dbFqdnSuffix: Invalid value: "-redis.example.com": database hosts become ' +
    '"<db>-redis.example.com", and Istio rejects the wildcard "*-redis.example.com" as a partial wildcard; ' +
    'use ".redis.example.com"';
  t.same(engineSays('rec-istio-hyphen.yaml', ns).errors, [expected], 'the engine says exactly this');
  t.equal(
    res.stderr,
    `Error from server (Forbidden): error when creating "${file}": ${DENIED} ${expected}\n`,
    'kubectl prints the webhook name, then our field error',
  );
  t.match(admissions({ namespace: ns, name: 'rec', operation: 'CREATE', allowed: false, endpoint: 'validate' }), [{}], 'our webhook judged it');
  const get = await cp.kubectl(['get', 'redisenterprisecluster', 'rec', '-n', ns]);
  t.equal(get.code, 1, 'nothing stored');
  t.match(get.stderr, `Error from server (NotFound): redisenterpriseclusters.app.redislabs.com "rec" not found`);
});

void scenario('2 the dot suffix is created; method ingress keeps its hyphen suffix', async (t) => {
  const ns = await freshNamespace('s2-rec-accepted');
  const dot = await cp.kubectl(['apply', '-n', ns, '-f', manifest('rec-istio-dot.yaml')]);
  t.equal(dot.code, 0, show(dot));
  t.equal(dot.stdout, `${REC_RESOURCE}/rec created\n`);
  t.equal(dot.stderr, '', 'no warning');
  t.equal((await storedRec(ns))?.spec?.ingressOrRouteSpec?.dbFqdnSuffix, '.redis.example.com');

  const ingress = await cp.kubectl(['apply', '-n', ns, '-f', manifest('rec-ingress-hyphen.yaml')]);
  // Same name "rec": apply updates it, switching method to ingress with a hyphen suffix.
  t.equal(ingress.code, 0, show(ingress));
  t.equal(ingress.stdout, `${REC_RESOURCE}/rec configured\n`);
  t.equal(ingress.stderr, '', 'no warning');

  const ns2 = await freshNamespace('s2-rec-ingress');
  const created = await cp.kubectl(['apply', '-n', ns2, '-f', manifest('rec-ingress-hyphen.yaml')]);
  t.equal(created.code, 0, show(created));
  t.equal(created.stdout, `${REC_RESOURCE}/rec created\n`);
  t.equal(created.stderr, '', 'no warning');
  t.match((await storedRec(ns2))?.spec?.ingressOrRouteSpec, { method: 'ingress', dbFqdnSuffix: '-redis.example.com' });
  for (const n of [ns, ns2]) {
    t.ok(admissions({ namespace: n, name: 'rec', allowed: true, endpoint: 'validate' }).length > 0, `our webhook admitted rec in ${n}`);
  }
});

void scenario('3 a Gateway with a partial wildcard host is refused with our message', async (t) => {
  const ns = await freshNamespace('s3-gateway');
  const file = manifest('gateway-partial-wildcard.yaml');
  const res = await cp.kubectl(['apply', '-n', ns, '-f', file]);
  record('Gateway refused', `kubectl apply -n ${ns} -f ${file}`, res);
  t.equal(res.code, 1, show(res));
  t.equal(res.stdout, '');
  const errors = engineSays('gateway-partial-wildcard.yaml', ns).errors;
  t.equal(errors.length, 1, 'one error');
  t.match(errors[0], /^spec\.servers\[0\]\.hosts\[0\]: Invalid value: "\*-redis\.example\.com": partial wildcard/);
  t.equal(res.stderr, `Error from server (Forbidden): error when creating "${file}": ${DENIED} ${errors[0]}\n`);
  t.match(
    admissions({ namespace: ns, name: 'redis-gateway', kind: 'networking.istio.io/v1/Gateway', allowed: false }),
    [{}],
    'the refusal is ours: the Istio CRD schema let it through',
  );
  const get = await cp.kubectl(['get', 'gateways.networking.istio.io', 'redis-gateway', '-n', ns]);
  t.equal(get.code, 1, 'nothing stored');
  t.match(get.stderr, 'NotFound');
});

void scenario('4 a VirtualService to a missing Service is refused, accepted once the Service exists; a wrong port is refused', async (t) => {
  const ns = await freshNamespace('s4-virtualservice');
  const VS_RESOURCE = 'virtualservice.networking.istio.io';
  // The Gateway the VirtualServices name, so that the Gateway checks (warnings) have nothing to say.
  await freshNamespace('istio-system');
  const gwFile = manifest('gateway-redis.yaml');
  const gw = await cp.kubectl(['apply', '-f', gwFile]);
  t.equal(gw.code, 0, show(gw));
  t.equal(gw.stdout, 'gateway.networking.istio.io/redis-gateway created\n');
  t.equal(gw.stderr, '', 'the Gateway has no warning');
  await until('the webhook cache has the Gateway', () => liveIndex.gateway('istio-system', 'redis-gateway') !== undefined);

  // The cluster the webhook should see: the Gateway, then also Service db1; nothing else matters here.
  const expectedCluster = new ClusterIndex({ completeness: alwaysComplete });
  expectedCluster.upsert(readManifest('gateway-redis.yaml'));

  const file = manifest('vs-db1.yaml');
  const refused = await cp.kubectl(['apply', '-n', ns, '-f', file]);
  record('VirtualService to a missing Service refused', `kubectl apply -n ${ns} -f ${file}`, refused);
  t.equal(refused.code, 1, show(refused));
  t.equal(refused.stdout, '');
  const missing = engineSays('vs-db1.yaml', ns, 'CREATE', undefined, expectedCluster);
  t.same(missing.warnings, []);
  t.equal(missing.errors.length, 1, 'one error');
  t.match(
    missing.errors[0],
    `spec.tls[0].route[0].destination.host: Invalid value: "db1": Service "db1" not found in namespace "${ns}"`,
    'the message names the host and the namespace',
  );
  const refusal = `Error from server (Forbidden): error when creating "${file}": ${DENIED} ${missing.errors[0]}\n`;
  t.equal(refused.stderr, refusal);
  t.match(admissions({ namespace: ns, name: 'db1', kind: 'networking.istio.io/v1/VirtualService', allowed: false }), [{}], 'our webhook judged it');
  const notStored = await cp.kubectl(['get', VS_RESOURCE, 'db1', '-n', ns]);
  t.equal(notStored.code, 1, 'nothing stored');
  t.match(notStored.stderr, 'NotFound');

  const svcFile = manifest('service-db1.yaml');
  const svc = await cp.kubectl(['apply', '-n', ns, '-f', svcFile]);
  t.equal(svc.code, 0, show(svc));
  t.equal(svc.stdout, 'service/db1 created\n');
  expectedCluster.upsert({ ...readManifest('service-db1.yaml'), metadata: { name: 'db1', namespace: ns } });
  t.same(engineSays('vs-db1.yaml', ns, 'CREATE', undefined, expectedCluster), { errors: [], warnings: [] }, 'the engine admits it now');

  // The same apply, until the webhook's informer has seen the Service; until then, the same refusal.
  const created = Date.now();
  let attempts = 0;
  let accepted: ExecResult | undefined;
  while (Date.now() - created < 30_000) {
    attempts++;
    const res = await cp.kubectl(['apply', '-n', ns, '-f', file]);
    if (res.code === 0 || res.stderr !== refusal) {
      accepted = res;
      break;
    }
    await sleep(100);
  }
  t.ok(accepted, `accepted within 30 s of creating the Service (${attempts} applies)`);
  if (!accepted) return;
  t.comment(`Service created → the same apply accepted after ${Date.now() - created} ms, ${attempts} applies`);
  record('the same apply once the Service exists', `kubectl apply -n ${ns} -f ${file}`, accepted);
  t.equal(accepted.code, 0, show(accepted));
  t.equal(accepted.stdout, `${VS_RESOURCE}/db1 created\n`);
  t.equal(accepted.stderr, '', 'no warning');
  t.match(admissions({ namespace: ns, name: 'db1', kind: 'networking.istio.io/v1/VirtualService', allowed: true }), [{}]);
  const stored = await cp.kubectl(['get', VS_RESOURCE, 'db1', '-n', ns, '-o', 'jsonpath={.spec.tls[0].route[0].destination}']);
  t.equal(stored.code, 0, show(stored));
  t.same(JSON.parse(stored.stdout), { host: 'db1', port: { number: 12000 } }, 'stored');

  const wrongFile = manifest('vs-db1-wrong-port.yaml');
  const wrong = await cp.kubectl(['apply', '-n', ns, '-f', wrongFile]);
  record('VirtualService to a port the Service lacks refused', `kubectl apply -n ${ns} -f ${wrongFile}`, wrong);
  t.equal(wrong.code, 1, show(wrong));
  t.equal(wrong.stdout, '');
  const port = engineSays('vs-db1-wrong-port.yaml', ns, 'CREATE', undefined, expectedCluster);
  t.same(port.warnings, []);
  t.equal(port.errors.length, 1, 'one error');
  t.match(
    port.errors[0],
    `spec.tls[0].route[0].destination.port.number: Invalid value: 9999: Service "db1" in namespace "${ns}" has no port 9999`,
  );
  t.match(port.errors[0], 'its ports: 12000 (redis)', "the Service's ports are listed");
  t.equal(wrong.stderr, `Error from server (Forbidden): error when creating "${wrongFile}": ${DENIED} ${port.errors[0]}\n`);
  const wrongStored = await cp.kubectl(['get', VS_RESOURCE, 'db1-wrong-port', '-n', ns]);
  t.equal(wrongStored.code, 1, 'nothing stored');
});

void scenario('5 kubectl apply --dry-run=server gives the same refusal and stores nothing', async (t) => {
  const ns = await freshNamespace('s5-dry-run');
  const file = manifest('rec-istio-hyphen.yaml');
  const res = await cp.kubectl(['apply', '--dry-run=server', '-n', ns, '-f', file]);
  record('server dry run refused', `kubectl apply --dry-run=server -n ${ns} -f ${file}`, res);
  t.equal(res.code, 1, show(res));
  t.equal(res.stdout, '');
  const [expected] = engineSays('rec-istio-hyphen.yaml', ns).errors;
  t.equal(res.stderr, `Error from server (Forbidden): error when creating "${file}": ${DENIED} ${expected}\n`);
  t.match(admissions({ namespace: ns, name: 'rec', dryRun: true, allowed: false }), [{}], 'the review said dryRun: true');

  const ok = await cp.kubectl(['apply', '--dry-run=server', '-n', ns, '-f', manifest('rec-istio-dot.yaml')]);
  t.equal(ok.code, 0, show(ok));
  t.equal(ok.stdout, `${REC_RESOURCE}/rec created (server dry run)\n`);
  t.match(admissions({ namespace: ns, name: 'rec', dryRun: true, allowed: true }), [{}]);

  const get = await cp.kubectl(['get', 'redisenterpriseclusters', '-n', ns]);
  t.equal(get.code, 0, show(get));
  t.equal(get.stdout, '', 'neither dry run stored anything');
  t.equal(get.stderr, `No resources found in ${ns} namespace.\n`);
  const one = await cp.kubectl(['get', 'redisenterprisecluster', 'rec', '-n', ns]);
  t.equal(one.code, 1);
  t.match(one.stderr, 'Error from server (NotFound)');
});

void scenario('6 warnings print as Warning: lines and the apply succeeds', async (t) => {
  const ns = await freshNamespace('s6-warnings');
  const file = manifest('rec-api-uncovered.yaml');
  const res = await cp.kubectl(['apply', '-n', ns, '-f', file]);
  record('created with a warning', `kubectl apply -n ${ns} -f ${file}`, res);
  t.equal(res.code, 0, show(res));
  t.equal(res.stdout, `${REC_RESOURCE}/rec created\n`);
  const { errors, warnings } = engineSays('rec-api-uncovered.yaml', ns);
  t.same(errors, []);
  t.same(warnings, [
    'spec.ingressOrRouteSpec.apiFqdnUrl: Invalid value: "redis-api.example.com": not covered by the database wildcard ' +
      '"*.redis.example.com": the Gateway needs a second host and DNS a second record',
  ]);
  t.same(lines(res.stderr), warnings.map((w) => `Warning: ${w}`), 'one Warning: line per warning');
  t.ok(await storedRec(ns), 'stored');

  const two = await cp.kubectl(['apply', '-n', ns, '-f', manifest('rec-two-warnings.yaml')]);
  t.equal(two.code, 0, show(two));
  t.equal(two.stdout, `${REC_RESOURCE}/rec-legacy created\n`);
  const expected = engineSays('rec-two-warnings.yaml', ns).warnings;
  t.equal(expected.length, 2);
  t.same(lines(two.stderr), expected.map((w) => `Warning: ${w}`), 'two warnings, two lines');
  t.ok(await storedRec(ns, 'rec-legacy'), 'stored');
});

void scenario('7 with the mutating webhook on, a hyphen REC is stored with the dot suffix', async (t) => {
  const ns = await freshNamespace('s7-mutate');
  t.teardown(async () => {
    await cp.kubectl(['delete', 'mutatingwebhookconfiguration', MUTATING_CONFIGURATION_NAME, '--ignore-not-found']);
    await waitFor('mutating webhook removed', async () => deniedByUs(await probe(hyphenProbe)));
  });
  const before = await probe(hyphenProbe);
  t.ok(deniedByUs(before), 'without the mutator, the hyphen probe is refused');
  await applyObject(mutatingWebhookConfiguration({ url: server.url, caPem: server.certificate, failurePolicy: 'Fail' }));
  const ms = await waitFor('mutating webhook active', async () => {
    const r = await probe(hyphenProbe);
    return r.status === 201 && r.body?.spec?.ingressOrRouteSpec?.dbFqdnSuffix === '.redis.example.com';
  });
  t.comment(`mutating webhook active after ${ms} ms`);

  const file = manifest('rec-istio-hyphen.yaml');
  const res = await cp.kubectl(['apply', '-n', ns, '-f', file]);
  record('mutated on create', `kubectl apply -n ${ns} -f ${file}`, res);
  t.equal(res.code, 0, show(res));
  t.equal(res.stdout, `${REC_RESOURCE}/rec created\n`);
  t.same(lines(res.stderr), [
    'Warning: spec.ingressOrRouteSpec.dbFqdnSuffix: changed "-redis.example.com" to ".redis.example.com": ' +
      'Istio rejects the partial wildcard "*-redis.example.com"',
  ]);
  t.match(admissions({ namespace: ns, name: 'rec', endpoint: 'mutate', patched: true }), [{}], 'patched by /mutate');
  t.match(admissions({ namespace: ns, name: 'rec', endpoint: 'validate', allowed: true }), [{}], 'then validated');

  const get = await cp.kubectl(['get', 'redisenterprisecluster', 'rec', '-n', ns, '-o', 'json']);
  t.equal(get.code, 0, show(get));
  const stored = JSON.parse(get.stdout);
  t.equal(stored.spec.ingressOrRouteSpec.dbFqdnSuffix, '.redis.example.com', 'stored with the dot suffix');
  // kubectl keeps what the user wrote in its last-applied annotation, not the mutated value.
  const lastApplied = JSON.parse(stored.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration']);
  t.equal(lastApplied.spec.ingressOrRouteSpec.dbFqdnSuffix, '-redis.example.com', 'last-applied keeps the hyphen');

  // Applying the same file again: kubectl's three-way merge sends the hyphen back (live differs
  // from the file), the mutator rewrites it again, and the apiserver finds nothing to write.
  const again = await cp.kubectl(['apply', '-n', ns, '-f', file]);
  record('mutated on re-apply', `kubectl apply -n ${ns} -f ${file}`, again);
  t.equal(again.code, 0, show(again));
  t.equal(again.stdout, `${REC_RESOURCE}/rec configured\n`, 'kubectl says configured');
  t.same(lines(again.stderr), lines(res.stderr), 'and the mutation warning comes again on every apply');
  const after = await storedRec(ns);
  t.equal(after?.spec?.ingressOrRouteSpec?.dbFqdnSuffix, '.redis.example.com', 'still the dot suffix');
  t.equal(after?.metadata?.resourceVersion, stored.metadata.resourceVersion, 'a no-op: the object was not written again');
});

void scenario('8 webhook process stopped: failurePolicy Fail refuses, Ignore admits', async (t) => {
  const ns = await freshNamespace('s8-failure-policy');
  const dir = mkdtempSync(join(tmpdir(), 'rig-webhook-'));
  const pair = await selfSignedPair();
  writeFileSync(join(dir, 'tls.crt'), pair.cert);
  writeFileSync(join(dir, 'tls.key'), pair.key, { mode: 0o600 });

  // The real executable, with rec-api-covered turned into a denial so that the sentinel can
  // tell it from the in-process server.
  const child: ChildProcess = spawn(
    process.execPath,
    [
      join(repo, 'src', 'cli', 'main.ts'),
      'serve',
      '--host=127.0.0.1',
      '--port=0',
      `--tls-cert-file=${join(dir, 'tls.crt')}`,
      `--tls-key-file=${join(dir, 'tls.key')}`,
      '--shutdown-delay=0',
      '--rule=rec-api-covered=deny',
    ],
    { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_PROXY: '127.0.0.1' } },
  );
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    await restoreValidator();
  });
  let out = '';
  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`webhook process did not start in 30 s:\n${out}\n${err}`)), 30_000);
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      for (const line of out.split('\n')) {
        try {
          const entry = JSON.parse(line) as { msg?: string; address?: string };
          if (entry.msg === 'serving' && entry.address) {
            clearTimeout(timer);
            resolveUrl(entry.address);
          }
        } catch {
          /* partial line */
        }
      }
    });
    void exited.then((code) => reject(new Error(`webhook process exited (${code}) before serving:\n${out}\n${err}`)));
  });
  t.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);

  await registerValidating(url, pair.cert, 'Fail');
  const ms = await waitFor('validating webhook on the separate process', async () => {
    const r = await probe(uncoveredProbe);
    return deniedByUs(r) && String(r.body?.message).includes('not covered by the database wildcard');
  });
  t.comment(`webhook process ${child.pid} serves ${url}; active after ${ms} ms`);

  // Stop the process the way Kubernetes does (SIGTERM); it drains and exits 0.
  process.kill(child.pid!, 'SIGTERM');
  t.equal(await exited, 0, 'webhook process exited cleanly');

  const file = manifest('rec-istio-dot.yaml');
  const fail = await cp.kubectl(['apply', '-n', ns, '-f', file]);
  record('failurePolicy Fail, webhook down', `kubectl apply -n ${ns} -f ${file}`, fail);
  t.equal(fail.code, 1, show(fail));
  t.equal(fail.stdout, '');
  const port = new URL(url).port;
  t.match(
    fail.stderr,
    `Error from server (InternalError): error when creating "${file}": Internal error occurred: ` +
      `failed calling webhook "${VALIDATING_WEBHOOK}": failed to call webhook: Post "${url}/validate?timeout=5s": ` +
      `dial tcp 127.0.0.1:${port}: connect: connection refused`,
    'even a valid object is refused while the webhook is down',
  );
  t.equal(await storedRec(ns), undefined, 'nothing stored');

  await registerValidating(url, pair.cert, 'Ignore');
  const ignoreMs = await waitFor('failurePolicy Ignore in effect', async () => (await probe(goodProbe)).status === 201);
  t.comment(`failurePolicy Ignore in effect after ${ignoreMs} ms`);

  // The trade-off: with Ignore, what the webhook would refuse gets in while it is down.
  const hyphen = manifest('rec-istio-hyphen.yaml');
  const ignore = await cp.kubectl(['apply', '-n', ns, '-f', hyphen]);
  record('failurePolicy Ignore, webhook down', `kubectl apply -n ${ns} -f ${hyphen}`, ignore);
  t.equal(ignore.code, 0, show(ignore));
  t.equal(ignore.stdout, `${REC_RESOURCE}/rec created\n`);
  t.equal(ignore.stderr, '', 'kubectl shows nothing about the failed call');
  t.equal((await storedRec(ns))?.spec?.ingressOrRouteSpec?.dbFqdnSuffix, '-redis.example.com', 'the bad suffix is stored');
});

void scenario('9 ratcheting: a bad REC from before the webhook can be relabelled, not made worse', async (t) => {
  const ns = await freshNamespace('s9-ratchet');
  t.teardown(() => restoreValidator());
  const del = await cp.kubectl(['delete', 'validatingwebhookconfiguration', CONFIGURATION_NAME]);
  t.equal(del.code, 0, show(del));
  await waitFor('validating webhook removed', validatorOff);

  const file = manifest('rec-istio-hyphen.yaml');
  const created = await cp.kubectl(['apply', '-n', ns, '-f', file]);
  t.equal(created.code, 0, show(created));
  t.equal(created.stdout, `${REC_RESOURCE}/rec created\n`, 'created while no webhook was registered');
  t.equal(created.stderr, '');

  await restoreValidator();

  const label = await cp.kubectl(['label', '-n', ns, 'redisenterprisecluster', 'rec', 'team=cache']);
  record('relabel of a bad REC (ratchet)', `kubectl label -n ${ns} redisenterprisecluster rec team=cache`, label);
  t.equal(label.code, 0, show(label));
  t.equal(label.stdout, `${REC_RESOURCE}/rec labeled\n`);
  const old = { ...readManifest('rec-istio-hyphen.yaml'), metadata: { name: 'rec', namespace: ns } };
  const ratchet = engineSays('rec-istio-hyphen.yaml', ns, 'UPDATE', old);
  t.same(ratchet.errors, []);
  t.match(ratchet.warnings, [/\(allowed: unchanged in this update\)$/]);
  t.same(lines(label.stderr), ratchet.warnings.map((w) => `Warning: ${w}`), 'the unchanged error comes back as a warning');
  t.match(admissions({ namespace: ns, name: 'rec', operation: 'UPDATE', allowed: true }), [{}]);
  t.equal((await storedRec(ns))?.metadata?.labels?.team, 'cache', 'label stored');

  const worsePatch = '{"spec":{"ingressOrRouteSpec":{"dbFqdnSuffix":"-cache.example.com"}}}';
  const worse = await cp.kubectl(['patch', '-n', ns, 'redisenterprisecluster', 'rec', '--type=merge', '-p', worsePatch]);
  record('suffix changed to another bad value', `kubectl patch -n ${ns} redisenterprisecluster rec --type=merge -p '${worsePatch}'`, worse);
  t.equal(worse.code, 1, show(worse));
  t.equal(worse.stdout, '');
  t.equal(
    worse.stderr,
    `Error from server (Forbidden): ${DENIED} spec.ingressOrRouteSpec.dbFqdnSuffix: Invalid value: "-cache.example.com": ` +
      'database hosts become "<db>-cache.example.com", and Istio rejects the wildcard "*-cache.example.com" as a partial wildcard; ' +
      'use ".cache.example.com"\n',
  );
  t.equal((await storedRec(ns))?.spec?.ingressOrRouteSpec?.dbFqdnSuffix, '-redis.example.com', 'stored suffix unchanged');

  const fixed = await cp.kubectl([
    'patch', '-n', ns, 'redisenterprisecluster', 'rec', '--type=merge',
    '-p', '{"spec":{"ingressOrRouteSpec":{"dbFqdnSuffix":".redis.example.com"}}}',
  ]);
  t.equal(fixed.code, 0, show(fixed));
  t.equal(fixed.stdout, `${REC_RESOURCE}/rec patched\n`);
  t.equal(fixed.stderr, '', 'the fix has no warning');
});

void t.test('timings and transcript', async (t) => {
  for (const [name, ms] of Object.entries(timings)) t.comment(`${(ms / 1000).toFixed(1)} s  ${name}`);
  t.comment(`whole file so far: ${((Date.now() - fileStarted) / 1000).toFixed(1)} s`);
  const out = process.env.RIG_E2E_TRANSCRIPT;
  if (out) writeFileSync(out, transcript.join('\n'));
  t.ok(transcript.length > 0);
});
